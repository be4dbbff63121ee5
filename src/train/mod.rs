//! Training: the heatmap loss, the detector's centre-net loss, Adam, the learning-rate and temperature schedules, checkpoints
//! with the full trainer state, metrics, and the trainer that ties them together.

pub mod adam;
pub mod center_loss;
pub mod loss;
pub mod metrics;
pub mod pretrain;
pub mod schedule;
pub mod state;
pub mod trainer;

pub use trainer::{train, TrainOptions, TrainOutcome, Trainer, ValScores};
