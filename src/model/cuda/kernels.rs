//! NVRTC kernels of the fast CUDA path, each a dfdx op with its backward pass: training batch
//! norm with a capped ReLU fused (two passes over a channel for mean and variance, so that
//! large batches lose no precision), add + ReLU of a residual block, and the global average pool
//! of the attention branch. The source is self-contained CUDA C (no headers), compiled once per
//! process for the device it runs on.

use super::ptr::{self, Raw};
use crate::model::conv::T4;
use cudarc::driver::{CudaDevice, CudaFunction, LaunchAsync, LaunchConfig};
use dfdx::prelude::*;
use std::sync::{Arc, OnceLock};

type Flat<Tp> = Tensor<(usize,), f32, Cuda, Tp>;

/// The module name the kernels load under.
const MODULE: &str = "dypose_fast";

/// Every kernel's name, as it appears in [`SOURCE`].
pub const KERNELS: [&str; 6] = [
    "bn_train_forward",
    "bn_train_backward",
    "add_relu_forward",
    "add_relu_backward",
    "avg_pool_forward",
    "avg_pool_backward",
];

/// Threads per block; the channel reductions assume a power of two.
const THREADS: u32 = 256;

/// The kernels. Layout NCHW; `cap` < 0 means no activation, else y = min(max(y, 0), cap)
/// (ReLU: cap = +inf); gradients are added into their buffers.
pub const SOURCE: &str = r#"
#define THREADS 256

// Sum of `v` over the block (THREADS threads), returned to every thread.
__device__ float block_sum(float v, float* shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    float total = shared[0];
    __syncthreads();
    return total;
}

// The shape of a batch norm: count = N·H·W values per channel, plane = H·W.
struct BnShape { int count; int channels; int plane; float eps; float cap; };

__device__ int at_of(BnShape s, int c, int i) {
    return ((i / s.plane) * s.channels + c) * s.plane + i % s.plane;
}

__device__ float activate(float v, float cap) {
    return cap < 0.0f ? v : fminf(fmaxf(v, 0.0f), cap);
}

// One block per channel c: batch mean and (biased) variance in two passes, then
// y = act((x - mean) / sqrt(var + eps) * gamma + beta); stats = [mean × C, var × C].
extern "C" __global__ void bn_train_forward(
    const float* x, const float* gamma, const float* beta, float* y, float* stats, BnShape s
) {
    __shared__ float shared[THREADS];
    int c = blockIdx.x;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < s.count; i += THREADS) sum += x[at_of(s, c, i)];
    float mean = block_sum(sum, shared) / s.count;
    float q = 0.0f;
    for (int i = threadIdx.x; i < s.count; i += THREADS) {
        float d = x[at_of(s, c, i)] - mean;
        q += d * d;
    }
    float var = block_sum(q, shared) / s.count;
    float scale = gamma[c] * rsqrtf(var + s.eps);
    float shift = beta[c] - mean * scale;
    for (int i = threadIdx.x; i < s.count; i += THREADS) {
        int at = at_of(s, c, i);
        y[at] = activate(x[at] * scale + shift, s.cap);
    }
    if (threadIdx.x == 0) { stats[c] = mean; stats[s.channels + c] = var; }
}

// One block per channel: the activation's mask from the output (g = dy where it passed), then
// dbeta = sum(g), dgamma = sum(g * xhat), dx = gamma / sqrt(var + eps) / M * (M * g - dbeta - xhat * dgamma).
extern "C" __global__ void bn_train_backward(
    const float* x, const float* y, const float* dy, const float* gamma, const float* stats,
    float* dx, float* dgamma, float* dbeta, BnShape s
) {
    __shared__ float shared[THREADS];
    int c = blockIdx.x;
    float mean = stats[c];
    float inv_std = rsqrtf(stats[s.channels + c] + s.eps);
    float sg = 0.0f, sgx = 0.0f;
    for (int i = threadIdx.x; i < s.count; i += THREADS) {
        int at = at_of(s, c, i);
        float g = s.cap < 0.0f || (y[at] > 0.0f && y[at] < s.cap) ? dy[at] : 0.0f;
        sg += g;
        sgx += g * (x[at] - mean) * inv_std;
    }
    float sum_g = block_sum(sg, shared);
    float sum_gx = block_sum(sgx, shared);
    float k = gamma[c] * inv_std / s.count;
    for (int i = threadIdx.x; i < s.count; i += THREADS) {
        int at = at_of(s, c, i);
        float g = s.cap < 0.0f || (y[at] > 0.0f && y[at] < s.cap) ? dy[at] : 0.0f;
        float xhat = (x[at] - mean) * inv_std;
        dx[at] += k * (s.count * g - sum_g - xhat * sum_gx);
    }
    if (threadIdx.x == 0) { dgamma[c] += sum_gx; dbeta[c] += sum_g; }
}

extern "C" __global__ void add_relu_forward(const float* a, const float* b, float* y, int len) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < len) y[i] = fmaxf(a[i] + b[i], 0.0f);
}

extern "C" __global__ void add_relu_backward(const float* y, const float* dy, float* da, float* db, int len) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < len && y[i] > 0.0f) { da[i] += dy[i]; db[i] += dy[i]; }
}

// One block per (sample, channel) plane: its mean.
extern "C" __global__ void avg_pool_forward(const float* x, float* y, int plane) {
    __shared__ float shared[THREADS];
    const float* p = x + (long)blockIdx.x * plane;
    float s = 0.0f;
    for (int i = threadIdx.x; i < plane; i += THREADS) s += p[i];
    float total = block_sum(s, shared);
    if (threadIdx.x == 0) y[blockIdx.x] = total / plane;
}

extern "C" __global__ void avg_pool_backward(const float* dy, float* dx, int plane, int len) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < len) dx[i] += dy[i / plane] / plane;
}
"#;

/// The loaded kernels of the process's device.
fn kernels(dev: &Cuda) -> &'static (Arc<CudaDevice>, Vec<CudaFunction>) {
    static LOADED: OnceLock<(Arc<CudaDevice>, Vec<CudaFunction>)> = OnceLock::new();
    LOADED.get_or_init(|| {
        let device = ptr::device_of(dev);
        let ptx = cudarc::nvrtc::compile_ptx(SOURCE)
            .unwrap_or_else(|e| panic!("NVRTC: the fast kernels do not compile: {e:?}"));
        device.load_ptx(ptx, MODULE, &KERNELS).unwrap_or_else(|e| panic!("loading the fast kernels: {e:?}"));
        let functions = KERNELS.iter().map(|k| device.get_func(MODULE, k).expect("loaded above")).collect();
        (device, functions)
    })
}

fn function(dev: &Cuda, name: &str) -> CudaFunction {
    let i = KERNELS.iter().position(|k| *k == name).expect("a kernel of SOURCE");
    kernels(dev).1[i].clone()
}

/// One thread per element.
fn elementwise(len: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: ((len as u32).div_ceil(THREADS), 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// One block per row (a channel, or a (sample, channel) plane).
fn per_row(rows: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (rows as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

fn launched(what: &str, r: Result<(), cudarc::driver::DriverError>) {
    r.unwrap_or_else(|e| panic!("launching {what} failed: {e:?}"))
}

/// A device address as a kernel parameter.
fn p(r: Raw) -> u64 {
    r.ptr
}

/// `BnShape` of the kernels: values per channel, channels, plane size, ε, and the activation's
/// cap (−1: none).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct BnShape {
    count: i32,
    channels: i32,
    plane: i32,
    eps: f32,
    cap: f32,
}

// SAFETY: plain C data, laid out as the kernels' `BnShape`.
unsafe impl cudarc::driver::DeviceRepr for BnShape {}

/// Training BN with batch statistics and a capped ReLU; returns (y, batch mean, biased variance).
pub fn batch_norm_train<Tp: Tape<f32, Cuda> + Merge<Tp>>(
    x: T4<Cuda, Tp>,
    gamma: Flat<Tp>,
    beta: Flat<Tp>,
    eps: f32,
    cap: Option<f32>,
) -> (T4<Cuda, Tp>, Vec<f32>, Vec<f32>) {
    let (x, xt) = x.split_tape();
    let (gamma, gt) = gamma.split_tape();
    let (beta, bt) = beta.split_tape();
    let mut tape = xt.merge(gt).merge(bt);
    let dev = x.device().clone();
    let (n, c, h, w) = *x.shape();
    let y: T4<Cuda> = dev.zeros_like(x.shape());
    let stats: Tensor<(usize,), f32, Cuda> = dev.zeros_like(&(2 * c,));
    let shape =
        BnShape { count: (n * h * w) as i32, channels: c as i32, plane: (h * w) as i32, eps, cap: cap.unwrap_or(-1.0) };
    let f = function(&dev, "bn_train_forward");
    let params = (p(ptr::of(&x)), p(ptr::of(&gamma)), p(ptr::of(&beta)), p(ptr::of(&y)), p(ptr::of(&stats)), shape);
    // SAFETY: the buffers are live dfdx buffers of the shapes the kernel reads.
    launched("bn_train_forward", unsafe { f.launch(per_row(c), params) });
    let both = stats.as_vec();
    let (mean_values, var_values) = (both[..c].to_vec(), both[c..].to_vec());
    let (xg, gg, bg, yg) = (x.ghost(), gamma.ghost(), beta.ghost(), y.ghost());
    let kept = (y.clone(), stats);
    tape.add_backward_op(move |grads| {
        let (y, stats) = &kept;
        let dev = x.device();
        let dy = ptr::raw(grads.get_or_alloc_mut(&yg)?);
        let dx = ptr::raw(grads.get_or_alloc_mut(&xg)?);
        let dgamma = ptr::raw(grads.get_or_alloc_mut(&gg)?);
        let dbeta = ptr::raw(grads.get_or_alloc_mut(&bg)?);
        let f = function(dev, "bn_train_backward");
        let params = (
            p(ptr::of(&x)),
            p(ptr::of(y)),
            p(dy),
            p(ptr::of(&gamma)),
            p(ptr::of(stats)),
            p(dx),
            p(dgamma),
            p(dbeta),
            shape,
        );
        // SAFETY: as above; the gradient buffers have the shapes of their tensors.
        launched("bn_train_backward", unsafe { f.launch(per_row(c), params) });
        Ok(())
    });
    (y.put_tape(tape), mean_values, var_values)
}

/// relu(a + b), the end of a residual block.
pub fn add_relu<Tp: Tape<f32, Cuda> + Merge<Tp>>(a: T4<Cuda, Tp>, b: T4<Cuda, Tp>) -> T4<Cuda, Tp> {
    let (a, at) = a.split_tape();
    let (b, bt) = b.split_tape();
    let mut tape = at.merge(bt);
    let dev = a.device().clone();
    let y: T4<Cuda> = dev.zeros_like(a.shape());
    let len = y.shape().num_elements();
    let f = function(&dev, "add_relu_forward");
    // SAFETY: three live buffers of `len` floats.
    launched("add_relu_forward", unsafe {
        f.launch(elementwise(len), (p(ptr::of(&a)), p(ptr::of(&b)), p(ptr::of(&y)), len as i32))
    });
    let (ag, bg, yg) = (a.ghost(), b.ghost(), y.ghost());
    let kept = y.clone();
    tape.add_backward_op(move |grads| {
        let dy = ptr::raw(grads.get_or_alloc_mut(&yg)?);
        let da = ptr::raw(grads.get_or_alloc_mut(&ag)?);
        let db = ptr::raw(grads.get_or_alloc_mut(&bg)?);
        let f = function(kept.device(), "add_relu_backward");
        // SAFETY: as above.
        launched("add_relu_backward", unsafe {
            f.launch(elementwise(len), (p(ptr::of(&kept)), p(dy), p(da), p(db), len as i32))
        });
        Ok(())
    });
    y.put_tape(tape)
}

/// The mean of every (sample, channel) plane: (B, C).
pub fn global_avg_pool<Tp: Tape<f32, Cuda>>(x: T4<Cuda, Tp>) -> Tensor<(usize, usize), f32, Cuda, Tp> {
    let (x, mut tape) = x.split_tape();
    let dev = x.device().clone();
    let (b, c, h, w) = *x.shape();
    let y: Tensor<(usize, usize), f32, Cuda> = dev.zeros_like(&(b, c));
    let plane = (h * w) as i32;
    let f = function(&dev, "avg_pool_forward");
    // SAFETY: x holds b·c planes of h·w floats, y b·c floats.
    launched("avg_pool_forward", unsafe { f.launch(per_row(b * c), (p(ptr::of(&x)), p(ptr::of(&y)), plane)) });
    let (xg, yg) = (x.ghost(), y.ghost());
    let len = b * c * h * w;
    tape.add_backward_op(move |grads| {
        let dy = ptr::raw(grads.get_or_alloc_mut(&yg)?);
        let dx = ptr::raw(grads.get_or_alloc_mut(&xg)?);
        let f = function(x.device(), "avg_pool_backward");
        // SAFETY: as above.
        launched("avg_pool_backward", unsafe { f.launch(elementwise(len), (p(dy), p(dx), plane, len as i32)) });
        Ok(())
    });
    y.put_tape(tape)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel compiles to PTX with NVRTC (no GPU needed; the library comes from the CUDA 13
    /// wheels, e.g. through `tools/cuda_check.sh --dry-run`).
    #[test]
    #[ignore = "needs libnvrtc.so.13: run by tools/cuda_check.sh --dry-run"]
    fn every_kernel_compiles_to_ptx() {
        let opts = cudarc::nvrtc::CompileOptions { arch: Some("compute_90"), ..Default::default() };
        let ptx = cudarc::nvrtc::compile_ptx_with_opts(SOURCE, opts).unwrap_or_else(|e| panic!("{e:?}"));
        let text = ptx.to_src();
        for k in KERNELS {
            assert!(text.contains(&format!(".entry {k}(")), "{k} missing from the PTX");
        }
        if let Ok(path) = std::env::var("DYPOSE_PTX_OUT") {
            std::fs::write(path, text).unwrap();
        }
    }
}
