//! `predict --shard K/N` and `dypose merge`: three shards, one killed midway and run again,
//! merge into the file one `predict` over all the images writes, byte for byte; a merge of a
//! missing, duplicated, unfinished or foreign shard is refused, and so is a restart with other
//! arguments.

mod common;

use common::{dypose, ok, s};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IMAGES: &str = "data/coco-sample/val2017";

/// A tiny model with random weights; batches of one crop, so that the predictor reads two
/// images at a time and a blocked read stops it after the chunks before it.
fn tiny_model(dir: &Path) -> PathBuf {
    let cfg = dir.join("tiny.json");
    std::fs::write(
        &cfg,
        r#"{"input_size": [64, 64], "heatmap_size": [16, 16], "val": {"batch_size": 1},
            "model": {"arch": "dy-resnet10", "width": 0.125, "head_channels": 16}}"#,
    )
    .unwrap();
    let ck = dir.join("tiny.safetensors");
    ok(&["init", "--config", s(&cfg), "--out", s(&ck)]);
    ck
}

/// Twelve images from the four real samples (crops and resizes, so that each differs), the
/// tenth a truncated JPEG.
fn images(dir: &Path) -> Vec<PathBuf> {
    let mut samples: Vec<PathBuf> = std::fs::read_dir(IMAGES).unwrap().map(|e| e.unwrap().path()).collect();
    samples.sort();
    std::fs::create_dir(dir).unwrap();
    (0..12)
        .map(|i| {
            let path = dir.join(format!("img{i:02}.jpg"));
            if i == 9 {
                let bytes = std::fs::read(&samples[1]).unwrap();
                std::fs::write(&path, &bytes[..300]).unwrap();
            } else {
                let img = image::open(&samples[i % 4]).unwrap();
                let (w, h) = (img.width() - 20 * i as u32, img.height() - 10 * i as u32);
                img.crop_imm(i as u32 * 7, i as u32 * 3, w, h)
                    .resize(w / 2, h / 2, image::imageops::FilterType::Triangle)
                    .save(&path)
                    .unwrap();
            }
            path
        })
        .collect()
}

fn predict_args<'a>(ck: &'a Path, images: &'a [PathBuf], out: &'a Path) -> Vec<&'a str> {
    let mut args = vec!["predict", "--checkpoint", s(ck), "--out", s(out), "--images"];
    args.extend(images.iter().map(|p| s(p)));
    args
}

fn with<'a>(mut args: Vec<&'a str>, more: &[&'static str]) -> Vec<&'a str> {
    args.extend(more);
    args
}

fn stderr_of(args: &[&str]) -> String {
    let o = dypose(args);
    assert!(!o.status.success(), "dypose {} should fail", args.join(" "));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Kills the child when dropped, so that a failing test leaves no process blocked on the FIFO.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(unix)]
#[test]
fn three_shards_one_killed_and_restarted_merge_into_the_single_run_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_model(dir.path());
    let images = images(&dir.path().join("imgs"));
    // The reference: one predict over all twelve (it fails on the truncated one, after writing).
    let single = dir.path().join("single");
    let err = stderr_of(&predict_args(&ck, &images, &single));
    assert!(err.contains("img09.jpg") && err.contains("1 of 12 images could not be read"), "{err}");
    let reference = std::fs::read(single.join("results.json")).unwrap();
    assert!(common::read_json(&single.join("results.json")).as_array().unwrap().len() == 11);

    let out = dir.path().join("sharded");
    let shard = |k: &'static str| with(predict_args(&ck, &images, &out), &["--no-draw", "--chunk", "1", "--shard", k]);
    ok(&shard("0/3"));
    // Shard 1/3 is images 4..8. Image 6 becomes a FIFO that nobody writes: reading it blocks,
    // after images 4 and 5 went through; the shard is killed there.
    let img06 = &images[6];
    let aside = dir.path().join("img06.jpg");
    std::fs::rename(img06, &aside).unwrap();
    assert!(Command::new("mkfifo").arg(img06).status().unwrap().success());
    let args = shard("1/3");
    let child = Command::new(env!("CARGO_BIN_EXE_dypose")).args(&args).stderr(Stdio::null()).spawn().unwrap();
    let mut child = Killed(child);
    let folder = out.join("shards/shard-1-of-3");
    let start = Instant::now();
    while !folder.join("chunk-000001.json").exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "shard 1/3 wrote no second chunk");
        assert!(child.0.try_wait().unwrap().is_none(), "shard 1/3 ended before it was killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(!folder.join("chunk-000002.json").exists(), "the killed shard got past the blocked image");
    std::fs::remove_file(img06).unwrap();
    std::fs::rename(&aside, img06).unwrap();

    // Merging now is refused: shard 2 is missing; once it ran, shard 1 is unfinished.
    let err = stderr_of(&["merge", s(&out)]);
    assert!(err.contains("shard 2/3 of this run is missing: run `dypose predict … --shard 2/3`"), "{err}");
    // Shard 2 from a Slurm job array's variables (--array=1-3, task 3 is the third).
    let mut slurm = Command::new(env!("CARGO_BIN_EXE_dypose"));
    slurm.args(with(predict_args(&ck, &images, &out), &["--no-draw", "--chunk", "1", "--shard", "auto"]));
    slurm.envs([("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "3")]);
    let o = slurm.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("img09.jpg") && err.contains("1 of 4 images could not be read"),
        "{err}"
    );
    assert!(out.join("shards/shard-2-of-3/chunk-000003.json").exists());
    let err = stderr_of(&["merge", s(&out)]);
    assert!(err.contains("shard 1/3 is not finished: 2 of its 4 chunks are not written"), "{err}");
    assert!(!out.join("results.json").exists(), "a refused merge writes nothing");

    // Run again with other arguments: refused, naming what differs; with the same: continues.
    let err = stderr_of(&with(shard("1/3"), &["--no-flip"]));
    assert!(err.contains("started by another request") && err.contains("flip: true vs false"), "{err}");
    let again = ok(&shard("1/3"));
    assert!(again.contains("2 chunks now, 2 written before"), "{again}");

    // The merge: the single run's file, byte for byte, and the same unreadable image named.
    let err = stderr_of(&["merge", s(&out)]);
    assert!(err.contains("img09.jpg") && err.contains("1 of 12 images could not be read"), "{err}");
    assert_eq!(std::fs::read(out.join("results.json")).unwrap(), reference, "merged ≠ single run");
    let err = stderr_of(&["merge", s(&out)]);
    assert!(err.contains("already exists"), "{err}");

    // A shard given twice, and a shard of another run, are refused.
    let twin = dir.path().join("copy");
    std::fs::create_dir(&twin).unwrap();
    for f in ["run.json", "chunk-000000.json", "chunk-000001.json", "chunk-000002.json", "chunk-000003.json"] {
        std::fs::copy(folder.join(f), twin.join(f)).unwrap();
    }
    let err = stderr_of(&["merge", s(&out), s(&twin), "--out", s(&dir.path().join("m.json"))]);
    assert!(err.contains("are both shard 1/3"), "{err}");
    let other = dir.path().join("other");
    ok(&with(predict_args(&ck, &images[..11], &other), &["--no-draw", "--shard", "0/3"]));
    let err = stderr_of(&[
        "merge",
        s(&out.join("shards/shard-0-of-3")),
        s(&other.join("shards/shard-0-of-3")),
        "--out",
        s(&dir.path().join("m.json")),
    ]);
    assert!(err.contains("shards of different runs") && err.contains("images: 12 vs 11"), "{err}");
    assert!(!dir.path().join("m.json").exists(), "a refused merge writes nothing");
}
