//! Person boxes ↔ centre-net maps, shared by the detector's training targets and its decoding,
//! in input pixels at the head's stride.
//!
//! The heatmap is CenterNet's (Zhou et al., "Objects as Points", 2019): each box puts a Gaussian
//! peak (1 exactly) on the cell of its centre. The Gaussian is TTFNet's elliptical one (Liu et
//! al., AAAI 2020), σ = α·w/6 across and α·h/6 down, which follows a person's tall box. The
//! boxes are regressed as TTFNet does, not as CenterNet does: every cell of the box's central
//! α·w × α·h part (the centre cell always) learns the distances from its own centre to the four
//! sides, weighted by the Gaussian and normalised so that each box weighs 1 — dozens of training
//! cells per person instead of one, which is what lets a detector learn in minutes. Distances
//! are regressed as logarithms (in cells), so an error of 10% costs the same for every size.
//! Crowd regions mark their cells as ignored. Decoding keeps the cells that are the maximum of
//! their 3×3 neighbourhood (CenterNet's max-pool NMS), best first, and reads the box at the peak.

use crate::config::Size;

/// The channels of a target: centre heatmap; ln of the distances (cells) from the cell's centre
/// to the box's left, top, right and bottom sides; the regression weight; the ignore mask (1 in
/// crowd regions).
pub const TARGET_CHANNELS: usize = 7;
/// The target channel of the regression weights, and of the ignore mask.
pub const WEIGHT_CHANNEL: usize = 5;
pub const IGNORE_CHANNEL: usize = 6;

/// Encoding and decoding for one input size.
#[derive(Debug, Clone, PartialEq)]
pub struct CenterCodec {
    pub input: Size,
    /// The head's output, `input / stride`.
    pub output: Size,
    pub gaussian_alpha: f64,
}

/// A decoded box: `[x, y, w, h]` in input pixels and the peak's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredBox {
    pub bbox: [f64; 4],
    pub score: f64,
}

impl CenterCodec {
    pub fn stride(&self) -> f64 {
        self.input.width as f64 / self.output.width as f64
    }

    /// The `TARGET_CHANNELS × H × W` maps of `boxes` and `crowds` (`[x, y, w, h]`, input pixels).
    /// A box whose centre falls outside the map or whose size is not positive is left out. Where
    /// boxes overlap, the heatmap keeps the maximum and the regression belongs to the smaller box.
    pub fn encode(&self, boxes: &[[f64; 4]], crowds: &[[f64; 4]]) -> Vec<f32> {
        let (w, h) = (self.output.width, self.output.height);
        let plane = w * h;
        let mut maps = vec![0.0f32; TARGET_CHANNELS * plane];
        let stride = self.stride();
        for b in crowds {
            let x0 = (b[0] / stride).floor().max(0.0) as usize;
            let y0 = (b[1] / stride).floor().max(0.0) as usize;
            let x1 = (((b[0] + b[2]) / stride).ceil().min(w as f64)).max(0.0) as usize;
            let y1 = (((b[1] + b[3]) / stride).ceil().min(h as f64)).max(0.0) as usize;
            for y in y0..y1 {
                maps[IGNORE_CHANNEL * plane + y * w + x0.min(x1)..IGNORE_CHANNEL * plane + y * w + x1].fill(1.0);
            }
        }
        // Largest first, so that a smaller box drawn later takes the cells they share.
        let mut order: Vec<[f64; 4]> = boxes.iter().map(|b| b.map(|v| v / stride)).collect();
        order.sort_by(|a, b| (b[2] * b[3]).total_cmp(&(a[2] * a[3])));
        for b in order {
            let (cx, cy) = (b[0] + b[2] / 2.0, b[1] + b[3] / 2.0);
            if !(b[2] > 0.0 && b[3] > 0.0 && cx >= 0.0 && cy >= 0.0 && cx < w as f64 && cy < h as f64) {
                continue;
            }
            self.draw_box(&mut maps, b, (cx.floor() as usize, cy.floor() as usize));
        }
        maps
    }

    /// σ across and down of a box `w × h` cells: at least half a cell, so that a tiny box
    /// still has a peak and neighbours.
    fn sigmas(&self, w: f64, h: f64) -> (f64, f64) {
        ((self.gaussian_alpha * w / 6.0).max(0.5), (self.gaussian_alpha * h / 6.0).max(0.5))
    }

    /// The Gaussian of box `b` (cells) peaking at cell `(ix, iy)`, and its regression targets.
    fn draw_box(&self, maps: &mut [f32], b: [f64; 4], (ix, iy): (usize, usize)) {
        let (w, h) = (self.output.width, self.output.height);
        let plane = w * h;
        let (sx, sy) = self.sigmas(b[2], b[3]);
        let gauss = |x: usize, y: usize| {
            let (dx, dy) = (x as f64 - ix as f64, y as f64 - iy as f64);
            (-(dx * dx) / (2.0 * sx * sx) - (dy * dy) / (2.0 * sy * sy)).exp()
        };
        let (rx, ry) = ((3.0 * sx).ceil() as usize, (3.0 * sy).ceil() as usize);
        for y in iy.saturating_sub(ry)..(iy + ry + 1).min(h) {
            for x in ix.saturating_sub(rx)..(ix + rx + 1).min(w) {
                let cell = &mut maps[y * w + x];
                *cell = cell.max(gauss(x, y) as f32);
            }
        }
        // The regression cells: centres inside the central α part of the box, and the peak.
        let (cx, cy) = (b[0] + b[2] / 2.0, b[1] + b[3] / 2.0);
        let (hw, hh) = (self.gaussian_alpha * b[2] / 2.0, self.gaussian_alpha * b[3] / 2.0);
        let central = |x: usize, y: usize| (x as f64 + 0.5 - cx).abs() <= hw && (y as f64 + 0.5 - cy).abs() <= hh;
        let xs = (cx - hw).floor().max(0.0) as usize..((cx + hw).ceil() as usize).min(w);
        let ys = (cy - hh).floor().max(0.0) as usize..((cy + hh).ceil() as usize).min(h);
        let mut cells: Vec<(usize, usize)> = ys
            .flat_map(|y| xs.clone().map(move |x| (x, y)))
            .filter(|&(x, y)| (x, y) != (ix, iy) && central(x, y))
            .collect();
        cells.push((ix, iy));
        let total: f64 = cells.iter().map(|&(x, y)| gauss(x, y)).sum();
        for (x, y) in cells {
            let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
            let at = y * w + x;
            // The peak cell's centre can lie outside a box of under a cell: distances stay positive.
            let sides = [px - b[0], py - b[1], b[0] + b[2] - px, b[1] + b[3] - py];
            for (c, d) in sides.into_iter().enumerate() {
                maps[(1 + c) * plane + at] = d.max(0.1).ln() as f32;
            }
            maps[WEIGHT_CHANNEL * plane + at] = (gauss(x, y) / total) as f32;
        }
    }

    /// The boxes of one image's maps: `heat` (scores in [0, 1], H × W) and `regression` (ln
    /// distances to the left, top, right and bottom sides in cells: 4 × H × W). Peaks of the 3×3
    /// neighbourhood with a score of at least `min_score`, the `top_k` best, best first.
    pub fn decode(&self, heat: &[f32], regression: &[f32], top_k: usize, min_score: f64) -> Vec<ScoredBox> {
        let (w, h) = (self.output.width, self.output.height);
        let plane = w * h;
        let mut peaks: Vec<(f32, usize)> = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let v = heat[y * w + x];
                if (v as f64) < min_score {
                    continue;
                }
                let is_peak = (y.saturating_sub(1)..(y + 2).min(h))
                    .all(|ny| (x.saturating_sub(1)..(x + 2).min(w)).all(|nx| heat[ny * w + nx] <= v));
                if is_peak {
                    peaks.push((v, y * w + x));
                }
            }
        }
        // Best first; ties in raster order.
        peaks.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        peaks.truncate(top_k);
        let stride = self.stride();
        peaks
            .into_iter()
            .map(|(score, at)| {
                let (px, py) = ((at % w) as f64 + 0.5, (at / w) as f64 + 0.5);
                // The exponent is bounded so that an untrained network cannot give infinite boxes.
                let d = |c: usize| (regression[c * plane + at] as f64).min(20.0).exp();
                let (x0, y0, x1, y1) = (px - d(0), py - d(1), px + d(2), py + d(3));
                ScoredBox {
                    bbox: [x0 * stride, y0 * stride, (x1 - x0) * stride, (y1 - y0) * stride],
                    score: score as f64,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> CenterCodec {
        CenterCodec { input: Size::new(64, 48), output: Size::new(16, 12), gaussian_alpha: 0.54 }
    }

    #[test]
    fn targets_by_hand() {
        let c = codec();
        let plane = 16 * 12;
        // Box 10..30 × 6..46 px = 2.5..7.5 × 1.5..11.5 cells: centre (5, 6.5), size 5 × 10 cells.
        let maps = c.encode(&[[10.0, 6.0, 20.0, 40.0]], &[]);
        let at = 6 * 16 + 5;
        assert_eq!(maps[at], 1.0, "peak 1 at the centre cell");
        // Cell (5, 6) has its centre at (5.5, 6.5): 3 cells to the left side, 5 to the top, 2 to
        // the right, 5 to the bottom.
        let ln = |v: f64| v.ln() as f32;
        assert_eq!([1, 2, 3, 4].map(|ch| maps[ch * plane + at]), [ln(3.0), ln(5.0), ln(2.0), ln(5.0)]);
        // One cell right: σx = 0.54·5/6 = 0.45 → 0.5 (the floor); exp(−1/(2·0.25)) = e^−2.
        assert!((maps[at + 1] - (-2.0f32).exp()).abs() < 1e-6);
        // One cell down: σy = 0.54·10/6 = 0.9: exp(−1/1.62).
        assert!((maps[at + 16] - (-1.0f32 / 1.62).exp()).abs() < 1e-6);
        // Regression cells: centres within 1.35 cells of x = 5 and 2.7 of y = 6.5, i.e. x in
        // {4, 5} (centres 4.5, 5.5; 3.5 and 6.5 are 1.5 away) and y in 4..=8: 10 cells, whose
        // Gaussian weights sum to 1.
        let weighted: Vec<usize> = (0..plane).filter(|&i| maps[WEIGHT_CHANNEL * plane + i] > 0.0).collect();
        let want: Vec<usize> = (4..=8).flat_map(|y| [y * 16 + 4, y * 16 + 5]).collect();
        assert_eq!(weighted, want);
        let total: f32 = maps[WEIGHT_CHANNEL * plane..IGNORE_CHANNEL * plane].iter().sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
        assert!(maps[IGNORE_CHANNEL * plane..].iter().all(|&v| v == 0.0), "no crowd");
    }

    #[test]
    fn crowds_mark_their_cells_and_outside_centres_are_dropped() {
        let c = codec();
        let plane = 16 * 12;
        // Crowd 6..14 × 0..5 px covers cells x 1..4 (6/4 = 1.5 floor 1, 14/4 = 3.5 ceil 4), y 0..2.
        let maps = c.encode(&[[-30.0, 0.0, 20.0, 10.0]], &[[6.0, 0.0, 8.0, 5.0]]);
        let ignored: Vec<usize> = (0..plane).filter(|&i| maps[IGNORE_CHANNEL * plane + i] == 1.0).collect();
        assert_eq!(ignored, vec![1, 2, 3, 17, 18, 19]);
        assert!(maps[..plane].iter().all(|&v| v == 0.0), "a centre left of the map draws nothing");
    }

    #[test]
    fn decoding_the_targets_gives_the_boxes_back() {
        let c = codec();
        let plane = 16 * 12;
        let boxes = [[10.0, 6.0, 20.0, 40.0], [40.25, 10.5, 12.0, 30.0], [2.0, 2.0, 6.0, 8.0]];
        let maps = c.encode(&boxes, &[]);
        let got = c.decode(&maps[..plane], &maps[plane..5 * plane], 10, 0.5);
        assert_eq!(got.len(), 3, "three peaks: {got:?}");
        for b in &boxes {
            let found = got.iter().find(|g| (0..4).all(|i| (g.bbox[i] - b[i]).abs() < 1e-4));
            assert!(found.is_some_and(|g| g.score == 1.0), "{b:?} not decoded: {got:?}");
        }
        assert_eq!(c.decode(&maps[..plane], &maps[plane..5 * plane], 2, 0.5).len(), 2, "top-K");
    }

    #[test]
    fn shared_cells_regress_the_smaller_box() {
        let c = codec();
        let plane = 16 * 12;
        // A small box inside a large one, both centred at (8, 6) cells.
        let maps = c.encode(&[[8.0, 8.0, 48.0, 32.0], [24.0, 16.0, 16.0, 16.0]], &[]);
        let at = 6 * 16 + 8;
        // Cell (8, 6) has its centre at (8.5, 6.5): 2.5 cells from the small box's left side.
        assert_eq!(maps[plane + at], 2.5f64.ln() as f32);
        // Cell (5, 6) only the large box reaches: 3.5 cells from its left side (x = 2).
        assert_eq!(maps[plane + 6 * 16 + 5], 3.5f64.ln() as f32);
    }

    #[test]
    fn peaks_are_3x3_maxima_and_ties_keep_plateaus() {
        let c = CenterCodec { input: Size::new(16, 16), output: Size::new(4, 4), gaussian_alpha: 0.54 };
        #[rustfmt::skip]
        let heat = [
            0.9, 0.5, 0.1, 0.0,
            0.5, 0.2, 0.1, 0.7,
            0.1, 0.1, 0.3, 0.7,
            0.0, 0.0, 0.0, 0.05,
        ];
        let mut reg = [0.0f32; 4 * 16];
        reg[2 * 16..3 * 16].fill(2f32.ln()); // 2 cells to the right side, 1 to the others
        let got: Vec<f64> = c.decode(&heat, &reg, 10, 0.0).iter().map(|b| b.score).collect();
        // 0.9 (top left); both 0.7s (a plateau: each is the max of its window). 0.3 sees 0.7.
        assert_eq!(got, vec![0.9f32 as f64, 0.7f32 as f64, 0.7f32 as f64]);
        let b = c.decode(&heat, &reg, 1, 0.0)[0].bbox;
        // Cell (0, 0), centre (0.5, 0.5) cells: x −0.5..2.5, y −0.5..1.5 cells, × 4 px.
        assert!(b.iter().zip([-2.0, -2.0, 12.0, 8.0]).all(|(g, w)| (g - w).abs() < 1e-6), "{b:?}");
    }
}
