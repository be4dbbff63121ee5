//! A backbone with a keypoint head (or an ImageNet classifier), instantiated from a
//! [`Blueprint`] on any dfdx device.

use super::backend::ConvBackend;
use super::blueprint::{Block, Blueprint, Head};
use super::conv::{max_pool2d, upsample2x, T4};
use super::layers::{init_rng, Act, Conv, ConvBn, Ctx, Init, Linear, Param};
use dfdx::prelude::*;

#[derive(Debug)]
enum BlockLayers<D: Device<f32> + 'static> {
    Basic { conv1: ConvBn<D>, conv2: ConvBn<D>, shortcut: Option<ConvBn<D>> },
    Inverted { expand: Option<ConvBn<D>>, depthwise: ConvBn<D>, project: ConvBn<D>, residual: bool },
}

#[derive(Debug)]
enum HeadLayers<D: Device<f32> + 'static> {
    Deconv { deconvs: Vec<ConvBn<D>>, final_conv: Conv<D> },
    Light { stages: Vec<(ConvBn<D>, ConvBn<D>)>, final_conv: Conv<D> },
}

#[derive(Debug)]
pub struct PoseNet<D: Device<f32> + 'static> {
    pub blueprint: Blueprint,
    stem: ConvBn<D>,
    stages: Vec<Vec<BlockLayers<D>>>,
    last: Option<ConvBn<D>>,
    head: Option<HeadLayers<D>>,
    classifier: Option<Linear<D>>,
}

impl<D: ConvBackend> PoseNet<D> {
    /// Builds the network with fresh weights drawn from `seed`.
    pub fn new(dev: &D, bp: &Blueprint, seed: u64) -> Self {
        let rng = &mut init_rng(seed);
        let k = bp.kernels;
        let b = &bp.backbone;
        let resnet = b.stem_pool;
        let (act, stem_names) = if resnet {
            (Act::Relu, ("backbone.conv1", "backbone.bn1"))
        } else {
            (Act::Relu6, ("backbone.features.0.conv", "backbone.features.0.bn"))
        };
        let stem = ConvBn::new(dev, [stem_names.0, stem_names.1], b.stem, k, act, Init::Kaiming, rng);
        let mut index = 1;
        let stages = b
            .stages
            .iter()
            .enumerate()
            .map(|(s, stage)| {
                stage
                    .iter()
                    .enumerate()
                    .map(|(i, block)| match block {
                        Block::Basic { conv1, conv2, shortcut } => {
                            let p = format!("backbone.layer{}.{i}", s + 1);
                            BlockLayers::Basic {
                                conv1: ConvBn::new(
                                    dev,
                                    [&format!("{p}.conv1"), &format!("{p}.bn1")],
                                    *conv1,
                                    k,
                                    Act::Relu,
                                    Init::Kaiming,
                                    rng,
                                ),
                                conv2: ConvBn::new(
                                    dev,
                                    [&format!("{p}.conv2"), &format!("{p}.bn2")],
                                    *conv2,
                                    k,
                                    Act::None,
                                    Init::Kaiming,
                                    rng,
                                ),
                                shortcut: shortcut.map(|sc| {
                                    ConvBn::new(
                                        dev,
                                        [&format!("{p}.downsample.0"), &format!("{p}.downsample.1")],
                                        sc,
                                        k,
                                        Act::None,
                                        Init::Kaiming,
                                        rng,
                                    )
                                }),
                            }
                        }
                        Block::Inverted { expand, depthwise, project, residual } => {
                            let p = format!("backbone.features.{index}");
                            index += 1;
                            BlockLayers::Inverted {
                                expand: expand.map(|e| {
                                    ConvBn::new(
                                        dev,
                                        [&format!("{p}.expand"), &format!("{p}.expand_bn")],
                                        e,
                                        k,
                                        Act::Relu6,
                                        Init::Kaiming,
                                        rng,
                                    )
                                }),
                                depthwise: ConvBn::new(
                                    dev,
                                    [&format!("{p}.depthwise"), &format!("{p}.depthwise_bn")],
                                    *depthwise,
                                    k,
                                    Act::Relu6,
                                    Init::Kaiming,
                                    rng,
                                ),
                                project: ConvBn::new(
                                    dev,
                                    [&format!("{p}.project"), &format!("{p}.project_bn")],
                                    *project,
                                    k,
                                    Act::None,
                                    Init::Kaiming,
                                    rng,
                                ),
                                residual: *residual,
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        let last = b.last_conv.map(|c| {
            let p = format!("backbone.features.{index}");
            ConvBn::new(dev, [&format!("{p}.conv"), &format!("{p}.bn")], c, k, Act::Relu6, Init::Kaiming, rng)
        });
        let head = bp.head.as_ref().map(|h| match h {
            Head::Deconv { deconvs, final_conv } => HeadLayers::Deconv {
                deconvs: deconvs
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        ConvBn::new(
                            dev,
                            [&format!("head.deconv_layers.{}", 3 * i), &format!("head.deconv_layers.{}", 3 * i + 1)],
                            *d,
                            k,
                            Act::Relu,
                            Init::Normal(0.001),
                            rng,
                        )
                    })
                    .collect(),
                final_conv: Conv::new(dev, "head.final_layer", *final_conv, k, Init::Normal(0.001), rng),
            },
            Head::Light { stages, final_conv } => HeadLayers::Light {
                stages: stages
                    .iter()
                    .enumerate()
                    .map(|(i, (dw, pw))| {
                        let p = format!("head.stages.{i}");
                        (
                            ConvBn::new(
                                dev,
                                [&format!("{p}.depthwise"), &format!("{p}.depthwise_bn")],
                                *dw,
                                k,
                                Act::Relu,
                                Init::Kaiming,
                                rng,
                            ),
                            ConvBn::new(
                                dev,
                                [&format!("{p}.pointwise"), &format!("{p}.pointwise_bn")],
                                *pw,
                                k,
                                Act::Relu,
                                Init::Kaiming,
                                rng,
                            ),
                        )
                    })
                    .collect(),
                final_conv: Conv::new(dev, "head.final_layer", *final_conv, k, Init::Normal(0.001), rng),
            },
        });
        let classifier = bp.classifier.map(|n| Linear::new(dev, "classifier", b.out_channels, n, rng));
        PoseNet { blueprint: bp.clone(), stem, stages, last, head, classifier }
    }

    /// Every parameter and buffer, in a fixed order.
    /// The device the weights live on.
    pub fn device(&self) -> D {
        self.stem.conv.weight.value.device().clone()
    }

    pub fn params(&self) -> Vec<&Param<D>> {
        let mut v = self.stem.params();
        for block in self.stages.iter().flatten() {
            match block {
                BlockLayers::Basic { conv1, conv2, shortcut } => {
                    v.extend(conv1.params());
                    v.extend(conv2.params());
                    v.extend(shortcut.iter().flat_map(ConvBn::params));
                }
                BlockLayers::Inverted { expand, depthwise, project, .. } => {
                    v.extend(expand.iter().flat_map(ConvBn::params));
                    v.extend(depthwise.params());
                    v.extend(project.params());
                }
            }
        }
        v.extend(self.last.iter().flat_map(ConvBn::params));
        match &self.head {
            Some(HeadLayers::Deconv { deconvs, final_conv }) => {
                v.extend(deconvs.iter().flat_map(ConvBn::params));
                v.extend(final_conv.params());
            }
            Some(HeadLayers::Light { stages, final_conv }) => {
                v.extend(stages.iter().flat_map(|(a, b)| a.params().into_iter().chain(b.params())));
                v.extend(final_conv.params());
            }
            None => {}
        }
        v.extend(self.classifier.iter().flat_map(Linear::params));
        v
    }

    /// Mutable access to every parameter and buffer, in the order of [`PoseNet::params`].
    pub fn params_mut(&mut self) -> Vec<&mut Param<D>> {
        let mut v = self.stem.params_mut();
        for block in self.stages.iter_mut().flatten() {
            match block {
                BlockLayers::Basic { conv1, conv2, shortcut } => {
                    v.extend(conv1.params_mut());
                    v.extend(conv2.params_mut());
                    v.extend(shortcut.iter_mut().flat_map(ConvBn::params_mut));
                }
                BlockLayers::Inverted { expand, depthwise, project, .. } => {
                    v.extend(expand.iter_mut().flat_map(ConvBn::params_mut));
                    v.extend(depthwise.params_mut());
                    v.extend(project.params_mut());
                }
            }
        }
        v.extend(self.last.iter_mut().flat_map(ConvBn::params_mut));
        match &mut self.head {
            Some(HeadLayers::Deconv { deconvs, final_conv }) => {
                v.extend(deconvs.iter_mut().flat_map(ConvBn::params_mut));
                v.extend(final_conv.params_mut());
            }
            Some(HeadLayers::Light { stages, final_conv }) => {
                for (a, b) in stages.iter_mut() {
                    v.extend(a.params_mut());
                    v.extend(b.params_mut());
                }
                v.extend(final_conv.params_mut());
            }
            None => {}
        }
        v.extend(self.classifier.iter_mut().flat_map(Linear::params_mut));
        v
    }

    /// Trainable parameter count (BN running statistics excluded).
    pub fn num_trainable(&self) -> usize {
        self.params().iter().filter(|p| p.trainable).map(|p| p.numel()).sum()
    }

    /// Backbone features (B, C, H/32, W/32).
    pub fn features<Tp>(&mut self, x: T4<D, Tp>, ctx: Ctx) -> T4<D, Tp>
    where
        Tp: Tape<f32, D> + Merge<Tp> + Default + 'static,
    {
        let mut x = self.stem.forward(x, ctx);
        let fast = D::FAST && !ctx.generic_ops;
        if self.blueprint.backbone.stem_pool {
            x = if fast { D::fast_max_pool(x, 3, 2, 1) } else { max_pool2d(x, 3, 2, 1) };
        }
        for block in self.stages.iter_mut().flatten() {
            x = match block {
                BlockLayers::Basic { conv1, conv2, shortcut } => {
                    let main = conv2.forward(conv1.forward(x.with_empty_tape(), ctx), ctx);
                    let identity = match shortcut {
                        Some(s) => s.forward(x, ctx),
                        None => x,
                    };
                    if fast {
                        D::fast_add_relu(identity, main)
                    } else {
                        (identity + main).relu()
                    }
                }
                BlockLayers::Inverted { expand, depthwise, project, residual } => {
                    let mut branch = |y: T4<D, Tp>| {
                        let y = match expand {
                            Some(e) => e.forward(y, ctx),
                            None => y,
                        };
                        project.forward(depthwise.forward(y, ctx), ctx)
                    };
                    if *residual {
                        let y = branch(x.with_empty_tape());
                        x + y
                    } else {
                        branch(x)
                    }
                }
            };
        }
        if let Some(l) = &mut self.last {
            x = l.forward(x, ctx);
        }
        x
    }

    /// Heatmaps (B, J, H/4, W/4) for input (B, 3, H, W).
    pub fn forward<Tp>(&mut self, x: T4<D, Tp>, ctx: Ctx) -> T4<D, Tp>
    where
        Tp: Tape<f32, D> + Merge<Tp> + Default + 'static,
    {
        let mut y = self.features(x, ctx);
        match self.head.as_mut().expect("this network has no keypoint head") {
            HeadLayers::Deconv { deconvs, final_conv } => {
                for d in deconvs.iter_mut() {
                    y = d.forward(y, ctx);
                }
                final_conv.forward(y, ctx)
            }
            HeadLayers::Light { stages, final_conv } => {
                for (dw, pw) in stages.iter_mut() {
                    y = pw.forward(dw.forward(upsample2x(y), ctx), ctx);
                }
                final_conv.forward(y, ctx)
            }
        }
    }

    /// Class scores (B, N) of a classifier network.
    pub fn logits<Tp>(&mut self, x: T4<D, Tp>, ctx: Ctx) -> Tensor<(usize, usize), f32, D, Tp>
    where
        Tp: Tape<f32, D> + Merge<Tp> + Default + 'static,
    {
        let f: Tensor<(usize, usize), f32, D, Tp> = self.features(x, ctx).mean::<_, Axes2<2, 3>>();
        self.classifier.as_ref().expect("this network has no classifier").forward(f)
    }

    /// The attention vectors (B × K) of every dynamic conv from the last forward pass.
    pub fn last_attention(&self) -> Vec<(String, Vec<f32>)> {
        let mut out = Vec::new();
        self.visit_convs(&mut |c| {
            if let Some(a) = c.last_attention.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                out.push((c.weight.name.trim_end_matches(".weight").to_string(), a));
            }
        });
        out
    }

    fn visit_convs(&self, f: &mut dyn FnMut(&Conv<D>)) {
        f(&self.stem.conv);
        for block in self.stages.iter().flatten() {
            match block {
                BlockLayers::Basic { conv1, conv2, shortcut } => {
                    f(&conv1.conv);
                    f(&conv2.conv);
                    if let Some(s) = shortcut {
                        f(&s.conv);
                    }
                }
                BlockLayers::Inverted { expand, depthwise, project, .. } => {
                    if let Some(e) = expand {
                        f(&e.conv);
                    }
                    f(&depthwise.conv);
                    f(&project.conv);
                }
            }
        }
        if let Some(l) = &self.last {
            f(&l.conv);
        }
        match &self.head {
            Some(HeadLayers::Deconv { deconvs, final_conv }) => {
                deconvs.iter().for_each(|d| f(&d.conv));
                f(final_conv);
            }
            Some(HeadLayers::Light { stages, final_conv }) => {
                stages.iter().for_each(|(a, b)| {
                    f(&a.conv);
                    f(&b.conv)
                });
                f(final_conv);
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::blueprint::{backbone, deconv_head, light_head, Blueprint};
    use super::super::cost::blueprint_cost;
    use super::super::layers::random_values;
    use super::*;

    fn pose(arch: &str, width: f64, light: bool) -> Blueprint {
        let b = backbone(arch, width, false).unwrap();
        let dynamic = arch.starts_with("dy-");
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
            ("resnet10", 1.0, false),
            ("dy-resnet10", 1.0, false),
            ("dy-mobilenetv2", 0.35, true),
            ("mobilenetv2", 0.35, false),
        ] {
            let bp = pose(arch, w, light);
            let mut net = PoseNet::new(&dev, &bp, 1);
            let want = blueprint_cost(&bp, [64, 48]).0.params as usize;
            assert_eq!(net.num_trainable(), want, "{arch}: trainable parameters = the cost model's count");
            let x: T4<Cpu> = dev.tensor_from_vec(random_values(&mut init_rng(2), 2 * 3 * 64 * 32), (2, 3, 64, 32));
            let y = net.forward(x, Ctx::train(30.0));
            assert_eq!(*y.shape(), (2, 17, 16, 8), "{arch}");
            assert!(y.as_vec().iter().all(|v| v.is_finite()));
            let names: std::collections::BTreeSet<&str> = net.params().iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names.len(), net.params().len(), "{arch}: names are unique");
            if arch.starts_with("dy-") {
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
        let net = PoseNet::new(&dev, &pose("dy-resnet10", 1.0, false), 0);
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
        let dev: Cpu = Default::default();
        let bp = pose("dy-resnet10", 1.0, false);
        let x: T4<Cpu> = dev.tensor_from_vec(random_values(&mut init_rng(6), 2 * 3 * 64 * 32), (2, 3, 64, 32));
        let run = |generic_ops: bool| {
            let mut net = PoseNet::new(&dev, &bp, 7);
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
            assert!(rel(a, b) < 1e-3, "parameter {i}: gradients differ by {}", rel(a, b));
        }
    }

    #[test]
    fn folded_inference_equals_the_unfolded_network() {
        let dev: Cpu = Default::default();
        for (arch, light) in [("dy-resnet10", false), ("dy-mobilenetv2", true), ("mobilenetv2", false)] {
            let mut net = PoseNet::new(&dev, &pose(arch, 0.5, light), 8);
            let x: T4<Cpu> = dev.tensor_from_vec(random_values(&mut init_rng(9), 2 * 3 * 64 * 32), (2, 3, 64, 32));
            // Training passes move the BN running statistics away from (0, 1).
            for _ in 0..2 {
                let _ = net.forward(x.clone(), Ctx::train(1.0));
            }
            let compare = |net: &mut PoseNet<Cpu>| {
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
        let mut net = PoseNet::new(&dev, &pose("dy-resnet10", 1.0, false), 3);
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
