//! The fast CUDA path (cargo feature `cudnn`): cuDNN convolutions and NVRTC kernels for batch
//! norm, add + ReLU and average pooling, as custom ops on dfdx's public tape API, as the CPU
//! path's are. Written and checked without a GPU (descriptors: `model::cudnn_plan`; kernels:
//! `dypose dev ptx`); every op kind is compared with dfdx's generic op the first time it runs in
//! a process (`model::fast_check`), so a mistake here costs speed, not a wrong model.

#[cfg(feature = "cudnn")]
pub mod conv;
#[cfg(feature = "cudnn")]
pub mod kernels;
#[cfg(feature = "nccl")]
pub mod nccl;
#[cfg(feature = "cudnn")]
pub mod ptr;
pub mod sniff;

#[cfg(feature = "cudnn")]
pub use ops::CudaOps;

#[cfg(feature = "cudnn")]
mod ops {
    use crate::model::blueprint::ConvSpec;
    use crate::model::conv::T4;
    use dfdx::prelude::*;

    type Flat<Tp> = Tensor<(usize,), f32, Cuda, Tp>;

    /// `ConvBackend`'s fast ops for `Cuda`.
    pub struct CudaOps;

    impl CudaOps {
        pub fn conv<Tp: Tape<f32, Cuda> + Merge<Tp>>(x: T4<Cuda, Tp>, w: Flat<Tp>, spec: &ConvSpec) -> T4<Cuda, Tp> {
            super::conv::conv(x, w, spec)
        }

        /// Each sample's kernel Σₖ π[b, k]·Wₖ by cuBLAS (dfdx's matmul, which also gives π and the
        /// bank their gradients), then one grouped cuDNN convolution over all samples.
        pub fn dynamic_conv<Tp: Tape<f32, Cuda> + Merge<Tp>>(
            x: T4<Cuda, Tp>,
            pi: Tensor<(usize, usize), f32, Cuda, Tp>,
            kernels: Flat<Tp>,
            spec: &ConvSpec,
        ) -> T4<Cuda, Tp> {
            let (b, k) = *pi.shape();
            let per = spec.kernel_params();
            let aggregated = pi.matmul(kernels.reshape_like(&(k, per))).reshape_like(&(b * per,));
            super::conv::conv(x, aggregated, spec)
        }
    }
}
