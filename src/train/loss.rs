//! The pose model's heatmap loss: mean over (B, J, H, W) of w_j² · (pred − target)², without
//! mmpose's extra factor 0.5 (Adam is insensitive to the scale); and the classifiers'
//! label-smoothed cross-entropy. (The detector's loss is in `center_loss`.)

use crate::model::conv::T4;
use dfdx::prelude::*;

/// `weights` is B × J (1 for a joint with a target, else 0).
pub fn heatmap_loss<D: Device<f32>, Tp: Tape<f32, D> + Merge<NoneTape>>(
    pred: T4<D, Tp>,
    target: T4<D>,
    weights: Tensor<(usize, usize), f32, D>,
) -> Tensor<(), f32, D, Tp> {
    let shape = *pred.shape();
    let w: T4<D> = weights.broadcast_like::<_, Axes2<2, 3>>(&shape);
    ((pred - target) * w).square().mean()
}

/// Cross-entropy against targets smoothed as PyTorch's `label_smoothing` does:
/// (1 − ε)·one-hot + ε/C, averaged over the batch.
pub fn smoothed_cross_entropy<D: Device<f32>, T: Tape<f32, D>>(
    logits: Tensor<(usize, usize), f32, D, T>,
    labels: &[usize],
    smoothing: f32,
) -> Tensor<Rank0, f32, D, T> {
    let (b, c) = *logits.shape();
    let mut target = vec![smoothing / c as f32; b * c];
    for (i, &l) in labels.iter().enumerate() {
        target[i * c + l] += 1.0 - smoothing;
    }
    let t = logits.device().tensor_from_vec(target, (b, c));
    (logits.log_softmax::<Axis<1>>() * t).sum::<Rank0, _>().negate() / b as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothed_cross_entropy_by_hand() {
        // Logits [0, ln 3] (p = 1/4, 3/4), label 1, ε = 0.2: targets 0.1, 0.9:
        // −(0.1·ln ¼ + 0.9·ln ¾).
        let dev: Cpu = Default::default();
        let logits = dev.tensor_from_vec(vec![0.0f32, 3f32.ln()], (1, 2));
        let got = smoothed_cross_entropy(logits, &[1], 0.2).array() as f64;
        let want = -(0.1 * 0.25f64.ln() + 0.9 * 0.75f64.ln());
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn loss_and_gradient_by_hand() {
        let dev: Cpu = Default::default();
        // B = 1, J = 2, 1 × 2 maps; joint 1 has weight 0.
        let pred = dev.tensor_from_vec(vec![1.0, 2.0, 5.0, 7.0], (1, 2, 1, 2));
        let target = dev.tensor_from_vec(vec![0.0, 4.0, 0.0, 0.0], (1, 2, 1, 2));
        let w = dev.tensor_from_vec(vec![1.0, 0.0], (1, 2));
        let loss = heatmap_loss(pred.leaky_trace(), target, w);
        // (1² + 2²) / 4 elements.
        assert!((loss.array() - 1.25).abs() < 1e-6);
        let g = loss.backward().get(&pred).as_vec();
        // d/dp of (p − t)² / 4 = (p − t) / 2 where w = 1, 0 elsewhere.
        assert_eq!(g, vec![0.5, -1.0, 0.0, 0.0]);
    }
}
