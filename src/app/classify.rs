//! `dypose import-torchvision` and `dypose classify`: classifiers from torchvision weights, and
//! the top classes of images.

use crate::config::{Arch, ClassifierModel, Device, Size, CLASSIFIER_KEY};
use crate::infer::classify::{classify as logits_of, top_k};
use crate::model::blueprint::Blueprint;
use crate::model::checkpoint::CheckpointMeta;
use crate::model::network::Network;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct ImportRequest {
    pub arch: Arch,
    pub width: f64,
    /// torchvision's state dict as safetensors (`tools/import_torchvision.py` writes it).
    pub weights: PathBuf,
    pub out: PathBuf,
    pub input: Size,
    pub force: bool,
}

/// Converts torchvision weights into a dypose classifier checkpoint; the class count comes from
/// the weights' last linear layer.
pub fn import_torchvision(req: &ImportRequest) -> Result<String> {
    crate::fsutil::refuse_overwriting_inputs(std::slice::from_ref(&req.out), std::slice::from_ref(&req.weights))?;
    crate::fsutil::refuse_existing(std::slice::from_ref(&req.out), req.force)?;
    let source = req.weights.display().to_string();
    let bytes = std::fs::read(&req.weights).with_context(|| format!("{source}: cannot read"))?;
    let mut model = ClassifierModel {
        arch: req.arch,
        width: req.width,
        kernels: 4,
        dynamic_shortcut: false,
        classes: 1,
        input_size: req.input,
        class_names: Vec::new(),
        classifier_hidden: None,
    };
    // The class count: the rows of the classifier's last linear layer.
    let probe = Blueprint::classifier(&model)?;
    let (_, last) = crate::model::torchvision::layer_names(&probe)?.pop().expect("a classifier layer");
    let st =
        safetensors::SafeTensors::deserialize(&bytes).with_context(|| format!("{source}: not a safetensors file"))?;
    let weight = format!("{last}.weight");
    let view = st.tensor(&weight).map_err(|_| anyhow::anyhow!("{source}: tensor '{weight}' is missing"))?;
    model.classes = view.shape()[0];
    let bp = Blueprint::classifier(&model)?;
    let mut net = Network::new(&dfdx::prelude::Cpu::default(), &bp, 0);
    let report = crate::model::torchvision::load_state_dict(&mut net, &bytes, &source)?;
    let meta = CheckpointMeta {
        classifier: Some(model.clone()),
        other: BTreeMap::from([("source".to_string(), format!("torchvision weights {source}"))]),
        ..Default::default()
    };
    crate::model::checkpoint::save(&net, &req.out, &meta, req.force)?;
    Ok(format!(
        "{}: {} tensors of {} ({} classes, {} input) → {} ({} torchvision counters ignored)",
        source,
        report.tensors,
        req.arch,
        model.classes,
        model.input_size,
        req.out.display(),
        report.ignored.len()
    ))
}

pub struct ClassifyRequest {
    pub checkpoint: PathBuf,
    pub images: Vec<PathBuf>,
    /// Also write every image's top classes and logits here.
    pub json: Option<PathBuf>,
    pub force: bool,
    pub top: usize,
    pub device: Device,
}

#[derive(Debug, Serialize)]
struct Ranked {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    probability: f64,
}

#[derive(Debug, Serialize)]
struct ImageClasses {
    image: String,
    top: Vec<Ranked>,
    logits: Vec<f32>,
}

/// The network a classifier checkpoint describes.
pub fn classifier_of(checkpoint: &Path) -> Result<ClassifierModel> {
    let meta = CheckpointMeta::read(checkpoint)?;
    let source = checkpoint.display();
    meta.classifier.with_context(|| {
        format!(
            "{source}: not a classifier checkpoint (no '{CLASSIFIER_KEY}' metadata; pose checkpoints go to `predict`)"
        )
    })
}

/// The top classes of each image (and its logits in the JSON file).
pub fn classify(req: &ClassifyRequest) -> Result<String> {
    if let Some(json) = &req.json {
        let mut inputs = req.images.clone();
        inputs.push(req.checkpoint.clone());
        crate::fsutil::refuse_overwriting_inputs(std::slice::from_ref(json), &inputs)?;
        crate::fsutil::refuse_existing(std::slice::from_ref(json), req.force)?;
    }
    let model = classifier_of(&req.checkpoint)?;
    let bp = Blueprint::classifier(&model)?;
    let images = req
        .images
        .iter()
        .map(|p| crate::data::loader::load_rgb(p).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    let logits = crate::with_device!(req.device, |dev: D| {
        let mut net = Network::<D>::new(&dev, &bp, 0);
        crate::model::checkpoint::load(&mut net, &req.checkpoint)?;
        logits_of(&mut net, &images, model.input_size, 32)
    })?;
    let mut text = String::new();
    let mut out = Vec::new();
    for (path, l) in req.images.iter().zip(logits) {
        let top: Vec<Ranked> = top_k(&l, req.top)
            .into_iter()
            .map(|(index, probability)| Ranked { index, name: model.class_names.get(index).cloned(), probability })
            .collect();
        let shown: Vec<String> = top
            .iter()
            .map(|r| format!("{} {:.1}%", r.name.clone().unwrap_or_else(|| r.index.to_string()), 100.0 * r.probability))
            .collect();
        text += &format!("{}: {}\n", path.display(), shown.join(", "));
        out.push(ImageClasses { image: path.display().to_string(), top, logits: l });
    }
    if let Some(json) = &req.json {
        crate::fsutil::write_new(json, (serde_json::to_string_pretty(&out)? + "\n").as_bytes(), req.force)?;
    }
    Ok(text.trim_end().to_string())
}
