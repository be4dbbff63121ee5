//! dypose: COCO keypoint detection with Dynamic Convolution.
//!
//! Data flows one way (`docs/src/contributing/architecture.md` draws the module graph,
//! `tests/module_graph.rs` enforces it): `coco` (files) → `data` (crops, targets) → `model` → `train` / `infer` / `export` (ONNX) → `eval` (the
//! COCO metric) and `viz` (drawings); `app` wires them per subcommand and `cli` holds the
//! command line. `config`, `seed`, `fsutil`, `progress` and `dist` (the ranks of an MPI job) are leaves
//! that anything may use.

pub mod app;
pub mod cli;
pub mod coco;
pub mod config;
pub mod data;
pub mod dist;
pub mod eval;
pub mod export;
pub mod fsutil;
pub mod infer;
pub mod model;
pub mod progress;
pub mod seed;
pub mod track;
pub mod train;
pub mod viz;
