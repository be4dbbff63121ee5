//! `dypose synth --classify` → `dypose pretrain` → `dypose classify` at a tiny size: accuracy
//! well above chance, an interrupted and resumed run equal to an uninterrupted one bit for bit,
//! and the classifier naming the folder's classes.

mod common;

use common::{dypose, ok, s};
use std::path::{Path, PathBuf};

/// Ten classes, 100 train and 10 val images each at 48×48, and a config for a small ResNet-10.
fn setup(dir: &Path, epochs: usize) -> PathBuf {
    let data = dir.join("shapes");
    if !data.exists() {
        ok(&["synth", "--classify", "--out", s(&data), "--train", "1000", "--val", "100", "--image-size", "48"]);
    }
    let cfg = serde_json::json!({
        "seed": 3, "input_size": [48, 48],
        "data": {"train_images": "shapes/train", "val_images": "shapes/val"},
        "model": {"arch": "resnet10", "width": 0.25},
        "loader": {"batch_size": 32},
        "train": {"epochs": epochs, "lr": 0.2, "warmup_epochs": 1, "temperature": {"start": 30, "end": 1, "epochs": 1}},
    });
    let path = dir.join(format!("pretrain_{epochs}.json"));
    std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    path
}

fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(String, Vec<u8>)> = st.tensors().into_iter().map(|(n, t)| (n, t.data().to_vec())).collect();
    v.sort();
    v
}

#[test]
fn pretrains_above_chance_and_classifies_by_class_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), 5);
    let run = dir.path().join("run");
    let report = ok(&["pretrain", "--config", s(&cfg), "--out", s(&run)]);
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let last = metrics.lines().last().unwrap();
    let top1: f64 = last.split(',').nth(6).unwrap().parse().unwrap();
    assert!(top1 >= 0.5, "top-1 {top1} after 5 epochs (chance is 0.1): {report}");
    for f in ["config.json", "train.log", "curves.png", "last.safetensors", "best.safetensors"] {
        assert!(run.join(f).exists(), "{f}");
    }
    let image = dir.path().join("shapes/val/circle/00000.png");
    let out = ok(&["classify", "--checkpoint", s(&run.join("best.safetensors")), "--images", s(&image), "--top", "3"]);
    let names =
        ["circle", "square", "triangle", "cross", "ring", "stripes_h", "stripes_v", "stripes_diag", "checker", "dots"];
    let shown: Vec<&str> = out.split(": ").nth(1).unwrap().split(", ").map(|c| c.split(' ').next().unwrap()).collect();
    assert_eq!(shown.len(), 3);
    assert!(shown.iter().all(|c| names.contains(c)), "class names, not indices: {out}");
    // A second run into the same directory is refused.
    let again = dypose(&["pretrain", "--config", s(&cfg), "--out", s(&run)]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--resume"));
}

#[test]
fn an_interrupted_run_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), 2);
    let (straight, resumed) = (dir.path().join("straight"), dir.path().join("resumed"));
    ok(&["pretrain", "--config", s(&cfg), "--out", s(&straight)]);
    // 31 batches an epoch: stop inside the first epoch, then again inside the second.
    ok(&["pretrain", "--config", s(&cfg), "--out", s(&resumed), "--stop-after", "5"]);
    ok(&["pretrain", "--config", s(&cfg), "--out", s(&resumed), "--resume", "--stop-after", "30"]);
    ok(&["pretrain", "--config", s(&cfg), "--out", s(&resumed), "--resume"]);
    let (a, b) = (tensors(&straight.join("last.safetensors")), tensors(&resumed.join("last.safetensors")));
    assert_eq!(a.len(), b.len());
    for ((na, da), (nb, db)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(da == db, "{na} differs after resuming");
    }
    // A changed config is refused on resume (only epochs may change).
    let o = dypose(&["pretrain", "--config", s(&cfg), "--out", s(&resumed), "--resume", "--set", "train.lr=0.1"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("different config"));
    // A run directory inside an image folder (it would become a class of the next run) is refused.
    let inside = dir.path().join("shapes/train/run");
    let o = dypose(&["pretrain", "--config", s(&cfg), "--out", s(&inside)]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("inside the image folder"), "{e}");
    assert!(!inside.exists(), "nothing written");
}
