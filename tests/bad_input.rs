//! Hostile and broken inputs through the command line, each case one that the release before
//! this one got wrong: a drawing that never ended, images read from outside the image folder,
//! an input photo overwritten by its drawing, a folder with a text file failing `predict`, a
//! results file with a byte-order mark refused, a file without annotations scored as empty.
//! And: a run that fails changes no input and leaves no half-written output.

mod common;

use common::{dypose, s};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const GT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/coco-sample/annotations/person_keypoints_sample.json");
const IMAGES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/coco-sample/val2017");

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn gt() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(GT).unwrap()).unwrap()
}

/// A tiny model config and random weights for it (the checkpoint carries the config).
fn tiny_model(dir: &Path) -> PathBuf {
    let cfg = dir.join("tiny.json");
    std::fs::write(
        &cfg,
        r#"{"input_size": [64, 64], "heatmap_size": [16, 16],
            "model": {"arch": "dy-resnet10", "width": 0.125, "head_channels": 8}}"#,
    )
    .unwrap();
    let ck = dir.join("tiny.safetensors");
    let o = dypose(&["init", "--config", s(&cfg), "--out", s(&ck)]);
    assert!(o.status.success(), "{}", stderr(&o));
    ck
}

/// The bytes of every file below `dir`, by path.
fn hashes(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(hashes(&p));
        } else {
            out.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
    out
}

/// Case 1: joints and boxes at ±1e9 … 3e38 walked a limb pixel by pixel across billions of
/// pixels (the release before never finished). Now drawing is bounded by the canvas: the
/// command must end well within a minute (it takes a fraction of a second).
#[test]
fn draw_ends_on_joints_and_boxes_far_off_the_canvas() {
    let dir = tempfile::tempdir().unwrap();
    let mut gt = gt();
    let anns = gt["annotations"].as_array_mut().unwrap();
    for (i, a) in anns.iter_mut().enumerate() {
        let far = [1e9, -1e9, 3e38, -3e38][i % 4];
        let k = a["keypoints"].as_array_mut().unwrap();
        (k[15 * 3], k[15 * 3 + 1], k[15 * 3 + 2]) = (far.into(), (-far).into(), 2.into());
        (k[13 * 3], k[13 * 3 + 2]) = ((far * 0.5).into(), 2.into());
        a["bbox"] = serde_json::json!([far, far, 3e38, 1e9]);
    }
    let gt_path = dir.path().join("far.json");
    std::fs::write(&gt_path, gt.to_string()).unwrap();
    let out = dir.path().join("drawn");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dypose"))
        .args(["draw", "--ann", s(&gt_path), "--images", IMAGES, "--out", s(&out)])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("dypose draw did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 4, "every image drawn");
}

/// Case 2: a `file_name` that is absolute or climbs out with `..` made `draw` read (and draw)
/// an image outside `--images`. Now such records are refused and named, the others drawn, and
/// the exit status is that of unreadable images.
#[test]
fn file_names_outside_the_image_folder_are_refused_by_record() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let outside = dir.path().join("secret");
    std::fs::create_dir(&outside).unwrap();
    let mut gt = gt();
    let files: Vec<String> =
        gt["images"].as_array().unwrap().iter().map(|i| i["file_name"].as_str().unwrap().to_string()).collect();
    for (k, f) in files.iter().enumerate() {
        let target = if k < 2 { &outside } else { &images };
        std::fs::copy(Path::new(IMAGES).join(f), target.join(f)).unwrap();
    }
    let imgs = gt["images"].as_array_mut().unwrap();
    imgs[0]["file_name"] = format!("../secret/{}", files[0]).into();
    imgs[1]["file_name"] = s(&outside.join(&files[1])).into();
    let gt_path = dir.path().join("gt.json");
    std::fs::write(&gt_path, gt.to_string()).unwrap();
    let out = dir.path().join("drawn");
    let o = dypose(&["draw", "--ann", s(&gt_path), "--images", s(&images), "--out", s(&out)]);
    let err = stderr(&o);
    assert!(!o.status.success(), "refused records fail the run, as unreadable images do");
    assert!(err.contains("climbs out") && err.contains("is an absolute path"), "{err}");
    assert!(err.contains("2 images could not be read or were refused (2 drawings written)"), "{err}");
    let mut drawn: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    drawn.sort();
    assert_eq!(drawn, files[2..].to_vec(), "only the images inside --images are drawn");
}

/// Case 3: `predict --out` equal to `--image-dir` wrote each drawing over its input photo.
/// Now it is refused before any work, with --force too, and the photos are unchanged.
#[test]
fn predict_never_writes_into_its_input_folder() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_model(dir.path());
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for e in std::fs::read_dir(IMAGES).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, photos.join(p.file_name().unwrap())).unwrap();
    }
    let before = hashes(&photos);
    for extra in [&[][..], &["--force"]] {
        let mut args = vec!["predict", "--checkpoint", s(&ck), "--image-dir", s(&photos), "--out", s(&photos)];
        args.extend(extra);
        let o = dypose(&args);
        assert!(!o.status.success() && stderr(&o).contains("choose another --out"), "{}", stderr(&o));
        assert_eq!(hashes(&photos), before, "the photos are unchanged ({extra:?})");
    }
    // A drawing that would land on its source through another spelling of the folder: refused.
    let other = photos.join("..").join("photos");
    let first = std::fs::read_dir(&photos).unwrap().next().unwrap().unwrap().path();
    let o = dypose(&["predict", "--checkpoint", s(&ck), "--images", s(&first), "--out", s(&other), "--force"]);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert_eq!(hashes(&photos), before);
}

/// Case 4: a folder with a `notes.txt` beside the photos made `predict --image-dir` exit 1.
/// Now files that are not images by extension are skipped and counted.
#[test]
fn predict_skips_files_that_are_not_images() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_model(dir.path());
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    std::fs::copy(Path::new(IMAGES).join("000000000785.jpg"), photos.join("a.JPG")).unwrap();
    std::fs::write(photos.join("notes.txt"), "taken in March").unwrap();
    let out = dir.path().join("out");
    let o = dypose(&["predict", "--checkpoint", s(&ck), "--image-dir", s(&photos), "--out", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("skipped 1 files that are not images") && stderr(&o).contains("notes.txt"));
    assert!(out.join("a.jpg").exists() && !out.join("notes.png").exists());
}

/// Case 5: a results file (or any JSON input) starting with a UTF-8 byte-order mark was refused.
#[test]
fn json_inputs_may_start_with_a_byte_order_mark() {
    let dir = tempfile::tempdir().unwrap();
    let results: Vec<serde_json::Value> = gt()["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| serde_json::json!({"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}))
        .collect();
    let with_bom = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, [&b"\xEF\xBB\xBF"[..], text.as_bytes()].concat()).unwrap();
        p
    };
    let res = with_bom("results.json", &serde_json::to_string(&results).unwrap());
    let gt_bom = with_bom("gt.json", &std::fs::read_to_string(GT).unwrap());
    let coco17 = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/keypoints/coco17.json");
    let spec = with_bom("spec.json", &std::fs::read_to_string(coco17).unwrap());
    let stats = dir.path().join("stats.json");
    let o = dypose(&["eval", "--gt", s(&gt_bom), "--results", s(&res), "--spec", s(&spec), "--json", s(&stats)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The same numbers as the same files without the mark.
    let plain_res = dir.path().join("plain.json");
    std::fs::write(&plain_res, serde_json::to_string(&results).unwrap()).unwrap();
    let plain = dir.path().join("plain_stats.json");
    assert!(dypose(&["eval", "--gt", GT, "--results", s(&plain_res), "--json", s(&plain)]).status.success());
    assert_eq!(std::fs::read(&stats).unwrap(), std::fs::read(&plain).unwrap());
    let cfg = with_bom("cfg.json", r#"{"model": {"arch": "resnet10"}}"#);
    let o = dypose(&["info", "--config", s(&cfg), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Case 6: a GT file without an `annotations` key (an image-info file) was scored as empty and
/// printed −1s. Now it is an error naming the file; an empty list still scores.
#[test]
fn a_gt_file_without_annotations_is_an_error_but_an_empty_list_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut info = gt();
    info.as_object_mut().unwrap().remove("annotations");
    let info_path = dir.path().join("image_info.json");
    std::fs::write(&info_path, info.to_string()).unwrap();
    let res = dir.path().join("res.json");
    let kps: Vec<f64> = (0..51).map(|i| if i % 3 == 2 { 1.0 } else { 10.0 }).collect();
    std::fs::write(
        &res,
        serde_json::json!([{"image_id": 785, "category_id": 1, "keypoints": kps, "score": 0.5}]).to_string(),
    )
    .unwrap();
    let o = dypose(&["eval", "--gt", s(&info_path), "--results", s(&res)]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("image_info.json")
            && err.contains("missing field `annotations`")
            && err.contains("not an annotation file"),
        "{err}"
    );
    info["annotations"] = serde_json::json!([]);
    std::fs::write(&info_path, info.to_string()).unwrap();
    let o = dypose(&["eval", "--gt", s(&info_path), "--results", s(&res)]);
    assert!(o.status.success(), "an empty list is a valid (if empty) GT: {}", stderr(&o));
}

/// Nothing is lost: a run that fails half-way (an unreadable image among good ones, an output
/// refused) changes no input and leaves no temporary or half-written file behind.
#[test]
fn a_failing_run_changes_no_input_and_leaves_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_model(dir.path());
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for e in std::fs::read_dir(IMAGES).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, photos.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(photos.join("broken.jpg"), b"\xFF\xD8\xFF\xE0 not a jpeg").unwrap();
    let snapshot = || {
        let mut files = hashes(&photos);
        for f in ["tiny.json", "tiny.safetensors"] {
            files.insert(dir.path().join(f), std::fs::read(dir.path().join(f)).unwrap());
        }
        files
    };
    let inputs = snapshot();
    let out = dir.path().join("out");
    let o = dypose(&["predict", "--checkpoint", s(&ck), "--image-dir", s(&photos), "--out", s(&out)]);
    assert!(!o.status.success() && stderr(&o).contains("broken.jpg"), "{}", stderr(&o));
    // The good images' results and drawings are whole: every file decodes or parses.
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with(".dypose-"), "a temporary file was left: {name}");
        match p.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                serde_json::from_slice::<serde_json::Value>(&std::fs::read(&p).unwrap()).unwrap();
            }
            _ => {
                image::open(&p).unwrap();
            }
        }
    }
    // A second run refuses to replace those outputs; neither run touched an input.
    let o = dypose(&["predict", "--checkpoint", s(&ck), "--image-dir", s(&photos), "--out", s(&out)]);
    assert!(!o.status.success() && stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(inputs, snapshot());
}
