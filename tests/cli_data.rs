//! `dypose data show` and `dypose bench data` through the binary, on the real COCO sample.

mod common;

use common::dypose;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/coco_sample.json");

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
fn data_show_draws_letterboxed_detector_samples_for_a_detector_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    // No random scale or shift, so that the letterbox's bands are where the image's shape says.
    let sets =
        ["model.task=detect", "input_size=[160,128]", "heatmap_size=[40,32]", "detect.scale_range=0", "detect.shift=0"];
    let mut args = vec!["data", "show", "--config", CONFIG, "--count", "2", "--out", out];
    args.extend(sets.iter().flat_map(|s| ["--set", s]));
    let o = dypose(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("person boxes"), "the detector's data report");
    for i in 0..2 {
        let img = image::open(dir.path().join(format!("sample_{i:03}.png"))).unwrap().to_rgb8();
        // The whole letterboxed input (not a 192 × 256 person crop), ×2, twice side by side.
        assert_eq!(img.dimensions(), (2 * 160 * 2 + 4, 128 * 2));
        // A photo not of the input's 5 : 4 shape leaves black bands: the corners are black.
        assert_eq!(*img.get_pixel(0, 0), image::Rgb([0, 0, 0]), "sample {i}");
        assert_eq!(*img.get_pixel(319, 255), image::Rgb([0, 0, 0]), "sample {i}");
    }
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
