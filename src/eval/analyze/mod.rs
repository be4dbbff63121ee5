//! `dypose eval --analyze`: why the AP is what it is. Per-keypoint accuracy and the error
//! taxonomy of Ronchi & Perona (ICCV 2017) on the detections the metric matches at OKS 0.5, and
//! the AP after fixing each kind of error, re-evaluated with the same exact metric.

pub mod fixes;
pub mod joints;
pub mod report;

use super::{CocoEval, EvalParams, Stats};
use crate::coco::{CocoDataset, KeypointResult, KeypointSpec};
use anyhow::Result;
use joints::{classify, JointVerdict, Person};
use rayon::prelude::*;
pub use report::{Analysis, ErrorCounts, KeypointReport, PrCurve};

/// The OKS at which detections are matched for the keypoint analysis (the metric's first threshold).
pub const MATCH_OKS: f64 = 0.5;
/// Below this OKS with every GT, a detection is on the background; a GT no detection reaches
/// this is missed entirely (coco-analyze's localisation threshold).
pub const BACKGROUND_OKS: f64 = 0.1;

/// A detection matched at OKS 0.5 (area "all") to a regular GT, with a verdict per labelled joint.
#[derive(Debug, Clone)]
pub struct MatchedDetection {
    /// Index into the results.
    pub result: usize,
    pub verdicts: Vec<Option<JointVerdict>>,
}

/// Analyses `results` against `gt` with the keypoint set `spec` (its sigmas and flip pairs).
pub fn analyze(gt: &CocoDataset, results: &[KeypointResult], spec: &KeypointSpec) -> Result<Analysis> {
    let sigmas = spec.sigmas()?.to_vec();
    let params = EvalParams::keypoints(sigmas).with_reference(super::Reference::for_gt(gt));
    let eval = CocoEval::new(gt, results, params.clone())?;
    let acc = eval.accumulate(&eval.evaluate());
    let original = eval.summarize(&acc);
    let matched = matched_detections(&eval, &spec.flip_permutation());
    let background = fixes::background(&eval);
    let mut keypoints = report::keypoint_reports(&matched, spec, &params.thresholds);
    let total = report::total(&mut keypoints);
    let fixes = fixes::run_all(gt, results, &params, &matched, &background)?;
    Ok(Analysis {
        keypoint_set: spec.name.clone(),
        detections: results.len(),
        matched_detections: matched.len(),
        regular_gts: eval.regular_gts(),
        background_false_positives: background.false_positives.len(),
        missed_gts: background.false_negatives.len(),
        total,
        keypoints,
        original,
        fixes,
        pr_curves: PrCurve::from_accumulation(&acc, &params, &[0.5, 0.75, 0.95]),
    })
}

/// The detections the metric matches at OKS 0.5 over all areas, each judged joint by joint
/// against the GT persons of its image (parallel over cells).
fn matched_detections(eval: &CocoEval, flip: &[usize]) -> Vec<MatchedDetection> {
    let variances = eval.params.variances();
    let all = &eval.params.area_ranges[0];
    eval.cells
        .par_iter()
        .flat_map_iter(|cell| {
            let (ranked, oks) = eval.ranked_oks(cell, &variances, eval.params.max_det());
            let gts: Vec<_> = cell.gts.iter().map(|(g, _)| *g).collect();
            let ignore: Vec<bool> = gts.iter().map(|g| g.ignore || !all.contains(g.area)).collect();
            let order = super::image::match_order(&ignore);
            let mut taken = vec![false; gts.len()];
            let mut taken_by = vec![None; ranked.len()];
            if !gts.is_empty() {
                super::image::greedy_match(&gts, &ignore, &order, &oks, MATCH_OKS, &mut taken, &mut taken_by);
            }
            let persons: Vec<Person> =
                cell.gts.iter().map(|(_, t)| Person { keypoints: t.keypoints, area: t.area }).collect();
            ranked
                .into_iter()
                .zip(taken_by)
                .filter_map(|(d, m)| m.filter(|&g| !ignore[g]).map(|g| (d, g)))
                .map(|(d, g)| MatchedDetection {
                    result: d,
                    verdicts: classify(&eval.results[d].keypoints, &persons, g, flip, &variances),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

impl CocoEval<'_> {
    /// GTs that count for recall over all areas.
    fn regular_gts(&self) -> usize {
        let all = &self.params.area_ranges[0];
        self.cells.iter().flat_map(|c| &c.gts).filter(|(g, _)| !g.ignore && all.contains(g.area)).count()
    }

    /// Makes the GTs at `(cell, index)` ignored, as coco-analyze does with missed persons.
    fn ignore_gts(&mut self, which: &[(usize, usize)]) {
        for &(c, g) in which {
            self.cells[c].gts[g].0.ignore = true;
        }
    }
}

/// The stats of `results`, with the GTs at `ignored` (cell, index) made ignored.
fn stats_of(
    gt: &CocoDataset,
    results: &[KeypointResult],
    params: &EvalParams,
    ignored: &[(usize, usize)],
) -> Result<Stats> {
    let mut eval = CocoEval::new(gt, results, params.clone())?;
    eval.ignore_gts(ignored);
    Ok(eval.run())
}
