//! Training, one core for every task: the run (directory, resume, checkpoints with optimiser
//! state, metrics, curves, the epoch loop) in `trainer`, what a pose model, a detector and a
//! classifier each bring in `tasks`; the losses (heatmap, the detector's centre-net loss,
//! label-smoothed cross-entropy), Adam and SGD, the learning-rate and temperature schedules.

pub mod adam;
pub mod center_loss;
pub mod loss;
pub mod metrics;
pub mod optimizer;
pub mod schedule;
pub mod state;
pub mod tasks;
pub mod trainer;

pub use tasks::{Classify, Detect, Pose, Scores, Task};
pub use trainer::{train, TrainOptions, TrainOutcome, Trainer};
