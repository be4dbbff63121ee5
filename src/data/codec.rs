//! Keypoints ↔ Gaussian heatmaps, shared by training targets and inference decoding.
//!
//! Encoding follows SimpleBaseline/mmpose `MSRAHeatmap`: a σ = 2 Gaussian in a 6σ+1 window around
//! the heatmap location rounded as the reference rounds it (`int(x / stride + 0.5)`, truncating
//! toward zero), peak 1, weight 0 when the joint is unlabelled or its window misses the map.
//! The unbiased variant (DarkPose) centres the Gaussian on the exact sub-pixel location.
//! Decoding is argmax + a quarter pixel towards the higher neighbour, or DARK (Taylor expansion
//! of the log-heatmap after a Gaussian blur). Coordinates in and out are in input-crop pixels.

pub use crate::config::Decoding;
use crate::config::{Config, Size};

/// Heatmap encoding/decoding for one input size.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapCodec {
    /// Network input, e.g. 192 wide and 256 high.
    pub input: Size,
    /// Heatmaps, e.g. 48 × 64.
    pub heatmap: Size,
    pub sigma: f32,
    /// Centre the Gaussian on the exact location (DarkPose) instead of the rounded one.
    pub unbiased: bool,
}

/// Targets for one instance: `heatmaps[j * H * W + y * W + x]` and one weight per joint.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub heatmaps: Vec<f32>,
    pub weights: Vec<f32>,
}

impl HeatmapCodec {
    pub fn new(input: Size, heatmap: Size, sigma: f32) -> Self {
        HeatmapCodec { input, heatmap, sigma, unbiased: false }
    }

    /// The codec of a config: its input and heatmap sizes, σ, and biased or unbiased targets.
    pub fn from_config(cfg: &Config) -> Self {
        HeatmapCodec {
            unbiased: cfg.unbiased_targets,
            ..HeatmapCodec::new(cfg.input_size, cfg.heatmap_size, cfg.sigma)
        }
    }

    /// Input pixels per heatmap pixel along x and y.
    pub fn stride(&self) -> [f32; 2] {
        [self.input.width as f32 / self.heatmap.width as f32, self.input.height as f32 / self.heatmap.height as f32]
    }

    /// Targets for joints at `keypoints` (input-crop pixels) with `visible[j]` meaning labelled.
    pub fn encode(&self, keypoints: &[[f32; 2]], visible: &[bool]) -> Target {
        let Size { width: w, height: h } = self.heatmap;
        let j_len = keypoints.len();
        let mut heatmaps = vec![0.0f32; j_len * w * h];
        let mut weights = vec![0.0f32; j_len];
        let radius = self.sigma * 3.0;
        let two_s2 = 2.0 * self.sigma * self.sigma;
        let stride = self.stride();
        for (j, (p, &vis)) in keypoints.iter().zip(visible).enumerate() {
            if !vis {
                continue;
            }
            let map = &mut heatmaps[j * w * h..(j + 1) * w * h];
            let (mx, my) = (p[0] / stride[0], p[1] / stride[1]);
            if self.unbiased {
                let (left, top) = (mx - radius, my - radius);
                let (right, bottom) = (mx + radius + 1.0, my + radius + 1.0);
                if left >= w as f32 || top >= h as f32 || right < 0.0 || bottom < 0.0 {
                    continue;
                }
                for y in 0..h {
                    let dy = y as f32 - my;
                    for x in 0..w {
                        let dx = x as f32 - mx;
                        map[y * w + x] = (-(dx * dx + dy * dy) / two_s2).exp();
                    }
                }
            } else {
                // The reference's rounding: int(v + 0.5), which truncates toward zero.
                let (cx, cy) = ((mx + 0.5).trunc() as i64, (my + 0.5).trunc() as i64);
                let r = radius as i64;
                let (x0, y0, x1, y1) = (cx - r, cy - r, cx + r + 1, cy + r + 1);
                if x0 >= w as i64 || y0 >= h as i64 || x1 < 0 || y1 < 0 {
                    continue;
                }
                for y in y0.max(0)..y1.min(h as i64) {
                    let dy = (y - cy) as f32;
                    for x in x0.max(0)..x1.min(w as i64) {
                        let dx = (x - cx) as f32;
                        map[y as usize * w + x as usize] = (-(dx * dx + dy * dy) / two_s2).exp();
                    }
                }
            }
            weights[j] = 1.0;
        }
        Target { heatmaps, weights }
    }

    /// Joint locations (input-crop pixels) and scores (heatmap maxima) from `J × H × W` heatmaps.
    pub fn decode(&self, heatmaps: &[f32], method: Decoding) -> Vec<([f32; 2], f32)> {
        let Size { width: w, height: h } = self.heatmap;
        let stride = self.stride();
        let blur_kernel = dark_blur_kernel(self.sigma);
        heatmaps
            .chunks_exact(w * h)
            .map(|map| {
                let (px, py, score) = argmax(map, w);
                let (mut x, mut y) = (px as f32, py as f32);
                if score > 0.0 {
                    match method {
                        Decoding::Quarter => {
                            if px > 1 && px < w - 1 && py > 1 && py < h - 1 {
                                let at = |xx: usize, yy: usize| map[yy * w + xx];
                                x += 0.25 * sign(at(px + 1, py) - at(px - 1, py));
                                y += 0.25 * sign(at(px, py + 1) - at(px, py - 1));
                            }
                        }
                        Decoding::Dark => {
                            let [dx, dy] = dark_offset(map, w, h, px, py, &blur_kernel);
                            x += dx;
                            y += dy;
                        }
                    }
                } else {
                    (x, y) = (0.0, 0.0);
                }
                ([x * stride[0], y * stride[1]], score)
            })
            .collect()
    }
}

fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// (x, y, value) of the first maximum in row-major order.
fn argmax(map: &[f32], w: usize) -> (usize, usize, f32) {
    let mut best = 0;
    for (i, &v) in map.iter().enumerate() {
        if v > map[best] {
            best = i;
        }
    }
    (best % w, best / w, map[best])
}

/// The normalised 1-D Gaussian DARK blurs with: kernel size 6σ − 1 (11 for σ = 2, as mmpose
/// chooses), the σ OpenCV derives for that size: 0.3·((k − 1)/2 − 1) + 0.8.
pub fn dark_blur_kernel(sigma: f32) -> Vec<f64> {
    let k = ((6.0 * sigma - 1.0).round() as usize).max(3) | 1;
    let s = 0.3 * ((k as f64 - 1.0) * 0.5 - 1.0) + 0.8;
    let c = (k / 2) as f64;
    let raw: Vec<f64> = (0..k).map(|i| (-(i as f64 - c).powi(2) / (2.0 * s * s)).exp()).collect();
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|v| v / sum).collect()
}

/// DARK's sub-pixel offset at the argmax (px, py): blur the map (keeping its maximum), take
/// logs, and step by −H⁻¹·∇ of the log-heatmap. Zero near the border, as in the reference.
fn dark_offset(map: &[f32], w: usize, h: usize, px: usize, py: usize, kernel: &[f64]) -> [f32; 2] {
    if !(px > 1 && px + 2 < w && py > 1 && py + 2 < h) {
        return [0.0, 0.0];
    }
    let blurred = blur_keep_max(map, w, h, kernel);
    let l = |x: usize, y: usize| blurred[y * w + x].max(1e-10).ln();
    let (x, y) = (px, py);
    let dx = 0.5 * (l(x + 1, y) - l(x - 1, y));
    let dy = 0.5 * (l(x, y + 1) - l(x, y - 1));
    let dxx = 0.25 * (l(x + 2, y) - 2.0 * l(x, y) + l(x - 2, y));
    let dxy = 0.25 * (l(x + 1, y + 1) - l(x - 1, y + 1) - l(x + 1, y - 1) + l(x - 1, y - 1));
    let dyy = 0.25 * (l(x, y + 2) - 2.0 * l(x, y) + l(x, y - 2));
    let det = dxx * dyy - dxy * dxy;
    if det == 0.0 {
        return [0.0, 0.0];
    }
    // −H⁻¹ · ∇ with H⁻¹ = [[dyy, −dxy], [−dxy, dxx]] / det.
    let ox = -(dyy * dx - dxy * dy) / det;
    let oy = -(-dxy * dx + dxx * dy) / det;
    [ox as f32, oy as f32]
}

/// Separable Gaussian blur of one map over a zero border (the reference pads with zeros before
/// blurring), rescaled so that its maximum equals the original maximum.
fn blur_keep_max(map: &[f32], w: usize, h: usize, kernel: &[f64]) -> Vec<f64> {
    let r = kernel.len() / 2;
    let mut tmp = vec![0.0f64; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (k, &kv) in kernel.iter().enumerate() {
                let xx = x as i64 + k as i64 - r as i64;
                if xx >= 0 && (xx as usize) < w {
                    acc += kv * map[y * w + xx as usize] as f64;
                }
            }
            tmp[y * w + x] = acc;
        }
    }
    let mut out = vec![0.0f64; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (k, &kv) in kernel.iter().enumerate() {
                let yy = y as i64 + k as i64 - r as i64;
                if yy >= 0 && (yy as usize) < h {
                    acc += kv * tmp[yy as usize * w + x];
                }
            }
            out[y * w + x] = acc;
        }
    }
    let orig_max = map.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
    let new_max = out.iter().cloned().fold(f64::MIN, f64::max);
    if new_max > 0.0 {
        let k = orig_max / new_max;
        out.iter_mut().for_each(|v| *v *= k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(unbiased: bool) -> HeatmapCodec {
        HeatmapCodec { unbiased, ..HeatmapCodec::new(Size::new(192, 256), Size::new(48, 64), 2.0) }
    }

    /// Deterministic spread of sub-pixel test points away from the borders (input pixels).
    fn points() -> Vec<[f32; 2]> {
        (0..200).map(|i| [20.0 + (i as f32 * 7.31) % 150.0, 20.0 + (i as f32 * 11.57) % 210.0]).collect()
    }

    #[test]
    fn every_peak_sits_at_the_rounded_location_with_value_one() {
        let c = codec(false);
        let pts = points();
        let t = c.encode(&pts, &vec![true; pts.len()]);
        for (j, p) in pts.iter().enumerate() {
            let map = &t.heatmaps[j * 48 * 64..(j + 1) * 48 * 64];
            let (x, y) = ((p[0] / 4.0 + 0.5).floor() as usize, (p[1] / 4.0 + 0.5).floor() as usize);
            assert_eq!(map[y * 48 + x], 1.0, "joint {j}");
            assert_eq!(map.iter().cloned().fold(0.0, f32::max), 1.0);
            // Two pixels right: exp(−4 / 8).
            assert!((map[y * 48 + x + 2] - (-0.5f32).exp()).abs() < 1e-7);
            // Outside the 13×13 window: exactly zero.
            assert_eq!(map[y * 48 + x + 7], 0.0);
            assert_eq!(t.weights[j], 1.0);
        }
    }

    #[test]
    fn unlabelled_or_far_joints_get_zero_weight_and_map() {
        let c = codec(false);
        let t = c.encode(&[[50.0, 50.0], [-40.0, 50.0], [50.0, 300.0], [-5.0, 10.0]], &[false, true, true, true]);
        assert_eq!(t.weights, vec![0.0, 0.0, 0.0, 1.0], "a window that still overlaps the map keeps weight 1");
        assert!(t.heatmaps[..3 * 48 * 64].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn quarter_offset_recovers_points_within_a_quarter_heatmap_pixel() {
        let c = codec(true);
        let pts = points();
        let t = c.encode(&pts, &vec![true; pts.len()]);
        let got = c.decode(&t.heatmaps, Decoding::Quarter);
        for (p, (q, score)) in pts.iter().zip(&got) {
            let err = ((p[0] - q[0]) / 4.0).abs().max(((p[1] - q[1]) / 4.0).abs());
            assert!(err <= 0.25 + 1e-5, "{p:?} → {q:?}: {err} heatmap px");
            assert!(*score > 0.88);
        }
    }

    #[test]
    fn dark_recovers_unbiased_targets_within_005_heatmap_pixels() {
        let c = codec(true);
        let pts = points();
        let t = c.encode(&pts, &vec![true; pts.len()]);
        let got = c.decode(&t.heatmaps, Decoding::Dark);
        let mut worst = 0.0f32;
        for (p, (q, _)) in pts.iter().zip(&got) {
            let err = ((p[0] - q[0]) / 4.0).abs().max(((p[1] - q[1]) / 4.0).abs());
            worst = worst.max(err);
        }
        assert!(worst <= 0.05, "worst DARK error {worst} heatmap px");
    }

    #[test]
    fn empty_maps_decode_to_the_origin_with_score_zero() {
        let c = codec(false);
        let got = c.decode(&vec![0.0; 2 * 48 * 64], Decoding::Quarter);
        assert_eq!(got, vec![([0.0, 0.0], 0.0); 2]);
    }
}
