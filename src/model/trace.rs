//! The network at inference as plain operations with plain weights (batch norm folded into the
//! convolutions), walked in forward order by a [`Trace`]: how an exporter sees a network
//! without knowing its layers or tensors.

use super::backend::ConvBackend;
use super::blueprint::ConvSpec;
use super::layers::{Act, Conv, Linear};
use super::network::{BlockLayers, HeadLayers, Layer, Network};
use dfdx::prelude::*;

/// A dynamic conv's attention branch: π = softmax(FC₂(ReLU(FC₁(mean over the image))) / τ).
#[derive(Debug, Clone)]
pub struct Attention {
    pub fc1: Dense,
    pub fc2: Dense,
    pub temperature: f32,
}

/// A convolution with its inference weights: batch norm folded in, the activation after it.
#[derive(Debug, Clone)]
pub struct FoldedConv {
    /// The conv's parameter name without `.weight`, for naming what is made of it.
    pub name: String,
    pub spec: ConvSpec,
    /// Kernel sets: K for a dynamic conv (the weights then hold K sets, one after the other),
    /// else 1. A set is OIHW, or IOHW for a transposed conv (PyTorch's layouts).
    pub kernels: usize,
    pub weight: Vec<f32>,
    /// One value per output channel (zeros where the conv has none).
    pub bias: Vec<f32>,
    pub act: Act,
    pub attention: Option<Attention>,
}

/// A fully connected layer, weights `outputs × inputs`.
#[derive(Debug, Clone)]
pub struct Dense {
    pub name: String,
    pub inputs: usize,
    pub outputs: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// What a network is made of at inference, as a visitor sees it: each call takes the values it
/// works on and returns the value it makes.
pub trait Trace {
    type Value: Clone;
    /// act(conv(x)), dynamic or not; (B, C, H, W) → (B, O, H', W').
    fn conv(&mut self, x: Self::Value, conv: &FoldedConv) -> Self::Value;
    fn max_pool(&mut self, x: Self::Value, kernel: usize, stride: usize, padding: usize) -> Self::Value;
    fn add(&mut self, a: Self::Value, b: Self::Value) -> Self::Value;
    fn relu(&mut self, x: Self::Value) -> Self::Value;
    /// Each channel scaled by hardsigmoid(fc2(ReLU(fc1(mean over the image)))).
    fn squeeze_excite(&mut self, x: Self::Value, fc1: &Dense, fc2: &Dense) -> Self::Value;
    /// Bilinear ×2, PyTorch's `align_corners=False`.
    fn upsample2x(&mut self, x: Self::Value) -> Self::Value;
    /// (B, C, H, W) → (B, C), the mean over the image.
    fn global_pool(&mut self, x: Self::Value) -> Self::Value;
    fn linear(&mut self, x: Self::Value, dense: &Dense) -> Self::Value;
    fn hardswish(&mut self, x: Self::Value) -> Self::Value;
}

fn values<D: Device<f32>>(t: &Tensor<(usize,), f32, D>) -> Vec<f32> {
    t.as_vec()
}

fn dense<D: ConvBackend>(l: &Linear<D>) -> Dense {
    let name = l.weight.name.trim_end_matches(".weight").to_string();
    Dense {
        name,
        inputs: l.weight.shape[1],
        outputs: l.weight.shape[0],
        weight: values(&l.weight.value),
        bias: values(&l.bias.value),
    }
}

fn attention<D: ConvBackend>(conv: &Conv<D>) -> Option<Attention> {
    let [w1, b1, w2, b2] = conv.attention.as_ref()?;
    let name = conv.weight.name.trim_end_matches(".weight");
    let dense = |w: &super::layers::Param<D>, b: &super::layers::Param<D>, which: &str| Dense {
        name: format!("{name}.attention.{which}"),
        inputs: w.shape[1],
        outputs: w.shape[0],
        weight: values(&w.value),
        bias: values(&b.value),
    };
    Some(Attention {
        fc1: dense(w1, b1, "fc1"),
        fc2: dense(w2, b2, "fc2"),
        temperature: super::layers::Ctx::INFERENCE.temperature,
    })
}

/// The inference weights of the conv layer at position `i` (conv + BN folded, or a plain conv).
fn folded<D: ConvBackend>(layers: &[Layer<D>], i: usize) -> FoldedConv {
    let (conv, weight, bias, act) = match &layers[i] {
        Layer::ConvBn(l) => {
            let f = l.folded_weights();
            (&l.conv, f.0.clone(), f.1.clone(), l.act)
        }
        Layer::Conv(c) => {
            let bias = c.bias.as_ref().map_or_else(|| vec![0.0; c.spec.cout], |b| values(&b.value));
            (c, values(&c.weight.value), bias, Act::None)
        }
        other => unreachable!("layer {i} is not a convolution: {other:?}"),
    };
    FoldedConv {
        name: conv.weight.name.trim_end_matches(".weight").to_string(),
        spec: conv.spec,
        kernels: conv.attention.as_ref().map_or(1, |a| a[2].shape[0]),
        weight,
        bias,
        act,
        attention: attention(conv),
    }
}

impl<D: ConvBackend> Network<D> {
    /// Walks the backbone (as [`Network::features`] computes it) from the input `x`.
    pub fn trace_features<T: Trace>(&self, x: T::Value, t: &mut T) -> T::Value {
        let layers = &self.layers;
        let mut x = t.conv(x, &folded(layers, self.stem));
        if self.blueprint.backbone.stem_pool {
            x = t.max_pool(x, 3, 2, 1);
        }
        for block in self.stages.iter().flatten() {
            x = match *block {
                BlockLayers::Basic { conv1, conv2, shortcut } => {
                    let y = t.conv(x.clone(), &folded(layers, conv1));
                    let main = t.conv(y, &folded(layers, conv2));
                    let identity = match shortcut {
                        Some(s) => t.conv(x, &folded(layers, s)),
                        None => x,
                    };
                    let sum = t.add(identity, main);
                    t.relu(sum)
                }
                BlockLayers::Inverted { expand, depthwise, se, project, residual } => {
                    let mut y = x.clone();
                    if let Some(e) = expand {
                        y = t.conv(y, &folded(layers, e));
                    }
                    y = t.conv(y, &folded(layers, depthwise));
                    if let Some(s) = se {
                        let Layer::Se(l) = &layers[s] else { unreachable!("layer {s} is not squeeze-excitation") };
                        y = t.squeeze_excite(y, &dense(&l.fc1), &dense(&l.fc2));
                    }
                    y = t.conv(y, &folded(layers, project));
                    if residual {
                        t.add(x, y)
                    } else {
                        y
                    }
                }
            };
        }
        match self.last {
            Some(l) => t.conv(x, &folded(layers, l)),
            None => x,
        }
    }

    /// Walks the whole network to its head's maps (as [`Network::forward`] computes them).
    pub fn trace_maps<T: Trace>(&self, x: T::Value, t: &mut T) -> T::Value {
        let mut y = self.trace_features(x, t);
        let layers = &self.layers;
        match self.head.as_ref().expect("this network has no keypoint head") {
            HeadLayers::Deconv { deconvs, final_conv } => {
                for &d in deconvs {
                    y = t.conv(y, &folded(layers, d));
                }
                t.conv(y, &folded(layers, *final_conv))
            }
            HeadLayers::Light { stages, final_conv } => {
                for &(dw, pw) in stages {
                    let up = t.upsample2x(y);
                    let z = t.conv(up, &folded(layers, dw));
                    y = t.conv(z, &folded(layers, pw));
                }
                t.conv(y, &folded(layers, *final_conv))
            }
        }
    }

    /// Walks a classifier to its class scores (as [`Network::logits`] computes them).
    pub fn trace_logits<T: Trace>(&self, x: T::Value, t: &mut T) -> T::Value {
        let features = self.trace_features(x, t);
        let mut f = t.global_pool(features);
        assert!(!self.classifier.is_empty(), "this network has no classifier");
        for (n, &i) in self.classifier.iter().enumerate() {
            let Layer::Linear(l) = &self.layers[i] else { unreachable!("layer {i} is not a classifier layer") };
            f = t.linear(f, &dense(l));
            if n + 1 < self.classifier.len() {
                f = t.hardswish(f);
            }
        }
        f
    }

    /// Whether the network ends in a classifier (else in a head of maps).
    pub fn is_classifier(&self) -> bool {
        !self.classifier.is_empty()
    }
}
