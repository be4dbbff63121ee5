//! `dypose info` and `dypose init`: the sizes of an architecture, and fresh weights for it.

use crate::coco::KeypointSpec;
use crate::config::{Arch, Config, HeadKind, ModelConfig, Size};
use crate::model::blueprint::{backbone, Blueprint};
use crate::model::checkpoint::CheckpointMeta;
use crate::model::network::Network;
use anyhow::{ensure, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A network named on the command line rather than by a config.
#[derive(Debug, Clone)]
pub struct NamedArch {
    pub arch: Arch,
    pub width: f64,
    /// An ImageNet-style classifier with this many classes (when there is no head).
    pub classifier: Option<usize>,
    /// A pose head instead of a classifier.
    pub head: Option<HeadKind>,
    pub joints: usize,
    /// Default: 224×224 for classifiers, 256×192 for pose models.
    pub input: Option<Size>,
    pub dynamic_shortcut: bool,
    pub kernels: usize,
    /// Another width for MobileNetV3's hidden classifier layer (the DY-Conv paper's counts
    /// take 1280).
    pub classifier_hidden: Option<usize>,
}

/// What `info` and `init` describe.
pub enum ArchSource {
    /// The pose model of a config (with `--set` overrides), for its keypoint set.
    Config {
        path: PathBuf,
        overrides: Vec<String>,
    },
    Named(NamedArch),
}

/// A described network: its blueprint and input size, and the config and keypoint set of a
/// config's pose model (which `init` stores in the checkpoint).
pub struct Described {
    pub blueprint: Blueprint,
    pub input: Size,
    pub config: Option<(Config, KeypointSpec)>,
}

pub fn describe(src: &ArchSource) -> Result<Described> {
    let a = match src {
        ArchSource::Config { path, overrides } => {
            let cfg = Config::load(path, overrides)?;
            let spec = super::spec_for_config(&cfg)?;
            let blueprint = Blueprint::for_config(&cfg, spec.len())?;
            return Ok(Described { blueprint, input: cfg.input_size, config: Some((cfg, spec)) });
        }
        ArchSource::Named(a) => a,
    };
    ensure!(a.kernels >= 1, "--kernels must be at least 1");
    let (blueprint, default_input) = match a.head {
        None => {
            let mut b = backbone(a.arch, a.width, a.dynamic_shortcut)?;
            if let Some(h) = a.classifier_hidden {
                ensure!(
                    b.classifier_hidden.is_some() && h >= 1,
                    "--classifier-hidden: {} has no hidden classifier layer (MobileNetV3 has)",
                    a.arch
                );
                b.classifier_hidden = Some(h);
            }
            let classes = Some(a.classifier.unwrap_or(1000));
            (Blueprint { backbone: b, head: None, classifier: classes, kernels: a.kernels }, Size::new(224, 224))
        }
        Some(head) => {
            // The pose model a config would build (the light head defaults to 128 channels here).
            let model = ModelConfig {
                arch: a.arch,
                width: a.width,
                head,
                head_channels: if head == HeadKind::Light { 128 } else { 256 },
                dynamic_shortcut: a.dynamic_shortcut,
                kernels: a.kernels,
                ..Default::default()
            };
            (Blueprint::pose(&model, a.joints)?, Size::new(192, 256))
        }
    };
    Ok(Described { blueprint, input: a.input.unwrap_or(default_input), config: None })
}

/// `dypose info`: the parts' sizes as a table and a JSON line last (only the JSON with `json`).
pub fn info(src: &ArchSource, json: bool) -> Result<String> {
    let d = describe(src)?;
    let text = crate::model::cost::describe(&d.blueprint, d.input);
    Ok(if json { text.lines().last().unwrap_or_default().to_string() } else { text })
}

/// `dypose init`: fresh weights drawn from `seed`, written to `out` (replaced only with
/// `force`). A config's checkpoint carries the config and keypoint set, like a trained one.
pub fn init(src: &ArchSource, seed: u64, out: &Path, force: bool) -> Result<String> {
    if let ArchSource::Config { path, .. } = src {
        crate::fsutil::refuse_overwriting_inputs(&[out.to_path_buf()], std::slice::from_ref(path))?;
    }
    crate::fsutil::refuse_existing(&[out.to_path_buf()], force)?;
    let d = describe(src)?;
    let net = Network::new(&dfdx::prelude::Cpu::default(), &d.blueprint, seed);
    let other =
        BTreeMap::from([("seed".to_string(), seed.to_string()), ("arch".into(), d.blueprint.backbone.name.clone())]);
    let mut meta = CheckpointMeta { other, ..Default::default() };
    if let Some((cfg, spec)) = &d.config {
        (meta.config, meta.keypoints) = (Some(cfg.clone()), Some(serde_json::to_string(spec)?));
    }
    // A classifier says so, so that `classify` and `export` open it as they open a pretrained one.
    if let ArchSource::Named(a) = src {
        if a.head.is_none() {
            meta.classifier = Some(crate::config::ClassifierModel {
                arch: a.arch,
                width: a.width,
                kernels: a.kernels,
                dynamic_shortcut: a.dynamic_shortcut,
                classes: d.blueprint.classifier.unwrap_or(1000),
                input_size: d.input,
                class_names: Vec::new(),
                classifier_hidden: a.classifier_hidden,
            });
        }
    }
    crate::model::checkpoint::save(&net, out, &meta, force)?;
    Ok(format!("{}: {} tensors, {} trainable parameters", out.display(), net.params().len(), net.num_trainable()))
}
