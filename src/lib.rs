//! dypose: COCO person-keypoint detection with Dynamic Convolution.
//!
//! Data flows one way (see DESIGN.md): `coco` (files) → `data` (crops, targets) → `model` →
//! `train` / `infer` → `eval` (the COCO metric) → `viz`. `coco` and `eval` are plain Rust.

pub mod bench;
pub mod cli;
pub mod coco;
pub mod config;
pub mod data;
pub mod eval;
pub mod fsutil;
pub mod infer;
pub mod model;
pub mod progress;
pub mod quickstart;
pub mod train;
pub mod viz;
