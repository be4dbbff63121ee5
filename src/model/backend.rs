//! Which convolution implementation a device runs: the fast CPU ops on `Cpu`, the
//! device-generic dfdx ops elsewhere (CUDA).

use super::blueprint::ConvSpec;
use super::conv::T4;
use dfdx::prelude::*;

type Flat<D, Tp> = Tensor<(usize,), f32, D, Tp>;

pub trait ConvBackend: Device<f32> + 'static {
    /// Whether `fast_conv` / `fast_dynamic_conv` exist on this device.
    const FAST: bool = false;

    fn fast_conv<Tp: Tape<f32, Self> + Merge<Tp>>(x: T4<Self, Tp>, w: Flat<Self, Tp>, spec: &ConvSpec) -> T4<Self, Tp> {
        let _ = (x, w, spec);
        unreachable!("callers check ConvBackend::FAST")
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

    /// Inference with BN folded into the weights and the activation fused (see `cpu::ops`).
    fn fast_conv_folded(
        x: T4<Self>,
        pi: Option<&[f32]>,
        w: &[f32],
        bias: &[f32],
        relu_cap: Option<f32>,
        spec: &ConvSpec,
    ) -> T4<Self> {
        let _ = (x, pi, w, bias, relu_cap, spec);
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
}

impl ConvBackend for Cpu {
    const FAST: bool = true;

    fn fast_global_avg_pool<Tp: Tape<f32, Cpu>>(x: T4<Cpu, Tp>) -> Tensor<(usize, usize), f32, Cpu, Tp> {
        super::cpu::ops::global_avg_pool(x)
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
        pi: Option<&[f32]>,
        w: &[f32],
        bias: &[f32],
        relu_cap: Option<f32>,
        spec: &ConvSpec,
    ) -> T4<Cpu> {
        super::cpu::ops::conv_folded(x, pi, w, bias, relu_cap, spec)
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

#[cfg(feature = "cuda")]
impl ConvBackend for Cuda {}
