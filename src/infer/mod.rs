//! Inference: person boxes → crops → heatmaps (with flip test) → joints in image coordinates →
//! rescoring and OKS-NMS → COCO results; the person detector (`detect`). Only `HeatmapModel`
//! for `Network` touches tensors.

pub mod boxes;
pub mod classify;
pub mod detect;
pub mod explain;
pub mod post;
pub mod predictor;
pub mod validate;

pub use boxes::PersonBox;

/// Fails, naming the first of them, when some images of a run could not be read (scoring a set
/// with images missing would give a wrong number).
pub fn ensure_all_read(failed: &[(std::path::PathBuf, String)]) -> anyhow::Result<()> {
    match failed.first() {
        Some((path, e)) => anyhow::bail!("{}: {} images could not be read, e.g. {e}", path.display(), failed.len()),
        None => Ok(()),
    }
}
pub use predictor::{results_of, HeatmapModel, ImageJob, Person, PredictOptions, Predictor};
