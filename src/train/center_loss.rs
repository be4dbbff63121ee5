//! The detector's loss: CenterNet's penalty-reduced focal loss on the centre heatmap, and
//! TTFNet's weighted box regression (the GIoU loss of the box that a cell's predicted log
//! distances to the four sides describe, each box's cells weighing 1 in all), both divided by
//! the number of boxes in the batch. Written in plain Rust with its exact gradient, and handed to
//! dfdx as the linear surrogate Σ pred · grad, whose gradient is that gradient: no custom op,
//! and the same on every device.

use crate::config::DETECT_OUTPUTS as OUTPUT_CHANNELS;
use crate::data::center::{IGNORE_CHANNEL, TARGET_CHANNELS, WEIGHT_CHANNEL};
use crate::model::conv::T4;
use dfdx::prelude::*;

/// CenterNet keeps heatmap probabilities in [1e-4, 1 − 1e-4] so that the logs stay finite.
const CLAMP: f64 = 1e-4;

/// The loss of one batch, its parts, and its gradient with respect to the network's outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct CenterLoss {
    pub total: f64,
    pub heatmap: f64,
    pub regression: f64,
    pub boxes: usize,
    pub grad: Vec<f32>,
}

/// `pred`: B × 5 × H × W network outputs; `target`: B × 7 × H × W maps of
/// [`crate::data::center`]; `plane` = H · W. The boxes are the heatmap's peaks (value 1).
pub fn center_loss(pred: &[f32], target: &[f32], plane: usize, box_weight: f64) -> CenterLoss {
    let batch = pred.len() / (OUTPUT_CHANNELS * plane);
    assert_eq!(target.len(), batch * TARGET_CHANNELS * plane, "targets do not match the outputs");
    let mut grad = vec![0.0f32; pred.len()];
    let positives: usize =
        (0..batch).map(|b| target[b * TARGET_CHANNELS * plane..][..plane].iter().filter(|&&v| v == 1.0).count()).sum();
    let norm = positives.max(1) as f64;
    let (mut heat, mut regression) = (0.0, 0.0);
    for b in 0..batch {
        let p = &pred[b * OUTPUT_CHANNELS * plane..][..OUTPUT_CHANNELS * plane];
        let t = &target[b * TARGET_CHANNELS * plane..][..TARGET_CHANNELS * plane];
        let g = &mut grad[b * OUTPUT_CHANNELS * plane..][..OUTPUT_CHANNELS * plane];
        for i in 0..plane {
            let (value, d) = focal_term(p[i] as f64, t[i] as f64, t[IGNORE_CHANNEL * plane + i] > 0.0);
            heat += value;
            g[i] = (d / norm) as f32;
            let w = t[WEIGHT_CHANNEL * plane + i] as f64;
            if w > 0.0 {
                let side = |m: &[f32], c: usize| m[(1 + c) * plane + i] as f64;
                let (value, d) = giou_term(std::array::from_fn(|c| side(p, c)), std::array::from_fn(|c| side(t, c)));
                regression += w * value;
                for c in 0..4 {
                    g[(1 + c) * plane + i] = (box_weight * w * d[c] / norm) as f32;
                }
            }
        }
    }
    let (heat, regression) = (heat / norm, regression / norm);
    CenterLoss { total: heat + box_weight * regression, heatmap: heat, regression, boxes: positives, grad }
}

/// 1 − GIoU of the boxes that log distances `pred` and `target` (left, top, right, bottom, from
/// the same point) describe, and its derivative by each of `pred`'s four values.
fn giou_term(pred: [f64; 4], target: [f64; 4]) -> (f64, [f64; 4]) {
    let d = pred.map(|v| v.min(20.0).exp());
    let e = target.map(f64::exp);
    let (iw, ih) = (d[0].min(e[0]) + d[2].min(e[2]), d[1].min(e[1]) + d[3].min(e[3]));
    let (cw, ch) = (d[0].max(e[0]) + d[2].max(e[2]), d[1].max(e[1]) + d[3].max(e[3]));
    let (pw, ph) = (d[0] + d[2], d[1] + d[3]);
    let inter = iw * ih;
    let union = pw * ph + (e[0] + e[2]) * (e[1] + e[3]) - inter;
    let hull = cw * ch;
    let loss = 1.0 - inter / union + (hull - union) / hull;
    let mut grad = [0.0; 4];
    for c in 0..4 {
        // Sides 0 and 2 are horizontal: they change the widths; 1 and 3 the heights.
        let horizontal = c % 2 == 0;
        let (other_i, other_p, other_c) = if horizontal { (ih, ph, ch) } else { (iw, pw, cw) };
        let d_inter = if d[c] < e[c] { other_i } else { 0.0 };
        let d_hull = if d[c] > e[c] { other_c } else { 0.0 };
        let d_union = other_p - d_inter;
        let d_loss =
            -(d_inter * union - inter * d_union) / (union * union) - (d_union * hull - union * d_hull) / (hull * hull);
        grad[c] = if pred[c] < 20.0 { d_loss * d[c] } else { 0.0 };
    }
    (loss, grad)
}

/// The focal term of one heatmap cell with logit `x` and target `t`, and its derivative by `x`:
/// −(1 − p)² log p at a centre (t = 1), −(1 − t)⁴ p² log(1 − p) elsewhere, nothing in a crowd
/// region; p = sigmoid(x) clamped (no gradient where the clamp holds).
fn focal_term(x: f64, t: f64, ignored: bool) -> (f64, f64) {
    let raw = 1.0 / (1.0 + (-x).exp());
    let p = raw.clamp(CLAMP, 1.0 - CLAMP);
    let dp_dx = if p == raw { p * (1.0 - p) } else { 0.0 };
    if t == 1.0 {
        let q = 1.0 - p;
        (-q * q * p.ln(), (-q * q / p + 2.0 * q * p.ln()) * dp_dx)
    } else if ignored {
        (0.0, 0.0)
    } else {
        let w = (1.0 - t).powi(4);
        let l = (1.0 - p).ln();
        (-w * p * p * l, w * (p * p / (1.0 - p) - 2.0 * p * l) * dp_dx)
    }
}

/// The loss as a dfdx scalar whose backward pass hands `loss.grad` to `pred`.
pub fn surrogate<D: Device<f32>, Tp: Tape<f32, D> + Merge<NoneTape>>(
    pred: T4<D, Tp>,
    loss: &CenterLoss,
) -> Tensor<(), f32, D, Tp> {
    let shape = *pred.shape();
    let g: T4<D> = pred.device().tensor_from_vec(loss.grad.clone(), shape);
    (pred * g).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_case(seed: u64, plane: usize, batch: usize) -> (Vec<f32>, Vec<f32>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let pred: Vec<f32> = (0..batch * 5 * plane).map(|_| rng.random_range(-4.0..4.0)).collect();
        let mut target = vec![0.0f32; batch * 7 * plane];
        for b in 0..batch {
            let t = &mut target[b * 7 * plane..][..7 * plane];
            for i in 0..plane {
                t[i] = rng.random_range(0.0..0.9);
                t[6 * plane + i] = f32::from(rng.random_bool(0.2));
            }
            for i in [1, plane - 2] {
                t[i] = 1.0;
            }
            for i in [0, 1, 2, plane - 2] {
                t[5 * plane + i] = rng.random_range(0.1..0.6);
                for c in 1..5 {
                    t[c * plane + i] = rng.random_range(0.0..3.0);
                }
            }
        }
        (pred, target)
    }

    #[test]
    fn the_gradient_is_the_derivative_of_the_loss() {
        // Central differences in f64 of the loss itself, an independent check of the hand-derived
        // gradient (heatmap focal terms, the weighted L1, crowd cells, the normalisation).
        let plane = 12;
        let (pred, target) = random_case(3, plane, 2);
        let loss = center_loss(&pred, &target, plane, 0.7);
        assert_eq!(loss.boxes, 4);
        assert!(loss.regression > 0.0 && loss.heatmap > 0.0);
        let h = 1e-3f32;
        for i in 0..pred.len() {
            let mut p = pred.clone();
            p[i] += h;
            let up = center_loss(&p, &target, plane, 0.7).total;
            p[i] -= 2.0 * h;
            let down = center_loss(&p, &target, plane, 0.7).total;
            let numeric = (up - down) / (2.0 * h as f64);
            let g = loss.grad[i] as f64;
            assert!((numeric - g).abs() < 2e-3 * (1.0 + g.abs()), "output {i}: numeric {numeric}, analytic {g}");
        }
    }

    #[test]
    fn loss_by_hand() {
        // One image, 2 cells: a centre with logit 0 (p = 1/2) and a background cell with logit 0
        // and target 0.5. The centre's regression (weight 0.75) is exact; the other cell's
        // (weight 0.25) predicts distances 1, 1, 1, 1 for a target of 1, 1, 3, 1 (ln: 0 and ln 3).
        let plane = 2;
        let ln3 = 3f32.ln();
        let pred = [0.0, 0.0, 0.5, 0.0, 0.25, 0.0, 0.5, 0.0, 1.0, 0.0];
        let mut target = vec![0.0f32; 14];
        target[0] = 1.0;
        target[1] = 0.5;
        (target[2], target[4], target[6], target[8]) = (0.5, 0.25, 0.5, 1.0);
        target[7] = ln3;
        (target[10], target[11]) = (0.75, 0.25);
        let l = center_loss(&pred, &target, plane, 2.0);
        let ln2 = 2f64.ln();
        // Centre: −(1/2)² ln(1/2) = ln2 / 4; background: (1/2)⁴ · (1/2)² · ln 2 = ln2 / 64.
        assert!((l.heatmap - (ln2 / 4.0 + ln2 / 64.0)).abs() < 1e-12);
        // A 2 × 2 box inside a 4 × 2 one sharing its left side: IoU 1/2, the hull is the larger
        // box, so GIoU = 1/2 and the loss 1/2. (f32 ln 3 makes the target 3 within 1e-7.)
        assert!((l.regression - 0.25 * 0.5).abs() < 1e-7, "{}", l.regression);
        assert!((l.total - (l.heatmap + 2.0 * l.regression)).abs() < 1e-12);
        assert_eq!(l.boxes, 1);
        // Crowd cells: the background term goes away, the centre's stays.
        (target[12], target[13]) = (1.0, 1.0);
        let l = center_loss(&pred, &target, plane, 2.0);
        assert!((l.heatmap - ln2 / 4.0).abs() < 1e-12);
    }

    #[test]
    fn the_surrogate_hands_the_gradient_to_the_outputs() {
        let dev: Cpu = Default::default();
        let plane = 4;
        let (pred, target) = random_case(9, plane, 1);
        let loss = center_loss(&pred, &target, plane, 1.0);
        let x: T4<Cpu> = dev.tensor_from_vec(pred, (1, 5, 2, 2));
        let grads = surrogate(x.leaky_trace(), &loss).backward();
        assert_eq!(grads.get(&x).as_vec(), loss.grad);
    }
}
