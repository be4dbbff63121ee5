//! The fast ops' safety net through the command line: with `DYPOSE_FAST_CHECK_PERTURB` the
//! first-use check of the named fast op fails, one warning names it, and training goes on with
//! the generic op; without it, no op is switched off.

mod common;

use common::s;
use std::path::Path;
use std::process::Command;

fn train(perturb: Option<&str>, out: &Path) -> String {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/public_sets/crowdpose/train.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dypose"));
    cmd.args(["train", "--config", s(&config), "--out", s(out)]);
    match perturb {
        Some(p) => cmd.env("DYPOSE_FAST_CHECK_PERTURB", p),
        None => cmd.env_remove("DYPOSE_FAST_CHECK_PERTURB"),
    };
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    err
}

#[test]
fn a_fast_op_that_fails_its_check_is_switched_off_once_and_training_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let warned =
        |err: &str| err.lines().filter(|l| l.starts_with("warning: the fast ")).map(str::to_string).collect::<Vec<_>>();
    let plain = train(None, &dir.path().join("plain"));
    assert!(warned(&plain).is_empty(), "{plain}");
    let err = train(Some("batch-norm"), &dir.path().join("perturbed"));
    let lines = warned(&err);
    assert_eq!(lines.len(), 1, "one warning, though every layer has a batch norm: {err}");
    assert!(lines[0].contains("fast batch-norm on dfdx") && lines[0].contains("switched off"), "{}", lines[0]);
    let csv = std::fs::read_to_string(dir.path().join("perturbed/metrics.csv")).unwrap();
    let loss: f64 = csv.lines().nth(1).unwrap().split(',').nth(2).unwrap().parse().unwrap();
    assert!(loss.is_finite() && loss > 0.0, "{csv}");
}
