//! The network every task trains: a backbone with a task head (keypoint heatmaps, the person
//! detector's five maps, or a classifier), instantiated from a [`Blueprint`] on any dfdx device.

use super::backend::ConvBackend;
use super::blueprint::{Block, Blueprint, ConvSpec, Head};
use super::conv::{hardswish, max_pool2d, upsample2x, T4};
use super::fast_check::{fast, FastOp};
use super::layers::{init_rng, Act, Conv, ConvBn, Ctx, Init, Linear, Param, SqueezeExcite};
use dfdx::prelude::*;
use rand_chacha::ChaCha8Rng;

/// One layer of the network; [`Network`] keeps all of them in one list, in parameter order, so
/// that listing parameters, mutating them and visiting convolutions are one walk over it.
// A network holds a few dozen layers, built once: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Layer<D: Device<f32> + 'static> {
    ConvBn(ConvBn<D>),
    Conv(Conv<D>),
    Linear(Linear<D>),
    Se(SqueezeExcite<D>),
}

impl<D: ConvBackend> Layer<D> {
    fn params(&self) -> Vec<&Param<D>> {
        match self {
            Layer::ConvBn(l) => l.params(),
            Layer::Conv(l) => l.params(),
            Layer::Linear(l) => l.params(),
            Layer::Se(l) => l.params(),
        }
    }

    fn params_mut(&mut self) -> Vec<&mut Param<D>> {
        match self {
            Layer::ConvBn(l) => l.params_mut(),
            Layer::Conv(l) => l.params_mut(),
            Layer::Linear(l) => l.params_mut(),
            Layer::Se(l) => l.params_mut(),
        }
    }

    fn conv(&self) -> Option<&Conv<D>> {
        match self {
            Layer::ConvBn(l) => Some(&l.conv),
            Layer::Conv(l) => Some(l),
            Layer::Linear(_) | Layer::Se(_) => None,
        }
    }
}

/// Positions in [`Network`]'s layer list.
#[derive(Debug)]
pub(super) enum BlockLayers {
    Basic { conv1: usize, conv2: usize, shortcut: Option<usize> },
    Inverted { expand: Option<usize>, depthwise: usize, se: Option<usize>, project: usize, residual: bool },
}

#[derive(Debug)]
pub(super) enum HeadLayers {
    Deconv { deconvs: Vec<usize>, final_conv: usize },
    Light { stages: Vec<(usize, usize)>, final_conv: usize },
}

#[derive(Debug)]
pub struct Network<D: Device<f32> + 'static> {
    pub blueprint: Blueprint,
    pub(super) layers: Vec<Layer<D>>,
    pub(super) stem: usize,
    pub(super) stages: Vec<Vec<BlockLayers>>,
    pub(super) last: Option<usize>,
    pub(super) head: Option<HeadLayers>,
    /// The classifier's linear layers, hard-swish between them (none without a classifier).
    pub(super) classifier: Vec<usize>,
}

/// Appends layers with fresh weights, in the order their parameters are listed.
struct Builder<'a, D: Device<f32> + 'static> {
    dev: &'a D,
    kernels: usize,
    /// Batch norm's (ε, momentum) for the layers built next.
    bn: (f32, f32),
    rng: ChaCha8Rng,
    layers: Vec<Layer<D>>,
}

impl<D: ConvBackend> Builder<'_, D> {
    fn conv_bn(&mut self, conv: &str, bn: &str, spec: ConvSpec, act: Act, init: Init) -> usize {
        let l = ConvBn::new(self.dev, [conv, bn], spec, self.kernels, act, init, self.bn, &mut self.rng);
        self.push(Layer::ConvBn(l))
    }

    fn conv(&mut self, name: &str, spec: ConvSpec, init: Init) -> usize {
        let l = Conv::new(self.dev, name, spec, self.kernels, init, &mut self.rng);
        self.push(Layer::Conv(l))
    }

    /// Output channels of the conv at position `i`.
    fn layers_cout(&self, i: usize) -> usize {
        self.layers[i].conv().expect("a conv").spec.cout
    }

    fn push(&mut self, layer: Layer<D>) -> usize {
        self.layers.push(layer);
        self.layers.len() - 1
    }

    fn block(&mut self, block: &Block, stage: usize, i: usize, features: &mut usize) -> BlockLayers {
        match block {
            Block::Basic { conv1, conv2, shortcut } => {
                let p = format!("backbone.layer{}.{i}", stage + 1);
                BlockLayers::Basic {
                    conv1: self.conv_bn(&format!("{p}.conv1"), &format!("{p}.bn1"), *conv1, Act::Relu, Init::Kaiming),
                    conv2: self.conv_bn(&format!("{p}.conv2"), &format!("{p}.bn2"), *conv2, Act::None, Init::Kaiming),
                    shortcut: shortcut.map(|sc| {
                        self.conv_bn(
                            &format!("{p}.downsample.0"),
                            &format!("{p}.downsample.1"),
                            sc,
                            Act::None,
                            Init::Kaiming,
                        )
                    }),
                }
            }
            Block::Inverted { expand, depthwise, se, project, act, residual } => {
                let p = format!("backbone.features.{features}");
                *features += 1;
                let act = Act::from(*act);
                let unit = |b: &mut Self, name: &str, spec: ConvSpec, act: Act| {
                    b.conv_bn(&format!("{p}.{name}"), &format!("{p}.{name}_bn"), spec, act, Init::Kaiming)
                };
                let expand = expand.map(|e| unit(self, "expand", e, act));
                let depthwise = unit(self, "depthwise", *depthwise, act);
                let se = se.map(|q| {
                    let l =
                        SqueezeExcite::new(self.dev, &format!("{p}.se"), self.layers_cout(depthwise), q, &mut self.rng);
                    self.push(Layer::Se(l))
                });
                BlockLayers::Inverted {
                    expand,
                    depthwise,
                    se,
                    project: unit(self, "project", *project, Act::None),
                    residual: *residual,
                }
            }
        }
    }

    fn head(&mut self, head: &Head) -> HeadLayers {
        let final_init = Init::Normal(0.001);
        match head {
            Head::Deconv { deconvs, final_conv } => HeadLayers::Deconv {
                deconvs: deconvs
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        let (conv, bn) =
                            (format!("head.deconv_layers.{}", 3 * i), format!("head.deconv_layers.{}", 3 * i + 1));
                        self.conv_bn(&conv, &bn, *d, Act::Relu, Init::Normal(0.001))
                    })
                    .collect(),
                final_conv: self.conv("head.final_layer", *final_conv, final_init),
            },
            Head::Light { stages, final_conv } => HeadLayers::Light {
                stages: stages
                    .iter()
                    .enumerate()
                    .map(|(i, (dw, pw))| {
                        let p = format!("head.stages.{i}");
                        let d = self.conv_bn(
                            &format!("{p}.depthwise"),
                            &format!("{p}.depthwise_bn"),
                            *dw,
                            Act::Relu,
                            Init::Kaiming,
                        );
                        let q = self.conv_bn(
                            &format!("{p}.pointwise"),
                            &format!("{p}.pointwise_bn"),
                            *pw,
                            Act::Relu,
                            Init::Kaiming,
                        );
                        (d, q)
                    })
                    .collect(),
                final_conv: self.conv("head.final_layer", *final_conv, final_init),
            },
        }
    }
}

/// The conv + BN at position `i` (the structure only points at such layers).
fn conv_bn<D: ConvBackend>(layers: &mut [Layer<D>], i: usize) -> &mut ConvBn<D> {
    match &mut layers[i] {
        Layer::ConvBn(l) => l,
        other => unreachable!("layer {i} is not a conv + BN: {other:?}"),
    }
}

fn conv<D: ConvBackend>(layers: &[Layer<D>], i: usize) -> &Conv<D> {
    match &layers[i] {
        Layer::Conv(l) => l,
        other => unreachable!("layer {i} is not a plain conv: {other:?}"),
    }
}

impl<D: ConvBackend> Network<D> {
    /// Builds the network with fresh weights drawn from `seed`.
    pub fn new(dev: &D, bp: &Blueprint, seed: u64) -> Self {
        let bb = &bp.backbone;
        let mut b = Builder { dev, kernels: bp.kernels, bn: bb.bn, rng: init_rng(seed), layers: Vec::new() };
        let act = Act::from(bb.act);
        let stem = if bb.stem_pool {
            b.conv_bn("backbone.conv1", "backbone.bn1", bb.stem, act, Init::Kaiming)
        } else {
            b.conv_bn("backbone.features.0.conv", "backbone.features.0.bn", bb.stem, act, Init::Kaiming)
        };
        let mut features = 1;
        let stages = bb
            .stages
            .iter()
            .enumerate()
            .map(|(s, stage)| stage.iter().enumerate().map(|(i, block)| b.block(block, s, i, &mut features)).collect())
            .collect();
        let last = bb.last_conv.map(|c| {
            let p = format!("backbone.features.{features}");
            b.conv_bn(&format!("{p}.conv"), &format!("{p}.bn"), c, act, Init::Kaiming)
        });
        b.bn = super::blueprint::PYTORCH_BN;
        let head = bp.head.as_ref().map(|h| b.head(h));
        let mut classifier = Vec::new();
        if let Some(n) = bp.classifier {
            // torchvision's names: `classifier` alone, or `classifier.0` → hard-swish → `classifier.3`.
            let mut linear = |name: &str, i: usize, o: usize| {
                let l = Linear::new(dev, name, i, o, &mut b.rng);
                b.push(Layer::Linear(l))
            };
            match bb.classifier_hidden {
                Some(h) => {
                    classifier.push(linear("classifier.0", bb.out_channels, h));
                    classifier.push(linear("classifier.3", h, n));
                }
                None => classifier.push(linear("classifier", bb.out_channels, n)),
            }
        }
        Network { blueprint: bp.clone(), layers: b.layers, stem, stages, last, head, classifier }
    }

    /// The device the weights live on.
    pub fn device(&self) -> D {
        self.params()[0].value.device().clone()
    }

    /// Every parameter and buffer, in a fixed order.
    pub fn params(&self) -> Vec<&Param<D>> {
        self.layers.iter().flat_map(Layer::params).collect()
    }

    /// Mutable access to every parameter and buffer, in the order of [`Network::params`].
    pub fn params_mut(&mut self) -> Vec<&mut Param<D>> {
        self.layers.iter_mut().flat_map(Layer::params_mut).collect()
    }

    /// Trainable parameter count (BN running statistics excluded).
    pub fn num_trainable(&self) -> usize {
        self.params().iter().filter(|p| p.trainable).map(|p| p.numel()).sum()
    }

    /// Output maps of the keypoint head (the joints of the keypoint set it was built for).
    pub fn num_joints(&self) -> Option<usize> {
        match self.blueprint.head.as_ref()? {
            Head::Deconv { final_conv, .. } | Head::Light { final_conv, .. } => Some(final_conv.cout),
        }
    }

    /// Sets the bias of the head's output map `channel` (a detector starts its centre heatmap at
    /// a prior probability, as CenterNet does, so that the background does not swamp the first
    /// steps).
    pub fn set_output_bias(&mut self, channel: usize, value: f32) {
        let Some(HeadLayers::Deconv { final_conv, .. } | HeadLayers::Light { final_conv, .. }) = &self.head else {
            return;
        };
        let Layer::Conv(conv) = &mut self.layers[*final_conv] else { unreachable!("the final layer is a conv") };
        if let Some(bias) = conv.bias.as_mut() {
            let mut v = bias.value.as_vec();
            v[channel] = value;
            let n = v.len();
            bias.value = bias.value.device().tensor_from_vec(v, (n,));
        }
    }

    /// Backbone features (B, C, H/32, W/32).
    pub fn features<Tp>(&mut self, x: T4<D, Tp>, ctx: Ctx) -> T4<D, Tp>
    where
        Tp: Tape<f32, D> + Merge<Tp> + Default + 'static,
    {
        let Network { layers, stem, stages, last, blueprint, .. } = self;
        let mut x = conv_bn(layers, *stem).forward(x, ctx);
        let fast_op = |x: &T4<D, Tp>, op| !ctx.generic_ops && fast(x.device(), op);
        if blueprint.backbone.stem_pool {
            x = if fast_op(&x, FastOp::MaxPool) { D::fast_max_pool(x, 3, 2, 1) } else { max_pool2d(x, 3, 2, 1) };
        }
        for block in stages.iter().flatten() {
            x = match *block {
                BlockLayers::Basic { conv1, conv2, shortcut } => {
                    let y = conv_bn(layers, conv1).forward(x.with_empty_tape(), ctx);
                    let main = conv_bn(layers, conv2).forward(y, ctx);
                    let identity = match shortcut {
                        Some(s) => conv_bn(layers, s).forward(x, ctx),
                        None => x,
                    };
                    if fast_op(&main, FastOp::AddRelu) {
                        D::fast_add_relu(identity, main)
                    } else {
                        (identity + main).relu()
                    }
                }
                BlockLayers::Inverted { expand, depthwise, se, project, residual } => {
                    let mut branch = |y: T4<D, Tp>| {
                        let y = match expand {
                            Some(e) => conv_bn(layers, e).forward(y, ctx),
                            None => y,
                        };
                        let y = conv_bn(layers, depthwise).forward(y, ctx);
                        let y = match se {
                            Some(s) => match &layers[s] {
                                Layer::Se(l) => l.forward(y, ctx),
                                other => unreachable!("layer {s} is not squeeze-excitation: {other:?}"),
                            },
                            None => y,
                        };
                        conv_bn(layers, project).forward(y, ctx)
                    };
                    if residual {
                        let y = branch(x.with_empty_tape());
                        x + y
                    } else {
                        branch(x)
                    }
                }
            };
        }
        if let Some(l) = *last {
            x = conv_bn(layers, l).forward(x, ctx);
        }
        x
    }

    /// Heatmaps (B, J, H/4, W/4) for input (B, 3, H, W).
    pub fn forward<Tp>(&mut self, x: T4<D, Tp>, ctx: Ctx) -> T4<D, Tp>
    where
        Tp: Tape<f32, D> + Merge<Tp> + Default + 'static,
    {
        let mut y = self.features(x, ctx);
        let Network { layers, head, .. } = self;
        match head.as_ref().expect("this network has no keypoint head") {
            HeadLayers::Deconv { deconvs, final_conv } => {
                for &d in deconvs {
                    y = conv_bn(layers, d).forward(y, ctx);
                }
                conv(layers, *final_conv).forward(y, ctx)
            }
            HeadLayers::Light { stages, final_conv } => {
                for &(dw, pw) in stages {
                    let up = match !ctx.generic_ops && fast(y.device(), FastOp::Upsample2x) {
                        true => D::fast_upsample2x(y),
                        false => upsample2x(y),
                    };
                    let z = conv_bn(layers, dw).forward(up, ctx);
                    y = conv_bn(layers, pw).forward(z, ctx);
                }
                conv(layers, *final_conv).forward(y, ctx)
            }
        }
    }

    /// Class scores (B, N) of a classifier network.
    pub fn logits<Tp>(&mut self, x: T4<D, Tp>, ctx: Ctx) -> Tensor<(usize, usize), f32, D, Tp>
    where
        Tp: Tape<f32, D> + Merge<Tp> + Default + 'static,
    {
        let mut f: Tensor<(usize, usize), f32, D, Tp> = self.features(x, ctx).mean::<_, Axes2<2, 3>>();
        assert!(!self.classifier.is_empty(), "this network has no classifier");
        for (n, &i) in self.classifier.iter().enumerate() {
            f = match &self.layers[i] {
                Layer::Linear(l) => l.forward(f),
                other => unreachable!("layer {i} is not a classifier layer: {other:?}"),
            };
            if n + 1 < self.classifier.len() {
                f = hardswish(f);
            }
        }
        f
    }

    /// The attention vectors (B × K) of every dynamic conv from the last forward pass.
    pub fn last_attention(&self) -> Vec<(String, Vec<f32>)> {
        self.layers
            .iter()
            .filter_map(Layer::conv)
            .filter_map(|c| {
                let a = c.last_attention.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
                Some((c.weight.name.trim_end_matches(".weight").to_string(), a))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::blueprint::{backbone, deconv_head, light_head, Blueprint};
    use super::super::cost::blueprint_cost;
    use super::super::layers::random_values;
    use super::*;
    use crate::config::Arch;

    fn pose(arch: Arch, width: f64, light: bool) -> Blueprint {
        let b = backbone(arch, width, false).unwrap();
        let dynamic = arch.is_dynamic();
        let head = if light {
            light_head(b.out_channels, 32, 3, 17, dynamic)
        } else {
            deconv_head(b.out_channels, 32, 3, 17, dynamic)
        };
        Blueprint { backbone: b, head: Some(head), classifier: None, kernels: 4 }
    }

    #[test]
    fn built_networks_have_the_blueprints_sizes_and_shapes() {
        let dev: Cpu = Default::default();
        for (arch, w, light) in [
            (Arch::Resnet10, 1.0, false),
            (Arch::DyResnet10, 1.0, false),
            (Arch::DyMobilenetv2, 0.35, true),
            (Arch::Mobilenetv2, 0.35, false),
            (Arch::Mobilenetv3Small, 0.5, true),
            (Arch::DyMobilenetv3Small, 0.75, true),
        ] {
            let bp = pose(arch, w, light);
            let mut net = Network::new(&dev, &bp, 1);
            let want = blueprint_cost(&bp, crate::config::Size::new(48, 64)).0.params as usize;
            assert_eq!(net.num_trainable(), want, "{arch}: trainable parameters = the cost model's count");
            let x: T4<Cpu> = dev.tensor_from_vec(random_values(&mut init_rng(2), 2 * 3 * 64 * 32), (2, 3, 64, 32));
            let y = net.forward(x, Ctx::train(30.0));
            assert_eq!(*y.shape(), (2, 17, 16, 8), "{arch}");
            assert!(y.as_vec().iter().all(|v| v.is_finite()));
            let names: std::collections::BTreeSet<&str> = net.params().iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names.len(), net.params().len(), "{arch}: names are unique");
            if arch.is_dynamic() {
                assert!(!net.last_attention().is_empty());
                assert!(net
                    .last_attention()
                    .iter()
                    .all(|(_, a)| a.len() == 2 * 4 && (a[..4].iter().sum::<f32>() - 1.0).abs() < 1e-5));
            }
        }
    }

    #[test]
    fn parameter_names_follow_the_documented_layout() {
        let dev: Cpu = Default::default();
        let net = Network::new(&dev, &pose(Arch::DyResnet10, 1.0, false), 0);
        let by_name: std::collections::BTreeMap<&str, &Vec<usize>> =
            net.params().iter().map(|p| (p.name.as_str(), &p.shape)).collect();
        assert_eq!(by_name["backbone.conv1.weight"], &vec![64, 3, 7, 7]);
        assert_eq!(by_name["backbone.bn1.running_var"], &vec![64]);
        assert_eq!(by_name["backbone.layer1.0.conv1.weight"], &vec![4, 64, 64, 3, 3]);
        assert_eq!(by_name["backbone.layer1.0.conv1.attention.fc1.weight"], &vec![16, 64]);
        assert_eq!(by_name["backbone.layer1.0.conv1.attention.fc2.weight"], &vec![4, 16]);
        assert_eq!(by_name["backbone.layer2.0.downsample.0.weight"], &vec![128, 64, 1, 1]);
        assert_eq!(by_name["head.deconv_layers.0.weight"], &vec![4, 512, 32, 4, 4]);
        assert_eq!(by_name["head.deconv_layers.1.weight"], &vec![32]);
        assert_eq!(by_name["head.final_layer.weight"], &vec![17, 32, 1, 1]);
        assert_eq!(by_name["head.final_layer.bias"], &vec![17]);
    }

    #[test]
    fn fast_cpu_path_and_generic_path_give_the_same_network() {
        same_network_both_paths(pose(Arch::DyResnet10, 1.0, false), (2, 64, 32), 1e-3);
    }

    #[test]
    fn fast_cpu_path_and_generic_path_give_the_same_mobilenet_v3() {
        // Hard-swish after the fused kernels, squeeze-excitation, 5×5 depthwise, dynamic 1×1s.
        // Hard-swish and hard-sigmoid have derivatives that jump at ±3 (by 0.5), so the two
        // paths' float rounding flips a few activations across a jump and moves single
        // parameters' gradients by up to about 1.5%; over the whole network the gradients agree
        // to 1e-4 (L2). A wrong gradient is off by O(1).
        same_network_both_paths(pose(Arch::DyMobilenetv3Small, 1.0, true), (4, 256, 192), 5e-2);
    }

    fn same_network_both_paths(bp: Blueprint, (n, h, w): (usize, usize, usize), grad_tolerance: f32) {
        let dev: Cpu = Default::default();
        let x: T4<Cpu> = dev.tensor_from_vec(random_values(&mut init_rng(6), n * 3 * h * w), (n, 3, h, w));
        let run = |generic_ops: bool| {
            let mut net = Network::new(&dev, &bp, 7);
            let y = net.forward(x.leaky_trace(), Ctx { train: true, temperature: 5.0, generic_ops });
            let out = y.as_vec();
            let grads = y.square().sum().backward();
            let params = net.params();
            let g: Vec<Vec<f32>> =
                params.iter().filter(|p| p.trainable).map(|p| grads.get(&p.value).as_vec()).collect();
            (out, g)
        };
        let (fast, generic) = (run(false), run(true));
        let rel = |a: &[f32], b: &[f32]| {
            let scale = b.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
            a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
        };
        assert!(rel(&fast.0, &generic.0) < 1e-4, "outputs differ: {}", rel(&fast.0, &generic.0));
        for (i, (a, b)) in fast.1.iter().zip(&generic.1).enumerate() {
            assert!(rel(a, b) < grad_tolerance, "parameter {i}: gradients differ by {}", rel(a, b));
        }
        let (a, b) = (fast.1.concat(), generic.1.concat());
        let l2 = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
        let diff = l2(&mut a.iter().zip(&b).map(|(x, y)| (x - y) as f64)) / l2(&mut b.iter().map(|&y| y as f64));
        assert!(diff < 1e-3, "the whole gradient differs by {diff:.2e} (L2)");
    }

    #[test]
    fn folded_inference_equals_the_unfolded_network() {
        let dev: Cpu = Default::default();
        for (arch, light) in [
            (Arch::DyResnet10, false),
            (Arch::DyMobilenetv2, true),
            (Arch::Mobilenetv2, false),
            (Arch::DyMobilenetv3Small, true),
        ] {
            let mut net = Network::new(&dev, &pose(arch, 0.5, light), 8);
            let x: T4<Cpu> = dev.tensor_from_vec(random_values(&mut init_rng(9), 2 * 3 * 64 * 32), (2, 3, 64, 32));
            // Training passes move the BN running statistics away from (0, 1).
            for _ in 0..2 {
                let _ = net.forward(x.clone(), Ctx::train(1.0));
            }
            let compare = |net: &mut Network<Cpu>| {
                let folded = net.forward(x.clone(), Ctx::INFERENCE).as_vec();
                let plain = net.forward(x.clone(), Ctx { generic_ops: true, ..Ctx::INFERENCE }).as_vec();
                let scale = plain.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
                let err = folded.iter().zip(&plain).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max) / scale;
                assert!(err < 1e-4, "{arch}: folded inference differs by {err}");
            };
            compare(&mut net);
            // Changing parameters (as the optimiser and checkpoint loading do) drops the folded
            // weights cached by the inference above.
            for p in net.params_mut().into_iter().filter(|p| p.trainable) {
                p.value = p.value.clone() * 0.9;
            }
            compare(&mut net);
        }
    }

    #[test]
    fn a_few_sgd_steps_reduce_the_loss() {
        let dev: Cpu = Default::default();
        let mut net = Network::new(&dev, &pose(Arch::DyResnet10, 1.0, false), 3);
        let rng = &mut init_rng(4);
        let x: T4<Cpu> = dev.tensor_from_vec(random_values(rng, 2 * 3 * 64 * 32), (2, 3, 64, 32));
        let target: T4<Cpu> =
            dev.tensor_from_vec(random_values(rng, 2 * 17 * 16 * 8).iter().map(|v| v.abs()).collect(), (2, 17, 16, 8));
        let mut losses = Vec::new();
        for _ in 0..4 {
            let y = net.forward(x.leaky_trace(), Ctx::train(1.0));
            let loss = (y - target.clone()).square().mean();
            losses.push(loss.array());
            let grads = loss.backward();
            for p in net.params_mut().into_iter().filter(|p| p.trainable) {
                let g = grads.get(&p.value);
                p.value = p.value.clone() - g * 0.5;
            }
        }
        assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    }
}
