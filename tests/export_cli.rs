//! `dypose export` on real checkpoints (a trained pose model and a trained classifier of the
//! previous release): the file runs in tract and reproduces the `--reference` outputs dypose
//! wrote beside it, its metadata describes it, and broken checkpoints are refused with nothing
//! written.

use dypose::export::proto::ModelProto;
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::Command;
use tract_onnx::prelude::{tract_ndarray, tvec, DatumExt, Framework, InferenceModelExt};

const POSE: &str = "tests/data/previous_release/pose/best.safetensors";
const CLASSIFIER: &str = "tests/data/previous_release/classifier/best.safetensors";

fn dypose(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dypose")).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = dypose(args);
    assert!(o.status.success(), "dypose {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

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

#[test]
fn a_trained_pose_model_exports_with_its_decoding_and_reproduces_dypose() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pose.onnx");
    let reference = dir.path().join("reference");
    let text = ok(&[
        "export",
        "--checkpoint",
        POSE,
        "--out",
        out.to_str().unwrap(),
        "--decode",
        "--flip",
        "--form",
        "experts",
        "--reference",
        reference.to_str().unwrap(),
        "--reference-batches",
        "1,3",
    ]);
    assert!(text.contains("outputs heatmaps, keypoints, scores"), "{text}");
    for n in [1, 3] {
        let input = read_npy(&reference.join(format!("input_b{n}.npy")));
        let got = run_tract(&out, &input);
        let want: Vec<_> = ["heatmaps", "keypoints", "scores"]
            .iter()
            .map(|k| read_npy(&reference.join(format!("{k}_b{n}.npy"))))
            .collect();
        let scale = want[0].1.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(max_abs(&got[0], &want[0].1) <= 1e-4 * scale, "batch {n}: heatmaps");
        assert!(max_abs(&got[1], &want[1].1) < 1e-3, "batch {n}: joints (px)");
        assert!(max_abs(&got[2], &want[2].1) <= 1e-4 * scale, "batch {n}: scores");
        assert_eq!(want[1].0, vec![n, 17, 2]);
    }
    let meta = metadata(&out);
    assert_eq!(meta["task"], "pose");
    assert_eq!(meta["mean"], "[0.485, 0.456, 0.406]");
    assert_eq!(meta["batch"], "dynamic");
    let names: Vec<String> = serde_json::from_str(&meta["keypoint_names"]).unwrap();
    assert_eq!((names.len(), names[0].as_str()), (17, "nose"));
    let config: serde_json::Value = serde_json::from_str(&meta["config"]).unwrap();
    assert_eq!(
        config["input_size"],
        serde_json::json!([meta["input_width"].parse::<u64>().unwrap(), meta["input_height"].parse::<u64>().unwrap()])
    );
    assert!(meta["outputs"].contains("\"keypoints\""));
}

#[test]
fn a_trained_classifier_exports_in_the_grouped_form() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("classifier.onnx");
    let reference = dir.path().join("reference");
    ok(&[
        "export",
        "--checkpoint",
        CLASSIFIER,
        "--out",
        out.to_str().unwrap(),
        "--decode",
        "--form",
        "grouped",
        "--batch",
        "2",
        "--reference",
        reference.to_str().unwrap(),
        "--reference-batches",
        "2",
    ]);
    let input = read_npy(&reference.join("input_b2.npy"));
    let got = run_tract(&out, &input);
    let logits = read_npy(&reference.join("logits_b2.npy"));
    let scale = logits.1.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(max_abs(&got[0], &logits.1) <= 1e-4 * scale, "logits");
    assert!(max_abs(&got[1], &read_npy(&reference.join("probabilities_b2.npy")).1) < 1e-5, "probabilities");
    let meta = metadata(&out);
    assert_eq!(
        (meta["task"].as_str(), meta["batch"].as_str(), meta["dynamic_form"].as_str()),
        ("classify", "2", "grouped")
    );
    // A fixed batch cannot run a reference of another size: refused before anything is written.
    let other = dir.path().join("other.onnx");
    let o = dypose(&[
        "export",
        "--checkpoint",
        CLASSIFIER,
        "--out",
        other.to_str().unwrap(),
        "--form",
        "grouped",
        "--reference",
        dir.path().join("r2").to_str().unwrap(),
        "--reference-batches",
        "8",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("fixed batch 1"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!other.exists());
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
