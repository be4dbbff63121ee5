//! The network: architecture blueprints and their cost, convolutions (dynamic and static) with
//! their CPU and CUDA fast paths, the layers, the `Network` every task trains, checkpoints.

pub mod backbone_init;
pub mod backend;
pub mod blueprint;
pub mod checkpoint;
pub mod conv;
pub mod cost;
pub mod cpu;
pub mod cuda;
pub mod cudnn_plan;
pub mod device;
pub mod dynamic;
pub mod fast_check;
pub mod fast_op;
pub mod layers;
pub mod network;
pub mod norm;
pub mod torchvision;
pub mod trace;
