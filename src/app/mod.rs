//! The application layer: one function per subcommand, and the only place that wires the
//! library's stages together (open data, build or load a model, run it, score, draw, write).
//! `main.rs` parses the command line (`cli`) and calls one of these; everything below knows
//! nothing of the command line.

pub mod analyze;
pub mod bench;
pub mod classify;
pub mod data;
pub mod detect;
pub mod draw;
pub mod eval;
pub mod explain;
pub mod export;
pub mod images;
pub mod info;
pub mod merge;
pub mod predict;
pub mod quickstart;
pub mod shard;
pub mod synth_classify;
pub mod train;

use crate::coco::{CocoDataset, FoundSet, KeypointSpec};
use crate::config::{Config, Device};
use crate::infer::HeatmapModel;
use crate::model::blueprint::Blueprint;
use crate::model::checkpoint::CheckpointMeta;
use crate::model::network::Network;
use anyhow::{Context, Result};
use std::path::Path;

/// The keypoint set of a config that no checkpoint describes (for `info`, `init` and `bench`):
/// the training set's, as training finds it, when `data.train_annotations` is there, else the
/// `data.keypoints` spec file, else COCO's 17 joints (a paper config before the COCO download).
pub fn spec_for_config(cfg: &Config) -> Result<KeypointSpec> {
    let (ann, spec_file) = (&cfg.data.train_annotations, cfg.data.keypoints.as_deref());
    if ann.is_file() {
        let train = CocoDataset::load_field(ann, &cfg.data.keypoint_field)?;
        return Ok(announced(crate::coco::training_set(&train, cfg.data.category_id, spec_file)?));
    }
    spec_file.map_or_else(|| Ok(KeypointSpec::coco17()), KeypointSpec::from_json_file)
}

/// The set found for a file, after printing (once) what was assumed to find it.
pub fn announced(found: FoundSet) -> KeypointSpec {
    for note in &found.notes {
        eprintln!("{note}");
    }
    found.spec
}

/// A trained network ready to predict, with the config and keypoint set it was trained with.
pub struct Trained {
    pub cfg: Config,
    pub spec: KeypointSpec,
    pub model: Box<dyn HeatmapModel>,
}

/// Opens a checkpoint on `device`. Its metadata gives the keypoint set and, unless `config`
/// names another file, the config; the weights are checked tensor by tensor against the network
/// they describe. A checkpoint that does not store its set (earlier releases, `init --arch`)
/// gets the config's, as [`spec_for_config`] finds it.
pub fn open_checkpoint(device: Device, checkpoint: &Path, config: Option<&Path>) -> Result<Trained> {
    let (cfg, spec) = described_by(checkpoint, config)?;
    let model = build_model(device, &cfg, &spec, Some(checkpoint))?;
    Ok(Trained { cfg, spec, model })
}

/// The config and keypoint set of a pose or detector checkpoint (see [`open_checkpoint`]).
pub fn described_by(checkpoint: &Path, config: Option<&Path>) -> Result<(Config, KeypointSpec)> {
    let meta = CheckpointMeta::read(checkpoint)?;
    let source = checkpoint.display();
    anyhow::ensure!(meta.classifier.is_none(), "{source}: a classifier checkpoint; `dypose classify` runs it");
    let cfg = match (config, meta.config) {
        (Some(path), _) => Config::load(path, &[])?,
        (None, Some(cfg)) => cfg,
        (None, None) => anyhow::bail!("{source}: the checkpoint does not hold its config; pass --config"),
    };
    anyhow::ensure!(
        cfg.model.task != crate::config::Task::Classify,
        "{source}: a classifier checkpoint; `dypose classify` runs it"
    );
    let spec = match meta.keypoints {
        Some(text) => {
            let spec: KeypointSpec =
                serde_json::from_str(&text).with_context(|| format!("{source}: the 'keypoints' metadata"))?;
            spec.validate().with_context(|| format!("{source}: the 'keypoints' metadata"))?;
            spec
        }
        None => spec_for_config(&cfg)?,
    };
    Ok((cfg, spec))
}

/// The network of `cfg` for `spec` on `device`, with the weights of `checkpoint`
/// (shape-checked) or freshly initialised ones.
pub fn build_model(
    device: Device,
    cfg: &Config,
    spec: &KeypointSpec,
    checkpoint: Option<&Path>,
) -> Result<Box<dyn HeatmapModel>> {
    let bp = Blueprint::for_config(cfg, spec.len())?;
    crate::with_device!(device, |dev: D| {
        let mut net = Network::new(&dev, &bp, cfg.seed);
        if let Some(path) = checkpoint {
            crate::model::checkpoint::load(&mut net, path)?;
        }
        Ok(Box::new(net) as Box<dyn HeatmapModel>)
    })
}
