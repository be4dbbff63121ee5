//! Architectures as plain data: every convolution, batch norm and linear layer of a backbone,
//! head or classifier, with its channels, kernel, stride, groups and whether it is dynamic.
//! Parameter and multiply-add counts are computed from this, and the network is built from it,
//! so the two cannot drift apart. No tensors here.

use crate::config::{Arch, ClassifierModel, HeadKind, ModelConfig, Size};
use anyhow::{bail, ensure, Result};

/// One convolution (or, with `transposed`, a transposed convolution).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvSpec {
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
    pub bias: bool,
    /// K kernels mixed per sample by an attention branch (Dynamic Convolution).
    pub dynamic: bool,
    pub transposed: bool,
    /// Whether training needs the gradient by the conv's input: not for a stem, whose input is
    /// the image (its backward pass then skips a GEMM and a col2im of the largest layer).
    pub input_grad: bool,
}

impl ConvSpec {
    pub fn new(cin: usize, cout: usize, kernel: usize, stride: usize) -> Self {
        ConvSpec {
            cin,
            cout,
            kernel,
            stride,
            padding: kernel / 2,
            groups: 1,
            bias: false,
            dynamic: false,
            transposed: false,
            input_grad: true,
        }
    }
    pub fn depthwise(c: usize, kernel: usize, stride: usize) -> Self {
        ConvSpec { groups: c, ..ConvSpec::new(c, c, kernel, stride) }
    }
    pub fn dynamic(self, on: bool) -> Self {
        ConvSpec { dynamic: on, ..self }
    }
    /// The same conv applied to the network's input image (no input gradient).
    pub fn on_image(self) -> Self {
        ConvSpec { input_grad: false, ..self }
    }
    /// Output size for an input of size `input`.
    pub fn out_size(&self, input: Size) -> Size {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let along = |n: usize| if self.transposed { (n - 1) * s + k - 2 * p } else { (n + 2 * p - k) / s + 1 };
        Size::new(along(input.width), along(input.height))
    }
    /// Weights of one kernel set: cout × cin/groups × k × k.
    pub fn kernel_params(&self) -> usize {
        self.cout * self.cin / self.groups * self.kernel * self.kernel
    }
}

/// The nonlinearity after a conv + BN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Relu6,
    /// x · ReLU6(x + 3) / 6 (MobileNetV3).
    Hardswish,
}

/// A residual block of a backbone.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// ResNet basic block: 3×3 conv, BN, ReLU, 3×3 conv, BN, + shortcut, ReLU.
    Basic { conv1: ConvSpec, conv2: ConvSpec, shortcut: Option<ConvSpec> },
    /// Inverted residual: [1×1 expand, BN, act], k×k depthwise, BN, act, [squeeze-excitation],
    /// 1×1 project, BN, + input when `residual`. MobileNetV2: ReLU6, 3×3, no SE; MobileNetV3
    /// also hard-swish, 5×5 and SE.
    Inverted {
        expand: Option<ConvSpec>,
        depthwise: ConvSpec,
        /// Squeeze-excitation's hidden width: pool, FC → ReLU, FC → hard-sigmoid, scale channels.
        /// Always static.
        se: Option<usize>,
        project: ConvSpec,
        act: Activation,
        residual: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backbone {
    pub name: String,
    /// First conv (static: it sees 3 channels), BN and `act`.
    pub stem: ConvSpec,
    /// ResNet's 3×3 stride-2 max-pool after the stem.
    pub stem_pool: bool,
    pub stages: Vec<Vec<Block>>,
    /// MobileNets' final 1×1 conv (+BN, `act`): V2's to 1280 (static), V3-Small's to 576.
    pub last_conv: Option<ConvSpec>,
    /// The activation of the stem and the last conv.
    pub act: Activation,
    pub out_channels: usize,
    /// MobileNetV3's classifier has a hidden layer (linear + hard-swish) of this width.
    pub classifier_hidden: Option<usize>,
    /// Batch norm's (ε, momentum) in the backbone: PyTorch's (1e-5, 0.1), torchvision's
    /// MobileNetV3 (1e-3, 0.01). The heads keep PyTorch's.
    pub bn: (f32, f32),
}

/// The keypoint head on top of a backbone.
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    /// SimpleBaseline: transposed 4×4 stride-2 convs (each + BN + ReLU), then a static 1×1 conv.
    Deconv { deconvs: Vec<ConvSpec>, final_conv: ConvSpec },
    /// Light head for MobileNets: per stage bilinear ×2, depthwise 3×3 + BN + ReLU, 1×1 + BN +
    /// ReLU; then a static 1×1 conv.
    Light { stages: Vec<(ConvSpec, ConvSpec)>, final_conv: ConvSpec },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Blueprint {
    pub backbone: Backbone,
    pub head: Option<Head>,
    /// ImageNet-style classifier: global average pool + linear to this many classes.
    pub classifier: Option<usize>,
    /// Kernels per dynamic conv.
    pub kernels: usize,
}

/// PyTorch's batch-norm (ε, momentum).
pub const PYTORCH_BN: (f32, f32) = (1e-5, 0.1);

/// torchvision's `_make_divisible`: round to a multiple of 8, never below 90% of the value.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut n = ((v + d / 2.0) / d).floor() as usize * divisor;
    n = n.max(divisor);
    if (n as f64) < 0.9 * v {
        n += divisor;
    }
    n
}

/// ResNet-10 ([1,1,1,1]) or ResNet-18 ([2,2,2,2]) with basic blocks; `dynamic` makes every conv
/// but the stem dynamic, the 1×1 shortcuts only with `dynamic_shortcut`. `width` scales every
/// channel count (rounded to a multiple of 8), for small models such as the quickstart's.
pub fn resnet(depth: usize, width: f64, dynamic: bool, dynamic_shortcut: bool) -> Result<Backbone> {
    ensure!(width > 0.0 && width <= 4.0 && width.is_finite(), "ResNet width {width} is out of range (0, 4]");
    let ch = |c: usize| make_divisible(c as f64 * width, 8);
    let blocks = match depth {
        10 => [1, 1, 1, 1],
        18 => [2, 2, 2, 2],
        _ => bail!("ResNet depth {depth} is not available (use 10 or 18)"),
    };
    let mut cin = ch(64);
    let mut stages = Vec::new();
    for (i, (&n, cout)) in blocks.iter().zip([ch(64), ch(128), ch(256), ch(512)]).enumerate() {
        let mut stage = Vec::new();
        for b in 0..n {
            let stride = if b == 0 && i > 0 { 2 } else { 1 };
            let shortcut = (stride != 1 || cin != cout).then(|| {
                ConvSpec { padding: 0, ..ConvSpec::new(cin, cout, 1, stride) }.dynamic(dynamic && dynamic_shortcut)
            });
            stage.push(Block::Basic {
                conv1: ConvSpec::new(cin, cout, 3, stride).dynamic(dynamic),
                conv2: ConvSpec::new(cout, cout, 3, 1).dynamic(dynamic),
                shortcut,
            });
            cin = cout;
        }
        stages.push(stage);
    }
    Ok(Backbone {
        name: format!("{}resnet{depth}", if dynamic { "dy-" } else { "" }),
        stem: ConvSpec::new(3, ch(64), 7, 2).on_image(),
        stem_pool: true,
        stages,
        last_conv: None,
        act: Activation::Relu,
        out_channels: ch(512),
        classifier_hidden: None,
        bn: PYTORCH_BN,
    })
}

/// MobileNetV2 with width multiplier `width`; `dynamic` makes every conv dynamic except the
/// stem and the final 1×1 expansion to 1280.
pub fn mobilenet_v2(width: f64, dynamic: bool) -> Result<Backbone> {
    ensure!(width > 0.0 && width <= 4.0 && width.is_finite(), "MobileNetV2 width {width} is out of range (0, 4]");
    const SETTINGS: [(usize, usize, usize, usize); 7] =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
    let mut cin = make_divisible(32.0 * width, 8);
    let stem = ConvSpec::new(3, cin, 3, 2).on_image();
    let mut stages = Vec::new();
    for (t, c, n, s) in SETTINGS {
        let cout = make_divisible(c as f64 * width, 8);
        let mut stage = Vec::new();
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let hidden = cin * t;
            stage.push(Block::Inverted {
                expand: (t != 1).then(|| ConvSpec { padding: 0, ..ConvSpec::new(cin, hidden, 1, 1) }.dynamic(dynamic)),
                depthwise: ConvSpec::depthwise(hidden, 3, stride).dynamic(dynamic),
                se: None,
                project: ConvSpec { padding: 0, ..ConvSpec::new(hidden, cout, 1, 1) }.dynamic(dynamic),
                act: Activation::Relu6,
                residual: stride == 1 && cin == cout,
            });
            cin = cout;
        }
        stages.push(stage);
    }
    let last = make_divisible(1280.0 * width.max(1.0), 8);
    Ok(Backbone {
        name: format!("{}mobilenetv2_x{width}", if dynamic { "dy-" } else { "" }),
        stem,
        stem_pool: false,
        stages,
        last_conv: Some(ConvSpec { padding: 0, ..ConvSpec::new(cin, last, 1, 1) }),
        act: Activation::Relu6,
        out_channels: last,
        classifier_hidden: None,
        bn: PYTORCH_BN,
    })
}

/// MobileNetV3-Small (Howard et al. 2019, torchvision's layout) with width multiplier `width`;
/// `dynamic` makes every conv dynamic except the stem, the SE blocks staying static.
pub fn mobilenet_v3_small(width: f64, dynamic: bool) -> Result<Backbone> {
    ensure!(width > 0.0 && width <= 4.0 && width.is_finite(), "MobileNetV3-Small width {width} is out of range (0, 4]");
    use Activation::{Hardswish as HS, Relu as RE};
    // (kernel, expanded, out, SE, activation, stride) per block.
    const SETTINGS: [(usize, usize, usize, bool, Activation, usize); 11] = [
        (3, 16, 16, true, RE, 2),
        (3, 72, 24, false, RE, 2),
        (3, 88, 24, false, RE, 1),
        (5, 96, 40, true, HS, 2),
        (5, 240, 40, true, HS, 1),
        (5, 240, 40, true, HS, 1),
        (5, 120, 48, true, HS, 1),
        (5, 144, 48, true, HS, 1),
        (5, 288, 96, true, HS, 2),
        (5, 576, 96, true, HS, 1),
        (5, 576, 96, true, HS, 1),
    ];
    let ch = |c: usize| make_divisible(c as f64 * width, 8);
    let mut cin = ch(16);
    let stem = ConvSpec::new(3, cin, 3, 2).on_image();
    let mut blocks = Vec::new();
    for (k, e, out, se, act, stride) in SETTINGS {
        let (hidden, cout) = (ch(e), ch(out));
        let pointwise = |a: usize, b: usize| ConvSpec { padding: 0, ..ConvSpec::new(a, b, 1, 1) }.dynamic(dynamic);
        blocks.push(Block::Inverted {
            expand: (hidden != cin).then(|| pointwise(cin, hidden)),
            depthwise: ConvSpec::depthwise(hidden, k, stride).dynamic(dynamic),
            se: se.then(|| make_divisible((hidden / 4) as f64, 8)),
            project: pointwise(hidden, cout),
            act,
            residual: stride == 1 && cin == cout,
        });
        cin = cout;
    }
    let last = 6 * cin;
    Ok(Backbone {
        name: format!("{}mobilenetv3-small_x{width}", if dynamic { "dy-" } else { "" }),
        stem,
        stem_pool: false,
        // One stage per output resolution is not needed by anything: the blocks form one list.
        stages: vec![blocks],
        last_conv: Some(ConvSpec { padding: 0, ..ConvSpec::new(cin, last, 1, 1) }.dynamic(dynamic)),
        act: HS,
        out_channels: last,
        classifier_hidden: Some(ch(1024)),
        bn: (1e-3, 0.01),
    })
}

/// SimpleBaseline's head: `n` transposed 4×4 stride-2 convs of `channels`, then 1×1 to `joints`.
pub fn deconv_head(cin: usize, channels: usize, n: usize, joints: usize, dynamic: bool) -> Head {
    let mut deconvs = Vec::new();
    let mut c = cin;
    for _ in 0..n {
        deconvs.push(ConvSpec { transposed: true, padding: 1, ..ConvSpec::new(c, channels, 4, 2) }.dynamic(dynamic));
        c = channels;
    }
    Head::Deconv { deconvs, final_conv: ConvSpec { padding: 0, bias: true, ..ConvSpec::new(c, joints, 1, 1) } }
}

/// The light head: `n` stages of bilinear ×2 + depthwise 3×3 + pointwise 1×1 to `channels`.
pub fn light_head(cin: usize, channels: usize, n: usize, joints: usize, dynamic: bool) -> Head {
    let mut stages = Vec::new();
    let mut c = cin;
    for _ in 0..n {
        stages.push((
            ConvSpec::depthwise(c, 3, 1).dynamic(dynamic),
            ConvSpec { padding: 0, ..ConvSpec::new(c, channels, 1, 1) }.dynamic(dynamic),
        ));
        c = channels;
    }
    Head::Light { stages, final_conv: ConvSpec { padding: 0, bias: true, ..ConvSpec::new(c, joints, 1, 1) } }
}

/// A backbone by name (`resnet18`, `dy-mobilenetv2`, …).
pub fn backbone(arch: Arch, width: f64, dynamic_shortcut: bool) -> Result<Backbone> {
    let dynamic = arch.is_dynamic();
    match arch {
        Arch::Resnet10 | Arch::DyResnet10 => resnet(10, width, dynamic, dynamic_shortcut),
        Arch::Resnet18 | Arch::DyResnet18 => resnet(18, width, dynamic, dynamic_shortcut),
        Arch::Mobilenetv2 | Arch::DyMobilenetv2 => mobilenet_v2(width, dynamic),
        Arch::Mobilenetv3Small | Arch::DyMobilenetv3Small => mobilenet_v3_small(width, dynamic),
    }
}

impl Blueprint {
    /// Whether any convolution is dynamic (else the network is a static one).
    pub fn is_dynamic(&self) -> bool {
        let b = &self.backbone;
        let blocks = b.stages.iter().flatten().flat_map(|block| match block {
            Block::Basic { conv1, conv2, shortcut } => vec![Some(*conv1), Some(*conv2), *shortcut],
            Block::Inverted { expand, depthwise, project, .. } => vec![*expand, Some(*depthwise), Some(*project)],
        });
        let head = self.head.iter().flat_map(|h| match h {
            Head::Deconv { deconvs, final_conv } => [deconvs.clone(), vec![*final_conv]].concat(),
            Head::Light { stages, final_conv } => {
                stages.iter().flat_map(|(d, p)| [*d, *p]).chain([*final_conv]).collect()
            }
        });
        std::iter::once(Some(b.stem)).chain(blocks).chain([b.last_conv]).flatten().chain(head).any(|c| c.dynamic)
    }

    /// The pose network of a model section, with one output map per joint of a set of `joints`.
    pub fn pose(m: &ModelConfig, joints: usize) -> Result<Blueprint> {
        ensure!(m.kernels >= 1, "model.kernels must be at least 1");
        ensure!(
            joints >= 1 && m.head_channels >= 1 && m.head_layers >= 1,
            "the keypoint count, model.head_channels and head_layers must be positive"
        );
        if let Some(j) = m.joints {
            ensure!(j == joints, "model.joints is {j}, but the keypoint set has {joints} keypoints (drop the key)");
        }
        let b = backbone(m.arch, m.width, m.dynamic_shortcut).map_err(|e| anyhow::anyhow!("model.arch/width: {e}"))?;
        let dynamic = m.head_is_dynamic();
        let head = match m.head {
            HeadKind::Deconv => deconv_head(b.out_channels, m.head_channels, m.head_layers, joints, dynamic),
            HeadKind::Light => light_head(b.out_channels, m.head_channels, m.head_layers, joints, dynamic),
        };
        Ok(Blueprint { backbone: b, head: Some(head), classifier: None, kernels: m.kernels })
    }

    /// The image classifier `m` describes.
    pub fn classifier(m: &ClassifierModel) -> Result<Blueprint> {
        ensure!(m.kernels >= 1 && m.classes >= 1, "a classifier needs at least one kernel and one class");
        ensure!(m.input_size.width >= 32 && m.input_size.height >= 32, "a classifier input is at least 32×32");
        let mut b = backbone(m.arch, m.width, m.dynamic_shortcut)?;
        if let Some(h) = m.classifier_hidden {
            ensure!(b.classifier_hidden.is_some() && h >= 1, "{} has no hidden classifier layer", m.arch);
            b.classifier_hidden = Some(h);
        }
        Ok(Blueprint { backbone: b, head: None, classifier: Some(m.classes), kernels: m.kernels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn make_divisible_like_torchvision() {
        assert_eq!(make_divisible(32.0, 8), 32);
        assert_eq!(make_divisible(32.0 * 0.35, 8), 16, "11.2 → 8 is below 90%, so 16");
        assert_eq!(make_divisible(24.0 * 0.5, 8), 16);
        assert_eq!(make_divisible(16.0 * 0.35, 8), 8);
        assert_eq!(make_divisible(96.0 * 0.75, 8), 72);
    }

    #[test]
    fn shapes_and_dynamic_layers() {
        let r = resnet(18, 1.0, true, false).unwrap();
        assert!(!r.stem.dynamic);
        let Block::Basic { conv1, shortcut, .. } = &r.stages[1][0] else { panic!() };
        assert!(conv1.dynamic && conv1.stride == 2 && !shortcut.unwrap().dynamic);
        let m = mobilenet_v2(1.0, true).unwrap();
        assert!(!m.stem.dynamic && !m.last_conv.unwrap().dynamic);
        assert_eq!(m.out_channels, 1280);
        assert_eq!(m.stages.iter().map(Vec::len).sum::<usize>(), 17);
        assert!(mobilenet_v2(0.0, false).is_err());
        assert_eq!(ConvSpec::new(3, 8, 3, 2).out_size(Size::new(224, 160)), Size::new(112, 80));
        let t = ConvSpec { transposed: true, padding: 1, ..ConvSpec::new(8, 8, 4, 2) };
        assert_eq!(t.out_size(Size::new(6, 8)), Size::new(12, 16));
    }

    #[test]
    fn a_config_builds_a_pose_network_that_fits_its_sizes() {
        let mut cfg = Config::default();
        let bp = Blueprint::for_config(&cfg, 14).unwrap();
        let Some(Head::Deconv { final_conv, .. }) = &bp.head else { panic!("deconv head") };
        assert_eq!(final_conv.cout, 14, "one map per joint of the set");
        cfg.model.joints = Some(17);
        let e = Blueprint::for_config(&cfg, 14).unwrap_err().to_string();
        assert!(e.contains("model.joints is 17, but the keypoint set has 14"), "{e}");
        cfg.model.joints = None;
        cfg.heatmap_size = Size::new(24, 32);
        let e = Blueprint::for_config(&cfg, 17).unwrap_err().to_string();
        assert!(e.contains("a 256×192 input gives 64×48 heatmaps (h×w), but heatmap_size is 32×24"), "{e}");
    }
}
