//! Data-parallel training under `mpirun -np 2` (a build with `--features mpi` and Open MPI or
//! MPICH installed; `.ci/run` installs Open MPI): one step of two ranks equals one process that
//! averages the two half-batches' gradients; a killed rank ends the job quickly and the last
//! checkpoint resumes, with another number of ranks; `predict` and `eval --checkpoint` under
//! mpirun give what one process gives.
#![cfg(feature = "mpi")]

mod common;

use common::{ok, s};
use dfdx::prelude::*;
use dypose::coco::CocoDataset;
use dypose::config::Config;
use dypose::data::loader::BatchPart;
use dypose::model::network::Network;
use dypose::train::schedule::{learning_rate, temperature};
use dypose::train::tasks::{train_loader, Scores, Task};
use dypose::train::Pose;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `mpirun -np N dypose ARGS…`, allowed to run as root (CI runs as root), one thread per rank
/// on this 2-core machine.
fn mpirun(ranks: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", &ranks.to_string()]);
    c.args(["-x", "RAYON_NUM_THREADS=1", env!("CARGO_BIN_EXE_dypose")]).args(args);
    c
}

fn succeeded(o: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{what}: {err}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A small synthetic set and a tiny model's config (batches of 4 per rank).
fn setup(dir: &Path, train: &str) -> PathBuf {
    let data = dir.join("syn");
    ok(&["synth", "--out", s(&data), "--train", "48", "--val", "12", "--width", "192", "--height", "160"]);
    let cfg = dir.join("tiny.json");
    let text = format!(
        r#"{{"seed": 3,
            "data": {{"train_annotations": "syn/annotations/person_keypoints_train.json", "train_images": "syn/train",
                      "val_annotations": "syn/annotations/person_keypoints_val.json", "val_images": "syn/val"}},
            "input_size": [64, 64], "heatmap_size": [16, 16],
            "model": {{"arch": "dy-resnet10", "width": 0.125, "head_channels": 16}},
            "loader": {{"batch_size": 4, "workers": 1}},
            "train": {train}}}"#
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

type Validator = fn(&mut Network<Cpu>) -> anyhow::Result<Scores>;

#[test]
fn two_ranks_take_the_step_one_process_takes_with_the_two_half_batches_gradients_averaged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = setup(dir.path(), r#"{"epochs": 1, "val_every": 0, "warmup_iters": 0, "lr": 0.01}"#);
    let run = dir.path().join("run");
    let o = mpirun(2, &["train", "--config", s(&cfg_path), "--out", s(&run), "--stop-after", "1"]).output().unwrap();
    succeeded(&o, "mpirun train");

    // The reference, in this process: the two half-batches of step 0 (what ranks 0 and 1 took),
    // each through its own copy of the fresh network, the gradients averaged, one Adam step.
    let cfg = Config::load(&cfg_path, &[]).unwrap();
    let train_set = CocoDataset::load_field(&cfg.data.train_annotations, &cfg.data.keypoint_field).unwrap();
    let spec = dypose::coco::training_set(&train_set, cfg.data.category_id, None).unwrap().spec;
    let (loader, _) = train_loader(&cfg, &spec, &train_set).unwrap();
    let half = |index| loader.epoch_part(0, 0, BatchPart { index, count: 2 }).next().unwrap();
    let (a, b) = (half(0), half(1));
    assert_eq!((a.len(), b.len()), (4, 4));
    assert_eq!([a.indices.clone(), b.indices.clone()].concat(), loader.order(0)[..8].to_vec(), "the order's halves");
    let task = Pose { spec: spec.clone(), validator: (|_| unreachable!()) as Validator };
    let dev = Cpu::default();
    let (mut net, mut twin) = (task.network(&dev, &cfg).unwrap(), task.network(&dev, &cfg).unwrap());
    let per_epoch = loader.steps_per_epoch(2);
    let (lr, tau) = (learning_rate(&cfg.train, 0, 0, per_epoch), temperature(&cfg.train, 0, per_epoch));
    let ga = task.loss(&mut net, &cfg, a, tau).unwrap().0.backward();
    let gb = task.loss(&mut twin, &cfg, b, tau).unwrap().0.backward();
    let grads: Vec<_> = net
        .params()
        .into_iter()
        .zip(twin.params())
        .filter(|(p, _)| p.trainable)
        .map(|(p, q)| {
            let (x, y) = (ga.get(&p.value).as_vec(), gb.get(&q.value).as_vec());
            dev.tensor_from_vec(x.iter().zip(&y).map(|(x, y)| (x + y) / 2.0).collect(), (x.len(),))
        })
        .collect();
    // Rank 0's half alone, for a check that the test can tell the difference.
    let mut alone = task.network(&dev, &cfg).unwrap();
    let own: Vec<_> = net.params().into_iter().filter(|p| p.trainable).map(|p| ga.get(&p.value)).collect();
    dypose::train::optimizer::Optimizer::new(&alone, &cfg.train).update(alone.params_mut(), &own, lr);
    let mut adam = dypose::train::optimizer::Optimizer::new(&net, &cfg.train);
    adam.update(net.params_mut(), &grads, lr);

    let mut trained = task.network(&dev, &cfg).unwrap();
    dypose::model::checkpoint::load(&mut trained, &run.join("last.safetensors")).unwrap();
    let fresh = task.network(&dev, &cfg).unwrap();
    let mut moved = 0;
    for ((want, got), before) in net.params().into_iter().zip(trained.params()).zip(fresh.params()) {
        let (w, g) = (want.value.as_vec(), got.value.as_vec());
        let worst = w.iter().zip(&g).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        // Batch norm's running statistics are rank 0's: those of the first half-batch.
        assert!(worst <= 1e-6, "{}: differs by {worst}", want.name);
        moved += usize::from(want.trainable && w != before.value.as_vec());
    }
    assert!(moved > 10, "the step moved the weights ({moved} tensors)");
    let apart = alone
        .params()
        .into_iter()
        .zip(trained.params())
        .filter(|(p, _)| p.trainable)
        .any(|(p, q)| p.value.as_vec().iter().zip(q.value.as_vec()).any(|(x, y)| (x - y).abs() > 1e-4));
    assert!(apart, "rank 0's half-batch alone gives other weights than the averaged step");
}

/// `mpirun -np 1` takes the collective path with one rank (what `tools/cuda_check.sh` runs through
/// NCCL on a GPU): the same weights as a plain run.
#[test]
fn one_rank_under_mpirun_trains_as_one_plain_process() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), r#"{"epochs": 1, "val_every": 0, "warmup_iters": 0}"#);
    let (plain, launched) = (dir.path().join("plain"), dir.path().join("launched"));
    ok(&["train", "--config", s(&cfg), "--out", s(&plain), "--stop-after", "3"]);
    let o = mpirun(1, &["train", "--config", s(&cfg), "--out", s(&launched), "--stop-after", "3"]).output().unwrap();
    succeeded(&o, "mpirun -np 1 train");
    let read = |run: &Path| {
        let bytes = std::fs::read(run.join("last.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut all: Vec<(String, Vec<u8>)> = st.tensors().into_iter().map(|(n, t)| (n, t.data().to_vec())).collect();
        all.sort();
        all
    };
    let (a, b) = (read(&plain), read(&launched));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let f = |v: &[u8]| v.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect::<Vec<f32>>();
        let worst = f(x).iter().zip(f(y)).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-6, "{name}: {worst}");
    }
}

/// Ctrl-C to `mpirun` (which passes it on as SIGTERM): every rank stops at the same step and
/// rank 0 writes the checkpoint, which resumes.
#[test]
fn ctrl_c_stops_every_rank_at_one_step_and_writes_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), r#"{"epochs": 1000, "val_every": 0, "log_every": 1}"#);
    let run = dir.path().join("run");
    let job = mpirun(2, &["train", "--config", s(&cfg), "--out", s(&run)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::read_to_string(run.join("metrics.csv")).map_or(0, |m| m.lines().count()) < 3 {
        assert!(start.elapsed() < Duration::from_secs(120), "no steps logged");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(Command::new("kill").args(["-INT", &job.id().to_string()]).status().unwrap().success());
    let out = job.wait_with_output().unwrap();
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(log.contains("interrupted at epoch"), "{log}\n{}", String::from_utf8_lossy(&out.stderr));
    let o =
        mpirun(2, &["train", "--config", s(&cfg), "--out", s(&run), "--resume", "--stop-after", "1"]).output().unwrap();
    succeeded(&o, "mpirun train --resume after Ctrl-C");
}

/// An unreadable training image is reported once per epoch, by rank 0, with every rank's
/// count: the line one process writes.
#[test]
fn unreadable_training_images_of_every_rank_are_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), r#"{"epochs": 1, "val_every": 0}"#);
    let mut images: Vec<PathBuf> =
        std::fs::read_dir(dir.path().join("syn/train")).unwrap().map(|e| e.unwrap().path()).collect();
    images.sort();
    for broken in [&images[3], &images[40]] {
        std::fs::write(broken, b"not an image").unwrap();
    }
    let skipped_line = |run: &Path| {
        let log = std::fs::read_to_string(run.join("train.log")).unwrap();
        let lines: Vec<String> = log
            .lines()
            .filter(|l| l.starts_with("skipped "))
            .map(|l| l.split(", e.g.").next().unwrap().to_string())
            .collect();
        assert_eq!(lines.len(), 1, "{log}");
        lines[0].clone()
    };
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    ok(&["train", "--config", s(&cfg), "--out", s(&one)]);
    let o = mpirun(2, &["train", "--config", s(&cfg), "--out", s(&two)]).output().unwrap();
    succeeded(&o, "mpirun train");
    assert!(skipped_line(&one).contains("2 images could not be read"), "{}", skipped_line(&one));
    assert_eq!(skipped_line(&two), skipped_line(&one));
}

/// The pid of rank `rank` among `mpirun`'s children.
fn rank_pid(mpirun: u32, rank: usize) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let parent = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|p| p.parse().ok());
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let marker = format!("OMPI_COMM_WORLD_RANK={rank}");
        if parent == Some(mpirun) && environ.split(|&b| b == 0).any(|v| v == marker.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn a_killed_rank_ends_the_job_and_the_last_checkpoint_resumes_with_another_number_of_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), r#"{"epochs": 1000, "val_every": 0, "checkpoint_every": 2, "log_every": 1}"#);
    let run = dir.path().join("run");
    let mut job = mpirun(2, &["train", "--config", s(&cfg), "--out", s(&run)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !run.join("last.safetensors").exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint written");
        std::thread::sleep(Duration::from_millis(50));
    }
    let victim = rank_pid(job.id(), 1).expect("rank 1 among mpirun's children");
    let killed = Instant::now();
    assert!(Command::new("kill").args(["-9", &victim.to_string()]).status().unwrap().success());
    let waited = loop {
        if let Some(status) = job.try_wait().unwrap() {
            break status;
        }
        if killed.elapsed() > Duration::from_secs(30) {
            let _ = job.kill();
            panic!("rank 0 still runs 30 s after rank 1 was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = job.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!waited.success(), "the job ended with an error");
    assert!(err.contains("rank 1") && err.contains("signal 9"), "mpirun names the killed rank: {err}");

    // The last checkpoint is whole; one process continues it (two ranks trained it).
    let o = Command::new(env!("CARGO_BIN_EXE_dypose"))
        .args(["train", "--config", s(&cfg), "--out", s(&run), "--resume", "--stop-after", "2"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{said}");
    assert!(said.contains("trained by 2 ranks and continues with 1"), "{said}");
    // And two ranks again, from the one-process checkpoint.
    let o =
        mpirun(2, &["train", "--config", s(&cfg), "--out", s(&run), "--resume", "--stop-after", "1"]).output().unwrap();
    succeeded(&o, "mpirun train --resume");
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(log.contains("trained by 1 ranks and continues with 2"), "{log}");
}

#[test]
fn predict_and_eval_under_mpirun_give_what_one_process_gives() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), r#"{"epochs": 1, "val_every": 0}"#);
    let ck = dir.path().join("tiny.safetensors");
    ok(&["init", "--config", s(&cfg), "--out", s(&ck)]);
    let (gt, images) = (dir.path().join("syn/annotations/person_keypoints_val.json"), dir.path().join("syn/val"));
    let predict = |out: &Path| {
        ["predict", "--checkpoint", s(&ck), "--ann", s(&gt), "--image-dir", s(&images), "--no-draw", "--out", s(out)]
            .map(String::from)
    };
    let single = dir.path().join("single");
    ok(&predict(&single).iter().map(String::as_str).collect::<Vec<_>>());
    let many = dir.path().join("many");
    let args = predict(&many);
    let o = mpirun(2, &args.iter().map(String::as_str).collect::<Vec<_>>()).output().unwrap();
    let said = succeeded(&o, "mpirun predict");
    assert!(said.contains("from 2 shards"), "rank 0 merged: {said}");
    let want = std::fs::read(single.join("results.json")).unwrap();
    assert_eq!(std::fs::read(many.join("results.json")).unwrap(), want, "2 ranks ≠ 1 process");

    let eval = |json: &Path| {
        let args = ["eval", "--checkpoint", s(&ck), "--gt", s(&gt), "--images", s(&images), "--json", s(json)];
        args.map(String::from)
    };
    let (one, two) = (dir.path().join("one.json"), dir.path().join("two.json"));
    ok(&eval(&one).iter().map(String::as_str).collect::<Vec<_>>());
    let o = mpirun(2, &eval(&two).iter().map(String::as_str).collect::<Vec<_>>()).output().unwrap();
    succeeded(&o, "mpirun eval");
    assert_eq!(common::read_json(&two), common::read_json(&one), "the stats of 2 ranks");
}
