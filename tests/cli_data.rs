//! `dypose data show` and `dypose bench data` through the binary, on the real COCO sample.

use std::process::Command;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/coco_sample.json");

fn dypose(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dypose")).args(args).output().unwrap()
}

#[test]
fn data_show_draws_crops_beside_heatmaps_and_keeps_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = dypose(&["data", "show", "--config", CONFIG, "--count", "3", "--out", out]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for i in 0..3 {
        let img = image::open(dir.path().join(format!("sample_{i:03}.png"))).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (2 * 192 * 2 + 4, 256 * 2));
        // The drawing shows the limb colours somewhere on the crop side.
        let left = dypose::viz::LEFT;
        assert!((0..384).any(|x| (0..512).any(|y| *img.get_pixel(x, y) == left)), "sample {i} has no left limb drawn");
    }
    let before = std::fs::read(dir.path().join("sample_000.png")).unwrap();
    let again = dypose(&["data", "show", "--config", CONFIG, "--count", "1", "--out", out, "--set", "seed=5"]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(dir.path().join("sample_000.png")).unwrap(), before);
    let bad = dypose(&["data", "show", "--config", CONFIG, "--out", out, "--set", "augment.flip_prob=2"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("augment.flip_prob = 2 is not a probability"), "{err}");
}

#[test]
fn bench_data_prints_a_table_and_a_json_line_last() {
    let o = dypose(&[
        "bench",
        "data",
        "--ann",
        concat!(env!("CARGO_MANIFEST_DIR"), "/data/coco-sample/annotations/person_keypoints_sample.json"),
        "--images",
        concat!(env!("CARGO_MANIFEST_DIR"), "/data/coco-sample/val2017"),
        "--samples",
        "24",
        "--workers",
        "2",
        "--batch",
        "8",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["samples"], 24);
    assert_eq!(last["workers"], 2);
    assert!(last["samples_per_s"].as_f64().unwrap() > 0.0);
    assert!(text.contains("12 person instances kept"), "the filter report is printed once: {text}");
}
