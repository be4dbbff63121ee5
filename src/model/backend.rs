//! Which convolution implementation a device runs: the fast CPU ops on `Cpu`, cuDNN and NVRTC
//! kernels on `Cuda` with the `cudnn` feature, the device-generic dfdx ops otherwise. Every
//! fast op kind is checked against the generic op at its first use (`fast_check`).

use super::blueprint::ConvSpec;
use super::conv::T4;
use super::fast_op::FastOp;
use dfdx::prelude::*;

type Flat<D, Tp> = Tensor<(usize,), f32, D, Tp>;
pub use super::fast_op::Attention;

pub trait ConvBackend: Device<f32> + 'static {
    /// Whether `fast_conv` / `fast_dynamic_conv` exist on this device.
    const FAST: bool = false;

    /// Whether this device has a fast `op` at all (checked before `fast_check` compares it).
    fn fast_available(&self, op: &FastOp) -> bool {
        let _ = op;
        Self::FAST
    }

    fn fast_conv<Tp: Tape<f32, Self> + Merge<Tp>>(x: T4<Self, Tp>, w: Flat<Self, Tp>, spec: &ConvSpec) -> T4<Self, Tp> {
        let _ = (x, w, spec);
        unreachable!("callers check ConvBackend::FAST")
    }

    /// Sums `grads` element-wise across the ranks of the job (`crate::dist`), in place on the
    /// device, when this device can (NCCL on CUDA, feature `nccl`); `false` leaves the sums to
    /// the caller, through MPI in host memory.
    fn sum_across_ranks(&self, grads: &mut [Flat<Self, NoneTape>]) -> anyhow::Result<bool> {
        let _ = grads;
        Ok(false)
    }

    fn fast_dynamic_conv<Tp: Tape<f32, Self> + Merge<Tp>>(
        x: T4<Self, Tp>,
        pi: Tensor<(usize, usize), f32, Self, Tp>,
        kernels: Flat<Self, Tp>,
        spec: &ConvSpec,
    ) -> T4<Self, Tp> {
        let _ = (x, pi, kernels, spec);
        unreachable!("callers check ConvBackend::FAST")
    }

    /// Inference with BN folded into the weights and the activation fused (see `cpu::ops`);
    /// a dynamic conv's `attention` maps the input's per-channel means (B × C) to π (B × K).
    fn fast_conv_folded(
        x: T4<Self>,
        attention: Option<&Attention>,
        w: &[f32],
        bias: &[f32],
        relu_cap: Option<f32>,
        spec: &ConvSpec,
    ) -> T4<Self> {
        let _ = (x, attention, w, bias, relu_cap, spec);
        unreachable!("callers check ConvBackend::FAST")
    }

    /// Training-mode batch norm with a fused activation; returns (y, batch mean, batch variance).
    #[allow(clippy::type_complexity)]
    fn fast_batch_norm_train<Tp: Tape<f32, Self> + Merge<Tp>>(
        x: T4<Self, Tp>,
        gamma: Flat<Self, Tp>,
        beta: Flat<Self, Tp>,
        eps: f32,
        relu_cap: Option<f32>,
    ) -> (T4<Self, Tp>, Vec<f32>, Vec<f32>) {
        let _ = (x, gamma, beta, eps, relu_cap);
        unreachable!("callers check ConvBackend::FAST")
    }

    fn fast_max_pool<Tp: Tape<f32, Self>>(x: T4<Self, Tp>, k: usize, stride: usize, padding: usize) -> T4<Self, Tp> {
        let _ = (x, k, stride, padding);
        unreachable!("callers check ConvBackend::FAST")
    }

    fn fast_add_relu<Tp: Tape<f32, Self> + Merge<Tp>>(a: T4<Self, Tp>, b: T4<Self, Tp>) -> T4<Self, Tp> {
        let _ = (a, b);
        unreachable!("callers check ConvBackend::FAST")
    }

    fn fast_global_avg_pool<Tp: Tape<f32, Self>>(x: T4<Self, Tp>) -> Tensor<(usize, usize), f32, Self, Tp> {
        let _ = x;
        unreachable!("callers check ConvBackend::FAST")
    }

    /// Bilinear ×2 upsampling (align_corners = False).
    fn fast_upsample2x<Tp: Tape<f32, Self>>(x: T4<Self, Tp>) -> T4<Self, Tp> {
        let _ = x;
        unreachable!("callers check ConvBackend::FAST")
    }

    /// x · ReLU6(x + 3) / 6 in one pass.
    fn fast_hardswish<Tp: Tape<f32, Self>>(x: T4<Self, Tp>) -> T4<Self, Tp> {
        let _ = x;
        unreachable!("callers check ConvBackend::FAST")
    }
}

impl ConvBackend for Cpu {
    const FAST: bool = true;

    fn fast_global_avg_pool<Tp: Tape<f32, Cpu>>(x: T4<Cpu, Tp>) -> Tensor<(usize, usize), f32, Cpu, Tp> {
        super::cpu::ops::global_avg_pool(x)
    }

    fn fast_upsample2x<Tp: Tape<f32, Cpu>>(x: T4<Cpu, Tp>) -> T4<Cpu, Tp> {
        super::cpu::ops::upsample2x(x)
    }

    fn fast_hardswish<Tp: Tape<f32, Cpu>>(x: T4<Cpu, Tp>) -> T4<Cpu, Tp> {
        super::cpu::ops::hardswish(x)
    }

    fn fast_max_pool<Tp: Tape<f32, Cpu>>(x: T4<Cpu, Tp>, k: usize, stride: usize, padding: usize) -> T4<Cpu, Tp> {
        super::cpu::ops::max_pool(x, k, stride, padding)
    }

    fn fast_add_relu<Tp: Tape<f32, Cpu> + Merge<Tp>>(a: T4<Cpu, Tp>, b: T4<Cpu, Tp>) -> T4<Cpu, Tp> {
        super::cpu::ops::add_relu(a, b)
    }

    fn fast_batch_norm_train<Tp: Tape<f32, Cpu> + Merge<Tp>>(
        x: T4<Cpu, Tp>,
        gamma: Flat<Cpu, Tp>,
        beta: Flat<Cpu, Tp>,
        eps: f32,
        relu_cap: Option<f32>,
    ) -> (T4<Cpu, Tp>, Vec<f32>, Vec<f32>) {
        super::cpu::ops::batch_norm_train(x, gamma, beta, eps, relu_cap)
    }

    fn fast_conv_folded(
        x: T4<Cpu>,
        attention: Option<&Attention>,
        w: &[f32],
        bias: &[f32],
        relu_cap: Option<f32>,
        spec: &ConvSpec,
    ) -> T4<Cpu> {
        super::cpu::ops::conv_folded(x, attention, w, bias, relu_cap, spec)
    }

    fn fast_conv<Tp: Tape<f32, Cpu> + Merge<Tp>>(x: T4<Cpu, Tp>, w: Flat<Cpu, Tp>, spec: &ConvSpec) -> T4<Cpu, Tp> {
        super::cpu::ops::conv(x, w, spec)
    }

    fn fast_dynamic_conv<Tp: Tape<f32, Cpu> + Merge<Tp>>(
        x: T4<Cpu, Tp>,
        pi: Tensor<(usize, usize), f32, Cpu, Tp>,
        kernels: Flat<Cpu, Tp>,
        spec: &ConvSpec,
    ) -> T4<Cpu, Tp> {
        super::cpu::ops::dynamic_conv(x, pi, kernels, spec)
    }
}

#[cfg(all(feature = "cuda", not(feature = "cudnn")))]
impl ConvBackend for Cuda {}

#[cfg(feature = "cudnn")]
impl ConvBackend for Cuda {
    const FAST: bool = true;

    /// No folded inference conv yet (its weights live on the host): inference runs the cuDNN
    /// conv, then BN and the activation as dfdx ops; no upsampling or hard-swish kernel yet (dfdx's
    /// ops).
    /// And nothing fast when this build cannot read dfdx's buffers.
    fn fast_available(&self, op: &FastOp) -> bool {
        !matches!(op, FastOp::FoldedConv(_) | FastOp::Upsample2x | FastOp::Hardswish)
            && super::cuda::ptr::reading_works(self)
    }

    #[cfg(feature = "nccl")]
    fn sum_across_ranks(&self, grads: &mut [Flat<Cuda, NoneTape>]) -> anyhow::Result<bool> {
        anyhow::ensure!(
            super::cuda::ptr::reading_works(self),
            "NCCL needs dfdx's CUDA buffers, which this build cannot read"
        );
        super::cuda::nccl::sum_in_place(self, grads)?;
        Ok(true)
    }

    fn fast_conv<Tp: Tape<f32, Cuda> + Merge<Tp>>(x: T4<Cuda, Tp>, w: Flat<Cuda, Tp>, spec: &ConvSpec) -> T4<Cuda, Tp> {
        super::cuda::CudaOps::conv(x, w, spec)
    }

    fn fast_dynamic_conv<Tp: Tape<f32, Cuda> + Merge<Tp>>(
        x: T4<Cuda, Tp>,
        pi: Tensor<(usize, usize), f32, Cuda, Tp>,
        kernels: Flat<Cuda, Tp>,
        spec: &ConvSpec,
    ) -> T4<Cuda, Tp> {
        super::cuda::CudaOps::dynamic_conv(x, pi, kernels, spec)
    }

    fn fast_batch_norm_train<Tp: Tape<f32, Cuda> + Merge<Tp>>(
        x: T4<Cuda, Tp>,
        gamma: Flat<Cuda, Tp>,
        beta: Flat<Cuda, Tp>,
        eps: f32,
        relu_cap: Option<f32>,
    ) -> (T4<Cuda, Tp>, Vec<f32>, Vec<f32>) {
        super::cuda::kernels::batch_norm_train(x, gamma, beta, eps, relu_cap)
    }

    /// dfdx's own max-pool (gather + max): one op of the stem, not worth a kernel yet.
    fn fast_max_pool<Tp: Tape<f32, Cuda>>(x: T4<Cuda, Tp>, k: usize, stride: usize, padding: usize) -> T4<Cuda, Tp> {
        super::conv::max_pool2d(x, k, stride, padding)
    }

    fn fast_add_relu<Tp: Tape<f32, Cuda> + Merge<Tp>>(a: T4<Cuda, Tp>, b: T4<Cuda, Tp>) -> T4<Cuda, Tp> {
        super::cuda::kernels::add_relu(a, b)
    }

    fn fast_global_avg_pool<Tp: Tape<f32, Cuda>>(x: T4<Cuda, Tp>) -> Tensor<(usize, usize), f32, Cuda, Tp> {
        super::cuda::kernels::global_avg_pool(x)
    }
}
