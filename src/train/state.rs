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
    /// Moves the position to a job of `ranks` ranks, whose epochs have `per_epoch` steps: within
    /// the epoch, to the first step whose samples none of the earlier steps took (a step of `r`
    /// ranks takes `r` batches), so that no sample of the epoch is seen twice and at most one
    /// step's worth is skipped; the iteration to the same place in steps of the new size, so that
    /// the schedules (by iteration and steps per epoch) go on where they were. Says so.
    pub fn continue_with_ranks(&mut self, ranks: usize, per_epoch: usize) -> Option<String> {
        let before = self.ranks.max(1);
        if before == ranks {
            return None;
        }
        let batches_done = self.batch * before;
        let step = batches_done.div_ceil(ranks);
        let iteration = self.epoch * per_epoch + step;
        let line = format!(
            "the run was trained by {before} ranks and continues with {ranks}: epoch {} goes on at step {step} (after {batches_done} batches of its order{}); iteration {} is now {iteration}, in steps of {ranks} batches",
            self.epoch,
            if step * ranks > batches_done { format!(", {} skipped", step * ranks - batches_done) } else { String::new() },
            self.iteration
        );
        (self.batch, self.ranks, self.iteration) = (step, ranks, iteration);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand: 5 steps of 2 ranks took batches 0..10 of the epoch's order; with 3 ranks the
    /// next step starting at a batch not yet taken is step 4 (batches 12..15: 10 and 11 are
    /// skipped); with 1 rank, step 10; back from 3 ranks at step 4 (12 batches) to 2: step 6.
    /// The iteration is epoch 7's start in the new steps plus the step: 7 × 20 + 4 with 20 steps
    /// an epoch.
    #[test]
    fn a_different_number_of_ranks_continues_at_the_first_batch_not_taken() {
        let at = |batch, ranks| TrainState { epoch: 7, batch, iteration: 99, ranks, ..Default::default() };
        let mut s = at(5, 2);
        let line = s.continue_with_ranks(3, 20).unwrap();
        assert_eq!((s.batch, s.ranks, s.epoch, s.iteration), (4, 3, 7, 144));
        assert!(
            line.contains("10 batches") && line.contains("2 skipped") && line.contains("iteration 99 is now 144"),
            "{line}"
        );
        let mut s = at(5, 2);
        s.continue_with_ranks(1, 60);
        assert_eq!((s.batch, s.ranks, s.iteration), (10, 1, 430));
        let mut s = at(4, 3);
        s.continue_with_ranks(2, 30);
        assert_eq!((s.batch, s.ranks, s.iteration), (6, 2, 216));
        assert_eq!(at(5, 2).continue_with_ranks(2, 30), None);
        // Checkpoints of one process do not write the field, and earlier ones do not have it.
        let text = serde_json::to_string(&at(3, 1)).unwrap();
        assert!(!text.contains("ranks"), "{text}");
        assert_eq!(serde_json::from_str::<TrainState>(&text).unwrap().ranks, 1);
        assert_eq!(serde_json::from_str::<TrainState>(&serde_json::to_string(&at(3, 4)).unwrap()).unwrap().ranks, 4);
    }
}
