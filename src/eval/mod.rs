//! COCO evaluation, equal to pycocotools' `COCOeval` for `iouType="keypoints"` and `"bbox"`, or to
//! xtcocotools' where the rules differ ([`Reference`]: files without `area`, CrowdPose's
//! benchmark): `CocoEval::new` (prepare) → `evaluate` → `accumulate` → `summarize`.
//! Plain Rust over the parsed files, parallel over images.

pub mod analyze;
pub mod crowd;
pub mod image;
pub mod oks;
pub mod params;
pub mod summary;

use crate::coco::{BoxResult, CocoDataset, Id, KeypointResult};
use anyhow::{ensure, Result};
pub use crowd::{evaluate_crowdpose, CrowdPoseStats};
use image::{evaluate_image, GtRef, ImageEval};
use oks::{oks, GtShape};
pub use params::{EvalParams, IouType, Reference};
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::HashMap;
pub use summary::{BoxStats, Stats};

/// A scored result: keypoints compared by OKS, or a box compared by IoU.
pub trait Detection: Sync {
    const IOU_TYPE: IouType;
    fn image_id(&self) -> Id;
    fn category_id(&self) -> Id;
    fn score(&self) -> f64;
    /// What selects the detection's area range (pycocotools' `area` of a loaded result).
    fn area(&self) -> f64;
    /// The number of keypoint coordinates it carries (`None` for a box).
    fn keypoint_numbers(&self) -> Option<usize>;
    /// Whether some joint has a score above 0 (always, for a box).
    fn has_scored_joint(&self) -> bool {
        true
    }
    /// OKS or IoU with one GT; `variances` are the keypoint set's (2σ)² (empty for boxes).
    fn similarity(&self, gt: &GtRef, shape: &GtShape, variances: &[f64]) -> f64;
}

impl Detection for KeypointResult {
    const IOU_TYPE: IouType = IouType::Keypoints;
    fn image_id(&self) -> Id {
        self.image_id
    }
    fn category_id(&self) -> Id {
        self.category_id
    }
    fn score(&self) -> f64 {
        self.score
    }
    fn area(&self) -> f64 {
        self.area
    }
    fn keypoint_numbers(&self) -> Option<usize> {
        Some(self.keypoints.len())
    }
    fn has_scored_joint(&self) -> bool {
        self.keypoints.chunks_exact(3).any(|p| p[2] > 0.0)
    }
    fn similarity(&self, _: &GtRef, shape: &GtShape, variances: &[f64]) -> f64 {
        oks(&self.keypoints, shape, variances)
    }
}

impl Detection for BoxResult {
    const IOU_TYPE: IouType = IouType::Bbox;
    fn image_id(&self) -> Id {
        self.image_id
    }
    fn category_id(&self) -> Id {
        self.category_id
    }
    fn score(&self) -> f64 {
        self.score
    }
    fn area(&self) -> f64 {
        self.bbox[2] * self.bbox[3]
    }
    fn keypoint_numbers(&self) -> Option<usize> {
        None
    }
    fn similarity(&self, gt: &GtRef, shape: &GtShape, _: &[f64]) -> f64 {
        crate::coco::boxes::box_iou(self.bbox, shape.bbox, gt.iscrowd)
    }
}

/// Ground truths and detections of one (image, category), in file order.
#[derive(Default)]
struct Cell<'a> {
    gts: Vec<(GtRef, GtShape<'a>)>,
    /// Indices into `CocoEval::results`.
    dts: Vec<usize>,
}

pub struct CocoEval<'a, D: Detection = KeypointResult> {
    pub params: EvalParams,
    /// Sorted, as pycocotools sorts `params.imgIds`.
    pub image_ids: Vec<Id>,
    /// Every category of the GT file, sorted.
    pub category_ids: Vec<Id>,
    /// `[image * K + category]`.
    cells: Vec<Cell<'a>>,
    results: &'a [D],
    /// Results whose category is not in the GT file: left out, as pycocotools does.
    pub results_outside_categories: usize,
}

/// Per-image outcomes, laid out as pycocotools' `evalImgs`: `[(k * A + a) * I + i]`.
pub struct Evaluation {
    pub image_evals: Vec<Option<ImageEval>>,
}

/// Precision `[t][r][k][a][m]` and recall `[t][k][a][m]` (m: the `max_dets` entry); −1 where
/// a category has no regular GT.
pub struct Accumulation {
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub dims: [usize; 5],
}

impl<'a, D: Detection> CocoEval<'a, D> {
    /// Groups GTs and results per (image, category), over every image of `gt`. For keypoints,
    /// GT keypoints of evaluated categories must have `3 × params.sigmas.len()` numbers (or none).
    pub fn new(gt: &'a CocoDataset, results: &'a [D], params: EvalParams) -> Result<Self> {
        Self::on_images(gt, results, params, gt.image_ids_sorted())
    }

    /// As [`CocoEval::new`] over the sorted `image_ids` only (pycocotools' `params.imgIds`).
    pub fn on_images(gt: &'a CocoDataset, results: &'a [D], params: EvalParams, image_ids: Vec<Id>) -> Result<Self> {
        ensure!(params.thresholds.len() <= 64, "at most 64 thresholds are supported");
        ensure!(params.iou_type == D::IOU_TYPE, "{:?} results need {:?} parameters", D::IOU_TYPE, params.iou_type);
        let keypoints = params.iou_type == IouType::Keypoints;
        let category_ids = gt.category_ids_sorted();
        let k_len = category_ids.len();
        let img_pos: HashMap<Id, usize> = image_ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let cat_pos: HashMap<Id, usize> = category_ids.iter().enumerate().map(|(k, &id)| (id, k)).collect();
        let mut cells: Vec<Cell> = (0..image_ids.len() * k_len).map(|_| Cell::default()).collect();
        let num_coords = 3 * params.sigmas.len();
        for (n, ann) in gt.annotations.iter().enumerate() {
            let (Some(&i), Some(&k)) = (img_pos.get(&ann.image_id), cat_pos.get(&ann.category_id)) else {
                continue;
            };
            cells[i * k_len + k].gts.push(gt_entry(gt, n, &params)?);
        }
        let mut results_outside_categories = 0;
        // xtcocotools drops keypoint results without a joint scored above 0 before anything else.
        let drops_unscored = keypoints && params.reference != Reference::Pycocotools;
        for (n, r) in results.iter().enumerate() {
            if let Some(len) = r.keypoint_numbers() {
                ensure!(
                    len == num_coords,
                    "result for image {} has {len} keypoint numbers, expected {num_coords}",
                    r.image_id()
                );
            }
            let Some(&i) = img_pos.get(&r.image_id()) else { continue };
            match cat_pos.get(&r.category_id()) {
                Some(_) if drops_unscored && !r.has_scored_joint() => {}
                Some(&k) => cells[i * k_len + k].dts.push(n),
                None => results_outside_categories += 1,
            }
        }
        Ok(CocoEval { params, image_ids, category_ids, cells, results, results_outside_categories })
    }

    /// Matches detections to GTs in every image, category and area range (parallel over images).
    pub fn evaluate(&self) -> Evaluation {
        let (i_len, k_len, a_len) = (self.image_ids.len(), self.category_ids.len(), self.params.area_ranges.len());
        let variances = self.params.variances();
        let per_image: Vec<Vec<Option<ImageEval>>> = (0..i_len)
            .into_par_iter()
            .map(|i| (0..k_len).flat_map(|k| self.evaluate_cell(&self.cells[i * k_len + k], &variances)).collect())
            .collect();
        let mut image_evals: Vec<Option<ImageEval>> = vec![None; k_len * a_len * i_len];
        for (i, evals) in per_image.into_iter().enumerate() {
            for (ka, e) in evals.into_iter().enumerate() {
                image_evals[ka * i_len + i] = e;
            }
        }
        Evaluation { image_evals }
    }

    fn evaluate_cell(&self, cell: &Cell, variances: &[f64]) -> Vec<Option<ImageEval>> {
        let areas = &self.params.area_ranges;
        if cell.gts.is_empty() && cell.dts.is_empty() {
            return vec![None; areas.len()];
        }
        let (order, oks_matrix) = self.ranked_oks(cell, variances, self.params.max_det());
        let gts: Vec<GtRef> = cell.gts.iter().map(|(g, _)| *g).collect();
        let dts: Vec<(f64, f64)> = order.iter().map(|&d| (self.results[d].score(), self.results[d].area())).collect();
        areas.iter().map(|area| Some(evaluate_image(&gts, &dts, &oks_matrix, area, &self.params))).collect()
    }

    /// A cell's detections by score (stable), cut to `limit`, as indices into `results`,
    /// and their OKS or IoU with every GT: `oks[rank * G + g]`.
    fn ranked_oks(&self, cell: &Cell, variances: &[f64], limit: usize) -> (Vec<usize>, Vec<f64>) {
        let mut order = cell.dts.clone();
        order.sort_by(|&a, &b| descending(self.results[a].score(), self.results[b].score()));
        order.truncate(limit);
        let mut oks_matrix = Vec::with_capacity(order.len() * cell.gts.len());
        for &d in &order {
            oks_matrix.extend(cell.gts.iter().map(|(g, t)| self.results[d].similarity(g, t, variances)));
        }
        (order, oks_matrix)
    }

    /// Precision/recall curves per (threshold, category, area range, max detections) over all
    /// images.
    pub fn accumulate(&self, evaluation: &Evaluation) -> Accumulation {
        let p = &self.params;
        let (t_len, r_len, m_len) = (p.thresholds.len(), p.recall_thresholds.len(), p.max_dets.len());
        let (i_len, k_len, a_len) = (self.image_ids.len(), self.category_ids.len(), p.area_ranges.len());
        let curves: Vec<Option<(Vec<f64>, Vec<f64>)>> = (0..k_len * a_len * m_len)
            .into_par_iter()
            .map(|kam| {
                let ka = kam / m_len;
                let evals: Vec<&ImageEval> =
                    evaluation.image_evals[ka * i_len..(ka + 1) * i_len].iter().flatten().collect();
                curve(&evals, p, p.max_dets[kam % m_len])
            })
            .collect();
        let kam_len = k_len * a_len * m_len;
        let mut precision = vec![-1.0; t_len * r_len * kam_len];
        let mut recall = vec![-1.0; t_len * kam_len];
        for (kam, c) in curves.into_iter().enumerate() {
            let Some((prec, rec)) = c else { continue };
            for t in 0..t_len {
                recall[t * kam_len + kam] = rec[t];
                for r in 0..r_len {
                    precision[(t * r_len + r) * kam_len + kam] = prec[t * r_len + r];
                }
            }
        }
        Accumulation { precision, recall, dims: [t_len, r_len, k_len, a_len, m_len] }
    }

    /// evaluate + accumulate.
    pub fn evaluate_and_accumulate(&self) -> Accumulation {
        self.accumulate(&self.evaluate())
    }
}

impl CocoEval<'_, KeypointResult> {
    /// The ten COCO keypoint numbers.
    pub fn summarize(&self, acc: &Accumulation) -> Stats {
        Stats::from_accumulation(acc, &self.params)
    }

    /// evaluate + accumulate + summarize.
    pub fn run(&self) -> Stats {
        self.summarize(&self.evaluate_and_accumulate())
    }
}

impl CocoEval<'_, BoxResult> {
    /// The twelve COCO box numbers.
    pub fn run(&self) -> BoxStats {
        BoxStats::from_accumulation(&self.evaluate_and_accumulate(), &self.params)
    }
}

/// Annotation `n` of `gt` as the matcher sees it, under `params`' reference rules: its area
/// (the file's, or the box's w·h·0.53), whether it is ignored, and what OKS or IoU compare.
fn gt_entry<'a>(gt: &'a CocoDataset, n: usize, params: &EvalParams) -> Result<(GtRef, GtShape<'a>)> {
    let ann = &gt.annotations[n];
    let at = || format!("{}: annotations[{n}] (id {})", gt.source.display(), ann.id);
    let keypoints = params.iou_type == IouType::Keypoints;
    let num_coords = 3 * params.sigmas.len();
    // A GT without joints (none, or `[]` as in PoseTrack18's release) has none labelled.
    let coords = if keypoints { ann.keypoints.as_deref().unwrap_or(&[]) } else { &[] };
    ensure!(
        !keypoints || coords.is_empty() || coords.len() == num_coords,
        "{}: {} has {} numbers, expected {num_coords} ({} keypoints × 3)",
        at(),
        gt.keypoint_field,
        coords.len(),
        params.sigmas.len()
    );
    let Some(area) = params.reference.gt_area(ann) else {
        anyhow::bail!("{}: no `area` (pycocotools' rules need one on every annotation)", at());
    };
    let unlabelled = match params.reference {
        Reference::Pycocotools | Reference::XtcocotoolsCrowd => ann.num_keypoints() == 0,
        Reference::XtcocotoolsNoArea => !coords.chunks_exact(3).any(|p| p[2] > 0.0),
    };
    let ignore = ann.iscrowd || (keypoints && unlabelled);
    // Only an ignored GT may lack a box (PoseTrack18's unlabelled persons): at [0, 0, 0, 0],
    // nothing matches it. A regular one without a box would silently lower recall.
    ensure!(
        ann.bbox.is_some() || ignore,
        "{}: record annotations[{n}]: missing field `bbox`, which the metric needs for annotation {} (it is not ignored)",
        gt.source.display(),
        ann.id
    );
    let gref = GtRef { id: ann.id, area, iscrowd: ann.iscrowd, ignore };
    Ok((gref, GtShape { keypoints: coords, bbox: ann.bbox_or_zero(), area }))
}

/// Stable descending order by score (numpy's mergesort on negated scores; ±0 compare equal).
fn descending(a: f64, b: f64) -> Ordering {
    b.partial_cmp(&a).unwrap_or(Ordering::Equal)
}

/// Precision at each recall sample `[t * R + r]` and final recall `[t]` for one
/// (category, area range), from each image's `max_det` best detections; `None` when there is
/// nothing to score (pycocotools leaves −1).
fn curve(evals: &[&ImageEval], p: &EvalParams, max_det: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    if evals.is_empty() {
        return None;
    }
    let npig: usize = evals.iter().map(|e| e.num_gt_regular).sum();
    if npig == 0 {
        return None;
    }
    // Concatenate in image order, then a stable sort by score.
    let mut dets: Vec<(f64, u32, u32)> = Vec::new();
    for (e, ev) in evals.iter().enumerate() {
        dets.extend(ev.dt_scores.iter().take(max_det).enumerate().map(|(d, &s)| (s, e as u32, d as u32)));
    }
    dets.sort_by(|a, b| descending(a.0, b.0));
    let (t_len, r_len, nd) = (p.thresholds.len(), p.recall_thresholds.len(), dets.len());
    // One pass to gather each detection's per-threshold outcome as bits (tp, fp), so the
    // threshold loop below reads one contiguous array instead of every image's vectors.
    let outcome: Vec<(u64, u64)> = dets
        .iter()
        .map(|&(_, e, d)| {
            let ev = evals[e as usize];
            let (mut tp, mut fp) = (0u64, 0u64);
            for t in 0..t_len {
                let idx = t * ev.dt_scores.len() + d as usize;
                if !ev.dt_ignore[idx] {
                    if ev.dt_matched[idx] {
                        tp |= 1 << t;
                    } else {
                        fp |= 1 << t;
                    }
                }
            }
            (tp, fp)
        })
        .collect();
    let mut precision = vec![0.0; t_len * r_len];
    let mut recall = vec![0.0; t_len];
    let mut rc = vec![0.0; nd];
    let mut pr = vec![0.0; nd];
    for t in 0..t_len {
        let (mut tp, mut fp) = (0u64, 0u64);
        for (j, &(tp_bits, fp_bits)) in outcome.iter().enumerate() {
            tp += (tp_bits >> t) & 1;
            fp += (fp_bits >> t) & 1;
            let (tpf, fpf) = (tp as f64, fp as f64);
            rc[j] = tpf / npig as f64;
            pr[j] = tpf / (fpf + tpf + f64::EPSILON);
        }
        recall[t] = if nd > 0 { rc[nd - 1] } else { 0.0 };
        for i in (1..nd).rev() {
            if pr[i] > pr[i - 1] {
                pr[i - 1] = pr[i];
            }
        }
        // Left search of each recall sample in the non-decreasing recall curve.
        let mut i = 0;
        for (r, &thr) in p.recall_thresholds.iter().enumerate() {
            while i < nd && rc[i] < thr {
                i += 1;
            }
            if i == nd {
                break;
            }
            precision[t * r_len + r] = pr[i];
        }
    }
    Some((precision, recall))
}

/// What `dypose eval --gt --results` reports: keypoint `Stats` or `BoxStats`.
pub struct EvalReport<S = Stats> {
    pub stats: S,
    pub num_images: usize,
    pub num_gt: usize,
    pub num_results: usize,
    pub results_outside_categories: usize,
    /// What the caller should tell the user about how the file was scored (one line each).
    pub notes: Vec<String>,
}

impl<S> EvalReport<S> {
    fn of<D: Detection>(eval: &CocoEval<D>, stats: S, gt: &CocoDataset) -> Self {
        EvalReport {
            stats,
            num_images: eval.image_ids.len(),
            num_gt: gt.annotations.len(),
            num_results: eval.results.len(),
            results_outside_categories: eval.results_outside_categories,
            notes: eval.params.reference.note(gt).into_iter().collect(),
        }
    }
}

/// The summary of keypoint results: COCO's ten numbers or CrowdPose's nine.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum KeypointStats {
    Coco(Stats),
    CrowdPose(CrowdPoseStats),
}

impl std::fmt::Display for KeypointStats {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            KeypointStats::Coco(s) => s.fmt(f),
            KeypointStats::CrowdPose(s) => s.fmt(f),
        }
    }
}

/// Scores `results` against `gt` with the keypoint set's OKS `sigmas`: the one evaluation behind
/// `dypose eval`, validation during training and `dypose eval --checkpoint`. pycocotools' rules
/// for a file with areas, xtcocotools' `use_area=False` for one without.
pub fn evaluate_keypoints(gt: &CocoDataset, results: &[KeypointResult], sigmas: &[f64]) -> Result<EvalReport> {
    let params = EvalParams::keypoints(sigmas.to_vec()).with_reference(Reference::for_gt(gt));
    let eval = CocoEval::new(gt, results, params)?;
    Ok(EvalReport::of(&eval, eval.run(), gt))
}

/// Scores box `results` against `gt` as `COCOeval(iouType="bbox")`: the one box evaluation
/// behind `dypose eval --iou-type bbox`, detector validation and `dypose eval --detector`. A file
/// without areas places its GTs in area ranges by w·h·0.53, as xtcocotools does.
pub fn evaluate_boxes(gt: &CocoDataset, results: &[BoxResult]) -> Result<EvalReport<BoxStats>> {
    let eval = CocoEval::new(gt, results, EvalParams::bbox().with_reference(Reference::for_gt(gt)))?;
    Ok(EvalReport::of(&eval, eval.run(), gt))
}

/// Loads a GT file and a box results file (in parallel) and scores the boxes.
pub fn evaluate_box_files(gt_path: &std::path::Path, results_path: &std::path::Path) -> Result<EvalReport<BoxStats>> {
    use crate::coco::json::{parse_array_par, read_with};
    use crate::coco::results::box_results_from_records;
    let (gt, records) = rayon::join(|| CocoDataset::load(gt_path), || read_with(results_path, parse_array_par));
    let gt = gt?;
    let results = box_results_from_records(records?, &results_path.display().to_string(), Some(&gt))?;
    evaluate_boxes(&gt, &results)
}

/// Loads a GT file and a results file (in parallel) and scores them with the OKS `sigmas` of a
/// keypoint set (results must have one `[x, y, score]` per sigma). `dypose eval` finds the GT
/// file's own set instead when it is given no spec (`app::eval::ResultsEval`).
pub fn evaluate_files(gt_path: &std::path::Path, results_path: &std::path::Path, sigmas: &[f64]) -> Result<EvalReport> {
    use crate::coco::results::{read_result_records, results_from_records};
    let (gt, records) = rayon::join(|| CocoDataset::load(gt_path), || read_result_records(results_path));
    let gt = gt?;
    let results = results_from_records(records?, &results_path.display().to_string(), &gt, sigmas.len())?;
    evaluate_keypoints(&gt, &results, sigmas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_image(scores: &[f64], matched: &[bool], gts: usize, t_len: usize) -> ImageEval {
        ImageEval {
            dt_scores: scores.to_vec(),
            dt_matched: (0..t_len).flat_map(|_| matched.iter().copied()).collect(),
            dt_ignore: vec![false; t_len * scores.len()],
            num_gt_regular: gts,
        }
    }

    #[test]
    fn only_an_ignored_gt_may_lack_a_box() {
        let gt = |num_keypoints: i64| {
            let text = serde_json::json!({
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "annotations": [
                    {"id": 1, "image_id": 1, "category_id": 1, "area": 100, "bbox": [0, 0, 10, 10], "keypoints": [5, 5, 2]},
                    {"id": 2, "image_id": 1, "category_id": 1, "area": 100, "bbox": [], "keypoints": [],
                     "num_keypoints": num_keypoints}
                ],
                "categories": [{"id": 1, "name": "person"}],
            });
            CocoDataset::from_file(serde_json::from_value(text).unwrap(), "gt.json".into()).unwrap()
        };
        let res =
            [KeypointResult { image_id: 1, category_id: 1, keypoints: vec![5.0, 5.0, 1.0], score: 1.0, area: 1.0 }];
        let ignored = gt(0);
        let eval = CocoEval::new(&ignored, &res, EvalParams::keypoints(vec![0.1])).unwrap();
        assert!((eval.run().ap - 1.0).abs() < 1e-12, "the box-less GT is ignored and matches nothing");
        // Its `num_keypoints` makes it a regular GT, which no box could ever match.
        let regular = gt(4);
        let e = CocoEval::new(&regular, &res, EvalParams::keypoints(vec![0.1])).err().unwrap().to_string();
        assert!(e.starts_with("gt.json: record annotations[1]: missing field `bbox`"), "{e}");
    }

    #[test]
    fn precision_curve_by_hand() {
        let p = EvalParams::keypoints(vec![0.1]);
        // Two GTs; detections in score order: TP, FP, TP (split over two images; the second
        // image's detection has the middle score).
        let a = one_image(&[0.9, 0.5], &[true, true], 1, 10);
        let b = one_image(&[0.7], &[false], 1, 10);
        let (prec, rec) = curve(&[&a, &b], &p, 20).unwrap();
        // Sorted: 0.9 TP, 0.7 FP, 0.5 TP → precision 1, 1/2, 2/3 → made monotone 1, 2/3, 2/3;
        // recall 1/2, 1/2, 1. Recall samples ≤ 0.5 read precision 1, the rest 2/3.
        let two_thirds = 2.0 / (1.0 + 2.0 + f64::EPSILON);
        for (r, &thr) in p.recall_thresholds.iter().enumerate() {
            let want = if thr <= 0.5 { 1.0 / (1.0 + f64::EPSILON) } else { two_thirds };
            assert_eq!(prec[r], want, "recall {thr}");
        }
        assert_eq!(rec[0], 1.0);
        let ap = oks::numpy_mean(&prec[..101]);
        assert!((ap - (51.0 + 50.0 * 2.0 / 3.0) / 101.0).abs() < 1e-12);
    }

    #[test]
    fn recall_never_reached_leaves_zero_precision() {
        let p = EvalParams::keypoints(vec![0.1]);
        let a = one_image(&[0.9], &[true], 4, 10); // 1 of 4 GTs found: recall 0.25
        let (prec, rec) = curve(&[&a], &p, 20).unwrap();
        assert_eq!(rec[0], 0.25);
        assert!(prec[..26].iter().all(|&v| v > 0.99), "samples up to 0.25 see the TP");
        assert!(prec[26..101].iter().all(|&v| v == 0.0));
        let none = one_image(&[0.9], &[false], 0, 10);
        assert!(curve(&[&none], &p, 20).is_none(), "no regular GT: undefined (−1)");
    }
}
