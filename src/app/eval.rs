//! `dypose eval`: the COCO keypoint stats of a results file, or of a checkpoint run on a set.

use crate::coco::KeypointSpec;
use crate::config::Device;
use crate::eval::{evaluate_files, Stats};
use crate::infer::validate::{evaluate, ValSet};
use anyhow::{Context, Result};
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

    pub(super) fn write(&self, stats: &Stats) -> Result<()> {
        match self.path {
            Some(path) => {
                crate::fsutil::write_new(path, (serde_json::to_string_pretty(stats)? + "\n").as_bytes(), self.force)
            }
            None => Ok(()),
        }
    }
}

/// Scores `results` against `gt` with the keypoint set of `spec`, or the GT file's own set.
pub fn eval_results(gt: &Path, results: &Path, spec: Option<&Path>, out: &StatsFile) -> Result<Stats> {
    out.check(&[gt, results].into_iter().chain(spec).collect::<Vec<_>>())?;
    let start = Instant::now();
    let spec = spec.map(KeypointSpec::from_json_file).transpose()?;
    let sigmas = spec.as_ref().map(|s| s.sigmas().with_context(|| s.name.clone())).transpose()?;
    let report = evaluate_files(gt, results, sigmas)?;
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
    out.write(&report.stats)?;
    Ok(report.stats)
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
    pub device: Device,
}

/// Runs the checkpoint on the GT file's images (GT boxes, or detector boxes) and scores it with
/// its own keypoint set.
pub fn eval_checkpoint(req: &CheckpointEval, out: &StatsFile) -> Result<Stats> {
    let mut inputs = vec![req.checkpoint.as_path(), &req.gt];
    inputs.extend(req.config.as_deref().into_iter().chain(req.boxes.as_deref()));
    out.check(&inputs)?;
    let start = Instant::now();
    let mut trained = super::open_checkpoint(req.device, &req.checkpoint, req.config.as_deref())?;
    let (cfg, spec) = (&trained.cfg, &trained.spec);
    let val = ValSet::from_files(cfg, spec, &req.gt, &req.images, req.boxes.as_deref())?;
    let jobs = val.det_jobs.as_ref().unwrap_or(&val.gt_jobs);
    let (stats, preds) = evaluate(&mut trained.model, cfg, spec, &val.gt, jobs)?;
    eprintln!("predicted {} crops in {:.1}s", preds.crops, start.elapsed().as_secs_f64());
    out.write(&stats)?;
    Ok(stats)
}
