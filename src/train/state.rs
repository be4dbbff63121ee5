//! Training checkpoints: one safetensors file with the model, the optimiser's buffers and, in the
//! metadata, the trainer's position and the config, so that `--resume` continues exactly. One
//! file, written atomically, so model and optimiser can never disagree. The model part loads
//! with `model::checkpoint::load` as any other checkpoint. Pretraining checkpoints of earlier
//! releases (`pretrain_state`, `pretrain_config`) load as well.

use super::optimizer::Optimizer;
use crate::config::{Config, PretrainConfig};
use crate::model::backend::ConvBackend;
use crate::model::checkpoint::{load_into, to_bytes};
use crate::model::network::Network;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Where training stands: the next batch to run is batch `batch` of epoch `epoch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainState {
    pub epoch: usize,
    pub batch: usize,
    /// Optimisation steps done (the global iteration).
    pub iteration: usize,
    /// The best validation score so far (the task's first score column: AP, box AP, top-1).
    #[serde(alias = "best_ap", alias = "best_top1")]
    pub best: Option<f64>,
    #[serde(default)]
    pub train_seconds: f64,
}

/// The version written under the `format` key.
const FORMAT: &str = "dypose-train-1";

/// Writes model, optimiser and state to `path` atomically (replacing it), with `metadata` (the
/// run's config and what the task stores) beside the trainer's own keys.
pub fn save<D: ConvBackend>(
    path: &Path,
    net: &Network<D>,
    optimizer: &Optimizer<D>,
    state: &TrainState,
    metadata: BTreeMap<String, String>,
) -> Result<()> {
    let buffers = optimizer.state_tensors(net);
    let mut all = net.params();
    all.extend(buffers.iter());
    let mut meta = metadata;
    meta.extend(optimizer.metadata());
    meta.insert("format".into(), FORMAT.into());
    meta.insert("trainer".into(), serde_json::to_string(state)?);
    crate::fsutil::write_atomic(path, &to_bytes(&all, meta)?)
}

/// Loads a training checkpoint into `net` and `optimizer`; returns the state and the stored
/// config.
pub fn load<D: ConvBackend>(
    path: &Path,
    net: &mut Network<D>,
    optimizer: &mut Optimizer<D>,
) -> Result<(TrainState, Config)> {
    let source = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("{source}: cannot read checkpoint"))?;
    let mut buffers = optimizer.state_tensors(net);
    let mut all = net.params_mut();
    all.extend(buffers.iter_mut());
    let meta = load_into(all, &bytes, &source)?;
    optimizer.restore(buffers);
    optimizer.restore_metadata(&meta, &source)?;
    let field = |keys: [&'static str; 2]| {
        keys.iter()
            .find_map(|k| meta.get(*k).map(|v| (*k, v)))
            .with_context(|| format!("{source}: not a training checkpoint (no '{}' metadata)", keys[0]))
    };
    let (key, text) = field(["trainer", "pretrain_state"])?;
    let state: TrainState = serde_json::from_str(text).with_context(|| format!("{source}: {key}"))?;
    let (key, text) = field(["config", "pretrain_config"])?;
    let config = if key == "config" {
        Config::from_json(text)
    } else {
        serde_json::from_str::<PretrainConfig>(text).map(PretrainConfig::into_config).map_err(Into::into)
    }
    .with_context(|| format!("{source}: {key}"))?;
    Ok((state, config))
}
