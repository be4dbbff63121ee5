//! Run directories and checkpoints of the previous release (before the one training core, with
//! its flat pretraining config and `pretrain_state` checkpoints) resume and load: each
//! committed run, stopped part-way by the old binary, is resumed by this build and ends with
//! the weights, optimiser state and metrics of an uninterrupted run of this build; that run's
//! metrics are the previous release's uninterrupted run's (committed, `*_uninterrupted_metrics.csv`:
//! losses, learning rates, τ and scores through the step decay and the cosine tail); its best
//! checkpoint opens for `classify` and `eval --checkpoint`. (Bit for bit, on the reference
//! trainings, by `tools/reference_runs.sh` and `tools/compare_runs.py`.)

mod common;

use common::{ok, s};
use std::path::Path;
use std::process::Command;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/previous_release");

/// Runs `dypose` in `dir` (the committed configs hold paths relative to it).
fn run_in(dir: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_dypose")).current_dir(dir).args(args).output().unwrap();
    assert!(o.status.success(), "dypose {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Every tensor of a safetensors file, by name, as bytes.
fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(String, Vec<u8>)> = st.tensors().into_iter().map(|(n, t)| (n, t.data().to_vec())).collect();
    v.sort();
    v
}

/// metrics.csv without the images_per_s column (a timing).
fn metrics(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| l.split(',').enumerate().filter(|(i, _)| *i != 5).map(|(_, f)| f).collect::<Vec<_>>().join(","))
        .collect()
}

fn same_run(a: &Path, b: &Path, stopped_epoch: usize) {
    for f in ["last.safetensors", "best.safetensors"] {
        let (x, y) = (tensors(&a.join(f)), tensors(&b.join(f)));
        assert_eq!(x.len(), y.len(), "{f}");
        for ((n, p), (m, q)) in x.iter().zip(&y) {
            assert_eq!(n, m, "{f}");
            assert!(p == q, "{f}: {n} differs");
        }
    }
    // The row that closes the window in which the run was stopped averages the loss since the
    // restart (as the previous release's resume did too); every other row is the same.
    let (x, y) = (metrics(&a.join("metrics.csv")), metrics(&b.join("metrics.csv")));
    assert_eq!(x.len(), y.len());
    let differing: Vec<usize> = (0..x.len()).filter(|&i| x[i] != y[i]).collect();
    assert!(differing.len() <= 1, "rows {differing:?} differ:\n{x:?}\n{y:?}");
    if let Some(&i) = differing.first() {
        let epoch = |row: &str| row.split(',').next().unwrap().to_string();
        assert_eq!(epoch(&x[i]), stopped_epoch.to_string(), "only the interrupted epoch's row: {}", x[i]);
        let drop_loss = |row: &str| {
            row.split(',').enumerate().filter(|(k, _)| *k != 2).map(|(_, f)| f).collect::<Vec<_>>().join(",")
        };
        assert_eq!(drop_loss(&x[i]), drop_loss(&y[i]), "only its loss");
    }
}

/// A run's metrics equal the previous release's (`expected`, images_per_s left out): counts
/// exactly, numbers to 1e-9 relative (a CPU with other vector units may round otherwise).
fn same_metrics_as_previous_release(run: &Path, expected: &str) {
    let got = metrics(&run.join("metrics.csv"));
    let want: Vec<String> =
        std::fs::read_to_string(Path::new(FIXTURES).join(expected)).unwrap().lines().map(str::to_string).collect();
    assert_eq!(got.len(), want.len(), "rows");
    assert_eq!(got[0], want[0], "header");
    for (g, w) in got.iter().zip(&want).skip(1) {
        for (k, (a, b)) in g.split(',').zip(w.split(',')).enumerate() {
            if k < 2 || a.is_empty() || b.is_empty() {
                assert_eq!(a, b, "{g} vs {w}");
                continue;
            }
            let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1e-3), "column {k}: {g} vs {w}");
        }
    }
}

#[test]
fn a_previous_release_pose_run_resumes_and_its_checkpoint_loads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_in(
        d,
        &["synth", "--out", "data", "--train", "24", "--val", "4", "--width", "128", "--height", "96", "--seed", "5"],
    );
    std::fs::copy(Path::new(FIXTURES).join("pose_config.json"), d.join("pose.json")).unwrap();
    copy_dir(&Path::new(FIXTURES).join("pose"), &d.join("resumed"));
    let report = run_in(d, &["train", "--config", "pose.json", "--out", "resumed", "--resume"]);
    assert!(report.contains("finished at epoch 3, iteration 39"), "{report}");
    run_in(d, &["train", "--config", "pose.json", "--out", "straight"]);
    same_run(&d.join("straight"), &d.join("resumed"), 1);
    same_metrics_as_previous_release(&d.join("straight"), "pose_uninterrupted_metrics.csv");
    let stats = d.join("stats.json");
    let ck = Path::new(FIXTURES).join("pose/best.safetensors");
    run_in(
        d,
        &[
            "eval",
            "--checkpoint",
            s(&ck),
            "--gt",
            "data/annotations/person_keypoints_val.json",
            "--images",
            "data/val",
            "--json",
            s(&stats),
        ],
    );
    assert!(common::read_json(&stats)["AP"].as_f64().is_some());
}

#[test]
fn a_previous_release_pretraining_run_resumes_and_its_checkpoint_classifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_in(d, &["synth", "--classify", "--out", "shapes", "--train", "60", "--val", "20", "--image-size", "32"]);
    std::fs::copy(Path::new(FIXTURES).join("pretrain_config.json"), d.join("pretrain.json")).unwrap();
    copy_dir(&Path::new(FIXTURES).join("classifier"), &d.join("resumed"));
    let report = run_in(d, &["pretrain", "--config", "pretrain.json", "--out", "resumed", "--resume"]);
    assert!(report.contains("finished at epoch 3, iteration 21"), "{report}");
    run_in(d, &["pretrain", "--config", "pretrain.json", "--out", "straight"]);
    same_run(&d.join("straight"), &d.join("resumed"), 1);
    same_metrics_as_previous_release(&d.join("straight"), "classifier_uninterrupted_metrics.csv");
    let ck = Path::new(FIXTURES).join("classifier/best.safetensors");
    let image = d.join("shapes/val/circle/00000.png");
    let out = ok(&["classify", "--checkpoint", s(&ck), "--images", s(&image), "--top", "2"]);
    let names =
        ["checker", "circle", "cross", "dots", "ring", "square", "stripes_diag", "stripes_h", "stripes_v", "triangle"];
    let top = out.split(": ").nth(1).unwrap().split(' ').next().unwrap();
    assert!(names.contains(&top), "class names from the checkpoint: {out}");
}
