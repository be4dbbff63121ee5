//! `dypose synth`: a loadable, deterministic COCO data set that never overwrites silently.

use dypose::coco::CocoDataset;
use dypose::data::instances::train_instances;
use std::process::Command;

fn synth(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dypose"))
        .args(["synth", "--out", out.to_str().unwrap(), "--train", "12", "--val", "5", "--seed", "3"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn writes_a_loadable_deterministic_data_set() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    assert!(synth(&a, &[]).status.success());
    assert!(synth(&b, &[]).status.success());
    for split in ["train", "val"] {
        let ann = format!("annotations/person_keypoints_{split}.json");
        assert_eq!(
            std::fs::read(a.join(&ann)).unwrap(),
            std::fs::read(b.join(&ann)).unwrap(),
            "same seed, same labels"
        );
        let ds = CocoDataset::load(&a.join(&ann)).unwrap();
        let (inst, report) = train_instances(&ds, &a.join(split), 1, 17);
        assert!(!inst.is_empty() && report.kept == inst.len());
        for i in &inst {
            assert!(i.image_path.exists(), "{}", i.image_path.display());
            let img = image::open(&i.image_path).unwrap();
            assert_eq!((img.width(), img.height()), (384, 288));
        }
    }
    assert_eq!(
        std::fs::read(a.join("train/000000000007.jpg")).unwrap(),
        std::fs::read(b.join("train/000000000007.jpg")).unwrap()
    );
    let dets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("annotations/person_detections_val.json")).unwrap()).unwrap();
    assert!(dets
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["bbox"].as_array().unwrap().len() == 4 && d["score"].as_f64().is_some()));
    // An existing data set is not replaced without --force.
    let before = std::fs::read(a.join("annotations/person_keypoints_train.json")).unwrap();
    let again = Command::new(env!("CARGO_BIN_EXE_dypose"))
        .args(["synth", "--out", a.to_str().unwrap(), "--train", "2", "--val", "1", "--seed", "9"])
        .output()
        .unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(a.join("annotations/person_keypoints_train.json")).unwrap(), before);
}
