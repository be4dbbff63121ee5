//! `dypose eval --gt --results` through the binary: output layout, the JSON file, and bad input.

mod common;

use common::dypose;
use std::path::{Path, PathBuf};
use std::process::Output;

const SAMPLE_GT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/data/coco-sample/annotations/person_keypoints_sample.json");

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/eval_cases").join(name)
}

/// `dypose eval` on a committed case, writing the stats to `json`.
fn eval_case(name: &str, json: &Path) -> Output {
    let c = case(name);
    let (gt, res) = (c.join("gt.json"), c.join("results.json"));
    dypose(&[
        "eval",
        "--gt",
        gt.to_str().unwrap(),
        "--results",
        res.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ])
}

/// The real sample's GT joints fed back as results, as a JSON value to corrupt.
fn sample_results() -> serde_json::Value {
    let gt: serde_json::Value = serde_json::from_slice(&std::fs::read(SAMPLE_GT).unwrap()).unwrap();
    let res: Vec<serde_json::Value> = gt["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| serde_json::json!({"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 0.9}))
        .collect();
    serde_json::Value::Array(res)
}

#[test]
fn prints_the_pycocotools_summary_and_writes_the_stats() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stats.json");
    let c = case("real_sample_noisy");
    let o = eval_case("real_sample_noisy", &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 10);
    let expected: serde_json::Value = serde_json::from_slice(&std::fs::read(c.join("expected.json")).unwrap()).unwrap();
    let expected: Vec<f64> = expected["stats"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    // The layout pycocotools prints, copied from its output.
    assert_eq!(
        lines[0],
        format!(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets= 20 ] = {:.3}", expected[0])
    );
    assert_eq!(
        lines[2],
        format!(" Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets= 20 ] = {:.3}", expected[2])
    );
    assert_eq!(
        lines[8],
        format!(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets= 20 ] = {:.3}", expected[8])
    );
    assert_eq!(
        lines[9],
        format!(" Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets= 20 ] = {:.3}", expected[9])
    );
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let names = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"];
    assert_eq!(written.as_object().unwrap().len(), 10);
    for (n, e) in names.iter().zip(&expected) {
        assert_eq!(written[n].as_f64().unwrap(), *e, "{n} keeps full precision");
    }
    // An existing output is not replaced without --force.
    let before = std::fs::read(&out).unwrap();
    let again = eval_case("real_sample_noisy", &out);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(&out).unwrap(), before);
}

#[test]
fn undefined_stats_are_minus_one_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.json");
    let o = eval_case("all_gt_ignored", &out);
    assert!(o.status.success());
    assert!(String::from_utf8(o.stdout).unwrap().lines().all(|l| l.ends_with("= -1.000")));
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(written["AP"].as_f64(), Some(-1.0));
}

/// Writes `text` as a results file and runs eval on it; returns (success, stderr).
fn eval_results_text(dir: &Path, name: &str, text: &str) -> (bool, String) {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    let o = dypose(&["eval", "--gt", SAMPLE_GT, "--results", p.to_str().unwrap()]);
    (o.status.success(), String::from_utf8(o.stderr).unwrap())
}

#[test]
fn bad_results_give_one_line_errors_naming_file_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let good = sample_results();
    let text = good.to_string();
    let mut short = good.clone();
    short[5]["keypoints"].as_array_mut().unwrap().truncate(48);
    let mut unknown = good.clone();
    unknown[7]["image_id"] = 123456.into();
    let mut wrong_type = good.clone();
    wrong_type[2]["score"] = "high".into();
    let nan = {
        let mut v = good.clone();
        v[3]["score"] = 0.123456.into();
        v.to_string().replace("0.123456", "NaN")
    };
    let inf = {
        let mut v = good.clone();
        v[9]["keypoints"][4] = 7.654321.into();
        v.to_string().replace("7.654321", "Infinity")
    };
    let huge = {
        let mut v = good.clone();
        v[4]["score"] = 0.123456.into();
        v.to_string().replace("0.123456", "1e999")
    };
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("truncated.json", text[..text.len() / 2].to_string(), vec!["truncated", "record ["]),
        ("malformed.json", text.replacen("},{", "} {", 1), vec!["record [0]", "expected `,` or `]`"]),
        ("short.json", short.to_string(), vec!["record [5]", "48 numbers, expected 51"]),
        (
            "unknown.json",
            unknown.to_string(),
            vec!["record [7]", "image_id 123456 is not an image of the ground truth"],
        ),
        ("type.json", wrong_type.to_string(), vec!["record [2].score", "invalid type"]),
        ("nan.json", nan, vec!["record [3].score", "NaN and Infinity"]),
        ("inf.json", inf, vec!["record [9].keypoints[4]", "NaN and Infinity"]),
        ("huge.json", huge, vec!["record [4].score", "out of range"]),
        ("object.json", "{\"a\": 1}".into(), vec!["top level", "expected a sequence"]),
        ("empty.json", String::new(), vec!["truncated"]),
    ];
    for (name, text, needles) in cases {
        let (ok, err) = eval_results_text(dir.path(), name, &text);
        assert!(!ok, "{name} was accepted");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: one line, got {err}");
        assert!(err.starts_with("error: ") && err.contains(name), "{name}: names the file: {err}");
        for n in needles {
            assert!(err.contains(n), "{name}: expected {n:?} in {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn bad_ground_truth_and_missing_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let res = dir.path().join("res.json");
    std::fs::write(&res, sample_results().to_string()).unwrap();
    let gt: serde_json::Value = serde_json::from_slice(&std::fs::read(SAMPLE_GT).unwrap()).unwrap();
    let mut short = gt.clone();
    short["annotations"][6]["keypoints"].as_array_mut().unwrap().truncate(50);
    let mut no_bbox = gt.clone();
    no_bbox["annotations"][4].as_object_mut().unwrap().remove("bbox");
    let mut sixteen = gt.clone();
    for a in sixteen["annotations"].as_array_mut().unwrap() {
        a["keypoints"].as_array_mut().unwrap().truncate(48);
    }
    let cases: Vec<(&str, serde_json::Value, Vec<&str>)> = vec![
        ("gt_short.json", short, vec!["annotations[6]", "50 numbers, not a multiple of 3"]),
        ("gt_no_bbox.json", no_bbox, vec!["record annotations[4]:", "missing field `bbox`"]),
    ];
    for (name, value, needles) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, value.to_string()).unwrap();
        let o = dypose(&["eval", "--gt", p.to_str().unwrap(), "--results", res.to_str().unwrap()]);
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(!o.status.success(), "{name} accepted");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(name), "{err}");
        for n in needles {
            assert!(err.contains(n), "{name}: expected {n:?} in {err}");
        }
    }
    // The GT's arrays decide the joint count: 16 joints whose category names 17 are named by
    // number, with a warning, and scoring them asks for a spec, since no sigmas are known.
    let p = dir.path().join("gt_16.json");
    std::fs::write(&p, sixteen.to_string()).unwrap();
    let o = dypose(&["eval", "--gt", p.to_str().unwrap(), "--results", res.to_str().unwrap()]);
    let err = String::from_utf8(o.stderr).unwrap();
    let lines: Vec<&str> = err.trim_end().lines().collect();
    assert!(!o.status.success(), "gt_16.json accepted");
    assert!(lines.len() == 2 && lines[0].starts_with("warning: ") && lines[0].contains("gt_16.json"), "{err}");
    assert!(lines[0].contains("names 17 joints") && lines[0].contains("arrays hold 16"), "{err}");
    assert!(
        lines[1].starts_with("error: ") && lines[1].contains("no OKS sigmas") && lines[1].contains("--spec"),
        "{err}"
    );
    let o = dypose(&["eval", "--gt", "no/such/gt.json", "--results", res.to_str().unwrap()]);
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(!o.status.success() && err.contains("no/such/gt.json") && err.contains("cannot read"), "{err}");
}
