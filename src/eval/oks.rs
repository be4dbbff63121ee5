//! Object keypoint similarity, computed in the same floating-point order as pycocotools
//! (`COCOeval.computeOks`), so that matches at a threshold's edge fall the same way.

/// numpy's pairwise summation (`pairwise_sum_DOUBLE`): 8 accumulators up to 128 values,
/// halving above. Summation order changes the last bits, and `np.sum`/`np.mean` use this.
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `numpy.mean` of a 1-D array.
pub fn numpy_mean(a: &[f64]) -> f64 {
    pairwise_sum(a) / a.len() as f64
}

/// The ground-truth side of an OKS computation.
#[derive(Debug, Clone, Copy)]
pub struct GtShape<'a> {
    /// `[x, y, v] × K`.
    pub keypoints: &'a [f64],
    /// `[x, y, w, h]`; distances go to twice this box when no joint is labelled.
    pub bbox: [f64; 4],
    pub area: f64,
}

/// OKS between detected keypoints `[x, y, score] × K` and one ground truth.
/// `variances` are (2σ)² per joint. Joints with v > 0 count; with none labelled, each detected
/// joint is measured to the box [x−w, x+2w] × [y−h, y+2h] and all K count.
pub fn oks(detected: &[f64], gt: &GtShape, variances: &[f64]) -> f64 {
    let k = variances.len();
    let labelled = gt.keypoints.chunks_exact(3).filter(|p| p[2] > 0.0).count();
    let [bx, by, bw, bh] = gt.bbox;
    let (x0, x1, y0, y1) = (bx - bw, bx + bw * 2.0, by - bh, by + bh * 2.0);
    let denom = gt.area + f64::EPSILON;
    let mut terms = [0.0f64; 64];
    let mut big = Vec::new();
    let terms: &mut [f64] = if k <= 64 {
        &mut terms[..k]
    } else {
        big.resize(k, 0.0);
        &mut big
    };
    let mut n = 0;
    for j in 0..k {
        let (xd, yd) = (detected[3 * j], detected[3 * j + 1]);
        let (dx, dy) = if labelled > 0 {
            if gt.keypoints[3 * j + 2] <= 0.0 {
                continue;
            }
            (xd - gt.keypoints[3 * j], yd - gt.keypoints[3 * j + 1])
        } else {
            ((x0 - xd).max(0.0) + (xd - x1).max(0.0), (y0 - yd).max(0.0) + (yd - y1).max(0.0))
        };
        let e = (dx * dx + dy * dy) / variances[j] / denom / 2.0;
        terms[n] = (-e).exp();
        n += 1;
    }
    pairwise_sum(&terms[..n]) / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_follows_numpys_order() {
        // 1e16 + 1 + … : the blocked order keeps ones that a left-to-right sum would drop.
        let mut a = vec![1.0; 16];
        a[0] = 1e16;
        let naive: f64 = a.iter().sum();
        // numpy: r0 = 1e16 + 1 (rounds to 1e16), r1..r7 = 2 each; tree: (1e16 + 2) + … = 1e16 + 14.
        assert_eq!(pairwise_sum(&a), 1e16 + 14.0);
        assert_eq!(naive, 1e16, "a left-to-right sum loses every 1");
        let v: Vec<f64> = (0..1000).map(|i| (i as f64).sqrt()).collect();
        assert!((pairwise_sum(&v) - v.iter().sum::<f64>()).abs() < 1e-9);
    }

    #[test]
    fn oks_by_hand() {
        // Two joints, one labelled; the detection is off by (3, 4) on it: e = 25 / 0.04 / 100 / 2.
        let gt = GtShape { keypoints: &[10.0, 10.0, 2.0, 0.0, 0.0, 0.0], bbox: [0.0, 0.0, 10.0, 10.0], area: 100.0 };
        let vars = [0.04, 0.09];
        let got = oks(&[13.0, 14.0, 1.0, 500.0, 500.0, 1.0], &gt, &vars);
        let e: f64 = 25.0 / 0.04 / (100.0 + f64::EPSILON) / 2.0;
        assert_eq!(got, (-e).exp());
        assert_eq!(oks(&[10.0, 10.0, 1.0, 0.0, 0.0, 0.0], &gt, &vars), 1.0);
    }

    #[test]
    fn oks_without_labelled_joints_uses_the_doubled_box() {
        let gt = GtShape { keypoints: &[0.0; 6], bbox: [10.0, 20.0, 10.0, 5.0], area: 50.0 };
        let vars = [1.0, 1.0];
        // Inside [0, 30] × [15, 30]: distance 0 for both joints.
        assert_eq!(oks(&[0.0, 15.0, 1.0, 30.0, 30.0, 1.0], &gt, &vars), 1.0);
        // One joint 4 px left of the box and 3 px below it: e = 25 / 1 / 50 / 2.
        let e: f64 = 25.0 / 1.0 / (50.0 + f64::EPSILON) / 2.0;
        assert_eq!(oks(&[-4.0, 33.0, 1.0, 5.0, 20.0, 1.0], &gt, &vars), ((-e).exp() + 1.0) / 2.0);
    }
}
