//! Per-image, per-category matching (`COCOeval.evaluateImg`), quirks included.

use super::params::{AreaRange, EvalParams};
use crate::coco::Id;

/// A ground truth as the matcher sees it.
#[derive(Debug, Clone, Copy)]
pub struct GtRef {
    pub id: Id,
    pub area: f64,
    pub iscrowd: bool,
    /// `iscrowd` or `num_keypoints == 0` (a GT's own `ignore` field is overwritten, as in pycocotools).
    pub ignore: bool,
}

/// The outcome for one (image, category, area range).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEval {
    /// Scores of the kept detections, highest first (stable).
    pub dt_scores: Vec<f64>,
    /// `[t * D + d]`: matched to a GT whose id is not 0 (pycocotools stores the GT id and tests it for truth).
    pub dt_matched: Vec<bool>,
    /// `[t * D + d]`: matched to an ignored GT, or unmatched and outside the area range.
    pub dt_ignore: Vec<bool>,
    /// GTs that count for recall: not ignored and inside the area range.
    pub num_gt_regular: usize,
}

/// Greedy matching at each OKS threshold.
/// `dts` are (score, area) already sorted by score and cut to `max_dets`; `oks[d * G + g]`
/// is in the GTs' original order.
pub fn evaluate_image(
    gts: &[GtRef],
    dts: &[(f64, f64)],
    oks: &[f64],
    area: &AreaRange,
    params: &EvalParams,
) -> ImageEval {
    let g_len = gts.len();
    let d_len = dts.len();
    let gt_ignore: Vec<bool> = gts.iter().map(|g| g.ignore || !area.contains(g.area)).collect();
    // Regular GTs first, ignored last, each group in file order (a stable sort on the flag).
    let order: Vec<usize> = (0..g_len).filter(|&g| !gt_ignore[g]).chain((0..g_len).filter(|&g| gt_ignore[g])).collect();
    let t_len = params.oks_thresholds.len();
    let mut dt_matched = vec![false; t_len * d_len];
    let mut dt_ignore = vec![false; t_len * d_len];
    if g_len > 0 && d_len > 0 {
        let mut gt_taken = vec![false; g_len];
        for (t, &thr) in params.oks_thresholds.iter().enumerate() {
            gt_taken.iter_mut().for_each(|x| *x = false);
            for d in 0..d_len {
                let mut best = thr.min(1.0 - 1e-10);
                let mut m: Option<usize> = None;
                for (slot, &g) in order.iter().enumerate() {
                    if gt_taken[slot] && !gts[g].iscrowd {
                        continue;
                    }
                    // Once matched to a regular GT, ignored GTs (all after it) cannot win.
                    if let Some(ms) = m {
                        if !gt_ignore[order[ms]] && gt_ignore[g] {
                            break;
                        }
                    }
                    let v = oks[d * g_len + g];
                    if v < best {
                        continue;
                    }
                    best = v;
                    m = Some(slot);
                }
                if let Some(ms) = m {
                    let g = order[ms];
                    dt_ignore[t * d_len + d] = gt_ignore[g];
                    dt_matched[t * d_len + d] = gts[g].id != 0;
                    gt_taken[ms] = true;
                }
            }
        }
    }
    // Unmatched detections outside the area range are ignored; "unmatched" is pycocotools'
    // `dtm == 0`, which also holds for a match to a GT with id 0.
    for t in 0..t_len {
        for (d, &(_, d_area)) in dts.iter().enumerate() {
            let i = t * d_len + d;
            if !dt_matched[i] && !area.contains(d_area) {
                dt_ignore[i] = true;
            }
        }
    }
    ImageEval {
        dt_scores: dts.iter().map(|&(s, _)| s).collect(),
        dt_matched,
        dt_ignore,
        num_gt_regular: gt_ignore.iter().filter(|&&i| !i).count(),
    }
}
