//! Issue 7: on an NVIDIA GPU, every building block and a full training step of DY-ResNet-18 and
//! DY-MobileNetV2 give the CPU's outputs and gradients (relative error ≤ 1e-4) for the same
//! weights and batch. Compiled only with `--features cuda`; run on a GPU machine with
//!     cargo test --release --features cuda --test cuda_matches_cpu
//! (or the test binary carried there). The CPU side is the fast CPU path for the networks and
//! the device-generic ops for the blocks, both checked against f64 references elsewhere.
#![cfg(feature = "cuda")]

use dfdx::prelude::*;
use dypose::model::blueprint::{backbone, deconv_head, light_head, Blueprint, ConvSpec};
use dypose::model::conv::{conv_transpose2d, depthwise_conv2d, grouped_conv2d, max_pool2d, upsample2x, T4};
use dypose::model::dynamic::{attention, dynamic_conv2d, AttentionWeights};
use dypose::model::layers::{init_rng, random_values, Ctx};
use dypose::model::norm::batch_norm_train;
use dypose::model::posenet::PoseNet;

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

fn pose(arch: &str, light: bool) -> Blueprint {
    let b = backbone(arch, 1.0, false).unwrap();
    let head = if light {
        light_head(b.out_channels, 128, 3, 17, true)
    } else {
        deconv_head(b.out_channels, 256, 3, 17, true)
    };
    Blueprint { backbone: b, head: Some(head), classifier: None, kernels: 4 }
}

/// One training step (τ = 30, BN with batch statistics): output, loss and every trainable
/// parameter's gradient, with the weights of seed 5.
fn training_step<D: dypose::model::backend::ConvBackend>(
    dev: &D,
    bp: &Blueprint,
) -> (Vec<f32>, f32, Vec<(String, Vec<f32>)>) {
    let mut net = PoseNet::new(dev, bp, 5);
    let rng = &mut init_rng(6);
    let (h, w) = (128, 96);
    let x: T4<D> = dev.tensor_from_vec(random_values(rng, 2 * 3 * h * w), (2, 3, h, w));
    let y = net.forward(x.leaky_trace(), Ctx::train(30.0));
    let shape = *y.shape();
    let target: T4<D> = dev.tensor_from_vec(random_values(rng, shape.0 * shape.1 * shape.2 * shape.3), shape);
    let out = y.as_vec();
    let loss = (y - target).square().mean();
    let value = loss.as_vec()[0];
    let grads = loss.backward();
    let g =
        net.params().iter().filter(|p| p.trainable).map(|p| (p.name.clone(), grads.get(&p.value).as_vec())).collect();
    (out, value, g)
}

#[test]
fn a_training_step_of_both_paper_models_matches_the_cpu() {
    let cuda = dypose::model::device::cuda().expect("this test needs an NVIDIA GPU");
    for (arch, light) in [("dy-resnet18", false), ("dy-mobilenetv2", true)] {
        let bp = pose(arch, light);
        let (gpu, cpu) = (training_step(&cuda, &bp), training_step(&Cpu::default(), &bp));
        assert!(rel(&gpu.0, &cpu.0) <= 1e-4, "{arch} output: {}", rel(&gpu.0, &cpu.0));
        assert!((gpu.1 - cpu.1).abs() <= 1e-4 * cpu.1.abs(), "{arch} loss: {} vs {}", gpu.1, cpu.1);
        for ((name, g), (_, c)) in gpu.2.iter().zip(&cpu.2) {
            assert!(rel(g, c) <= 1e-4, "{arch} {name}: gradients differ by {}", rel(g, c));
        }
    }
}
