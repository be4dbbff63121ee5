//! The top-down data pipeline: person crops, augmentation, heatmap targets, batches.
//! Plain Rust over `image` buffers and slices; no tensors here.

pub mod affine;
pub mod augment;
pub mod center;
pub mod classify;
pub mod codec;
pub mod detect;
pub mod folder;
pub mod instances;
pub mod loader;
pub mod sample;
pub mod synth;
pub mod warp;
