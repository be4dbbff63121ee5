//! Layers with runtime shapes and named parameters, built from blueprint specs.
//!
//! Every parameter and buffer is stored flat (a 1-D tensor) with its logical shape and a
//! PyTorch-style dotted name; layers put it on the tape (`retaped`) and then reshape it, so
//! gradients land on the flat tensor. One registry serves the optimiser and checkpoints.

use super::backend::ConvBackend;
use super::blueprint::{Activation, ConvSpec};
use super::conv::{conv2d, conv_transpose2d, depthwise_conv2d, grouped_conv2d, hardsigmoid, hardswish, T4};
use super::dynamic::{attention, attention_head, dynamic_conv2d, AttentionWeights};
use super::fast_check::{fast, ConvFamily, FastOp};
use super::norm::{batch_norm_eval, batch_norm_train, inference_affine, update_running};
use dfdx::prelude::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};
use std::sync::Mutex;

pub type Flat<D> = Tensor<(usize,), f32, D>;

/// A named tensor: trainable parameter or buffer (BN running statistics).
#[derive(Debug, Clone)]
pub struct Param<D: Device<f32> + 'static> {
    pub name: String,
    pub shape: Vec<usize>,
    pub value: Flat<D>,
    pub trainable: bool,
}

impl<D: Device<f32> + 'static> Param<D> {
    pub fn new(dev: &D, name: String, shape: Vec<usize>, data: Vec<f32>, trainable: bool) -> Self {
        let n = data.len();
        assert_eq!(n, shape.iter().product::<usize>(), "{name}: data does not fill {shape:?}");
        Param { name, shape, value: dev.tensor_from_vec(data, (n,)), trainable }
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    fn taped<Tp: Tape<f32, D> + Default>(&self) -> Tensor<(usize,), f32, D, Tp> {
        self.value.retaped::<Tp>()
    }
    pub fn t1<Tp: Tape<f32, D> + Default>(&self) -> Tensor<(usize,), f32, D, Tp> {
        self.taped()
    }
    pub fn t2<Tp: Tape<f32, D> + Default>(&self, rows: usize) -> Tensor<(usize, usize), f32, D, Tp> {
        self.taped().reshape_like(&(rows, self.numel() / rows))
    }
    pub fn t4<Tp: Tape<f32, D> + Default>(&self) -> T4<D, Tp> {
        let s = &self.shape;
        self.taped().reshape_like(&(s[0], s[1], s[2], s[3]))
    }
}

/// Forward-pass settings: training mode (batch statistics, running-average updates), the
/// dynamic-conv softmax temperature, and whether to force the device-generic ops (to compare
/// them with the fast CPU path).
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub train: bool,
    pub temperature: f32,
    pub generic_ops: bool,
}

impl Ctx {
    pub const INFERENCE: Ctx = Ctx { train: false, temperature: 1.0, generic_ops: false };

    pub fn train(temperature: f32) -> Ctx {
        Ctx { train: true, temperature, generic_ops: false }
    }
}

/// Kaiming-normal (fan-out, ReLU gain) values, as torchvision initialises its convolutions.
fn kaiming(rng: &mut ChaCha8Rng, n: usize, fan_out: usize) -> Vec<f32> {
    let d = Normal::new(0.0, (2.0 / fan_out as f64).sqrt()).expect("positive std");
    (0..n).map(|_| d.sample(rng) as f32).collect()
}

fn normal(rng: &mut ChaCha8Rng, n: usize, std: f64) -> Vec<f32> {
    let d = Normal::new(0.0, std).expect("positive std");
    (0..n).map(|_| d.sample(rng) as f32).collect()
}

/// PyTorch's default Linear init: U(−1/√fan_in, 1/√fan_in) for weight and bias.
fn linear_init(rng: &mut ChaCha8Rng, n: usize, fan_in: usize) -> Vec<f32> {
    let b = 1.0 / (fan_in as f64).sqrt();
    let d = Uniform::new(-b, b).expect("valid range");
    (0..n).map(|_| d.sample(rng) as f32).collect()
}

/// How a conv's weights start: Kaiming (backbones) or N(0, σ) (SimpleBaseline's head).
#[derive(Debug, Clone, Copy)]
pub enum Init {
    Kaiming,
    Normal(f64),
}

/// A convolution, static or dynamic, regular or transposed.
#[derive(Debug)]
pub struct Conv<D: Device<f32> + 'static> {
    pub spec: ConvSpec,
    /// Static: OIHW (transposed: IOHW). Dynamic: the same with a leading K.
    pub weight: Param<D>,
    pub bias: Option<Param<D>>,
    /// fc1.weight, fc1.bias, fc2.weight, fc2.bias of a dynamic conv.
    pub attention: Option<[Param<D>; 4]>,
    /// The attention of the last forward pass, (B × K) row-major, for analysis and drawing.
    pub last_attention: Mutex<Option<Vec<f32>>>,
}

impl<D: ConvBackend> Conv<D> {
    pub fn new(dev: &D, name: &str, spec: ConvSpec, kernels: usize, init: Init, rng: &mut ChaCha8Rng) -> Self {
        let (o, i) = (spec.cout, spec.cin / spec.groups);
        let k = spec.kernel;
        let mut shape = if spec.transposed { vec![spec.cin, spec.cout, k, k] } else { vec![o, i, k, k] };
        let per_kernel: usize = shape.iter().product();
        let copies = if spec.dynamic { kernels } else { 1 };
        let data: Vec<f32> = (0..copies)
            .flat_map(|_| match init {
                Init::Kaiming => kaiming(rng, per_kernel, o * k * k),
                Init::Normal(std) => normal(rng, per_kernel, std),
            })
            .collect();
        if spec.dynamic {
            shape.insert(0, kernels);
        }
        let weight = Param::new(dev, format!("{name}.weight"), shape, data, true);
        let bias = spec.bias.then(|| Param::new(dev, format!("{name}.bias"), vec![o], vec![0.0; o], true));
        let attention = spec.dynamic.then(|| {
            let hidden = super::cost::attention_hidden(spec.cin);
            [
                Param::new(
                    dev,
                    format!("{name}.attention.fc1.weight"),
                    vec![hidden, spec.cin],
                    linear_init(rng, hidden * spec.cin, spec.cin),
                    true,
                ),
                Param::new(
                    dev,
                    format!("{name}.attention.fc1.bias"),
                    vec![hidden],
                    linear_init(rng, hidden, spec.cin),
                    true,
                ),
                Param::new(
                    dev,
                    format!("{name}.attention.fc2.weight"),
                    vec![kernels, hidden],
                    linear_init(rng, kernels * hidden, hidden),
                    true,
                ),
                Param::new(
                    dev,
                    format!("{name}.attention.fc2.bias"),
                    vec![kernels],
                    linear_init(rng, kernels, hidden),
                    true,
                ),
            ]
        });
        Conv { spec, weight, bias, attention, last_attention: Mutex::new(None) }
    }

    pub fn params(&self) -> Vec<&Param<D>> {
        let mut v = vec![&self.weight];
        v.extend(self.bias.iter());
        v.extend(self.attention.iter().flatten());
        v
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param<D>> {
        let mut v = vec![&mut self.weight];
        v.extend(self.bias.iter_mut());
        v.extend(self.attention.iter_mut().flatten());
        v
    }

    pub fn forward<Tp>(&self, x: T4<D, Tp>, ctx: Ctx) -> T4<D, Tp>
    where
        Tp: Tape<f32, D> + Merge<Tp> + Default,
    {
        let s = &self.spec;
        let fast_pool = !ctx.generic_ops && fast(x.device(), FastOp::GlobalAvgPool);
        let fast_conv = !ctx.generic_ops && fast(x.device(), FastOp::Conv(ConvFamily::of(s)));
        let y = match &self.attention {
            Some([w1, b1, w2, b2]) => {
                let hidden = w1.shape[0];
                let k = w2.shape[0];
                let a = AttentionWeights {
                    fc1_weight: w1.t2(hidden),
                    fc1_bias: b1.t1(),
                    fc2_weight: w2.t2(k),
                    fc2_bias: b2.t1(),
                };
                let pi = if fast_pool {
                    attention_head(D::fast_global_avg_pool(x.with_empty_tape()), a, ctx.temperature)
                } else {
                    attention(x.with_empty_tape(), a, ctx.temperature)
                };
                *self.last_attention.lock().unwrap_or_else(|p| p.into_inner()) = Some(pi.as_vec());
                if fast_conv {
                    D::fast_dynamic_conv(x, pi, self.weight.t1(), s)
                } else {
                    dynamic_conv2d(x, pi, self.weight.t2(k), s)
                }
            }
            None if fast_conv => D::fast_conv(x, self.weight.t1(), s),
            None if s.transposed => conv_transpose2d(x, self.weight.t4::<Tp>(), s.stride, s.padding),
            None if s.groups == 1 => conv2d(x, self.weight.t4::<Tp>(), s.stride, s.padding),
            None if s.groups == s.cin && s.cin == s.cout => {
                depthwise_conv2d(x, self.weight.t4::<Tp>(), s.stride, s.padding)
            }
            None => grouped_conv2d(x, self.weight.t4::<Tp>(), s.stride, s.padding, s.groups),
        };
        match &self.bias {
            Some(b) => {
                let shape = *y.shape();
                y + b.t1::<Tp>().broadcast_like::<_, Axes3<0, 2, 3>>(&shape)
            }
            None => y,
        }
    }
}

/// Batch norm with running statistics (PyTorch's defaults: momentum 0.1, ε 1e-5; torchvision's
/// MobileNetV3 takes 0.01 and 1e-3).
#[derive(Debug)]
pub struct BatchNorm<D: Device<f32> + 'static> {
    pub weight: Param<D>,
    pub bias: Param<D>,
    pub running_mean: Param<D>,
    pub running_var: Param<D>,
    pub eps: f32,
    pub momentum: f32,
}

pub const BN_EPS: f32 = 1e-5;
pub const BN_MOMENTUM: f32 = 0.1;

impl<D: Device<f32> + 'static> BatchNorm<D> {
    pub fn new(dev: &D, name: &str, c: usize) -> Self {
        let p = |n: &str, v: f32, t: bool| Param::new(dev, format!("{name}.{n}"), vec![c], vec![v; c], t);
        BatchNorm {
            weight: p("weight", 1.0, true),
            bias: p("bias", 0.0, true),
            running_mean: p("running_mean", 0.0, false),
            running_var: p("running_var", 1.0, false),
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
        }
    }

    pub fn params(&self) -> Vec<&Param<D>> {
        vec![&self.weight, &self.bias, &self.running_mean, &self.running_var]
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param<D>> {
        vec![&mut self.weight, &mut self.bias, &mut self.running_mean, &mut self.running_var]
    }

    /// Training: batch statistics, and the running averages move towards them.
    /// Inference: the running statistics as a per-channel affine map.
    pub fn forward<Tp>(&mut self, x: T4<D, Tp>, ctx: Ctx) -> T4<D, Tp>
    where
        Tp: Tape<f32, D> + Merge<Tp> + Default,
    {
        let dev = x.device().clone();
        if ctx.train {
            let (b, _, h, w) = *x.shape();
            let (y, mean, var) = batch_norm_train(x, self.weight.t1(), self.bias.t1(), self.eps);
            self.update_running_stats(&mean, &var, b * h * w);
            y
        } else {
            let (scale, shift) = self.inference_affine();
            let c = scale.len();
            batch_norm_eval(x, &dev.tensor_from_vec(scale, (c,)), &dev.tensor_from_vec(shift, (c,)))
        }
    }

    /// Moves the running averages towards a batch's statistics (PyTorch's rule).
    pub fn update_running_stats(&mut self, mean: &[f32], var: &[f32], n: usize) {
        let dev = self.running_mean.value.device().clone();
        let (mut rm, mut rv) = (self.running_mean.value.as_vec(), self.running_var.value.as_vec());
        update_running(&mut rm, &mut rv, mean, var, n, self.momentum);
        let c = rm.len();
        self.running_mean.value = dev.tensor_from_vec(rm, (c,));
        self.running_var.value = dev.tensor_from_vec(rv, (c,));
    }

    pub fn inference_affine(&self) -> (Vec<f32>, Vec<f32>) {
        inference_affine(
            &self.weight.value.as_vec(),
            &self.bias.value.as_vec(),
            &self.running_mean.value.as_vec(),
            &self.running_var.value.as_vec(),
            self.eps,
        )
    }
}

/// A fully connected layer: (B, in) → (B, out).
#[derive(Debug)]
pub struct Linear<D: Device<f32> + 'static> {
    pub weight: Param<D>,
    pub bias: Param<D>,
}

impl<D: Device<f32> + 'static> Linear<D> {
    /// Weights N(0, 0.01), bias 0: torchvision's classifier init.
    pub fn new(dev: &D, name: &str, inp: usize, out: usize, rng: &mut ChaCha8Rng) -> Self {
        Linear {
            weight: Param::new(dev, format!("{name}.weight"), vec![out, inp], normal(rng, out * inp, 0.01), true),
            bias: Param::new(dev, format!("{name}.bias"), vec![out], vec![0.0; out], true),
        }
    }

    /// Kaiming-normal weights (fan-out), bias 0: torchvision's init of the 1×1 convs that
    /// squeeze-excitation blocks are made of.
    pub fn kaiming(dev: &D, name: &str, inp: usize, out: usize, rng: &mut ChaCha8Rng) -> Self {
        Linear {
            weight: Param::new(dev, format!("{name}.weight"), vec![out, inp], kaiming(rng, out * inp, out), true),
            bias: Param::new(dev, format!("{name}.bias"), vec![out], vec![0.0; out], true),
        }
    }

    pub fn params(&self) -> Vec<&Param<D>> {
        vec![&self.weight, &self.bias]
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param<D>> {
        vec![&mut self.weight, &mut self.bias]
    }

    pub fn forward<Tp>(&self, x: Tensor<(usize, usize), f32, D, Tp>) -> Tensor<(usize, usize), f32, D, Tp>
    where
        Tp: Tape<f32, D> + Merge<Tp> + Default,
    {
        let (b, out) = (x.shape().0, self.bias.shape[0]);
        x.matmul(self.weight.t2::<Tp>(out).permute::<_, Axes2<1, 0>>())
            + self.bias.t1::<Tp>().broadcast_like::<_, Axis<0>>(&(b, out))
    }
}

/// The activation after a conv + BN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    None,
    Relu,
    Relu6,
    Hardswish,
}

impl From<Activation> for Act {
    fn from(a: Activation) -> Act {
        match a {
            Activation::Relu => Act::Relu,
            Activation::Relu6 => Act::Relu6,
            Activation::Hardswish => Act::Hardswish,
        }
    }
}

impl Act {
    /// The upper clip the fast kernels fuse: ∞ for ReLU, 6 for ReLU6; None for none and for
    /// hard-swish, which [`Act::after_fused`] applies on its own.
    pub fn cap(self) -> Option<f32> {
        match self {
            Act::None | Act::Hardswish => None,
            Act::Relu => Some(f32::INFINITY),
            Act::Relu6 => Some(6.0),
        }
    }

    pub fn apply<D: Device<f32> + 'static, Tp: Tape<f32, D> + Merge<Tp>>(self, x: T4<D, Tp>) -> T4<D, Tp> {
        match self {
            Act::None => x,
            Act::Relu => x.relu(),
            Act::Relu6 => x.clamp(0.0, 6.0),
            Act::Hardswish => hardswish(x),
        }
    }

    /// What is left to apply after a fast kernel fused [`Act::cap`].
    fn after_fused<D: ConvBackend, Tp: Tape<f32, D> + Merge<Tp>>(self, x: T4<D, Tp>) -> T4<D, Tp> {
        match self {
            Act::Hardswish if fast(x.device(), FastOp::Hardswish) => D::fast_hardswish(x),
            Act::Hardswish => hardswish(x),
            _ => x,
        }
    }
}

/// Squeeze-excitation (MobileNetV3): each channel scaled by
/// hardsigmoid(fc2(ReLU(fc1(mean over the image)))).
#[derive(Debug)]
pub struct SqueezeExcite<D: Device<f32> + 'static> {
    pub fc1: Linear<D>,
    pub fc2: Linear<D>,
}

impl<D: ConvBackend> SqueezeExcite<D> {
    pub fn new(dev: &D, name: &str, channels: usize, squeeze: usize, rng: &mut ChaCha8Rng) -> Self {
        SqueezeExcite {
            fc1: Linear::kaiming(dev, &format!("{name}.fc1"), channels, squeeze, rng),
            fc2: Linear::kaiming(dev, &format!("{name}.fc2"), squeeze, channels, rng),
        }
    }

    pub fn params(&self) -> Vec<&Param<D>> {
        [self.fc1.params(), self.fc2.params()].concat()
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param<D>> {
        let mut v = self.fc1.params_mut();
        v.extend(self.fc2.params_mut());
        v
    }

    pub fn forward<Tp>(&self, x: T4<D, Tp>, ctx: Ctx) -> T4<D, Tp>
    where
        Tp: Tape<f32, D> + Merge<Tp> + Default,
    {
        let shape = *x.shape();
        let pooled: Tensor<(usize, usize), f32, D, Tp> = if !ctx.generic_ops && fast(x.device(), FastOp::GlobalAvgPool)
        {
            D::fast_global_avg_pool(x.with_empty_tape())
        } else {
            x.with_empty_tape().mean::<_, Axes2<2, 3>>()
        };
        let scale = hardsigmoid(self.fc2.forward(self.fc1.forward(pooled).relu()));
        x * scale.broadcast_like::<_, Axes2<2, 3>>(&shape)
    }
}

/// BN-folded (weights, bias) of a ConvBn.
pub(super) type Folded = std::sync::Arc<(Vec<f32>, Vec<f32>)>;

/// Conv → BN → activation, the unit every backbone and head is made of.
#[derive(Debug)]
pub struct ConvBn<D: Device<f32> + 'static> {
    pub conv: Conv<D>,
    pub bn: BatchNorm<D>,
    pub act: Act,
    /// BN-folded weights and bias for inference. Parameters change only through `params_mut`
    /// (optimiser, checkpoint loading) or a training-mode forward (running statistics); both
    /// clear it.
    folded: Mutex<Option<Folded>>,
}

impl<D: ConvBackend> ConvBn<D> {
    /// Parameters named `{conv}.*` and `{bn}.*` for `names` = [conv, bn]; BN with
    /// `bn` = (ε, momentum).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dev: &D,
        names: [&str; 2],
        spec: ConvSpec,
        kernels: usize,
        act: Act,
        init: Init,
        bn: (f32, f32),
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let mut norm = BatchNorm::new(dev, names[1], spec.cout);
        (norm.eps, norm.momentum) = bn;
        ConvBn { conv: Conv::new(dev, names[0], spec, kernels, init, rng), bn: norm, act, folded: Mutex::new(None) }
    }

    pub fn params(&self) -> Vec<&Param<D>> {
        let mut v = self.conv.params();
        v.extend(self.bn.params());
        v
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param<D>> {
        *self.folded.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        let mut v = self.conv.params_mut();
        v.extend(self.bn.params_mut());
        v
    }

    pub fn forward<Tp>(&mut self, x: T4<D, Tp>, ctx: Ctx) -> T4<D, Tp>
    where
        Tp: Tape<f32, D> + Merge<Tp> + Default + 'static,
    {
        let untaped = std::any::TypeId::of::<Tp>() == std::any::TypeId::of::<NoneTape>();
        let family = ConvFamily::of(&self.conv.spec);
        if !ctx.train && !ctx.generic_ops && untaped && fast(x.device(), FastOp::FoldedConv(family)) {
            // Inference without a tape: BN folded into the conv, activation fused.
            let (x, tape) = x.split_tape();
            return self.act.after_fused(self.forward_folded(x, ctx)).put_tape(tape);
        }
        if ctx.train {
            *self.folded.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        }
        let y = self.conv.forward(x, ctx);
        if ctx.train && !ctx.generic_ops && fast(y.device(), FastOp::BatchNormTrain) {
            // One parallel op for BN with batch statistics and the activation.
            let (b, _, h, w) = *y.shape();
            let (y, mean, var) =
                D::fast_batch_norm_train(y, self.bn.weight.t1(), self.bn.bias.t1(), self.bn.eps, self.act.cap());
            self.bn.update_running_stats(&mean, &var, b * h * w);
            return self.act.after_fused(y);
        }
        self.act.apply(self.bn.forward(y, ctx))
    }

    /// act(BN(conv(x))) as one conv: weights scaled by γ/√(var + ε) per output channel, BN's
    /// shift as the bias.
    fn forward_folded(&self, x: T4<D>, ctx: Ctx) -> T4<D> {
        let s = &self.conv.spec;
        let folded = self.folded_weights();
        let (w, bias) = (&folded.0, &folded.1);
        let cap = self.act.cap();
        let dev = x.device().clone();
        let attention = self.conv.attention.as_ref().map(|[w1, b1, w2, b2]| {
            move |means: &[f32]| {
                let a = AttentionWeights {
                    fc1_weight: w1.t2(w1.shape[0]),
                    fc1_bias: b1.t1(),
                    fc2_weight: w2.t2(w2.shape[0]),
                    fc2_bias: b2.t1(),
                };
                let c = w1.shape[1];
                let pooled = dev.tensor_from_vec(means.to_vec(), (means.len() / c, c));
                let pi = attention_head(pooled, a, ctx.temperature).as_vec();
                *self.conv.last_attention.lock().unwrap_or_else(|p| p.into_inner()) = Some(pi.clone());
                pi
            }
        });
        D::fast_conv_folded(x, attention.as_ref().map(|f| f as &super::fast_op::Attention), w, bias, cap, s)
    }

    /// The folded (weights, bias), computed once per parameter change.
    pub(super) fn folded_weights(&self) -> Folded {
        let mut cache = self.folded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = cache.as_ref() {
            return v.clone();
        }
        let (scale, shift) = self.bn.inference_affine();
        let s = &self.conv.spec;
        let mut w = self.conv.weight.value.as_vec();
        // Output channel of each weight element: OIHW (or K·OIHW) → index / (I·k·k) % O;
        // transposed IOHW → index / (k·k) % O.
        let k2 = s.kernel * s.kernel;
        let per_o = if s.transposed { k2 } else { s.cin / s.groups * k2 };
        for (i, v) in w.iter_mut().enumerate() {
            *v *= scale[i / per_o % s.cout];
        }
        let conv_bias = self.conv.bias.as_ref().map(|b| b.value.as_vec());
        let bias: Vec<f32> =
            (0..s.cout).map(|o| shift[o] + conv_bias.as_ref().map_or(0.0, |b| b[o] * scale[o])).collect();
        let v = std::sync::Arc::new((w, bias));
        *cache = Some(v.clone());
        v
    }
}

/// A random-number source seeded for model initialisation.
pub fn init_rng(seed: u64) -> ChaCha8Rng {
    crate::seed::stream(seed, crate::seed::INIT, 0)
}

/// Used by tests to draw random inputs.
pub fn random_values(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::super::conv::reference::{central_differences, rel_err, values};
    use super::*;

    #[test]
    fn hardswish_and_its_gradient_by_hand() {
        let dev: Cpu = Default::default();
        let xs = [-5.0f32, -3.5, -2.0, -0.5, 0.0, 1.0, 2.5, 3.5, 6.0];
        let x: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(xs.to_vec(), (xs.len(),));
        let y = hardswish(x.leaky_trace());
        // PyTorch: 0 below −3, x above 3, x(x + 3)/6 between; gradient 0, 1, (2x + 3)/6.
        let want: Vec<f32> = xs
            .iter()
            .map(|&v| {
                if v <= -3.0 {
                    0.0
                } else if v >= 3.0 {
                    v
                } else {
                    v * (v + 3.0) / 6.0
                }
            })
            .collect();
        assert!(y.as_vec().iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6), "{:?}", y.as_vec());
        let g = y.sum().backward().get(&x).as_vec();
        let want: Vec<f32> = xs
            .iter()
            .map(|&v| {
                if v < -3.0 {
                    0.0
                } else if v > 3.0 {
                    1.0
                } else {
                    (2.0 * v + 3.0) / 6.0
                }
            })
            .collect();
        assert!(g.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6), "{g:?}");
    }

    /// Squeeze-excitation in f64, by loops: x (b, c, h·w), fc1 (q, c), fc2 (c, q).
    fn se_reference(x: &[f64], w1: &[f64], b1: &[f64], w2: &[f64], b2: &[f64], [b, c, hw]: [usize; 3]) -> Vec<f64> {
        let q = b1.len();
        let mut y = vec![0.0; x.len()];
        for n in 0..b {
            let pooled: Vec<f64> =
                (0..c).map(|ch| x[(n * c + ch) * hw..][..hw].iter().sum::<f64>() / hw as f64).collect();
            let hidden: Vec<f64> =
                (0..q).map(|i| (b1[i] + (0..c).map(|ch| w1[i * c + ch] * pooled[ch]).sum::<f64>()).max(0.0)).collect();
            for ch in 0..c {
                let z = b2[ch] + (0..q).map(|i| w2[ch * q + i] * hidden[i]).sum::<f64>();
                let scale = (z + 3.0).clamp(0.0, 6.0) / 6.0;
                for p in 0..hw {
                    y[(n * c + ch) * hw + p] = x[(n * c + ch) * hw + p] * scale;
                }
            }
        }
        y
    }

    #[test]
    fn squeeze_excitation_and_all_its_gradients_match_the_f64_reference() {
        let dev: Cpu = Default::default();
        let (b, c, q, h, w) = (2, 6, 3, 3, 4);
        let x = values(b * c * h * w, 1);
        let (w1, b1, w2) = (values(q * c, 2), values(q, 3), values(c * q, 4));
        // A wide bias puts some channels' gates on the flat parts of the hard-sigmoid.
        let b2: Vec<f64> = values(c, 5).iter().map(|v| 5.0 * v).collect();
        let r = values(b * c * h * w, 6);
        let parts = [x.clone(), w1.clone(), b1.clone(), w2.clone(), b2.clone()];
        let loss = |p: &[Vec<f64>]| -> f64 {
            let y = se_reference(&p[0], &p[1], &p[2], &p[3], &p[4], [b, c, h * w]);
            y.iter().zip(&r).map(|(a, b)| a * b).sum()
        };
        for generic_ops in [true, false] {
            let f32s = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<_>>();
            let mut se = SqueezeExcite::new(&dev, "se", c, q, &mut init_rng(0));
            for (p, v) in se.params_mut().into_iter().zip([&w1, &b1, &w2, &b2]) {
                p.value = dev.tensor_from_vec(f32s(v), (v.len(),));
            }
            let xt: T4<Cpu> = dev.tensor_from_vec(f32s(&x), (b, c, h, w));
            let y = se.forward(xt.leaky_trace(), Ctx { train: true, temperature: 1.0, generic_ops });
            let want = se_reference(&x, &w1, &b1, &w2, &b2, [b, c, h * w]);
            assert!(rel_err(&y.as_vec(), &want) < 1e-6, "forward");
            let rt: T4<Cpu> = dev.tensor_from_vec(f32s(&r), (b, c, h, w));
            let grads = (y * rt).sum().backward();
            let got = [
                grads.get(&xt).as_vec(),
                grads.get(&se.fc1.weight.value).as_vec(),
                grads.get(&se.fc1.bias.value).as_vec(),
                grads.get(&se.fc2.weight.value).as_vec(),
                grads.get(&se.fc2.bias.value).as_vec(),
            ];
            for (i, name) in ["x", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"].iter().enumerate() {
                let numeric = central_differences(
                    |v| {
                        let mut p = parts.clone();
                        p[i] = v.to_vec();
                        loss(&p)
                    },
                    &parts[i],
                );
                let e = rel_err(&got[i], &numeric);
                assert!(e < 1e-5, "generic_ops {generic_ops}: {name} gradient off by {e}");
            }
        }
    }
}
