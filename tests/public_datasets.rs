//! Files in the layouts public keypoint data sets publish (CrowdPose, OCHuman, PoseTrack18,
//! Human-Art, AI Challenger, ExLPose, COCO-WholeBody), written by
//! `tools/make_dataset_fixtures.py` into tests/data/public_sets/ with the stats pycocotools or
//! xtcocotools give them. Each goes through the command line as a user would, with no flag
//! naming its keypoint set: `eval` (stats to 1e-9), `draw` (a drawing per image, with the limbs of
//! the category or of the shipped spec its joints are) and `train` (one epoch, validated on it).

mod common;

use common::{dypose, ok, read_json, s};
use dypose::coco::KeypointSpec;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/public_sets");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    assert_eq!(dirs.len(), 7, "one fixture per data set");
    dirs
}

/// The numbers of a `--json` stats file, in the order the summary prints them.
fn stats(p: &Path, metric: &str) -> Vec<f64> {
    let v = read_json(p);
    let names: &[&str] = match metric {
        "crowdpose" => &["AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard"],
        _ => &["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"],
    };
    names.iter().map(|k| v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"))).collect()
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= 1e-9, "{what}: stat {i} = {a}, the reference {b}");
    }
}

/// `dypose eval` with no spec flag: the keypoint field and metric are the only options, as
/// mmpose's configs would need them.
fn eval_stats(dir: &Path, out: &Path, gt: &Path, e: &Value) -> Vec<f64> {
    let (metric, field) = (e["metric"].as_str().unwrap(), e["keypoint_field"].as_str().unwrap());
    let results = dir.join(e["results"].as_str().unwrap());
    let json = out.join(format!("stats_{}_{metric}_{field}.json", dir.file_name().unwrap().to_string_lossy()));
    let args = ["eval", "--gt", s(gt), "--results", s(&results), "--keypoint-field", field, "--metric", metric];
    ok(&[&args[..], &["--json", s(&json)]].concat());
    stats(&json, metric)
}

#[test]
fn every_public_layout_scores_as_its_reference_evaluator_with_no_flag() {
    let out = tempfile::tempdir().unwrap();
    let mut references = BTreeSet::new();
    for dir in fixtures() {
        let f = read_json(&dir.join("fixture.json"));
        let gt = dir.join(f["gt"].as_str().unwrap());
        for e in f["expected"].as_array().unwrap() {
            let want: Vec<f64> = e["stats"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let what = format!("{} ({}, {})", dir.display(), e["metric"], e["keypoint_field"]);
            assert_close(&eval_stats(&dir, out.path(), &gt, e), &want, &what);
            references.insert(e["reference"].as_str().unwrap().to_string());
        }
    }
    let want: BTreeSet<String> =
        ["pycocotools", "xtcocotools", "xtcocotools keypoints_crowd"].iter().map(|s| s.to_string()).collect();
    assert_eq!(references, want, "files with areas, without, and CrowdPose's benchmark");
}

/// Box results on a file without `area` (CrowdPose): xtcocotools' bbox rules with use_area=False,
/// where w·h·0.53 of each GT box picks its area range.
#[test]
fn box_results_on_a_file_without_area_score_as_xtcocotools() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/public_sets/crowdpose");
    let f = read_json(&dir.join("fixture.json"));
    let e = &f["expected_boxes"];
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("boxes.json");
    let gt = dir.join(f["gt"].as_str().unwrap());
    let results = dir.join(e["results"].as_str().unwrap());
    ok(&["eval", "--iou-type", "bbox", "--gt", s(&gt), "--results", s(&results), "--json", s(&json)]);
    let v = read_json(&json);
    let got: Vec<f64> = dypose::eval::BoxStats::NAMES.iter().map(|k| v[k].as_f64().unwrap()).collect();
    let want: Vec<f64> = e["stats"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_close(&got, &want, "crowdpose boxes");
}

/// The limbs a drawing must show: the category's 1-based skeleton, or the shipped spec's limbs.
fn expected_limbs(gt: &Value, from: &str) -> Vec<[usize; 2]> {
    match from {
        "category" => gt["categories"][0]["skeleton"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| [p[0].as_u64().unwrap() as usize - 1, p[1].as_u64().unwrap() as usize - 1])
            .collect(),
        file => {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/keypoints").join(file);
            KeypointSpec::from_json_file(&path).unwrap().limbs
        }
    }
}

/// A spec that knows only which joint is on which side, by the words in the file's names (the
/// expected colour of a limb follows from that alone).
fn sides_by_name(names: &[String]) -> KeypointSpec {
    let side = |w: &str| names.iter().position(|n| n.to_lowercase().starts_with(w));
    let mut pairs = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let lower = n.to_lowercase();
        if let Some(rest) = lower.strip_prefix("left") {
            let j = names.iter().position(|m| m.to_lowercase().strip_prefix("right") == Some(rest)).unwrap();
            pairs.push([i, j]);
        }
    }
    assert!(side("left").is_some() && !pairs.is_empty());
    let keypoints = names.to_vec();
    KeypointSpec { name: "sides".into(), keypoints, flip_pairs: pairs, sigmas: None, limbs: vec![], upper_body: vec![] }
}

/// Draws the fixture's GT and checks one drawing per image with persons, in the image's own
/// folder, and each long limb's middle painted in its side's colour.
fn drawn_with_limbs(dir: &Path, out: &Path, f: &Value, e: &Value) {
    let gt_path = dir.join(f["gt"].as_str().unwrap());
    let gt = read_json(&gt_path);
    let field = e["keypoint_field"].as_str().unwrap();
    let drawn = out.join(format!("{}_{field}", dir.file_name().unwrap().to_string_lossy()));
    let images = dir.join(f["images"].as_str().unwrap());
    ok(&[
        "draw",
        "--ann",
        s(&gt_path),
        "--images",
        s(&images),
        "--out",
        s(&drawn),
        "--keypoint-field",
        field,
        "--format",
        "png",
    ]);
    let limbs = expected_limbs(&gt, e["limbs_from"].as_str().unwrap());
    let joints = limbs.iter().flatten().max().unwrap() + 1;
    let names: Vec<String> = match e["limbs_from"].as_str().unwrap() {
        "category" => serde_json::from_value(gt["categories"][0]["keypoints"].clone()).unwrap(),
        file => {
            KeypointSpec::from_json_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/keypoints").join(file))
                .unwrap()
                .keypoints
        }
    };
    let sides = sides_by_name(&names);
    let (mut pictures, mut checked, mut hits) = (0, 0, 0);
    for img in gt["images"].as_array().unwrap() {
        let persons: Vec<&Value> = gt["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| {
                a["image_id"] == img["id"]
                    && a["iscrowd"] != json!(1)
                    && a[field].as_array().is_some_and(|k| !k.is_empty())
            })
            .collect();
        let name = Path::new(img["file_name"].as_str().unwrap()).with_extension("png");
        let picture = drawn.join(&name);
        if persons.is_empty() {
            assert!(!picture.exists(), "{}: nothing to draw", picture.display());
            continue;
        }
        pictures += 1;
        let px = image::open(&picture).unwrap_or_else(|e| panic!("{}: {e}", picture.display())).to_rgb8();
        for a in persons {
            let k: Vec<f64> = a[field].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert!(k.len() >= 3 * joints, "{}", dir.display());
            for &[p, q] in &limbs {
                let (dx, dy) = (k[3 * q] - k[3 * p], k[3 * q + 1] - k[3 * p + 1]);
                if k[3 * p + 2] > 0.0 && k[3 * q + 2] > 0.0 && dx.hypot(dy) >= 20.0 {
                    let (x, y) = ((k[3 * p] + dx / 2.0).round() as u32, (k[3 * p + 1] + dy / 2.0).round() as u32);
                    let want = dypose::viz::limb_colour(&sides, p, q);
                    checked += 1;
                    hits += px.get_pixel(x, y).0.iter().zip(want.0).all(|(a, b)| (*a as i32 - b as i32).abs() <= 2)
                        as usize;
                }
            }
        }
    }
    let files = walk(&drawn);
    assert_eq!(files.len(), pictures, "{}: one drawing per image with persons: {files:?}", dir.display());
    eprintln!("{}: {pictures} drawings, {hits} of {checked} limb midpoints in their colour", dir.display());
    // Another person's limb, a box or a joint dot may cover a midpoint now and then.
    assert!(checked >= 10 && hits * 4 >= checked * 3, "{}: {hits} of {checked} limb midpoints", dir.display());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

#[test]
fn every_public_layout_draws_with_its_limbs() {
    let out = tempfile::tempdir().unwrap();
    for dir in fixtures() {
        let f = read_json(&dir.join("fixture.json"));
        for e in f["expected"].as_array().unwrap().iter().filter(|e| e["metric"] == "coco") {
            drawn_with_limbs(&dir, out.path(), &f, e);
        }
    }
}

#[test]
fn every_public_layout_trains_and_validates_on_its_config() {
    let out = tempfile::tempdir().unwrap();
    for dir in fixtures() {
        let f = read_json(&dir.join("fixture.json"));
        let configs: BTreeSet<&str> =
            f["expected"].as_array().unwrap().iter().map(|e| e["config"].as_str().unwrap()).collect();
        for config in configs {
            let run = out.path().join(format!("{}_{config}", dir.file_name().unwrap().to_string_lossy()));
            ok(&["train", "--config", s(&dir.join(config)), "--out", s(&run)]);
            let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
            let last = csv.lines().last().unwrap();
            let val_ap: f64 = last.split(',').nth(6).unwrap().parse().unwrap_or_else(|_| panic!("{csv}"));
            assert!((0.0..=1.0).contains(&val_ap), "{}: validated: {last}", dir.display());
            assert!(run.join("best.safetensors").is_file());
        }
    }
}

/// PoseTrack18's own release (not mmpose's copy) has no `iscrowd` or `num_keypoints`, and persons
/// without labelled joints come with `"bbox": []` and `"keypoints": []`. Such a person is an
/// ignored GT that nothing matches, so the stats equal those of the file without it.
#[test]
fn posetrack18_as_released_loads_scores_and_draws() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/public_sets/posetrack18");
    let f = read_json(&dir.join("fixture.json"));
    let mut gt = read_json(&dir.join(f["gt"].as_str().unwrap()));
    let first_image = gt["images"][0]["id"].clone();
    let anns = gt["annotations"].as_array_mut().unwrap();
    for a in anns.iter_mut() {
        let a = a.as_object_mut().unwrap();
        a.remove("iscrowd");
        a.remove("num_keypoints");
    }
    anns.push(json!({"bbox_head": [], "keypoints": [], "track_id": 9, "image_id": first_image, "bbox": [],
                     "scores": [], "category_id": 1, "id": 1000342000099u64}));
    let tmp = tempfile::tempdir().unwrap();
    let released = tmp.path().join("000342_mpii_test.json");
    std::fs::write(&released, gt.to_string()).unwrap();
    let e = &f["expected"][0];
    let want: Vec<f64> = e["stats"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_close(&eval_stats(&dir, tmp.path(), &released, e), &want, "PoseTrack18 as released");
    let drawn = tmp.path().join("drawn");
    ok(&["draw", "--ann", s(&released), "--images", s(&dir), "--out", s(&drawn)]);
    assert_eq!(walk(&drawn).len(), 4, "the four frames, two of each video, all named 00000N.jpg");
    // Drawings keep the videos' folders, so an --out at the data set's root would put them
    // beside the frames: refused before any work.
    let copy = tmp.path().join("copy");
    for rel in walk(&dir.join("images")) {
        let to = copy.join(rel.strip_prefix(&dir).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&rel, &to).unwrap();
    }
    let o = dypose(&["draw", "--ann", s(&released), "--images", s(&copy), "--out", s(&copy), "--format", "png"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("the output folder holds the input"), "{err}");
    assert_eq!(walk(&copy).len(), 4, "nothing written beside the frames");
}

/// `predict --ann` finds each image's record by the end of its path, so frames of the same name
/// in two videos get their own persons; drawing both into one folder is refused before any work.
#[test]
fn predict_tells_same_named_frames_apart() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/public_sets/posetrack18");
    let f = read_json(&dir.join("fixture.json"));
    let gt_path = dir.join(f["gt"].as_str().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("init.safetensors");
    ok(&["init", "--config", s(&dir.join("train.json")), "--out", s(&ck)]);
    let frames: Vec<PathBuf> = ["000342_mpii_test", "000522_mpii_test"]
        .iter()
        .map(|v| dir.join("images/val").join(v).join("000000.jpg"))
        .collect();
    let pred = tmp.path().join("pred");
    let args = ["predict", "--checkpoint", s(&ck), "--ann", s(&gt_path), "--out", s(&pred), "--no-draw", "--images"];
    ok(&[&args[..], &[s(&frames[0]), s(&frames[1])]].concat());
    let gt = read_json(&gt_path);
    let count = |v: &Value, id: &Value| v.as_array().unwrap().iter().filter(|r| &r["image_id"] == id).count();
    let results = read_json(&pred.join("results.json"));
    for rel in ["images/val/000342_mpii_test/000000.jpg", "images/val/000522_mpii_test/000000.jpg"] {
        let id = &gt["images"].as_array().unwrap().iter().find(|i| i["file_name"] == rel).unwrap()["id"];
        assert_eq!(count(&results, id), count(&gt["annotations"], id), "{rel}: one result per GT person");
    }
    let drawn = tmp.path().join("drawn");
    let o = dypose(&[
        "predict",
        "--checkpoint",
        s(&ck),
        "--ann",
        s(&gt_path),
        "--out",
        s(&drawn),
        "--images",
        s(&frames[0]),
        s(&frames[1]),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("would both be drawn to") && err.contains("000522_mpii_test"), "{err}");
    assert!(!drawn.join("results.json").exists(), "refused before any work");
    // GT boxes of a file with other joints than the model's would silently be none: refused.
    let crowdpose = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/public_sets/crowdpose");
    let other = crowdpose.join("json/crowdpose_test.json");
    let frame = crowdpose.join("images/100000.jpg");
    let o = dypose(&[
        "predict",
        "--checkpoint",
        s(&ck),
        "--ann",
        s(&other),
        "--out",
        s(&tmp.path().join("x")),
        "--images",
        s(&frame),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("hold 14 joints") && err.contains("has 17"), "{err}");
    let images = crowdpose.join("images");
    let o = dypose(&["eval", "--checkpoint", s(&ck), "--gt", s(&other), "--images", s(&images)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("hold 14 joints") && err.contains("has 17"), "{err}");
}

/// `eval --analyze` and `data show` read the public layouts by the same rule: the analysis of a
/// file without `area` starts from xtcocotools' stats, and the training crops of Human-Art's 21
/// joints are drawn.
#[test]
fn analyze_and_data_show_take_public_layouts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/public_sets");
    let tmp = tempfile::tempdir().unwrap();
    for name in ["crowdpose", "aic", "posetrack18"] {
        let dir = root.join(name);
        let f = read_json(&dir.join("fixture.json"));
        let e = f["expected"].as_array().unwrap().iter().find(|e| e["metric"] == "coco").unwrap();
        let out = tmp.path().join(format!("analysis_{name}"));
        let gt = dir.join(f["gt"].as_str().unwrap());
        ok(&["eval", "--gt", s(&gt), "--results", s(&dir.join("results.json")), "--analyze", s(&out)]);
        let a = read_json(&out.join("analysis.json"));
        let original: Vec<f64> = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
            .iter()
            .map(|k| a["original"][k].as_f64().unwrap())
            .collect();
        let want: Vec<f64> = e["stats"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_close(&original, &want, name);
    }
    let shown = tmp.path().join("shown");
    let config = root.join("humanart/train_keypoints_21.json");
    ok(&["data", "show", "--config", s(&config), "--count", "3", "--out", s(&shown)]);
    assert_eq!(walk(&shown).len(), 3);
}
