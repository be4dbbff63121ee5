//! `dypose eval`: the COCO keypoint (or box) stats of a results file, or of a checkpoint run on a set.

use crate::coco::results::{read_result_records, results_from_records};
use crate::coco::{CocoDataset, KeypointResult, KeypointSpec};
use crate::config::{Device, KeypointMetric, Task};
use crate::eval::{evaluate_box_files, evaluate_crowdpose, BoxStats, EvalReport, KeypointStats, Stats};
use crate::infer::detect::{detect_jobs, evaluate_detector};
use crate::infer::validate::{predict_and_score, ValSet};
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where the stats go besides stdout: a JSON file, replaced only with `force`.
pub struct StatsFile<'a> {
    pub path: Option<&'a Path>,
    pub force: bool,
}

impl StatsFile<'_> {
    /// Refuses, before any work, a stats file that is one of `inputs` or exists without --force.
    pub(super) fn check(&self, inputs: &[&Path]) -> Result<()> {
        let Some(path) = self.path else { return Ok(()) };
        let inputs: Vec<PathBuf> = inputs.iter().map(|p| p.to_path_buf()).collect();
        crate::fsutil::refuse_overwriting_inputs(&[path.to_path_buf()], &inputs)?;
        crate::fsutil::refuse_existing(&[path.to_path_buf()], self.force)
    }

    /// Writes the stats (from rank 0 alone, in a job of several ranks).
    pub(super) fn write(&self, stats: &impl serde::Serialize) -> Result<()> {
        match self.path {
            Some(path) if crate::dist::world().is_root() => {
                crate::fsutil::write_new(path, (serde_json::to_string_pretty(stats)? + "\n").as_bytes(), self.force)
            }
            _ => Ok(()),
        }
    }
}

/// What `dypose eval --results` (and `--analyze`) scores.
pub struct ResultsEval<'a> {
    pub gt: &'a Path,
    pub results: &'a Path,
    /// A keypoint spec file; default: the GT file's own keypoint set.
    pub spec: Option<&'a Path>,
    /// The GT annotations' array that holds the joints (`keypoints` unless told otherwise).
    pub keypoint_field: &'a str,
    pub metric: KeypointMetric,
}

impl ResultsEval<'_> {
    /// The files read, which no output may replace.
    pub(super) fn inputs(&self) -> Vec<&Path> {
        [self.gt, self.results].into_iter().chain(self.spec).collect()
    }

    /// The GT file, the results and the keypoint set that scores them (the spec file's, else the
    /// GT file's own; either must give sigmas), both files read in parallel. What was assumed to
    /// find the set is printed.
    pub fn load(&self) -> Result<(CocoDataset, Vec<KeypointResult>, KeypointSpec)> {
        let (gt, records) =
            rayon::join(|| CocoDataset::load_field(self.gt, self.keypoint_field), || read_result_records(self.results));
        let gt = gt?;
        let spec = super::announced(crate::coco::find_keypoint_set(&gt, None, self.spec)?);
        match self.spec {
            Some(p) => spec.sigmas().with_context(|| p.display().to_string())?,
            None => spec.sigmas().map_err(|e| anyhow::anyhow!("{}: {e:#} (pass --spec)", gt.source.display()))?,
        };
        let results = results_from_records(records?, &self.results.display().to_string(), &gt, spec.len())?;
        Ok((gt, results, spec))
    }
}

/// Scores the request's results with its metric and prints how.
pub fn eval_results(req: &ResultsEval, out: &StatsFile) -> Result<KeypointStats> {
    out.check(&req.inputs())?;
    let start = Instant::now();
    let (gt, results, spec) = req.load()?;
    let sigmas = spec.sigmas()?;
    let stats = match req.metric {
        KeypointMetric::Coco => {
            let report = crate::eval::evaluate_keypoints(&gt, &results, sigmas)?;
            print_counts(&report, start);
            KeypointStats::Coco(report.stats)
        }
        KeypointMetric::Crowdpose => {
            let report = evaluate_crowdpose(&gt, &results, sigmas)?;
            print_counts(&report, start);
            KeypointStats::CrowdPose(report.stats)
        }
    };
    out.write(&stats)?;
    Ok(stats)
}

/// Scores box `results` against `gt` as `COCOeval(iouType="bbox")`.
pub fn eval_box_results(gt: &Path, results: &Path, out: &StatsFile) -> Result<BoxStats> {
    out.check(&[gt, results])?;
    let start = Instant::now();
    let report = evaluate_box_files(gt, results)?;
    print_counts(&report, start);
    out.write(&report.stats)?;
    Ok(report.stats)
}

fn print_counts<S>(report: &EvalReport<S>, start: Instant) {
    for note in &report.notes {
        eprintln!("{note}");
    }
    eprintln!(
        "evaluated {} results on {} images ({} GT annotations) in {:.2}s",
        report.num_results,
        report.num_images,
        report.num_gt,
        start.elapsed().as_secs_f64()
    );
    if report.results_outside_categories > 0 {
        eprintln!(
            "warning: {} results have a category_id that the GT file does not list; they are not scored (as in pycocotools)",
            report.results_outside_categories
        );
    }
}

/// The stats of a checkpoint: keypoint stats of a pose model, box stats of a detector.
pub enum CheckpointStats {
    Pose(Stats),
    Boxes(BoxStats),
}

impl std::fmt::Display for CheckpointStats {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            CheckpointStats::Pose(s) => s.fmt(f),
            CheckpointStats::Boxes(s) => s.fmt(f),
        }
    }
}

/// What `dypose eval --checkpoint` runs.
pub struct CheckpointEval {
    pub checkpoint: PathBuf,
    /// Another config than the checkpoint's own.
    pub config: Option<PathBuf>,
    pub gt: PathBuf,
    pub images: PathBuf,
    /// Detector boxes instead of the GT boxes.
    pub boxes: Option<PathBuf>,
    /// A person-detector checkpoint whose boxes replace the GT boxes.
    pub detector: Option<PathBuf>,
    pub device: Device,
}

/// Runs the checkpoint on the GT file's images and prints pycocotools' summary. A pose model
/// runs on GT boxes (or a detection file's, or a detector checkpoint's) and is scored with its
/// own keypoint set; a person detector runs on every image and is scored by box AP.
pub fn eval_checkpoint(req: &CheckpointEval, out: &StatsFile) -> Result<CheckpointStats> {
    let mut inputs = vec![req.checkpoint.as_path(), &req.gt];
    inputs.extend(req.config.as_deref().into_iter().chain(req.boxes.as_deref()).chain(req.detector.as_deref()));
    out.check(&inputs)?;
    let (start, root) = (Instant::now(), crate::dist::world().is_root());
    let mut trained = super::open_checkpoint(req.device, &req.checkpoint, req.config.as_deref())?;
    let (cfg, spec) = (&trained.cfg, &trained.spec);
    if cfg.model.task == Task::Detect {
        ensure!(
            req.boxes.is_none() && req.detector.is_none(),
            "--boxes and --detector go with a pose checkpoint, not a detector"
        );
        let gt = CocoDataset::load(&req.gt)?;
        let (stats, found) = evaluate_detector(&mut trained.model, cfg, &gt, &req.images)?;
        if root {
            eprintln!("detected {} boxes in {:.1}s", found.boxes.len(), start.elapsed().as_secs_f64());
        }
        out.write(&stats)?;
        return Ok(CheckpointStats::Boxes(stats));
    }
    let mut val = ValSet::from_files(cfg, spec, &req.gt, &req.images, req.boxes.as_deref())?;
    if let Some(note) = crate::eval::Reference::for_gt(&val.gt).note(&val.gt).filter(|_| root) {
        eprintln!("{note}");
    }
    if let Some(detector) = &req.detector {
        let jobs = detect_jobs(&val.gt, &req.images)?;
        let (boxes, seconds) = super::detect::detector_person_boxes(req.device, detector, &jobs)?;
        if root {
            eprintln!("the detector found {} persons in {} images in {seconds:.1}s", boxes.len(), jobs.len());
        }
        val.det_jobs = Some(crate::infer::validate::jobs(&val.gt, &req.images, boxes)?);
    }
    let jobs = val.det_jobs.as_ref().unwrap_or(&val.gt_jobs);
    let (stats, preds) = predict_and_score(&mut trained.model, cfg, spec, &val.gt, jobs)?;
    if root {
        eprintln!("predicted {} crops in {:.1}s", preds.crops, start.elapsed().as_secs_f64());
    }
    out.write(&stats)?;
    Ok(CheckpointStats::Pose(stats))
}
