//! torchvision's resnet18, mobilenet_v2 and mobilenet_v3_small through `import-torchvision` and
//! `classify`, against the logits torch computed (tools/torchvision_reference.py, committed in
//! tests/data/torchvision/expected_logits.json). The weights and the two 224×224 images are
//! formulas that the script and this test both evaluate, so no weights are committed; the
//! script also lists torchvision's tensor names, which the state dict written here must equal.

mod common;

use common::{dypose, s};
use dypose::config::{Arch, ClassifierModel, Size};
use dypose::model::blueprint::Blueprint;
use dypose::model::network::Network;
use safetensors::tensor::{Dtype, TensorView};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

const EXPECTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/torchvision/expected_logits.json");

fn fnv1a(name: &str) -> u64 {
    name.bytes().fold(2166136261u64, |h, b| ((h ^ b as u64) * 16777619) % (1 << 32))
}

/// The script's formula for tensor `name` of `shape` (see tools/torchvision_reference.py).
fn formula(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let phase = 2.0 * std::f64::consts::PI * (fnv1a(name) % 10000) as f64 / 10000.0;
    (0..n)
        .map(|i| {
            let s = (phase + 0.37 * i as f64).sin();
            let v = if name.ends_with("running_var") {
                0.5 + 0.25 * (s + 1.0)
            } else if name.ends_with("running_mean") {
                0.1 * s
            } else if shape.len() == 1 && name.ends_with("bias") {
                0.05 * s
            } else if shape.len() == 1 {
                1.0 + 0.2 * s
            } else {
                s * (3.0 / (n / shape[0]) as f64).sqrt()
            };
            v as f32
        })
        .collect()
}

/// The script's test image `k`.
fn image(k: u32) -> image::RgbImage {
    image::RgbImage::from_fn(224, 224, |x, y| {
        image::Rgb(std::array::from_fn(|c| {
            let c = c as u32;
            let v = if k == 0 { (x * 3 + y * 7 + c * 85 + (x * y) % 31) % 256 } else { ((x ^ y) * 5 + c * 40) % 256 };
            v as u8
        }))
    })
}

/// torchvision's state dict for `arch` (names from dypose's mapping, values from the formula),
/// with BN's `num_batches_tracked` counters as torchvision saves them; returns the names.
fn write_state_dict(arch: Arch, path: &Path) -> BTreeSet<String> {
    let model = ClassifierModel {
        arch,
        width: 1.0,
        kernels: 4,
        dynamic_shortcut: false,
        classes: 1000,
        input_size: Size::new(224, 224),
        class_names: vec![],
        classifier_hidden: None,
    };
    let bp = Blueprint::classifier(&model).unwrap();
    let net = Network::new(&dfdx::prelude::Cpu::default(), &bp, 0);
    let theirs: HashMap<String, String> = dypose::model::torchvision::layer_names(&bp).unwrap().into_iter().collect();
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for p in net.params() {
        let (prefix, suffix) = p.name.rsplit_once('.').unwrap();
        let name = format!("{}.{suffix}", theirs[prefix]);
        let values = formula(&name, &p.shape);
        data.push((name, p.shape.clone(), values.iter().flat_map(|v| v.to_le_bytes()).collect()));
        if suffix == "running_var" {
            data.push((format!("{}.num_batches_tracked", theirs[prefix]), vec![], 7i64.to_le_bytes().to_vec()));
        }
    }
    let names = data.iter().map(|d| d.0.clone()).filter(|n| !n.ends_with("num_batches_tracked")).collect();
    let views: Vec<(String, TensorView)> = data
        .iter()
        .map(|(n, shape, bytes)| {
            let dtype = if n.ends_with("num_batches_tracked") { Dtype::I64 } else { Dtype::F32 };
            (n.clone(), TensorView::new(dtype, shape.clone(), bytes).unwrap())
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
    names
}

#[test]
fn imported_torchvision_models_give_torchs_logits() {
    let expected: Value = serde_json::from_slice(&std::fs::read(EXPECTED).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let images: Vec<_> = (0..2)
        .map(|k| {
            let p = dir.path().join(format!("image{k}.png"));
            image(k).save(&p).unwrap();
            p
        })
        .collect();
    for (arch, tv) in [
        (Arch::Resnet18, "resnet18"),
        (Arch::Mobilenetv2, "mobilenet_v2"),
        (Arch::Mobilenetv3Small, "mobilenet_v3_small"),
    ] {
        let (weights, ck, json) = (
            dir.path().join(format!("{tv}.tv.safetensors")),
            dir.path().join(format!("{tv}.safetensors")),
            dir.path().join(format!("{tv}.json")),
        );
        let names = write_state_dict(arch, &weights);
        let torch_names: BTreeSet<String> = expected[format!("{tv}_names")]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, torch_names, "{tv}: dypose's torchvision names are torchvision's");
        let o = dypose(&["import-torchvision", "--arch", arch.name(), "--weights", s(&weights), "--out", s(&ck)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o =
            dypose(&["classify", "--checkpoint", s(&ck), "--images", s(&images[0]), s(&images[1]), "--json", s(&json)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        for k in 0..2 {
            let want: Vec<f64> = expected[tv][k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let have: Vec<f64> = got[k]["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(have.len(), 1000);
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let err = have.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale;
            assert!(err < 1e-4, "{tv}, image {k}: logits differ from torch's by {err:.2e} (relative to the largest)");
            // The printed top class is torch's arg-max.
            let argmax = want.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
            assert_eq!(got[k]["top"][0]["index"].as_u64().unwrap() as usize, argmax, "{tv}, image {k}");
        }
    }
}

#[test]
fn a_dynamic_architecture_or_a_foreign_tensor_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("r18.safetensors");
    write_state_dict(Arch::Resnet18, &weights);
    let ck = dir.path().join("out.safetensors");
    let o = dypose(&["import-torchvision", "--arch", "dy-resnet18", "--weights", s(&weights), "--out", s(&ck)]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no dynamic convolutions"));
    // ResNet-18 weights read as MobileNetV2: the first missing tensor is named.
    let o = dypose(&["import-torchvision", "--arch", "mobilenetv2", "--weights", s(&weights), "--out", s(&ck)]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("classifier.1.weight") && e.contains("missing"), "{e}");
    assert!(!ck.exists());
}
