//! `dypose export` on real checkpoints (a trained pose model and a trained classifier of the
//! previous release): the file runs in tract and reproduces the `--reference` outputs dypose
//! wrote beside it, its metadata describes it, and broken checkpoints are refused with nothing
//! written.

mod common;

use common::{dypose, ok, s};
use dypose::export::proto::ModelProto;
use prost::Message;
use std::path::{Path, PathBuf};
use tract_onnx::prelude::{tract_ndarray, tvec, DatumExt, Framework, InferenceModelExt};

const POSE: &str = "tests/data/previous_release/pose/best.safetensors";
const CLASSIFIER: &str = "tests/data/previous_release/classifier/best.safetensors";

/// An `.npy` file (format 1.0, little-endian f4 or i8) as (shape, values as f32).
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let len = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + len]).unwrap();
    let shape_text = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> =
        shape_text.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().unwrap()).collect();
    let data = &b[10 + len..];
    let values = if header.contains("'<f4'") {
        data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
    } else {
        assert!(header.contains("'<i8'"), "{header}");
        data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32).collect()
    };
    (shape, values)
}

fn run_tract(model: &Path, input: &(Vec<usize>, Vec<f32>)) -> Vec<Vec<f32>> {
    let s = &input.0;
    let plan = tract_onnx::onnx()
        .model_for_path(model)
        .unwrap()
        .with_input_fact(0, f32::fact(s.clone()).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let x = tract_ndarray::ArrayD::from_shape_vec(s.clone(), input.1.clone()).unwrap();
    let out = plan.run(tvec!(tract_onnx::prelude::Tensor::from(x).into())).unwrap();
    out.iter().map(|t| t.cast_to::<f32>().unwrap().as_slice::<f32>().unwrap().to_vec()).collect()
}

fn metadata(model: &Path) -> std::collections::BTreeMap<String, String> {
    let m = ModelProto::decode(&std::fs::read(model).unwrap()[..]).unwrap();
    m.metadata_props.into_iter().map(|p| (p.key.unwrap(), p.value.unwrap())).collect()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// A DY-ResNet-10 pose checkpoint of the quickstart's config, written through the library,
/// whose output layer is scaled up so that its maps have peaks to decode (fresh weights give
/// nearly flat maps, whose joints all sit at the first cell).
fn peaked_dynamic_checkpoint(dir: &Path) -> PathBuf {
    use dfdx::prelude::*;
    let cfg = dypose::config::Config::load(Path::new("configs/quickstart.json"), &[]).unwrap();
    let spec = dypose::coco::KeypointSpec::coco17();
    let bp = dypose::model::blueprint::Blueprint::for_config(&cfg, spec.len()).unwrap();
    let mut net = dypose::model::network::Network::new(&Cpu::default(), &bp, 3);
    for p in net.params_mut().into_iter().filter(|p| p.name == "head.final_layer.weight") {
        p.value = p.value.clone() * 300.0;
    }
    let meta = dypose::model::checkpoint::CheckpointMeta {
        keypoints: Some(serde_json::to_string(&spec).unwrap()),
        config: Some(cfg),
        ..Default::default()
    };
    let path = dir.join("dy_pose.safetensors");
    dypose::model::checkpoint::save(&net, &path, &meta, false).unwrap();
    path
}

/// Runs `model` in tract on each reference input and compares every output with dypose's:
/// maps and scores to 1e-4 of their scale, joints to 1e-3 px.
fn reproduces_reference(model: &Path, reference: &Path, batches: &[usize], outputs: &[&str]) {
    for &n in batches {
        let input = read_npy(&reference.join(format!("input_b{n}.npy")));
        let got = run_tract(model, &input);
        for (k, got) in outputs.iter().zip(&got) {
            let want = read_npy(&reference.join(format!("{k}_b{n}.npy")));
            let scale = want.1.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let bound = if *k == "keypoints" { 1e-3 } else { 1e-4 * scale };
            assert!(max_abs(got, &want.1) <= bound, "batch {n}: {k} differ by {}", max_abs(got, &want.1));
        }
    }
}

/// `export` of `ck` into `out` with the decoding and flip test at batch 2, and its reference.
fn decoded_export<'a>(ck: &'a Path, out: &'a Path, reference: &'a Path) -> Vec<&'a str> {
    vec!["export", "--checkpoint", s(ck), "--out", s(out), "--decode", "--flip", "--batch", "2"]
        .into_iter()
        .chain(["--reference", s(reference), "--reference-batches", "2"])
        .collect()
}

#[test]
fn a_dynamic_pose_model_exports_in_the_default_form_with_its_decoding_and_reproduces_dypose() {
    let dir = tempfile::tempdir().unwrap();
    let ck = peaked_dynamic_checkpoint(dir.path());
    let out = dir.path().join("pose.onnx");
    let reference = dir.path().join("reference");
    let text = ok(&decoded_export(&ck, &out, &reference));
    assert!(text.contains("input [2, 3, 128, 96]") && text.contains("as `grouped`"), "{text}");
    reproduces_reference(&out, &reference, &[2], &["heatmaps", "keypoints", "scores"]);
    // The joints are spread over the crop, not all at the first cell.
    let joints = read_npy(&reference.join("keypoints_b2.npy")).1;
    assert!(joints.iter().filter(|&&v| v > 8.0).count() > joints.len() / 2, "{joints:?}");
    let meta = metadata(&out);
    assert_eq!(
        (meta["task"].as_str(), meta["batch"].as_str(), meta["dynamic_form"].as_str()),
        ("pose", "2", "grouped")
    );
    assert_eq!(meta["mean"], "[0.485, 0.456, 0.406]");
    let names: Vec<String> = serde_json::from_str(&meta["keypoint_names"]).unwrap();
    assert_eq!((names.len(), names[0].as_str()), (17, "nose"));
    let config: serde_json::Value = serde_json::from_str(&meta["config"]).unwrap();
    assert_eq!(config["input_size"], serde_json::json!([96, 128]));
    assert!(meta["outputs"].contains("\"keypoints\""));
    // A fixed batch cannot run a reference of another size, nor a batch of 0: refused before
    // anything is written.
    let other = dir.path().join("other.onnx");
    for (batches, says) in [("8", "fixed batch 1"), ("0", "at least 1")] {
        let o = dypose(&[
            "export",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--out",
            other.to_str().unwrap(),
            "--reference",
            dir.path().join("r2").to_str().unwrap(),
            "--reference-batches",
            batches,
        ]);
        assert!(String::from_utf8_lossy(&o.stderr).contains(says), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(!other.exists() && !dir.path().join("r2").exists());
    }
    // A reference file in the way stops the export before the model is written.
    let o = dypose(&decoded_export(&ck, &other, &reference));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!other.exists());
}

#[test]
fn trained_checkpoints_of_the_previous_release_export_and_reproduce_dypose() {
    let dir = tempfile::tempdir().unwrap();
    // A static network keeps its batch dynamic in the default form: one file, batches 1 and 3.
    let out = dir.path().join("pose.onnx");
    let reference = dir.path().join("pose_reference");
    ok(&[
        "export",
        "--checkpoint",
        POSE,
        "--out",
        out.to_str().unwrap(),
        "--decode",
        "--flip",
        "--reference",
        reference.to_str().unwrap(),
        "--reference-batches",
        "1,3",
    ]);
    assert_eq!(metadata(&out)["batch"], "dynamic");
    reproduces_reference(&out, &reference, &[1, 3], &["heatmaps", "keypoints", "scores"]);
    let out = dir.path().join("classifier.onnx");
    let reference = dir.path().join("classifier_reference");
    ok(&[
        "export",
        "--checkpoint",
        CLASSIFIER,
        "--out",
        out.to_str().unwrap(),
        "--decode",
        "--reference",
        reference.to_str().unwrap(),
        "--reference-batches",
        "2",
    ]);
    reproduces_reference(&out, &reference, &[2], &["logits", "probabilities"]);
    assert_eq!(metadata(&out)["task"], "classify");
    // A classifier describes its own network: another config is refused.
    let o = dypose(&[
        "export",
        "--checkpoint",
        CLASSIFIER,
        "--out",
        dir.path().join("x.onnx").to_str().unwrap(),
        "--config",
        "configs/quickstart.json",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("describes its own network"));
}

/// The pose checkpoint rewritten by `edit`, which may drop or replace tensors.
fn broken_checkpoint(
    dir: &Path,
    name: &str,
    edit: impl Fn(&str, Vec<usize>, Vec<u8>) -> Option<(Vec<usize>, Vec<u8>)>,
) -> PathBuf {
    let bytes = std::fs::read(POSE).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut kept = Vec::new();
    for (k, v) in st.tensors() {
        if let Some((shape, data)) = edit(&k, v.shape().to_vec(), v.data().to_vec()) {
            kept.push((k, shape, data));
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = kept
        .iter()
        .map(|(k, s, d)| {
            (k.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap())
        })
        .collect();
    let path = dir.join(name);
    safetensors::serialize_to_file(views, meta.metadata().clone(), &path).unwrap();
    path
}

#[test]
fn a_broken_checkpoint_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let missing = broken_checkpoint(dir.path(), "missing.safetensors", |k, s, d| {
        (k != "head.final_layer.bias").then_some((s, d))
    });
    let reshaped = broken_checkpoint(dir.path(), "reshaped.safetensors", |k, s, d| {
        Some(if k == "head.final_layer.bias" { (vec![s[0] - 1], d[..d.len() - 4].to_vec()) } else { (s, d) })
    });
    for (ck, what) in [(&missing, "missing"), (&reshaped, "shape")] {
        let out = dir.path().join("model.onnx");
        let o = dypose(&["export", "--checkpoint", ck.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{what}: refused");
        assert!(
            err.contains("head.final_layer.bias") && err.contains(ck.file_name().unwrap().to_str().unwrap()),
            "{what}: {err}"
        );
        assert!(!out.exists(), "{what}: nothing written");
    }
    // Nor is an input ever replaced, or an existing file without --force.
    let o = dypose(&["export", "--checkpoint", POSE, "--out", POSE]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("would replace an input"));
    let existing = dir.path().join("existing.onnx");
    std::fs::write(&existing, b"keep").unwrap();
    let o = dypose(&["export", "--checkpoint", POSE, "--out", existing.to_str().unwrap()]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep");
}
