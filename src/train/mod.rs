//! Training: the heatmap loss, Adam, the learning-rate and temperature schedules, checkpoints
//! with the full trainer state, metrics, and the loop that ties them together.

pub mod adam;
pub mod loss;
pub mod metrics;
pub mod schedule;
pub mod state;
pub mod trainer;

pub use trainer::{train, TrainOptions, TrainOutcome};

/// Trains on the named device: `cpu`, or `cuda` in a build with the `cuda` feature.
pub fn train_on(device: &str, cfg: &crate::config::Config, opts: &TrainOptions) -> anyhow::Result<TrainOutcome> {
    crate::with_device!(device, |dev: D| train(dev, cfg, opts))
}
