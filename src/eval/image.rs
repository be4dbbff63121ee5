//! Per-image, per-category matching (`COCOeval.evaluateImg`), quirks included.

use super::params::{AreaRange, EvalParams};
use crate::coco::Id;

/// A ground truth as the matcher sees it.
#[derive(Debug, Clone, Copy)]
pub struct GtRef {
    pub id: Id,
    pub area: f64,
    pub iscrowd: bool,
    /// `iscrowd`, or no labelled joints by the reference's rule (`num_keypoints == 0`, or no v > 0
    /// under xtcocotools' `use_area=False`); a GT's own `ignore` field is overwritten, as both do.
    pub ignore: bool,
}

/// The outcome for one (image, category, area range).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEval {
    /// Scores of the kept detections, highest first (stable).
    pub dt_scores: Vec<f64>,
    /// `[t * D + d]`: matched to a GT (pycocotools stores the GT id and tests it for truth, so a
    /// match to id 0 does not count there; xtcocotools' −1 marker counts it).
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
    let order = match_order(&gt_ignore);
    let t_len = params.thresholds.len();
    // pycocotools marks "unmatched" with the id 0, so a match to a GT with id 0 is lost;
    // xtcocotools marks it with −1.
    let counts_as_matched_id = |id| params.reference != super::Reference::Pycocotools || id != 0;
    let mut dt_matched = vec![false; t_len * d_len];
    let mut dt_ignore = vec![false; t_len * d_len];
    if g_len > 0 && d_len > 0 {
        let mut gt_taken = vec![false; g_len];
        let mut taken_by = vec![None; d_len];
        for (t, &thr) in params.thresholds.iter().enumerate() {
            greedy_match(gts, &gt_ignore, &order, oks, thr, &mut gt_taken, &mut taken_by);
            for (d, m) in taken_by.iter().enumerate() {
                if let Some(g) = *m {
                    let counts_as_matched = counts_as_matched_id(gts[g].id);
                    dt_ignore[t * d_len + d] = gt_ignore[g];
                    dt_matched[t * d_len + d] = counts_as_matched;
                }
            }
        }
    }
    // Unmatched detections outside the area range are ignored; "unmatched" is pycocotools'
    // `dtm == 0`, which also holds for a match to a GT with id 0 (xtcocotools: `dtm < 0`).
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

/// The GT each detection takes at one OKS threshold (`COCOeval.evaluateImg`'s greedy loop):
/// detections in score order each take the best free GT, regular GTs before ignored ones, crowds
/// any number of times. `order` lists regular GTs first, then ignored, each in file order;
/// `taken_by[d]` gets the GT index (original order) or `None`. `taken` is scratch, one per GT.
pub fn greedy_match(
    gts: &[GtRef],
    gt_ignore: &[bool],
    order: &[usize],
    oks: &[f64],
    thr: f64,
    taken: &mut [bool],
    taken_by: &mut [Option<usize>],
) {
    let g_len = gts.len();
    taken.iter_mut().for_each(|x| *x = false);
    for (d, out) in taken_by.iter_mut().enumerate() {
        let mut best = thr.min(1.0 - 1e-10);
        let mut m: Option<usize> = None;
        for (slot, &g) in order.iter().enumerate() {
            if taken[slot] && !gts[g].iscrowd {
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
            taken[ms] = true;
        }
        *out = m.map(|ms| order[ms]);
    }
}

/// Regular GTs first, ignored last, each group in file order (a stable sort on the flag).
pub fn match_order(gt_ignore: &[bool]) -> Vec<usize> {
    let g_len = gt_ignore.len();
    (0..g_len).filter(|&g| !gt_ignore[g]).chain((0..g_len).filter(|&g| gt_ignore[g])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gt(id: Id, area: f64, iscrowd: bool, ignore: bool) -> GtRef {
        GtRef { id, area, iscrowd, ignore }
    }

    #[test]
    fn greedy_matching_by_hand() {
        let p = EvalParams::keypoints(vec![0.1]);
        let all = &p.area_ranges[0];
        // GT 0 regular, GT 1 crowd (ignored). Three detections, best score first.
        let gts = [gt(7, 5000.0, false, false), gt(8, 5000.0, true, true)];
        let dts = [(0.9, 100.0), (0.8, 100.0), (0.7, 100.0)];
        #[rustfmt::skip]
        let oks = [
            0.80, 0.95, // d0: the regular GT is enough even though the crowd is closer
            0.90, 0.60, // d1: GT 7 is taken, so the crowd (matched any number of times)
            0.10, 0.70, // d2: crowd again
        ];
        let e = evaluate_image(&gts, &dts, &oks, all, &p);
        let t50 = 0; // OKS 0.50
        let d_len = 3;
        assert_eq!(&e.dt_matched[t50 * d_len..t50 * d_len + 3], &[true, true, true]);
        assert_eq!(&e.dt_ignore[t50 * d_len..t50 * d_len + 3], &[false, true, true]);
        // At 0.85 (t = 7): d0 misses GT 7 (0.80) and takes the crowd; d1 takes GT 7 (0.90).
        let t85 = 7;
        assert_eq!(&e.dt_matched[t85 * d_len..t85 * d_len + 3], &[true, true, false]);
        assert_eq!(&e.dt_ignore[t85 * d_len..t85 * d_len + 3], &[true, false, false]);
        assert_eq!(e.num_gt_regular, 1);
    }

    #[test]
    fn gt_id_zero_and_area_range() {
        let p = EvalParams::keypoints(vec![0.1]);
        let medium = &p.area_ranges[1];
        let gts = [gt(0, 5000.0, false, false)];
        // d0 matches the id-0 GT: counted unmatched, and as its own area (50) is outside the
        // medium range it is then ignored. d1 is unmatched and inside the range: a false positive.
        let dts = [(0.9, 50.0), (0.5, 2000.0)];
        let e = evaluate_image(&gts, &dts, &[0.99, 0.2], medium, &p);
        assert_eq!(&e.dt_matched[..2], &[false, false]);
        assert_eq!(&e.dt_ignore[..2], &[true, false]);
        // A GT outside the range is ignored, and a detection matched to it too.
        let large = &p.area_ranges[2];
        let e = evaluate_image(&[gt(3, 5000.0, false, false)], &dts[..1], &[0.99], large, &p);
        assert_eq!((e.num_gt_regular, e.dt_matched[0], e.dt_ignore[0]), (0, true, true));
    }
}
