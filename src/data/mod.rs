//! The top-down data pipeline: person crops, augmentation, heatmap targets, batches.
//! Plain Rust over `image` buffers and slices; no tensors here.

pub mod affine;
pub mod codec;
pub mod warp;
