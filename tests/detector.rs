//! The person detector end to end through the command line at a tiny size: `train` of a
//! `model.task: "detect"` config, `detect` (results and drawings), box AP by `eval --checkpoint`
//! and by `eval --iou-type bbox` on the written results, and the pose model on the detector's
//! persons (`predict --detector`, `eval --checkpoint … --detector`).

mod common;

use common::{dypose, ok, read_json, s};
use dypose::coco::{BoxResult, CocoDataset};
use dypose::data::center::ScoredBox;
use dypose::infer::detect::person_boxes;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn write_config(dir: &Path, name: &str, cfg: Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, cfg.to_string()).unwrap();
    p
}

/// A tiny synthetic set, a detector trained on it for one epoch, and an untrained pose model
/// (its checkpoint from `init --config`). The detector hands every one of its three best peaks
/// to the pose model (`person_score` 0) so that the pipeline always has persons to run on.
fn setup(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let data = dir.join("data");
    ok(&["synth", "--out", s(&data), "--train", "12", "--val", "4", "--seed", "2"]);
    let data_section = json!({
        "train_annotations": "data/annotations/person_keypoints_train.json", "train_images": "data/train",
        "val_annotations": "data/annotations/person_keypoints_val.json", "val_images": "data/val"
    });
    let det_cfg = write_config(
        dir,
        "det.json",
        json!({
            "data": data_section,
            "input_size": [64, 64], "heatmap_size": [16, 16],
            "model": {"task": "detect", "arch": "dy-resnet10", "width": 0.125, "head_channels": 8},
            "detect": {"max_detections": 3, "person_score": 0.0},
            "loader": {"batch_size": 4, "workers": 2},
            "train": {"epochs": 1, "lr": 0.01, "warmup_iters": 1, "val_every": 1, "log_every": 1}
        }),
    );
    let run = dir.join("det_run");
    let line = ok(&["train", "--config", s(&det_cfg), "--out", s(&run)]);
    assert!(line.contains("val box AP"), "{line}");
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(log.contains("12 images with") && log.contains("epoch 1: val box AP"), "{log}");
    let pose_cfg = write_config(
        dir,
        "pose.json",
        json!({
            "data": data_section,
            "input_size": [64, 64], "heatmap_size": [16, 16],
            "model": {"arch": "dy-resnet10", "width": 0.125, "head_channels": 8},
            "val": {"nms_oks_threshold": 1.0}
        }),
    );
    let pose = dir.join("pose.safetensors");
    ok(&["init", "--config", s(&pose_cfg), "--out", s(&pose)]);
    (data, run.join("best.safetensors"), pose)
}

fn boxes_of(p: &Path) -> Vec<BoxResult> {
    read_json(p)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let b: Vec<f64> = r["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            BoxResult {
                image_id: r["image_id"].as_i64().unwrap(),
                category_id: r["category_id"].as_i64().unwrap(),
                bbox: [b[0], b[1], b[2], b[3]],
                score: r["score"].as_f64().unwrap(),
            }
        })
        .collect()
}

#[test]
fn a_detector_trains_detects_scores_and_feeds_the_pose_model() {
    let dir = tempfile::tempdir().unwrap();
    let (data, detector, pose) = setup(dir.path());
    let val_gt = data.join("annotations/person_keypoints_val.json");
    let gt = CocoDataset::load(&val_gt).unwrap();

    // detect: COCO detection results of every val image, inside the image, at most 3 each, and
    // one drawing per image.
    let det_out = dir.path().join("detect");
    let line = ok(&[
        "detect",
        "--checkpoint",
        s(&detector),
        "--image-dir",
        s(&data.join("val")),
        "--ann",
        s(&val_gt),
        "--out",
        s(&det_out),
    ]);
    assert!(line.contains("in 4 images"), "{line}");
    let found = boxes_of(&det_out.join("detections.json"));
    let mut per_image: BTreeMap<i64, Vec<ScoredBox>> = BTreeMap::new();
    for b in &found {
        let img = gt.image(b.image_id).expect("a val image id");
        let (w, h) = (img.width.unwrap() as f64, img.height.unwrap() as f64);
        assert!(
            b.bbox[0] >= 0.0
                && b.bbox[1] >= 0.0
                && b.bbox[0] + b.bbox[2] <= w + 1e-9
                && b.bbox[1] + b.bbox[3] <= h + 1e-9
        );
        assert!(b.bbox[2] > 0.0 && b.bbox[3] > 0.0 && b.score >= 0.01 && b.category_id == 1);
        per_image.entry(b.image_id).or_default().push(ScoredBox { bbox: b.bbox, score: b.score });
    }
    assert!(per_image.values().all(|v| v.len() <= 3) && !per_image.is_empty());
    let drawings =
        std::fs::read_dir(&det_out).unwrap().filter(|e| e.as_ref().unwrap().file_name() != "detections.json");
    assert_eq!(drawings.count(), 4);

    // Box AP of the checkpoint equals box AP of the results it wrote (two paths, one metric).
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    ok(&["eval", "--checkpoint", s(&detector), "--gt", s(&val_gt), "--images", s(&data.join("val")), "--json", s(&a)]);
    let summary = ok(&[
        "eval",
        "--iou-type",
        "bbox",
        "--gt",
        s(&val_gt),
        "--results",
        s(&det_out.join("detections.json")),
        "--json",
        s(&b),
    ]);
    assert!(summary.contains("area= small | maxDets=100") && summary.contains("maxDets=  1"), "{summary}");
    let (a, b) = (read_json(&a), read_json(&b));
    assert_eq!(a, b);
    assert_eq!(a.as_object().unwrap().len(), 12);

    // predict --detector: the pose model runs on exactly the detector's persons (person_score 0,
    // box NMS at 0.6 of the 3 best peaks; the pose config's OKS-NMS keeps every person).
    let pred = dir.path().join("pred");
    ok(&[
        "predict",
        "--checkpoint",
        s(&pose),
        "--detector",
        s(&detector),
        "--image-dir",
        s(&data.join("val")),
        "--ann",
        s(&val_gt),
        "--out",
        s(&pred),
    ]);
    let results = read_json(&pred.join("results.json"));
    let mut persons: BTreeMap<i64, usize> = BTreeMap::new();
    for r in results.as_array().unwrap() {
        *persons.entry(r["image_id"].as_i64().unwrap()).or_default() += 1;
    }
    let expected: BTreeMap<i64, usize> =
        per_image.iter().map(|(&id, boxes)| (id, person_boxes(id, boxes, 0.0, 0.6).len())).collect();
    assert_eq!(persons, expected);

    // eval --checkpoint … --detector scores what predict --detector wrote.
    let (c, d) = (dir.path().join("c.json"), dir.path().join("d.json"));
    ok(&[
        "eval",
        "--checkpoint",
        s(&pose),
        "--detector",
        s(&detector),
        "--gt",
        s(&val_gt),
        "--images",
        s(&data.join("val")),
        "--json",
        s(&c),
    ]);
    ok(&["eval", "--gt", s(&val_gt), "--results", s(&pred.join("results.json")), "--json", s(&d)]);
    assert_eq!(read_json(&c), read_json(&d));
}

/// Runs a command that must fail; its stderr.
fn refused(args: &[&str]) -> String {
    let o = dypose(args);
    assert!(!o.status.success(), "dypose {} succeeded", args.join(" "));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn checkpoints_of_the_wrong_task_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, detector, pose) = setup(dir.path());
    let (val, gt) = (data.join("val"), data.join("annotations/person_keypoints_val.json"));
    let out = |name: &str| dir.path().join(name);
    let e = refused(&["detect", "--checkpoint", s(&pose), "--image-dir", s(&val), "--out", s(&out("o"))]);
    assert!(e.contains("a pose model, not a person detector"), "{e}");
    let e = refused(&[
        "predict",
        "--checkpoint",
        s(&pose),
        "--detector",
        s(&pose),
        "--image-dir",
        s(&val),
        "--out",
        s(&out("p")),
    ]);
    assert!(e.contains("--detector") && e.contains("not a person detector"), "{e}");
    let e = refused(&["predict", "--checkpoint", s(&detector), "--image-dir", s(&val), "--out", s(&out("q"))]);
    assert!(e.contains("is a person detector") && e.contains("dypose detect"), "{e}");
    let e = refused(&[
        "eval",
        "--checkpoint",
        s(&detector),
        "--detector",
        s(&detector),
        "--gt",
        s(&gt),
        "--images",
        s(&val),
    ]);
    assert!(e.contains("go with a pose checkpoint"), "{e}");
}
