//! `dypose`'s COCO keypoint evaluation against pycocotools 2.0.x on the committed suite of
//! cases (tools/make_eval_cases.py built them and ran pycocotools for expected.json).

use dypose::coco::KeypointSpec;
use dypose::eval::{evaluate_files, Stats};
use std::path::{Path, PathBuf};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/eval_cases");
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs
}

#[test]
fn every_stat_equals_pycocotools_to_1e_9() {
    let dirs = cases();
    assert!(dirs.len() >= 30, "the suite has {} cases", dirs.len());
    let mut failures = Vec::new();
    let mut other_sets = 0;
    let mut bit_identical = 0;
    for dir in &dirs {
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
        let expected: Vec<f64> = expected["stats"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        // A case with its own keypoint set carries its spec; pycocotools scored it with
        // `params.kpt_oks_sigmas` set to the spec's sigmas.
        let spec = match dir.join("spec.json") {
            p if p.exists() => {
                other_sets += 1;
                KeypointSpec::from_json_file(&p).unwrap()
            }
            _ => KeypointSpec::coco17(),
        };
        let report = evaluate_files(&dir.join("gt.json"), &dir.join("results.json"), spec.sigmas().unwrap())
            .unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
        let got = report.stats.to_array();
        if spec != KeypointSpec::coco17() {
            // The set's own sigmas decide the stats: other sigmas give other numbers.
            let flat = vec![0.1; spec.len()];
            let other = evaluate_files(&dir.join("gt.json"), &dir.join("results.json"), &flat).unwrap();
            assert_ne!(other.stats.to_array(), got, "{}", dir.display());
        }
        if got.iter().zip(&expected).all(|(a, b)| a == b) {
            bit_identical += 1;
        }
        for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
            if (a - b).abs() > 1e-9 {
                failures.push(format!(
                    "{}: {} = {a}, pycocotools {b}",
                    dir.file_name().unwrap().to_string_lossy(),
                    Stats::NAMES[i]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(other_sets >= 3, "the suite has {other_sets} cases of other keypoint sets");
    eprintln!("{} cases equal to 1e-9, {bit_identical} of them bit for bit", dirs.len());
}

#[test]
fn the_suite_is_not_trivial() {
    // Every stat takes several distinct values across the suite, including −1 and values
    // strictly between 0 and 1, so a wrong branch cannot hide behind constant answers.
    let mut seen: Vec<Vec<f64>> = vec![Vec::new(); 10];
    for dir in cases() {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
        for (i, s) in v["stats"].as_array().unwrap().iter().enumerate() {
            seen[i].push(s.as_f64().unwrap());
        }
    }
    for (i, vals) in seen.iter().enumerate() {
        assert!(vals.iter().any(|&v| v > 0.0 && v < 1.0), "{} is never fractional", Stats::NAMES[i]);
        assert!(vals.contains(&-1.0), "{} is never undefined", Stats::NAMES[i]);
    }
}
