//! Training survives interruption: a run stopped mid-epoch and resumed ends with the weights
//! (and optimizer moments) of an uninterrupted run; SIGKILL at any moment leaves a loadable
//! checkpoint; an existing run is never overwritten.

use dypose::app::train::run;
use dypose::config::{Config, Device};
use dypose::data::synth::{write_dataset, Figures, SynthConfig};
use dypose::model::blueprint::Blueprint;
use dypose::train::TrainOptions;
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tiny synthetic set and a tiny dynamic model: 8 batches of 4 per epoch.
fn setup(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let synth = SynthConfig { width: 128, height: 96, seed: 5, person_height: [50.0, 90.0], max_persons: 2 };
    write_dataset(&data, &synth, &Figures::Persons, 20, 3, false).unwrap();
    let cfg = serde_json::json!({
        "seed": 7,
        "data": {
            "train_annotations": "data/annotations/person_keypoints_train.json",
            "train_images": "data/train",
            "val_annotations": "data/annotations/person_keypoints_val.json",
            "val_images": "data/val"
        },
        "input_size": [64, 64], "heatmap_size": [16, 16],
        "model": {"arch": "dy-resnet10", "width": 0.125, "head_channels": 16},
        "loader": {"batch_size": 4, "workers": 2},
        "train": {"epochs": 2, "warmup_iters": 3, "lr_steps": [1], "weight_decay": 1e-4,
                  "temperature": {"start": 30, "end": 1, "epochs": 1}, "val_every": 0, "log_every": 2}
    });
    let path = dir.join("tiny.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    path
}

fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn resumed_run_ends_where_an_uninterrupted_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::load(&setup(dir.path()), &[]).unwrap();
    let run = |name: &str, resume: bool, stop_after: Option<usize>| {
        let opts = TrainOptions { run_dir: dir.path().join(name), resume, stop_after };
        run(Device::Cpu, &cfg, &opts, |_| {}).unwrap()
    };
    let whole = run("whole", false, None);
    assert!(!whole.interrupted && whole.state.iteration > 0);
    // Stop in the middle of the first epoch, then once more in the second, then finish.
    let a = run("split", false, Some(3));
    assert!(a.interrupted && a.state.iteration == 3 && a.state.epoch == 0);
    let b = run("split", true, Some(whole.state.iteration / 2 + 1));
    assert!(b.interrupted && b.state.epoch == 1);
    let c = run("split", true, None);
    assert!(!c.interrupted);
    assert_eq!(c.state.iteration, whole.state.iteration);
    let (x, y) =
        (tensors(&dir.path().join("whole/last.safetensors")), tensors(&dir.path().join("split/last.safetensors")));
    assert_eq!(x.len(), y.len());
    assert!(x.iter().any(|(n, _)| n.starts_with("optimizer.exp_avg_sq.")), "moments are saved");
    let mut worst = 0.0f32;
    for ((n, u), (m, v)) in x.iter().zip(&y) {
        assert_eq!(n, m);
        for (p, q) in u.iter().zip(v) {
            worst = worst.max((p - q).abs());
        }
    }
    assert!(worst <= 1e-6, "largest difference {worst}");
    // The model part differs from its initial value (training did something).
    let init = dypose::model::network::Network::new(
        &dfdx::prelude::Cpu::default(),
        &Blueprint::for_config(&cfg, 17).unwrap(),
        cfg.seed,
    );
    let first = init.params()[0];
    let trained = &x.iter().find(|(n, _)| *n == first.name).unwrap().1;
    assert_ne!(trained, &first.value.as_vec());
    // Metrics rows are not duplicated by the restarts.
    let rows =
        dypose::train::metrics::read(&dir.path().join("split/metrics.csv"), &["val_ap", "val_ap50", "val_ap_dets"])
            .unwrap();
    let iters: Vec<usize> = rows.iter().map(|r| r.iteration).collect();
    assert!(iters.windows(2).all(|w| w[0] <= w[1]), "{iters:?}");
}

#[test]
fn sigkill_never_leaves_an_unreadable_checkpoint_and_runs_are_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = setup(dir.path());
    let out = dir.path().join("run");
    let train_cmd = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dypose"));
        c.args(["train", "--config", cfg_path.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .args(["--set", "train.checkpoint_every=1", "--set", "train.epochs=50"])
            .args(extra);
        c
    };
    let cfg = Config::load(&cfg_path, &["train.epochs=50".into(), "train.checkpoint_every=1".into()]).unwrap();
    let mut loaded = 0;
    for (i, delay_ms) in [900u64, 1300, 1700, 2100, 1100].into_iter().enumerate() {
        let mut child =
            train_cmd(if i == 0 { &[] } else { &["--resume"] }).stderr(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let last = out.join("last.safetensors");
        if last.exists() {
            let dev = dfdx::prelude::Cpu::default();
            let mut net = dypose::model::network::Network::new(&dev, &Blueprint::for_config(&cfg, 17).unwrap(), 0);
            let mut adam = dypose::train::optimizer::Optimizer::new(&net, &cfg.train);
            dypose::train::state::load(&last, &mut net, &mut adam).unwrap();
            loaded += 1;
        }
        let stray: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        // A killed write may leave its temporary file, never a half-written checkpoint.
        assert!(stray.len() <= 1, "{stray:?}");
    }
    assert!(loaded >= 3, "only {loaded} kills happened after the first checkpoint");
    let refused = train_cmd(&[]).output().unwrap();
    assert!(!refused.status.success());
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(msg.contains("a run is already there") && msg.contains("--resume"), "{msg}");
}
