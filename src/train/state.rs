//! Training checkpoints: one safetensors file with the model, the optimiser's buffers and, in the
//! metadata, the trainer's position and the config, so that `--resume` continues exactly. One
//! file, written atomically, so model and optimiser can never disagree. The model part loads
//! with `model::checkpoint::load` as any other checkpoint. Pretraining checkpoints of earlier
//! releases (`pretrain_state`, `pretrain_config`) load as well.

use super::optimizer::Optimizer;
use crate::config::Config;
use crate::model::backend::ConvBackend;
use crate::model::checkpoint::{load_into, to_bytes, CheckpointMeta};
use crate::model::network::Network;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where training stands: the next batch to run is batch `batch` of epoch `epoch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The ranks that trained together (each step took `ranks` batches); written when not one.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub ranks: usize,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

impl Default for TrainState {
    fn default() -> Self {
        TrainState { epoch: 0, batch: 0, iteration: 0, best: None, train_seconds: 0.0, ranks: 1 }
    }
}

impl TrainState {
    /// Moves the position within the epoch to a job of `ranks` ranks: to the first step whose
    /// samples none of the earlier steps took (a step of `r` ranks takes `r` batches), so that
    /// no sample of the epoch is seen twice and at most one step's worth is skipped. Says so.
    pub fn continue_with_ranks(&mut self, ranks: usize) -> Option<String> {
        let before = self.ranks.max(1);
        if before == ranks {
            return None;
        }
        let batches_done = self.batch * before;
        let step = batches_done.div_ceil(ranks);
        let line = format!(
            "the run was trained by {before} ranks and continues with {ranks}: epoch {} goes on at step {step} (after {batches_done} batches of its order{})",
            self.epoch,
            if step * ranks > batches_done { format!(", {} skipped", step * ranks - batches_done) } else { String::new() }
        );
        (self.batch, self.ranks) = (step, ranks);
        Some(line)
    }
}

/// The version written under the `format` key.
const FORMAT: &str = "dypose-train-1";

/// Writes model, optimiser and state to `path` atomically (replacing it), with `meta` (the
/// run's config and what the task stores) beside the trainer's own keys.
pub fn save<D: ConvBackend>(
    path: &Path,
    net: &Network<D>,
    optimizer: &Optimizer<D>,
    state: &TrainState,
    mut meta: CheckpointMeta,
) -> Result<()> {
    let buffers = optimizer.state_tensors(net);
    let mut all = net.params();
    all.extend(buffers.iter());
    meta.other.extend(optimizer.metadata());
    meta.other.insert("format".into(), FORMAT.into());
    meta.other.insert("trainer".into(), serde_json::to_string(state)?);
    crate::fsutil::write_atomic(path, &to_bytes(&all, meta.to_map()?)?)
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
    let meta = CheckpointMeta::from_map(load_into(all, &bytes, &source)?, &source)?;
    optimizer.restore(buffers);
    optimizer.restore_metadata(&meta.other, &source)?;
    let missing = |key: &str| format!("{source}: not a training checkpoint (no '{key}' metadata)");
    // Pretraining checkpoints of earlier releases name their position `pretrain_state`.
    let (key, text) = ["trainer", "pretrain_state"]
        .iter()
        .find_map(|k| meta.other.get(*k).map(|v| (*k, v)))
        .with_context(|| missing("trainer"))?;
    let state: TrainState = serde_json::from_str(text).with_context(|| format!("{source}: {key}"))?;
    let config = meta.config.with_context(|| missing("config"))?;
    Ok((state, config))
}
