//! Inference: person boxes → crops → heatmaps (with flip test) → joints in image coordinates →
//! rescoring and OKS-NMS → COCO results; the person detector (`detect`). Only `HeatmapModel`
//! for `PoseNet` touches tensors.

pub mod boxes;
pub mod classify;
pub mod detect;
pub mod explain;
pub mod post;
pub mod predictor;
pub mod validate;

pub use boxes::PersonBox;
pub use predictor::{results_of, HeatmapModel, ImageJob, Person, PredictOptions, Predictor};
