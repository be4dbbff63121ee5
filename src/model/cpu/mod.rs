//! The fast CPU path: our own im2col + GEMM, parallel over the batch with rayon,
//! wired into dfdx's tape as custom ops. The device-generic ops in `model::conv` remain the
//! reference it is tested against and the path CUDA runs.

pub mod gemm;
pub mod kernels;
pub mod ops;
pub mod profile;
mod simd;
