//! Training checkpoints: one safetensors file with the model, Adam's moments
//! (`optimizer.exp_avg.<name>`, `optimizer.exp_avg_sq.<name>`) and, in the metadata, the
//! trainer's position and the config, so that `--resume` continues exactly. One file, written
//! atomically, so model and optimizer can never disagree. The model part loads with
//! `model::checkpoint::load` as any other checkpoint.

use super::adam::Adam;
use crate::model::backend::ConvBackend;
use crate::model::checkpoint::{load_into, to_bytes, OPTIMIZER_PREFIX};
use crate::model::layers::Param;
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
    pub best_ap: Option<f64>,
    pub train_seconds: f64,
}

fn moment_params<D: ConvBackend>(net: &Network<D>, adam: &Adam<D>) -> Vec<Param<D>> {
    let trainable: Vec<&Param<D>> = net.params().into_iter().filter(|p| p.trainable).collect();
    let mut out = Vec::new();
    for (p, (m, v)) in trainable.iter().zip(&adam.moments) {
        for (kind, value) in [("exp_avg", m), ("exp_avg_sq", v)] {
            out.push(Param {
                name: format!("{OPTIMIZER_PREFIX}{kind}.{}", p.name),
                shape: p.shape.clone(),
                value: value.clone(),
                trainable: false,
            });
        }
    }
    out
}

/// Writes model, optimizer and state to `path` atomically (replacing it), with `metadata` (the
/// run's config and keypoint set) beside the trainer's own keys.
pub fn save<D: ConvBackend>(
    path: &Path,
    net: &Network<D>,
    adam: &Adam<D>,
    state: &TrainState,
    metadata: BTreeMap<String, String>,
) -> Result<()> {
    let moments = moment_params(net, adam);
    let mut all = net.params();
    all.extend(moments.iter());
    let mut meta = metadata;
    meta.insert("format".into(), "dypose-train-1".into());
    meta.insert("trainer".into(), serde_json::to_string(state)?);
    meta.insert("adam_step".into(), adam.step.to_string());
    crate::fsutil::write_atomic(path, &to_bytes(&all, meta)?)
}

/// Loads a training checkpoint into `net` and `adam`; returns the state and the stored config.
pub fn load<D: ConvBackend>(
    path: &Path,
    net: &mut Network<D>,
    adam: &mut Adam<D>,
) -> Result<(TrainState, crate::config::Config)> {
    let source = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("{source}: cannot read checkpoint"))?;
    let mut moments = moment_params(net, adam);
    let mut all = net.params_mut();
    all.extend(moments.iter_mut());
    let meta = load_into(all, &bytes, &source)?;
    for (pair, mv) in adam.moments.iter_mut().zip(moments.chunks_exact(2)) {
        *pair = (mv[0].value.clone(), mv[1].value.clone());
    }
    let field =
        |k: &str| meta.get(k).with_context(|| format!("{source}: not a training checkpoint (no '{k}' metadata)"));
    let state: TrainState = serde_json::from_str(field("trainer")?).with_context(|| format!("{source}: trainer"))?;
    adam.step = field("adam_step")?.parse().with_context(|| format!("{source}: adam_step"))?;
    let config = serde_json::from_str(field("config")?).with_context(|| format!("{source}: config"))?;
    Ok((state, config))
}
