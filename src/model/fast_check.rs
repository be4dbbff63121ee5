//! The fast ops' safety net. The first time a kind of fast op runs in a process on a device, it
//! is compared once with the device-generic op (made of dfdx's public ops, which dfdx
//! differentiates) on a small random input of the same shape family: output and every
//! gradient. If they disagree beyond tolerance, that kind of fast op is switched off with one
//! warning naming it, and the run goes on with the generic op. A bug in fast code that has never
//! met a given GPU then costs speed, never a wrong model.
//!
//! `DYPOSE_FAST_CHECK_PERTURB=<kind>` (a prefix of the kind's name, e.g. `conv`, `batch-norm`,
//! `all`) adds an error to the fast output of the check, to see the fallback work.

use super::backend::ConvBackend;
use super::blueprint::ConvSpec;
use super::conv::{conv2d, conv_transpose2d, depthwise_conv2d, grouped_conv2d, hardswish, max_pool2d, upsample2x, T4};
use super::dynamic::dynamic_conv2d;
pub use super::fast_op::{ConvFamily, FastOp, Grouping};
use super::norm::batch_norm_train;
use dfdx::prelude::*;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Which fast ops were checked on which device, and how it went.
#[derive(Default)]
pub struct Registry {
    verdicts: Mutex<HashMap<(&'static str, FastOp), bool>>,
    /// Op names whose check output is perturbed (the test hook).
    perturb: Vec<String>,
}

impl Registry {
    /// A registry perturbing the checks of ops whose names start with one of `perturb`
    /// (`all`: every op).
    pub fn new(perturb: Vec<String>) -> Self {
        Registry { verdicts: Mutex::new(HashMap::new()), perturb }
    }

    fn perturbs(&self, op: &FastOp) -> bool {
        let name = op.name();
        self.perturb.iter().any(|p| p == "all" || name.starts_with(p.as_str()))
    }

    /// Whether `D`'s fast `op` may run: checked on the first call (for `dev`), remembered after.
    pub fn allows<D: ConvBackend>(&self, dev: &D, op: FastOp) -> bool {
        if !D::FAST || !dev.fast_available(&op) {
            return false;
        }
        let key = (std::any::type_name::<D>(), op);
        // Held through the check, so that each op is checked (and warned about) once.
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        *verdicts.entry(key).or_insert_with(|| {
            // A fast op that fails outright (a CUDA error) fails its check like a wrong one.
            let check = std::panic::AssertUnwindSafe(|| agrees(dev, op, self.perturbs(&op)));
            let ok = std::panic::catch_unwind(check).unwrap_or(false);
            if !ok {
                eprintln!(
                    "warning: the fast {} on {} disagrees with the device-generic op on a check input; it is switched off for this run (the generic op is slower, not less exact)",
                    op.name(),
                    std::any::type_name::<D>()
                );
            }
            ok
        })
    }
}

static GLOBAL: OnceLock<Registry> = OnceLock::new();

#[cfg(test)]
thread_local! {
    /// A registry of this test thread's own, so that a test's verdicts stay in that test.
    static OVERRIDE: std::cell::Cell<Option<&'static Registry>> = const { std::cell::Cell::new(None) };
}

/// The process's registry (perturbations from `DYPOSE_FAST_CHECK_PERTURB`).
fn registry() -> &'static Registry {
    #[cfg(test)]
    if let Some(r) = OVERRIDE.with(|o| o.get()) {
        return r;
    }
    GLOBAL.get_or_init(|| {
        let perturb = std::env::var("DYPOSE_FAST_CHECK_PERTURB").unwrap_or_default();
        Registry::new(perturb.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
    })
}

/// Whether `D`'s fast `op` may run in this process (see the module's documentation).
pub fn fast<D: ConvBackend>(dev: &D, op: FastOp) -> bool {
    registry().allows(dev, op)
}

/// Runs the rest of this test thread with `r` as the registry.
#[cfg(test)]
pub fn use_registry(r: &'static Registry) {
    OVERRIDE.with(|o| o.set(Some(r)));
}

/// Largest difference between two value lists, relative to the larger magnitude (and 1e-3).
fn mismatch(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    let scale = a.iter().chain(b).fold(1e-3f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

/// Tolerance of a check: fp32 sums in another order, TF32 excluded.
const TOLERANCE: f32 = 1e-4;

fn random(dev: &impl Device<f32>, n: usize, seed: u64) -> Vec<f32> {
    use rand::Rng;
    let mut rng = crate::seed::stream(seed, crate::seed::INIT, 0);
    let _ = dev;
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Every output and gradient of the fast and the generic op agree on a small random input.
fn agrees<D: ConvBackend>(dev: &D, op: FastOp, perturb: bool) -> bool {
    let (fast, generic) = match op {
        FastOp::Conv(f) => conv_results(dev, &f.small_spec()),
        FastOp::FoldedConv(f) => folded_conv_results(dev, &f.small_spec()),
        FastOp::BatchNormTrain => batch_norm_results(dev),
        FastOp::MaxPool | FastOp::AddRelu | FastOp::GlobalAvgPool | FastOp::Upsample2x | FastOp::Hardswish => {
            small_op_results(dev, op)
        }
    };
    let fast: Vec<Vec<f32>> = match perturb {
        true => fast.into_iter().map(|v| v.into_iter().map(|x| x + 1.0).collect()).collect(),
        false => fast,
    };
    fast.len() == generic.len() && fast.iter().zip(&generic).all(|(a, b)| mismatch(a, b) <= TOLERANCE)
}

type Results = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// A static conv of `spec` by dfdx's generic ops, with flat weights in PyTorch's layout.
fn generic_conv<D: ConvBackend, Tp: Tape<f32, D> + Merge<Tp>>(
    x: T4<D, Tp>,
    weights: Tensor<(usize,), f32, D, Tp>,
    spec: &ConvSpec,
) -> T4<D, Tp> {
    let (k, s, p) = (spec.kernel, spec.stride, spec.padding);
    if spec.transposed {
        return conv_transpose2d(x, weights.reshape_like(&(spec.cin, spec.cout, k, k)), s, p);
    }
    let w4 = weights.reshape_like(&(spec.cout, spec.cin / spec.groups, k, k));
    match ConvFamily::of(spec).grouping {
        Grouping::Dense => conv2d(x, w4, s, p),
        Grouping::Depthwise => depthwise_conv2d(x, w4, s, p),
        Grouping::Grouped => grouped_conv2d(x, w4, s, p, spec.groups),
    }
}

/// Output, input gradient, weight gradient (and attention gradient) of the fast and generic conv.
fn conv_results<D: ConvBackend>(dev: &D, spec: &ConvSpec) -> Results {
    let (b, h, w) = if spec.transposed { (2, 4, 5) } else { (2, 9, 7) };
    let kernels = if spec.dynamic { 3 } else { 1 };
    let x: T4<D> = dev.tensor_from_vec(random(dev, b * spec.cin * h * w, 1), (b, spec.cin, h, w));
    let per = spec.kernel_params();
    let weights: Tensor<(usize,), f32, D> = dev.tensor_from_vec(random(dev, kernels * per, 2), (kernels * per,));
    let pi_values: Vec<f32> = random(dev, b * kernels, 3).iter().map(|v| v.abs() + 0.1).collect();
    let pi: Tensor<(usize, usize), f32, D> = dev.tensor_from_vec(pi_values, (b, kernels));
    let run = |fast: bool| {
        let xt = x.leaky_trace();
        let y = match (spec.dynamic, fast) {
            (false, true) => D::fast_conv(xt, weights.leaky_trace(), spec),
            (true, true) => D::fast_dynamic_conv(xt, pi.leaky_trace(), weights.leaky_trace(), spec),
            (true, false) => {
                dynamic_conv2d(xt, pi.leaky_trace(), weights.leaky_trace().reshape_like(&(kernels, per)), spec)
            }
            (false, false) => generic_conv(xt, weights.leaky_trace(), spec),
        };
        let shape = *y.shape();
        let out = y.as_vec();
        let r: T4<D> = dev.tensor_from_vec(random(dev, shape.num_elements(), 4), shape);
        let grads = (y * r).sum().backward();
        let mut all = vec![out, grads.get(&weights).as_vec()];
        if spec.input_grad {
            all.push(grads.get(&x).as_vec());
        }
        if spec.dynamic {
            all.push(grads.get(&pi).as_vec());
        }
        all
    };
    (run(true), run(false))
}

/// The folded conv's output against the generic conv plus bias and a ReLU6.
fn folded_conv_results<D: ConvBackend>(dev: &D, spec: &ConvSpec) -> Results {
    let (b, h, w) = if spec.transposed { (2, 4, 5) } else { (2, 9, 7) };
    let kernels = if spec.dynamic { 3 } else { 1 };
    let per = spec.kernel_params();
    let xv = random(dev, b * spec.cin * h * w, 5);
    let wv = random(dev, kernels * per, 6);
    let bias = random(dev, spec.cout, 7);
    let pi: Vec<f32> = random(dev, b * kernels, 8).iter().map(|v| v.abs() + 0.1).collect();
    let x: T4<D> = dev.tensor_from_vec(xv, (b, spec.cin, h, w));
    let given = |_: &[f32]| pi.clone();
    let attention = spec.dynamic.then_some(&given as &super::fast_op::Attention);
    let fast = D::fast_conv_folded(x.clone(), attention, &wv, &bias, Some(6.0), spec).as_vec();
    let weights: Tensor<(usize,), f32, D> = dev.tensor_from_vec(wv, (kernels * per,));
    let y = if spec.dynamic {
        let pi_t: Tensor<(usize, usize), f32, D> = dev.tensor_from_vec(pi, (b, kernels));
        dynamic_conv2d(x, pi_t, weights.reshape_like(&(kernels, per)), spec)
    } else {
        generic_conv(x, weights, spec)
    };
    let shape = *y.shape();
    let bias_t: Tensor<(usize,), f32, D> = dev.tensor_from_vec(bias, (spec.cout,));
    let generic = (y + bias_t.broadcast_like::<_, Axes3<0, 2, 3>>(&shape)).clamp(0.0, 6.0).as_vec();
    (vec![fast], vec![generic])
}

/// Training BN with a fused ReLU6: output, batch mean and variance, and the three gradients.
fn batch_norm_results<D: ConvBackend>(dev: &D) -> Results {
    let (b, c, h, w) = (3, 4, 5, 3);
    let xv: Vec<f32> =
        random(dev, b * c * h * w, 9).iter().enumerate().map(|(i, v)| v * 2.0 + (i % 4) as f32).collect();
    let x: T4<D> = dev.tensor_from_vec(xv, (b, c, h, w));
    let gamma: Tensor<(usize,), f32, D> = dev.tensor_from_vec(random(dev, c, 10), (c,));
    let beta: Tensor<(usize,), f32, D> = dev.tensor_from_vec(random(dev, c, 11), (c,));
    let r: T4<D> = dev.tensor_from_vec(random(dev, b * c * h * w, 12), (b, c, h, w));
    let run = |fast: bool| {
        let (y, mean, var) = match fast {
            true => D::fast_batch_norm_train(x.leaky_trace(), gamma.leaky_trace(), beta.leaky_trace(), 1e-5, Some(6.0)),
            false => {
                let (y, m, v) = batch_norm_train(x.leaky_trace(), gamma.leaky_trace(), beta.leaky_trace(), 1e-5);
                (y.clamp(0.0, 6.0), m, v)
            }
        };
        let out = y.as_vec();
        let grads = (y * r.clone()).sum().backward();
        vec![out, mean, var, grads.get(&x).as_vec(), grads.get(&gamma).as_vec(), grads.get(&beta).as_vec()]
    };
    (run(true), run(false))
}

/// Max-pool 3×3 stride 2, add + ReLU, global average pool: outputs and gradients.
fn small_op_results<D: ConvBackend>(dev: &D, op: FastOp) -> Results {
    let (b, c, h, w) = (2, 3, 9, 7);
    let a: T4<D> = dev.tensor_from_vec(random(dev, b * c * h * w, 13), (b, c, h, w));
    let other: T4<D> = dev.tensor_from_vec(random(dev, b * c * h * w, 14), (b, c, h, w));
    let run = |fast: bool| -> Vec<Vec<f32>> {
        match op {
            FastOp::MaxPool => {
                let y = if fast {
                    D::fast_max_pool(a.leaky_trace(), 3, 2, 1)
                } else {
                    max_pool2d(a.leaky_trace(), 3, 2, 1)
                };
                let (out, shape) = (y.as_vec(), *y.shape());
                let r: T4<D> = dev.tensor_from_vec(random(dev, shape.num_elements(), 15), shape);
                vec![out, (y * r).sum().backward().get(&a).as_vec()]
            }
            FastOp::Hardswish => {
                // Inputs spread over the three pieces (below −3, between, above 3).
                let x: T4<D> =
                    dev.tensor_from_vec(random(dev, b * c * h * w, 19).iter().map(|v| v * 5.0).collect(), (b, c, h, w));
                let y = if fast { D::fast_hardswish(x.leaky_trace()) } else { hardswish(x.leaky_trace()) };
                let r: T4<D> = dev.tensor_from_vec(random(dev, b * c * h * w, 20), (b, c, h, w));
                let out = y.as_vec();
                vec![out, (y * r).sum().backward().get(&x).as_vec()]
            }
            FastOp::Upsample2x => {
                let y = if fast { D::fast_upsample2x(a.leaky_trace()) } else { upsample2x(a.leaky_trace()) };
                let (out, shape) = (y.as_vec(), *y.shape());
                let r: T4<D> = dev.tensor_from_vec(random(dev, shape.num_elements(), 18), shape);
                vec![out, (y * r).sum().backward().get(&a).as_vec()]
            }
            FastOp::AddRelu => {
                let y = match fast {
                    true => D::fast_add_relu(a.leaky_trace(), other.leaky_trace()),
                    false => (a.leaky_trace() + other.leaky_trace()).relu(),
                };
                let r: T4<D> = dev.tensor_from_vec(random(dev, b * c * h * w, 16), (b, c, h, w));
                let out = y.as_vec();
                let grads = (y * r).sum().backward();
                vec![out, grads.get(&a).as_vec(), grads.get(&other).as_vec()]
            }
            _ => {
                let y: Tensor<(usize, usize), f32, D, _> = match fast {
                    true => D::fast_global_avg_pool(a.leaky_trace()),
                    false => a.leaky_trace().mean::<_, Axes2<2, 3>>(),
                };
                let r: Tensor<(usize, usize), f32, D> = dev.tensor_from_vec(random(dev, b * c, 17), (b, c));
                let out = y.as_vec();
                vec![out, (y * r).sum().backward().get(&a).as_vec()]
            }
        }
    };
    (run(true), run(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families() -> Vec<FastOp> {
        let mut ops = vec![
            FastOp::BatchNormTrain,
            FastOp::MaxPool,
            FastOp::AddRelu,
            FastOp::GlobalAvgPool,
            FastOp::Upsample2x,
            FastOp::Hardswish,
        ];
        let specs = [
            ConvSpec::new(4, 6, 3, 1),
            ConvSpec::new(4, 6, 3, 2),
            ConvSpec::new(4, 6, 1, 1),
            ConvSpec::new(3, 6, 7, 2).on_image(),
            ConvSpec { groups: 2, ..ConvSpec::new(4, 6, 3, 1) },
            ConvSpec::depthwise(6, 3, 2),
            ConvSpec::depthwise(6, 5, 1),
            ConvSpec { transposed: true, padding: 1, ..ConvSpec::new(6, 4, 4, 2) },
        ];
        for spec in specs {
            for dynamic in [false, true] {
                let f = ConvFamily::of(&spec.dynamic(dynamic));
                ops.extend([FastOp::Conv(f), FastOp::FoldedConv(f)]);
            }
        }
        ops
    }

    #[test]
    fn every_fast_cpu_op_passes_its_check_and_fails_it_when_perturbed() {
        let dev = Cpu::default();
        for op in families() {
            assert!(agrees(&dev, op, false), "{}", op.name());
            assert!(!agrees(&dev, op, true), "{}: the perturbed check must fail", op.name());
        }
    }

    #[test]
    fn a_perturbed_op_is_switched_off_once_and_the_network_runs_the_generic_path() {
        use super::super::blueprint::Blueprint;
        use super::super::layers::Ctx;
        use super::super::network::Network;
        let registry: &'static Registry = Box::leak(Box::new(Registry::new(vec!["all".into()])));
        use_registry(registry);
        let dev = Cpu::default();
        let op = FastOp::Conv(ConvFamily::of(&ConvSpec::new(4, 6, 3, 1)));
        assert!(!fast(&dev, op) && !fast(&dev, op), "switched off, and the verdict kept");
        assert_eq!(registry.verdicts.lock().unwrap().len(), 1, "checked once");
        // With every fast op switched off, the network's output is the generic path's, bit for bit.
        let cfg = crate::config::ModelConfig {
            arch: crate::config::Arch::DyResnet10,
            width: 0.125,
            head_channels: 8,
            ..Default::default()
        };
        let mut net = Network::new(&dev, &Blueprint::pose(&cfg, 5).unwrap(), 1);
        let x: T4<Cpu> = dev.tensor_from_vec(random(&dev, 2 * 3 * 64 * 48, 20), (2, 3, 64, 48));
        let switched_off = net.forward(x.leaky_trace(), Ctx::train(1.0)).as_vec();
        let generic = net.forward(x.leaky_trace(), Ctx { generic_ops: true, ..Ctx::train(1.0) }).as_vec();
        assert_eq!(switched_off, generic);
        // A registry without perturbation keeps the fast ops (a different output in the last bits).
        use_registry(Box::leak(Box::new(Registry::new(Vec::new()))));
        let fast_out = net.forward(x.leaky_trace(), Ctx::train(1.0)).as_vec();
        assert_ne!(fast_out, generic, "the fast path ran");
        assert!(mismatch(&fast_out, &generic) < 1e-3);
    }

    #[test]
    fn names_say_what_the_op_is() {
        let f = ConvFamily::of(&ConvSpec::depthwise(8, 3, 2).dynamic(true));
        assert_eq!(FastOp::Conv(f).name(), "dynamic-depthwise-conv 3×3 stride 2 padding 1");
        let t = ConvFamily::of(&ConvSpec { transposed: true, padding: 1, ..ConvSpec::new(6, 4, 4, 2) });
        assert_eq!(FastOp::FoldedConv(t).name(), "folded-transposed-conv 4×4 stride 2 padding 1");
        let c = ConvFamily::of(&ConvSpec::new(4, 6, 3, 1));
        let r = Registry::new(vec!["conv".into()]);
        assert!(r.perturbs(&FastOp::Conv(c)) && !r.perturbs(&FastOp::Conv(t)), "a prefix of the name");
        assert!(!r.perturbs(&FastOp::FoldedConv(c)) && !r.perturbs(&FastOp::MaxPool));
        assert!(Registry::new(vec!["all".into()]).perturbs(&FastOp::MaxPool));
    }
}
