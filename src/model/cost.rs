//! Parameter and multiply-add counts of a blueprint, with the conventions of the DY-Conv paper:
//! a conv costs k²·(Cin/g)·Cout per output pixel (a transposed conv per *input* pixel), a linear
//! layer in·out (so a squeeze-excitation block its two FCs); BN, activations, pooling, the SE
//! channel scaling and residual additions are not counted. A dynamic conv
//! adds its attention branch (global average pool Cin·H·W, FC Cin→Cin/4, FC Cin/4→K) and the
//! per-sample aggregation of its K kernels (K·|W|). Parameters count trainable tensors (BN
//! running statistics excluded), as PyTorch's `numel` over `parameters()` does.

use super::blueprint::{Backbone, Block, Blueprint, ConvSpec, Head};
use crate::config::{Config, Size};
use anyhow::{ensure, Result};

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub params: u64,
    pub madds: u64,
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, o: Cost) {
        self.params += o.params;
        self.madds += o.madds;
    }
}

/// Hidden width of a dynamic conv's attention: max(1, Cin / 4).
pub fn attention_hidden(cin: usize) -> usize {
    (cin / 4).max(1)
}

/// Cost of one conv followed by BN (when `bn`), for input size `hw`; returns the output size.
pub fn conv_cost(c: &ConvSpec, hw: Size, kernels: usize, bn: bool) -> (Cost, Size) {
    let out = c.out_size(hw);
    let kp = c.kernel_params() as u64;
    let bias = if c.bias { c.cout as u64 } else { 0 };
    let pixels = if c.transposed { hw.area() } else { out.area() } as u64;
    let mut cost = Cost { params: kp + bias, madds: kp * pixels };
    if c.dynamic {
        let k = kernels as u64;
        let hidden = attention_hidden(c.cin) as u64;
        let cin = c.cin as u64;
        cost.params = k * (kp + bias) + cin * hidden + hidden + hidden * k + k;
        cost.madds += cin * hw.area() as u64 + cin * hidden + hidden * k + k * (kp + bias);
    }
    if bn {
        cost.params += 2 * c.cout as u64;
    }
    (cost, out)
}

/// Backbone cost and output size for an input of size `hw`.
pub fn backbone_cost(b: &Backbone, hw: Size, kernels: usize) -> (Cost, Size) {
    let (mut total, mut hw) = conv_cost(&b.stem, hw, kernels, true);
    if b.stem_pool {
        hw = Size::new((hw.width + 2 - 3) / 2 + 1, (hw.height + 2 - 3) / 2 + 1);
    }
    for block in b.stages.iter().flatten() {
        match block {
            Block::Basic { conv1, conv2, shortcut } => {
                let (c1, o1) = conv_cost(conv1, hw, kernels, true);
                let (c2, o2) = conv_cost(conv2, o1, kernels, true);
                total += c1;
                total += c2;
                if let Some(s) = shortcut {
                    total += conv_cost(s, hw, kernels, true).0;
                }
                hw = o2;
            }
            Block::Inverted { expand, depthwise, se, project, .. } => {
                let mut h = hw;
                if let Some(e) = expand {
                    let (c, o) = conv_cost(e, h, kernels, true);
                    total += c;
                    h = o;
                }
                let (c, o) = conv_cost(depthwise, h, kernels, true);
                total += c;
                if let Some(q) = se {
                    let (ch, q) = (depthwise.cout as u64, *q as u64);
                    total += Cost { params: ch * q + q + q * ch + ch, madds: 2 * ch * q };
                }
                let (c, o) = conv_cost(project, o, kernels, true);
                total += c;
                hw = o;
            }
        }
    }
    if let Some(l) = &b.last_conv {
        let (c, o) = conv_cost(l, hw, kernels, true);
        total += c;
        hw = o;
    }
    (total, hw)
}

pub fn head_cost(h: &Head, hw: Size, kernels: usize) -> (Cost, Size) {
    let mut total = Cost::default();
    let mut hw = hw;
    let final_conv = match h {
        Head::Deconv { deconvs, final_conv } => {
            for d in deconvs {
                let (c, o) = conv_cost(d, hw, kernels, true);
                total += c;
                hw = o;
            }
            final_conv
        }
        Head::Light { stages, final_conv } => {
            for (dw, pw) in stages {
                hw = Size::new(hw.width * 2, hw.height * 2);
                let (c, o) = conv_cost(dw, hw, kernels, true);
                total += c;
                let (c, o) = conv_cost(pw, o, kernels, true);
                total += c;
                hw = o;
            }
            final_conv
        }
    };
    let (c, o) = conv_cost(final_conv, hw, kernels, false);
    total += c;
    (total, o)
}

/// Whole-model cost for an input of size `hw`; also the output map size (for heads).
pub fn blueprint_cost(bp: &Blueprint, hw: Size) -> (Cost, Size) {
    let (mut total, out) = backbone_cost(&bp.backbone, hw, bp.kernels);
    let mut out_hw = out;
    if let Some(h) = &bp.head {
        let (c, o) = head_cost(h, out, bp.kernels);
        total += c;
        out_hw = o;
    }
    if let Some(n) = bp.classifier {
        total += classifier_cost(&bp.backbone, n);
    }
    (total, out_hw)
}

/// The classifier after global pooling: [linear to the hidden width], linear to `n` classes.
pub fn classifier_cost(b: &Backbone, n: usize) -> Cost {
    let linear = |i: usize, o: usize| Cost { params: (i * o + o) as u64, madds: (i * o) as u64 };
    match b.classifier_hidden {
        Some(h) => {
            let mut c = linear(b.out_channels, h);
            c += linear(h, n);
            c
        }
        None => linear(b.out_channels, n),
    }
}

/// The checked constructor lives beside the shape walk it checks with, so that the blueprint
/// (which this module reads) does not depend on this module.
impl Blueprint {
    /// The network of a config for a set of `joints` (a pose model's one map per joint, or the
    /// detector's five maps), checked to turn `input_size` inputs into `heatmap_size` maps.
    pub fn for_config(cfg: &Config, joints: usize) -> Result<Blueprint> {
        let bp = Blueprint::pose(&cfg.model, cfg.outputs(joints))?;
        let (input, want) = (cfg.input_size, cfg.heatmap_size);
        let (_, out) = blueprint_cost(&bp, input);
        ensure!(
            out == want,
            "model: a {input} input gives {out} heatmaps (h×w), but heatmap_size is {want}; use an input that is a multiple of 32 and input/heatmap = 4"
        );
        Ok(bp)
    }
}

/// `dypose info`: a table of the parts' sizes and a JSON line `{"params", "madds"}` last.
pub fn describe(bp: &Blueprint, hw: Size) -> String {
    let (b, out) = backbone_cost(&bp.backbone, hw, bp.kernels);
    let mut rows = vec![(format!("backbone {}", bp.backbone.name), b)];
    let mut out_hw = out;
    if let Some(h) = &bp.head {
        let (c, o) = head_cost(h, out, bp.kernels);
        let kind = match h {
            Head::Deconv { .. } => "deconv head",
            Head::Light { .. } => "light head",
        };
        rows.push((kind.to_string(), c));
        out_hw = o;
    }
    if let Some(n) = bp.classifier {
        rows.push((format!("classifier → {n}"), classifier_cost(&bp.backbone, n)));
    }
    let total = blueprint_cost(bp, hw).0;
    let mut s = format!("input {hw} (h×w), output map {out_hw}, K = {} kernels per dynamic conv\n", bp.kernels);
    s += &format!("{:<34} {:>14} {:>16}\n", "part", "params", "multiply-adds");
    for (name, c) in rows.iter().chain(std::iter::once(&("total".to_string(), total))) {
        s += &format!("{:<34} {:>12.3} M {:>14.2} M\n", name, c.params as f64 / 1e6, c.madds as f64 / 1e6);
    }
    s + &serde_json::json!({"params": total.params, "madds": total.madds}).to_string()
}

#[cfg(test)]
mod tests {
    use super::super::blueprint::*;
    use super::*;
    use crate::config::Arch;

    fn classifier(arch: Arch, width: f64) -> Cost {
        let bp = Blueprint {
            backbone: backbone(arch, width, false).unwrap(),
            head: None,
            classifier: Some(1000),
            kernels: 4,
        };
        blueprint_cost(&bp, Size::new(224, 224)).0
    }

    fn within(got: u64, paper: f64, tol: f64) -> bool {
        (got as f64 - paper).abs() <= tol * paper
    }

    /// The paper prints sizes to two significant digits: "2.8M" is any value in [2.75, 2.85)M.
    fn within_rounded(got: u64, paper: f64, half_unit: f64, tol: f64) -> bool {
        let g = got as f64;
        g >= (paper - half_unit) * (1.0 - tol) && g <= (paper + half_unit) * (1.0 + tol)
    }

    #[test]
    fn conv_cost_by_hand() {
        // 3×3, 8→16, stride 1 on 10×10: 3·3·8·16 = 1152 weights, ×100 pixels; BN adds 32 params.
        let c = ConvSpec::new(8, 16, 3, 1);
        assert_eq!(conv_cost(&c, Size::new(10, 10), 4, true).0, Cost { params: 1152 + 32, madds: 115_200 });
        // Dynamic, K = 4: 4·1152 weights + FC 8→2 (16 + 2) + FC 2→4 (8 + 4); extra MAdds:
        // pool 8·100, FCs 16 + 8, aggregation 4·1152.
        let (d, _) = conv_cost(&c.dynamic(true), Size::new(10, 10), 4, false);
        assert_eq!(d, Cost { params: 4 * 1152 + 18 + 12, madds: 115_200 + 800 + 24 + 4 * 1152 });
        // Transposed 4×4 s2, 2→3 on 5×5 input: 4·4·2·3 per input pixel.
        let t = ConvSpec { transposed: true, padding: 1, ..ConvSpec::new(2, 3, 4, 2) };
        assert_eq!(conv_cost(&t, Size::new(5, 5), 4, false), (Cost { params: 96, madds: 96 * 25 }, Size::new(10, 10)));
    }

    #[test]
    fn mobilenet_v3_small_against_the_paper() {
        // The DY-Conv paper: MobileNetV3-Small 2.9M / 66.0M, DY-MobileNetV3-Small 4.8M / 68.5M.
        // Its parameter counts are those of a classifier whose hidden layer is 1280 wide
        // (MobileNetV3-Large's) instead of Small's 1024, with the last 1×1 conv dynamic too.
        let with_hidden = |arch: Arch, hidden: usize| {
            let mut b = backbone(arch, 1.0, false).unwrap();
            b.classifier_hidden = Some(hidden);
            blueprint_cost(
                &Blueprint { backbone: b, head: None, classifier: Some(1000), kernels: 4 },
                Size::new(224, 224),
            )
            .0
        };
        let (s, d) = (with_hidden(Arch::Mobilenetv3Small, 1280), with_hidden(Arch::DyMobilenetv3Small, 1280));
        assert!(within(s.params, 2.9e6, 0.03), "{}", s.params);
        assert!(within(d.params, 4.8e6, 0.03), "{}", d.params);
        // Multiply-adds: this network is the one of the MobileNetV3 paper (56M), not 66.0M; the
        // dynamic version adds 3.7M (the paper 2.5M). The book's "The network" chapter says what we found.
        assert!(within(s.madds, 56.9e6, 0.01) && within(d.madds, 60.6e6, 0.01), "{} {}", s.madds, d.madds);
    }

    #[test]
    fn reproduces_the_papers_sizes_within_3_percent() {
        // (arch, width, paper params, paper MAdds) — DY-Conv paper tables, ImageNet, 224×224.
        use Arch::{DyMobilenetv2, Mobilenetv2};
        let rows = [
            (Mobilenetv2, 1.0, 3.5e6, 300e6),
            (Mobilenetv2, 0.75, 2.6e6, 209e6),
            (Mobilenetv2, 0.5, 2.0e6, 97e6),
            (Mobilenetv2, 0.35, 1.7e6, 59.2e6),
            (DyMobilenetv2, 1.0, 11.1e6, 312.9e6),
            (DyMobilenetv2, 0.75, 7.0e6, 217.5e6),
            (DyMobilenetv2, 0.5, 4.0e6, 101.4e6),
        ];
        for (arch, w, params, madds) in rows {
            let c = classifier(arch, w);
            assert!(within(c.madds, madds, 0.03), "{arch} x{w}: {} MAdds vs paper {madds}", c.madds);
            assert!(within(c.params, params, 0.03), "{arch} x{w}: {} params vs paper {params}", c.params);
        }
        // DY-MobileNetV2 ×0.35: the paper prints 2.8M, i.e. somewhere in [2.75, 2.85)M; the count
        // is within 3% of that interval (2.3% below 2.75M), and its MAdds within 3% of 62.0M.
        let c = classifier(DyMobilenetv2, 0.35);
        assert!(within_rounded(c.params, 2.8e6, 0.05e6, 0.03), "{}", c.params);
        assert!(within(c.madds, 62.0e6, 0.03), "{}", c.madds);
        assert!(within(classifier(Arch::Resnet18, 1.0).madds, 1.81e9, 0.03));
        assert!(within(classifier(Arch::DyResnet18, 1.0).madds, 1.85e9, 0.03));
        // torchvision's own counts (`sum(p.numel() for p in model.parameters())`); its
        // mobilenet_v3_small reports 0.06 GFLOPS (56.5M here).
        assert_eq!(classifier(Arch::Mobilenetv3Small, 1.0).params, 2_542_856, "torchvision's mobilenet_v3_small");
        assert!(within(classifier(Arch::Mobilenetv3Small, 1.0).madds, 56.5e6, 0.01));
        assert_eq!(classifier(Arch::Resnet18, 1.0).params, 11_689_512, "torchvision's resnet18");
        assert_eq!(classifier(Mobilenetv2, 1.0).params, 3_504_872, "torchvision's mobilenet_v2");
    }
}
