//! The kinds of fast op, as far as a first-use check covers one (`fast_check`): a conv's shape
//! family, and the other fused ops. Plain descriptions, so that the device trait can name them
//! without depending on the check.

use super::blueprint::ConvSpec;

/// How the channels of a conv are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grouping {
    Dense,
    Grouped,
    Depthwise,
}

/// The shape family of a conv: what decides which code path it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvFamily {
    pub grouping: Grouping,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub transposed: bool,
    pub dynamic: bool,
    pub input_grad: bool,
}

impl ConvFamily {
    pub fn of(spec: &ConvSpec) -> Self {
        let grouping = match spec.groups {
            1 => Grouping::Dense,
            g if g == spec.cin && g == spec.cout => Grouping::Depthwise,
            _ => Grouping::Grouped,
        };
        ConvFamily {
            grouping,
            kernel: spec.kernel,
            stride: spec.stride,
            padding: spec.padding,
            transposed: spec.transposed,
            dynamic: spec.dynamic,
            input_grad: spec.input_grad,
        }
    }

    /// A small conv of this family (a few channels), for checking it.
    pub fn small_spec(&self) -> ConvSpec {
        let (cin, cout, groups) = match self.grouping {
            Grouping::Dense => (4, 6, 1),
            Grouping::Grouped => (4, 6, 2),
            Grouping::Depthwise => (6, 6, 6),
        };
        ConvSpec {
            cin,
            cout,
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            groups,
            bias: false,
            dynamic: self.dynamic,
            transposed: self.transposed,
            input_grad: self.input_grad,
        }
    }
}

/// A kind of fast op, as far as a check covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FastOp {
    /// A conv (static or dynamic) with its gradients.
    Conv(ConvFamily),
    /// Inference: a conv with BN folded in and a capped ReLU fused.
    FoldedConv(ConvFamily),
    /// Training-mode BN with batch statistics and a capped ReLU fused.
    BatchNormTrain,
    MaxPool,
    AddRelu,
    GlobalAvgPool,
    /// Bilinear ×2 upsampling (the light head).
    Upsample2x,
    /// x · ReLU6(x + 3) / 6 (MobileNetV3).
    Hardswish,
}

impl FastOp {
    /// The name warnings and `DYPOSE_FAST_CHECK_PERTURB` use.
    pub fn name(&self) -> String {
        let conv = |f: &ConvFamily| {
            format!(
                "{}{}{} {k}×{k} stride {} padding {}",
                if f.dynamic { "dynamic-" } else { "" },
                match f.grouping {
                    Grouping::Dense => "",
                    Grouping::Grouped => "grouped-",
                    Grouping::Depthwise => "depthwise-",
                },
                if f.transposed { "transposed-conv" } else { "conv" },
                f.stride,
                f.padding,
                k = f.kernel
            )
        };
        match self {
            FastOp::Conv(f) => conv(f),
            FastOp::FoldedConv(f) => format!("folded-{}", conv(f)),
            FastOp::BatchNormTrain => "batch-norm".into(),
            FastOp::MaxPool => "max-pool".into(),
            FastOp::AddRelu => "add-relu".into(),
            FastOp::GlobalAvgPool => "global-avg-pool".into(),
            FastOp::Upsample2x => "upsample".into(),
            FastOp::Hardswish => "hardswish".into(),
        }
    }
}

/// A dynamic conv's attention at inference: the input's per-channel means (B × C, row-major) →
/// the kernel weights π (B × K). The folded conv computes the means from the input it already
/// holds, instead of a separate pooling op copying the input once more.
pub type Attention<'a> = dyn Fn(&[f32]) -> Vec<f32> + 'a;
