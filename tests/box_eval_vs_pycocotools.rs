//! `dypose`'s COCO box evaluation against pycocotools' `COCOeval(iouType="bbox")` on the
//! committed suite of cases (tools/make_box_eval_cases.py built them and ran pycocotools for
//! expected.json).

use dypose::eval::{evaluate_box_files, BoxStats};
use std::path::{Path, PathBuf};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/box_eval_cases");
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs
}

fn expected(dir: &Path) -> Vec<f64> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    v["stats"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap()).collect()
}

#[test]
fn every_box_stat_equals_pycocotools_to_1e_9() {
    let dirs = cases();
    assert!(dirs.len() >= 25, "the suite has {} cases", dirs.len());
    let mut failures = Vec::new();
    let mut bit_identical = 0;
    for dir in &dirs {
        let want = expected(dir);
        let report = evaluate_box_files(&dir.join("gt.json"), &dir.join("results.json"))
            .unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
        let got = report.stats.to_array();
        if got.iter().zip(&want).all(|(a, b)| a == b) {
            bit_identical += 1;
        }
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            if (a - b).abs() > 1e-9 {
                let name = dir.file_name().unwrap().to_string_lossy();
                failures.push(format!("{name}: {} = {a}, pycocotools {b}", BoxStats::NAMES[i]));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{} cases equal to 1e-9, {bit_identical} of them bit for bit", dirs.len());
}

#[test]
fn the_box_suite_is_not_trivial() {
    // Every stat takes a fractional value and −1 somewhere, and the maxDets stats differ.
    let all: Vec<Vec<f64>> = cases().iter().map(|d| expected(d)).collect();
    for i in 0..12 {
        assert!(all.iter().any(|s| s[i] > 0.0 && s[i] < 1.0), "{} is never fractional", BoxStats::NAMES[i]);
        assert!(all.iter().any(|s| s[i] == -1.0), "{} is never undefined", BoxStats::NAMES[i]);
    }
    assert!(all.iter().any(|s| s[6] < s[7] && s[7] < s[8]), "AR1 < AR10 < AR100 somewhere");
}
