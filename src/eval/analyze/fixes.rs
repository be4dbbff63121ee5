//! The fixes of `--analyze`: each changes the results (or marks GTs ignored) as if one kind of
//! error had not been made, and the metric runs again on the changed file.

use super::joints::JointError;
use super::{stats_of, MatchedDetection, BACKGROUND_OKS};
use crate::coco::{CocoDataset, KeypointResult};
use crate::eval::{descending, CocoEval, EvalParams, Stats};
use anyhow::Result;
use rayon::prelude::*;
use serde::Serialize;

/// One "what if": the stats after a fix, and how many joints, detections or GTs it changed.
#[derive(Debug, Clone, Serialize)]
pub struct Fix {
    pub name: &'static str,
    pub what: &'static str,
    /// Joints moved, detections rescored or removed, or GTs ignored; none for "everything".
    pub changed: Option<usize>,
    pub stats: Stats,
}

/// Detections near no GT and GTs near no detection, among the detections the metric scores
/// (the `max_dets` best of each image).
#[derive(Debug, Clone, Default)]
pub struct Background {
    /// Results whose OKS with every GT of their image is below 0.1.
    pub false_positives: Vec<usize>,
    /// Regular GTs (cell, index) that no detection reaches with OKS 0.1.
    pub false_negatives: Vec<(usize, usize)>,
}

pub fn background(eval: &CocoEval) -> Background {
    let variances = eval.params.variances();
    let all = &eval.params.area_ranges[0];
    let per_cell: Vec<Background> = eval
        .cells
        .par_iter()
        .enumerate()
        .map(|(c, cell)| {
            let (ranked, oks) = eval.ranked_oks(cell, &variances, eval.params.max_det());
            let g_len = cell.gts.len();
            let near = |d: usize, g: usize| oks[d * g_len + g] >= BACKGROUND_OKS;
            Background {
                false_positives: (0..ranked.len())
                    .filter(|&d| !(0..g_len).any(|g| near(d, g)))
                    .map(|d| ranked[d])
                    .collect(),
                false_negatives: (0..g_len)
                    .filter(|&g| {
                        let gt = &cell.gts[g].0;
                        !gt.ignore && all.contains(gt.area) && !(0..ranked.len()).any(|d| near(d, g))
                    })
                    .map(|g| (c, g))
                    .collect(),
            }
        })
        .collect();
    let mut out = Background::default();
    for b in per_cell {
        out.false_positives.extend(b.false_positives);
        out.false_negatives.extend(b.false_negatives);
    }
    out
}

/// The score each result would have if scores ranked detections perfectly: its OKS with the
/// regular GT it gets when every image's (detection, GT) pairs are assigned one to one, highest
/// OKS first; 0 for the rest (duplicates and background). All detections of an image take part,
/// not only the `max_dets` best, since rescoring can bring one into them. Results outside the GT
/// file's images or categories keep their score.
pub fn rescored(eval: &CocoEval) -> Vec<f64> {
    let variances = eval.params.variances();
    let all = &eval.params.area_ranges[0];
    let per_cell: Vec<Vec<(usize, f64)>> = eval
        .cells
        .par_iter()
        .map(|cell| {
            let (ranked, oks) = eval.ranked_oks(cell, &variances, usize::MAX);
            let g_len = cell.gts.len();
            let regular: Vec<bool> = cell.gts.iter().map(|(g, _)| !g.ignore && all.contains(g.area)).collect();
            let mut pairs: Vec<(f64, usize, usize)> = (0..ranked.len())
                .flat_map(|d| (0..g_len).map(move |g| (d, g)))
                .filter(|&(d, g)| regular[g] && oks[d * g_len + g] > 0.0)
                .map(|(d, g)| (oks[d * g_len + g], d, g))
                .collect();
            pairs.sort_by(|a, b| descending(a.0, b.0));
            let mut score = vec![0.0; ranked.len()];
            let (mut d_done, mut g_done) = (vec![false; ranked.len()], vec![false; g_len]);
            for (v, d, g) in pairs {
                if !d_done[d] && !g_done[g] {
                    (d_done[d], g_done[g], score[d]) = (true, true, v);
                }
            }
            ranked.into_iter().zip(score).collect()
        })
        .collect();
    let mut scores: Vec<f64> = eval.results.iter().map(|r| r.score).collect();
    for (r, s) in per_cell.into_iter().flatten() {
        scores[r] = s;
    }
    scores
}

/// `results` with the joints of `matched` detections whose error is one of `errors` moved where
/// the fix puts them; also the number of joints moved. Areas stay as the file gave them, as in
/// coco-analyze (they decide only which area range an unmatched detection falls in).
pub fn with_joints_fixed(
    results: &[KeypointResult],
    matched: &[MatchedDetection],
    errors: &[JointError],
) -> (Vec<KeypointResult>, usize) {
    let mut fixed = results.to_vec();
    let mut moved = 0;
    for m in matched {
        let kp = &mut fixed[m.result].keypoints;
        for (j, v) in m.verdicts.iter().enumerate() {
            if let Some(v) = v.filter(|v| errors.contains(&v.error)) {
                (kp[3 * j], kp[3 * j + 1]) = (v.fixed[0], v.fixed[1]);
                moved += 1;
            }
        }
    }
    (fixed, moved)
}

fn with_scores(results: &[KeypointResult], scores: &[f64]) -> (Vec<KeypointResult>, usize) {
    let changed = results.iter().zip(scores).filter(|(r, &s)| r.score != s).count();
    let out = results.iter().zip(scores).map(|(r, &s)| KeypointResult { score: s, ..r.clone() }).collect();
    (out, changed)
}

fn without(results: &[KeypointResult], removed: &[usize]) -> Vec<KeypointResult> {
    let mut keep = vec![true; results.len()];
    removed.iter().for_each(|&r| keep[r] = false);
    results.iter().zip(keep).filter(|(_, k)| *k).map(|(r, _)| r.clone()).collect()
}

/// Every fix: each keypoint error alone, all of them, rescoring, background false positives
/// removed, missed GTs ignored (each alone), then everything in coco-analyze's order
/// (keypoints, then scores and background measured on the fixed file).
pub fn run_all(
    gt: &CocoDataset,
    results: &[KeypointResult],
    params: &EvalParams,
    matched: &[MatchedDetection],
    background: &Background,
) -> Result<Vec<Fix>> {
    let mut out = Vec::new();
    for error in JointError::ERRORS {
        let (fixed, moved) = with_joints_fixed(results, matched, &[error]);
        let (name, what) = match error {
            JointError::Jitter => ("jitter", "jitter joints moved onto their GT joint"),
            JointError::Inversion => ("inversion", "inverted joints moved to their own side, as near as they were"),
            JointError::Swap => ("swap", "swapped joints moved to their own person, as near as they were"),
            _ => ("miss", "missed joints moved onto their GT joint"),
        };
        out.push(Fix { name, what, changed: Some(moved), stats: stats_of(gt, &fixed, params, &[])? });
    }
    let (all_joints, moved) = with_joints_fixed(results, matched, &JointError::ERRORS);
    let stats = stats_of(gt, &all_joints, params, &[])?;
    out.push(Fix { name: "all keypoint errors", what: "the four fixes above together", changed: Some(moved), stats });

    let (rescored_results, changed) = with_scores(results, &rescored(&CocoEval::new(gt, results, params.clone())?));
    let stats = stats_of(gt, &rescored_results, params, &[])?;
    out.push(Fix {
        name: "scores",
        what: "each detection scored by its OKS with the GT it is best assigned to",
        changed: Some(changed),
        stats,
    });
    let stats = stats_of(gt, &without(results, &background.false_positives), params, &[])?;
    let changed = background.false_positives.len();
    out.push(Fix {
        name: "background",
        what: "detections with OKS < 0.1 to every GT removed",
        changed: Some(changed),
        stats,
    });
    let stats = stats_of(gt, results, params, &background.false_negatives)?;
    let changed = background.false_negatives.len();
    out.push(Fix {
        name: "missed persons",
        what: "GTs that no detection reaches with OKS 0.1 ignored",
        changed: Some(changed),
        stats,
    });

    let scores = rescored(&CocoEval::new(gt, &all_joints, params.clone())?);
    let (everything, _) = with_scores(&all_joints, &scores);
    let bg = background_of(gt, &everything, params)?;
    let everything = without(&everything, &bg.false_positives);
    let stats = stats_of(gt, &everything, params, &bg.false_negatives)?;
    out.push(Fix {
        name: "everything",
        what: "keypoints, then scores, background and missed persons",
        changed: None,
        stats,
    });
    Ok(out)
}

fn background_of(gt: &CocoDataset, results: &[KeypointResult], params: &EvalParams) -> Result<Background> {
    Ok(background(&CocoEval::new(gt, results, params.clone())?))
}
