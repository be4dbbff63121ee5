//! The heatmap loss of DESIGN §4: mean over (B, J, H, W) of w_j² · (pred − target)², without
//! mmpose's extra factor 0.5 (Adam is insensitive to the scale).

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

#[cfg(test)]
mod tests {
    use super::*;

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
