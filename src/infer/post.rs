//! Post-processing of decoded persons, as mmpose's top-down COCO evaluation does it: flip-test
//! heatmap merging, rescoring by confident joints, and OKS-based non-maximum suppression.

use crate::config::Size;

/// Merges the heatmaps of a crop and of its mirror image (both `J × H × W`) into `plain`: the
/// mirror's maps are flipped back, their left/right joints swapped (`flip_permutation`), shifted
/// one heatmap pixel to the right (the two mirrors differ by one pixel), then averaged.
pub fn merge_flipped(plain: &mut [f32], flipped: &[f32], flip_permutation: &[usize], size: Size) {
    let (w, h) = (size.width, size.height);
    let hw = w * h;
    assert_eq!(plain.len(), flipped.len());
    assert_eq!(plain.len(), flip_permutation.len() * hw);
    for (j, &src) in flip_permutation.iter().enumerate() {
        let from = &flipped[src * hw..(src + 1) * hw];
        let to = &mut plain[j * hw..(j + 1) * hw];
        for y in 0..h {
            let row = &from[y * w..(y + 1) * w];
            let out = &mut to[y * w..(y + 1) * w];
            // back[x] = row[w − 1 − x]; shifted[x] = back[x − 1] for x ≥ 1, back[0] at x = 0.
            out[0] = 0.5 * (out[0] + row[w - 1]);
            for x in 1..w {
                out[x] = 0.5 * (out[x] + row[w - x]);
            }
        }
    }
}

/// Mirrors `n` CHW inputs of `size` horizontally.
pub fn mirror_inputs(inputs: &[f32], size: Size) -> Vec<f32> {
    let (w, h) = (size.width, size.height);
    let mut out = vec![0.0; inputs.len()];
    for (src, dst) in inputs.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
        for x in 0..w {
            dst[x] = src[w - 1 - x];
        }
    }
    debug_assert_eq!(inputs.len() % (w * h), 0);
    out
}

/// Instance score: box score × the mean of the joint scores above `threshold` (0 when none is).
pub fn rescore(box_score: f64, joint_scores: impl IntoIterator<Item = f64>, threshold: f64) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for s in joint_scores {
        if s > threshold {
            sum += s;
            n += 1;
        }
    }
    if n == 0 {
        0.0
    } else {
        box_score * (sum / n as f64)
    }
}

/// mmpose's `oks_iou`: the OKS of two poses (`[x, y, score]` per joint) with the mean of the
/// two areas as the scale, all joints counted.
pub fn oks_between(a: &[[f64; 3]], area_a: f64, b: &[[f64; 3]], area_b: f64, sigmas: &[f64]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    let scale = (area_a + area_b) / 2.0 + f64::EPSILON;
    let sum: f64 = a
        .iter()
        .zip(b)
        .zip(sigmas)
        .map(|((p, q), s)| {
            let var = (2.0 * s) * (2.0 * s);
            let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
            (-((dx * dx + dy * dy) / var / scale / 2.0)).exp()
        })
        .sum();
    sum / a.len() as f64
}

/// Greedy OKS-NMS over one image's poses: indices kept, best score first. A pose is dropped
/// when its OKS with a kept, higher-scoring pose exceeds `threshold`. Ties in score keep
/// numpy's `argsort()[::-1]` order (the later pose first).
pub fn oks_nms(poses: &[&[[f64; 3]]], scores: &[f64], areas: &[f64], sigmas: &[f64], threshold: f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..poses.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    order.reverse();
    let mut keep = Vec::new();
    while let Some((&i, rest)) = order.split_first() {
        keep.push(i);
        order = rest
            .iter()
            .copied()
            .filter(|&d| oks_between(poses[i], areas[i], poses[d], areas[d], sigmas) <= threshold)
            .collect();
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipped_maps_come_back_swapped_and_shifted() {
        // Two joints that swap, 4 × 1 maps. The mirror's joint 1 says [1, 2, 3, 4]: flipped back
        // [4, 3, 2, 1], shifted [4, 4, 3, 2]; it becomes joint 0 and is averaged with zeros.
        let mut plain = vec![0.0; 8];
        let flipped = vec![0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0];
        merge_flipped(&mut plain, &flipped, &[1, 0], Size::new(4, 1));
        assert_eq!(plain, vec![2.0, 2.0, 1.5, 1.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(mirror_inputs(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], Size::new(3, 1)), vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
    }

    #[test]
    fn rescoring_averages_confident_joints() {
        assert!((rescore(0.5, [0.9, 0.1, 0.7], 0.2) - 0.5 * 0.8).abs() < 1e-12);
        assert_eq!(rescore(0.5, [0.1, 0.2], 0.2), 0.0, "0.2 itself is not above the threshold");
    }

    #[test]
    fn nms_drops_near_duplicates_only() {
        let sig = [0.1, 0.1];
        let a = [[10.0, 10.0, 1.0], [20.0, 20.0, 1.0]];
        let a2 = [[10.5, 10.0, 1.0], [20.0, 20.5, 1.0]];
        let far = [[60.0, 10.0, 1.0], [70.0, 20.0, 1.0]];
        // Hand value: e = 0.25 / 0.04 / 100 / 2 = 0.03125 per joint → OKS = exp(−0.03125).
        assert!((oks_between(&a, 100.0, &a2, 100.0, &sig) - (-0.03125f64).exp()).abs() < 1e-12);
        let keep = oks_nms(&[&a, &a2, &far], &[0.8, 0.9, 0.1], &[100.0; 3], &sig, 0.9);
        assert_eq!(keep, vec![1, 2]);
        assert_eq!(oks_nms(&[&a, &a2], &[0.5, 0.5], &[100.0; 2], &sig, 0.9), vec![1], "ties: later first");
    }
}
