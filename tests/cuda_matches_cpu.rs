//! Issue 7: on an NVIDIA GPU, every building block and a full training step of DY-ResNet-18 and
//! DY-MobileNetV2 give the CPU's outputs and gradients for the same weights and batch.
//! Compiled only with `--features cuda`; run on a GPU machine with
//!     cargo test --release --features cuda --test cuda_matches_cpu
//! (or the test binary carried there). The CPU side runs the device-generic ops, checked
//! against f64 references elsewhere.
//!
//! Building blocks (small odd shapes): outputs and every gradient within 1e-4. A whole training
//! step: output and loss within 1e-4 where fp32 rounding leaves them stable; its gradients are
//! not a well-defined fp32 quantity at 1e-4 (see `spread` and `compare`), so they are held to
//! what rounding cannot explain and a wrong backward would break.
#![cfg(feature = "cuda")]

use dfdx::prelude::*;
use dypose::config::Arch;
use dypose::model::blueprint::{backbone, deconv_head, light_head, Blueprint, ConvSpec};
use dypose::model::conv::{conv_transpose2d, depthwise_conv2d, grouped_conv2d, max_pool2d, upsample2x, T4};
use dypose::model::dynamic::{attention, dynamic_conv2d, AttentionWeights};
use dypose::model::layers::{init_rng, random_values, Ctx};
use dypose::model::network::Network;
use dypose::model::norm::batch_norm_train;

/// Largest absolute difference over the largest magnitude of the reference.
fn rel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

#[derive(Clone, Copy, Debug)]
enum Block {
    Conv { stride: usize, groups: usize },
    Depthwise { stride: usize },
    Transposed,
    MaxPool,
    BatchNorm,
    Dynamic { stride: usize, groups: usize, transposed: bool },
    Upsample,
}

const B: usize = 2;
const C: usize = 4;
const H: usize = 7;
const W: usize = 5;

/// The block's output and the gradients of Σ y·r (r random) for every input, on device `dev`.
fn run_block<D: Device<f32> + 'static>(dev: &D, block: Block) -> Vec<Vec<f32>> {
    let rng = &mut init_rng(11);
    let t4 = |rng: &mut _, s: (usize, usize, usize, usize)| -> T4<D> {
        dev.tensor_from_vec(random_values(rng, s.0 * s.1 * s.2 * s.3), s)
    };
    let x = t4(rng, (B, C, H, W));
    let xt = x.leaky_trace();
    type Getter<D> = Box<dyn Fn(&Gradients<f32, D>) -> Vec<Vec<f32>>>;
    let none = || -> Getter<D> { Box::new(|_| Vec::new()) };
    let (y, params): (T4<D, OwnedTape<f32, D>>, Getter<D>) = match block {
        Block::Conv { stride, groups } => {
            let w = t4(rng, (6, C / groups, 3, 3));
            (grouped_conv2d(xt, w.leaky_trace(), stride, 1, groups), Box::new(move |g| vec![g.get(&w).as_vec()]))
        }
        Block::Depthwise { stride } => {
            let w = t4(rng, (C, 1, 3, 3));
            (depthwise_conv2d(xt, w.leaky_trace(), stride, 1), Box::new(move |g| vec![g.get(&w).as_vec()]))
        }
        Block::Transposed => {
            let w = t4(rng, (C, 3, 4, 4));
            (conv_transpose2d(xt, w.leaky_trace(), 2, 1), Box::new(move |g| vec![g.get(&w).as_vec()]))
        }
        Block::MaxPool => (max_pool2d(xt, 3, 2, 1), none()),
        Block::Upsample => (upsample2x(xt), none()),
        Block::BatchNorm => {
            let g: Tensor<(usize,), f32, D> = dev.tensor_from_vec(random_values(rng, C), (C,));
            let b: Tensor<(usize,), f32, D> = dev.tensor_from_vec(random_values(rng, C), (C,));
            let (y, _, _) = batch_norm_train(xt, g.leaky_trace(), b.leaky_trace(), 1e-5);
            (y, Box::new(move |gr| vec![gr.get(&g).as_vec(), gr.get(&b).as_vec()]))
        }
        Block::Dynamic { stride, groups, transposed } => {
            let (k, hidden, o) = (4, 2, if transposed { 3 } else { 6 });
            let spec = ConvSpec {
                groups,
                transposed,
                padding: 1,
                ..ConvSpec::new(C, o, if transposed { 4 } else { 3 }, if transposed { 2 } else { stride })
            };
            let per = spec.kernel_params();
            let t2 = |rng: &mut _, r: usize, c: usize| -> Tensor<(usize, usize), f32, D> {
                dev.tensor_from_vec(random_values(rng, r * c), (r, c))
            };
            let t1 = |rng: &mut _, n: usize| -> Tensor<(usize,), f32, D> {
                dev.tensor_from_vec(random_values(rng, n), (n,))
            };
            let (kernels, fc1w, fc1b, fc2w, fc2b) =
                (t2(rng, k, per), t2(rng, hidden, C), t1(rng, hidden), t2(rng, k, hidden), t1(rng, k));
            let a = AttentionWeights {
                fc1_weight: fc1w.leaky_trace(),
                fc1_bias: fc1b.leaky_trace(),
                fc2_weight: fc2w.leaky_trace(),
                fc2_bias: fc2b.leaky_trace(),
            };
            let pi = attention(xt.with_empty_tape(), a, 3.0);
            let y = dynamic_conv2d(xt, pi, kernels.leaky_trace(), &spec);
            let getter = move |g: &Gradients<f32, D>| {
                vec![
                    g.get(&kernels).as_vec(),
                    g.get(&fc1w).as_vec(),
                    g.get(&fc1b).as_vec(),
                    g.get(&fc2w).as_vec(),
                    g.get(&fc2b).as_vec(),
                ]
            };
            (y, Box::new(getter))
        }
    };
    let shape = *y.shape();
    let r: T4<D> = t4(&mut init_rng(12), shape);
    let out = y.as_vec();
    let grads = (y * r).sum().backward();
    let mut result = vec![out, grads.get(&x).as_vec()];
    result.extend(params(&grads));
    result
}

#[test]
fn every_building_block_matches_the_cpu() {
    let cuda = dypose::model::device::cuda().expect("this test needs an NVIDIA GPU");
    let blocks = [
        Block::Conv { stride: 1, groups: 1 },
        Block::Conv { stride: 2, groups: 1 },
        Block::Conv { stride: 1, groups: 2 },
        Block::Depthwise { stride: 1 },
        Block::Depthwise { stride: 2 },
        Block::Transposed,
        Block::MaxPool,
        Block::Upsample,
        Block::BatchNorm,
        Block::Dynamic { stride: 1, groups: 1, transposed: false },
        Block::Dynamic { stride: 2, groups: 1, transposed: false },
        Block::Dynamic { stride: 1, groups: 2, transposed: false },
        Block::Dynamic { stride: 2, groups: C, transposed: false },
        Block::Dynamic { stride: 2, groups: 1, transposed: true },
    ];
    for block in blocks {
        let (gpu, cpu) = (run_block(&cuda, block), run_block(&Cpu::default(), block));
        for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
            let what = if i == 0 { "output".to_string() } else { format!("gradient {i}") };
            assert!(rel(g, c) <= 1e-4, "{block:?} {what}: CUDA and CPU differ by {}", rel(g, c));
        }
    }
}

fn pose(arch: Arch, light: bool) -> Blueprint {
    let b = backbone(arch, 1.0, false).unwrap();
    let head = if light {
        light_head(b.out_channels, 128, 3, 17, true)
    } else {
        deconv_head(b.out_channels, 256, 3, 17, true)
    };
    Blueprint { backbone: b, head: Some(head), classifier: None, kernels: 4 }
}

/// A training step's output, loss and every trainable parameter's gradient.
struct Step {
    out: Vec<f32>,
    loss: f32,
    grads: Vec<(String, Vec<f32>)>,
}

/// One training step (τ = 30, BN with batch statistics) with the weights of seed 5, on a batch
/// drawn from seed 8; `nudge` = (n, f) scales every n-th input by f. (`generic_ops` only
/// matters on the CPU.)
fn training_step<D: dypose::model::backend::ConvBackend>(
    dev: &D,
    bp: &Blueprint,
    nudge: (usize, f32),
    generic_ops: bool,
) -> Step {
    let mut net = Network::new(dev, bp, 5);
    let rng = &mut init_rng(8);
    let (h, w) = (128, 96);
    let mut x = random_values(rng, 2 * 3 * h * w);
    x.iter_mut().step_by(nudge.0).for_each(|v| *v *= nudge.1);
    let x: T4<D> = dev.tensor_from_vec(x, (2, 3, h, w));
    let y = net.forward(x.leaky_trace(), Ctx { generic_ops, ..Ctx::train(30.0) });
    let shape = *y.shape();
    let target: T4<D> = dev.tensor_from_vec(random_values(rng, shape.0 * shape.1 * shape.2 * shape.3), shape);
    let out = y.as_vec();
    let loss = (y - target).square().mean();
    let value = loss.as_vec()[0];
    let grads = loss.backward();
    let grads =
        net.params().iter().filter(|p| p.trainable).map(|p| (p.name.clone(), grads.get(&p.value).as_vec())).collect();
    Step { out, loss: value, grads }
}

/// Per parameter: the largest difference over the largest reference gradient of that parameter,
/// floored at 1e-3 of the network's largest gradient (a bias that feeds straight into another
/// batch norm has an exact gradient of zero, which leaves only rounding noise to compare).
fn gradient_errors(a: &Step, reference: &Step) -> Vec<f32> {
    let top = reference.grads.iter().flat_map(|(_, g)| g).fold(0f32, |m, v| m.max(v.abs()));
    a.grads
        .iter()
        .zip(&reference.grads)
        .map(|((_, g), (_, r))| {
            let scale = r.iter().fold(1e-3 * top, |m, v| m.max(v.abs()));
            g.iter().zip(r).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
        })
        .collect()
}

/// The CPU step (device-generic ops) and, per quantity (output, loss, each gradient), how far
/// fp32 rounding alone moves it: the largest of the moves that one-ulp nudges of the input
/// cause and of the difference to the fast CPU path (a second correct implementation, with
/// batch statistics in f64).
struct Spread {
    cpu: Step,
    out: f32,
    loss: f32,
    grads: Vec<f32>,
}

/// A training step is only piecewise smooth: ReLU, ReLU6 and max-pool switch where a value
/// crosses a kink, and batch norm over a channel of nearly constant values divides rounding
/// noise by √ε. Among the million activations of a 128×96 batch some sit within fp32 rounding
/// of such a point, and scaling 1% of the inputs by one ulp then moves the CPU's own gradients
/// by percents (DY-ResNet-18, batch seed 6: 4.5%; DY-MobileNetV2: 2-35% for every seed tried).
/// No two correct fp32 implementations agree to 1e-4 on such a gradient: the fast CPU path and
/// the generic one differ on DY-MobileNetV2's output by 2e-4 and on some gradients by over 3×
/// what the nudges move them. The reference is the CPU running the device-generic ops, the op
/// graph CUDA runs; six nudges (every n-th input scaled by 1 ± 1 or 2 ulp) and the fast path
/// measure the spread.
fn spread(bp: &Blueprint) -> Spread {
    let cpu_step = |nudge| training_step(&Cpu::default(), bp, nudge, true);
    let cpu = cpu_step((1, 1.0));
    let ulp = 1.2e-7;
    let mut others: Vec<Step> = [
        (97, 1.0 + ulp),
        (89, 1.0 - ulp),
        (101, 1.0 + 2.0 * ulp),
        (83, 1.0 - 2.0 * ulp),
        (79, 1.0 + ulp),
        (73, 1.0 - ulp),
    ]
    .into_iter()
    .map(cpu_step)
    .collect();
    others.push(training_step(&Cpu::default(), bp, (1, 1.0), false));
    let max = |f: &dyn Fn(&Step) -> f32| others.iter().map(f).fold(0.0, f32::max);
    let out = max(&|n| rel(&n.out, &cpu.out));
    let loss = max(&|n| (n.loss - cpu.loss).abs() / cpu.loss.abs());
    let moves: Vec<Vec<f32>> = others.iter().map(|n| gradient_errors(n, &cpu)).collect();
    let grads = (0..cpu.grads.len()).map(|i| moves.iter().map(|m| m[i]).fold(0.0, f32::max)).collect();
    Spread { cpu, out, loss, grads }
}

/// What the output or the loss must match to: 1e-4 where the CPU's value is stable (spread
/// below 5e-5), else three times the spread (DY-MobileNetV2's output: spread 2e-4).
fn allowed(spread: f32) -> f32 {
    if spread < 5e-5 {
        1e-4
    } else {
        3.0 * spread
    }
}

/// Relative L2 distance of all gradients together.
fn global_l2(a: &Step, reference: &Step) -> f32 {
    let (mut d, mut n) = (0f64, 0f64);
    for ((_, g), (_, r)) in a.grads.iter().zip(&reference.grads) {
        for (x, y) in g.iter().zip(r) {
            d += (*x as f64 - *y as f64).powi(2);
            n += (*y as f64).powi(2);
        }
    }
    (d / n).sqrt() as f32
}

/// Compares CUDA's step with the CPU's: prints a summary and returns the failures.
///
/// Gradients cannot be held to 1e-4 one by one (see `spread`; CUDA's own gather backward sums
/// with atomics, so two CUDA runs differ too: against the same CPU reference one run stayed
/// within 0.8× the spread on DY-ResNet-18, the next two reached 9× and 120×, where a kink
/// flipped). What a wrong backward would break, and rounding does not: all gradients together
/// agree to 5e-2 (relative L2; the fast and the generic CPU paths differ by 2.3e-2 on
/// DY-MobileNetV2 and by 9e-6 on DY-ResNet-18), and no parameter's gradient is off by more
/// than half its scale (the two CPU paths differ by 0.19 on DY-MobileNetV2's
/// `features.17.expand.weight`; a wrong backward is off by about 1). Both are asserted; each
/// parameter's distance against its spread is printed.
fn compare(arch: &str, s: &Spread, other: &Step) -> Vec<String> {
    let cpu = &s.cpu;
    let errors = gradient_errors(other, cpu);
    let mut failures = vec![];
    let (mut stable, mut worst_stable, mut worst_ratio, mut worst) = (0, 0f32, 0f32, (0f32, ""));
    for (i, e) in errors.iter().enumerate() {
        let (spread, name) = (s.grads[i], cpu.grads[i].0.as_str());
        println!("  {e:.2e} (spread {spread:.2e}) {name}");
        if *e > 0.5 {
            failures.push(format!("{arch} {name}: gradients differ by {e:.2e}; rounding spread {spread:.2e}"));
        }
        if *e > worst.0 {
            worst = (*e, name);
        }
        if spread < 5e-5 {
            stable += 1;
            worst_stable = worst_stable.max(*e);
        } else {
            worst_ratio = worst_ratio.max(e / spread);
        }
    }
    let l2 = global_l2(other, cpu);
    if l2 > 5e-2 {
        failures.push(format!("{arch}: all gradients together differ by {l2:.2e} (relative L2)"));
    }
    let (e_out, e_loss) = (rel(&other.out, &cpu.out), (other.loss - cpu.loss).abs() / cpu.loss.abs());
    if e_out > allowed(s.out) {
        failures.push(format!("{arch} output differs by {e_out:.2e}; rounding spread {:.2e}", s.out));
    }
    if e_loss > allowed(s.loss) {
        failures.push(format!("{arch} loss differs by {e_loss:.2e}; rounding spread {:.2e}", s.loss));
    }
    println!(
        "{arch}: output {e_out:.1e} (spread {:.1e}), loss {e_loss:.1e} (spread {:.1e}); gradients: relative L2 {l2:.1e}, \
         worst {:.1e} ({}); {stable} of {} stable on the CPU, the worst of them {worst_stable:.1e}; the rest at most \
         {worst_ratio:.1}× their spread",
        s.out,
        s.loss,
        worst.0,
        worst.1,
        errors.len()
    );
    failures
}

fn paper_models() -> [(&'static str, Blueprint); 2] {
    [("dy-resnet18", pose(Arch::DyResnet18, false)), ("dy-mobilenetv2", pose(Arch::DyMobilenetv2, true))]
}

/// The CUDA paths to compare: dfdx's generic ops, and with `--features cudnn` the fast path
/// (cuDNN convolutions, NVRTC batch norm) as training runs it.
fn cuda_paths() -> Vec<(&'static str, bool)> {
    let mut paths = vec![("generic ops", true)];
    if cfg!(feature = "cudnn") {
        paths.push(("cuDNN fast path", false));
    }
    paths
}

#[test]
fn a_training_step_of_both_paper_models_matches_the_cpu() {
    let cuda = dypose::model::device::cuda().expect("this test needs an NVIDIA GPU");
    let mut failures = vec![];
    for (arch, bp) in paper_models() {
        let s = spread(&bp);
        for (path, generic_ops) in cuda_paths() {
            println!("{arch}, CUDA {path}:");
            let label = format!("{arch} ({path})");
            failures.extend(compare(&label, &s, &training_step(&cuda, &bp, (1, 1.0), generic_ops)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every kind of fast CUDA op passes the check that guards it at first use (output and every
/// gradient against dfdx's generic op on the GPU), so none falls back to the generic path.
#[cfg(feature = "cudnn")]
#[test]
fn every_fast_cuda_op_passes_its_first_use_check() {
    use dypose::model::fast_check::{ConvFamily, FastOp, Registry};
    let cuda = dypose::model::device::cuda().expect("this test needs an NVIDIA GPU");
    let registry = Registry::new(Vec::new());
    let mut ops = vec![FastOp::BatchNormTrain, FastOp::MaxPool, FastOp::AddRelu, FastOp::GlobalAvgPool];
    for stride in [1, 2] {
        for dynamic in [false, true] {
            for spec in [
                ConvSpec::new(4, 6, 3, stride),
                ConvSpec::new(4, 6, 1, stride),
                ConvSpec { groups: 2, ..ConvSpec::new(4, 6, 3, stride) },
                ConvSpec::depthwise(6, 3, stride),
                ConvSpec::depthwise(6, 5, stride),
                ConvSpec::new(3, 6, 7, 2).on_image(),
                ConvSpec { transposed: true, padding: 1, ..ConvSpec::new(6, 4, 4, 2) },
            ] {
                ops.push(FastOp::Conv(ConvFamily::of(&spec.dynamic(dynamic))));
            }
        }
    }
    let failed: Vec<String> = ops.iter().filter(|op| !registry.allows(&cuda, **op)).map(|op| op.name()).collect();
    assert!(failed.is_empty(), "fast CUDA ops that disagree with the generic ones: {failed:?}");
}

/// Inference of both paper models with the fast CUDA path at the attention temperatures of
/// training's start (30) and end (1): the CPU's output to 1e-4.
#[cfg(feature = "cudnn")]
#[test]
fn inference_at_both_temperatures_matches_the_cpu() {
    let cuda = dypose::model::device::cuda().expect("this test needs an NVIDIA GPU");
    for (arch, bp) in paper_models() {
        for temperature in [30.0, 1.0] {
            let run = |generic_cpu: bool| -> Vec<f32> {
                let ctx = Ctx { temperature, generic_ops: generic_cpu, ..Ctx::INFERENCE };
                let x = random_values(&mut init_rng(8), 2 * 3 * 128 * 96);
                if generic_cpu {
                    let mut net = Network::new(&Cpu::default(), &bp, 5);
                    net.forward(Cpu::default().tensor_from_vec(x, (2, 3, 128, 96)), ctx).as_vec()
                } else {
                    let mut net = Network::new(&cuda, &bp, 5);
                    net.forward(cuda.tensor_from_vec(x, (2, 3, 128, 96)), ctx).as_vec()
                }
            };
            let e = rel(&run(false), &run(true));
            println!("{arch} at τ = {temperature}: output {e:.1e}");
            assert!(e < 1e-4, "{arch} at τ = {temperature}: the fast CUDA output differs by {e:.1e}");
        }
    }
}
