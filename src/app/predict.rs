//! `dypose predict`: a checkpoint and images in; COCO results and one drawing per image out.

use super::images::{fail_on_unreadable, image_ids, Images};
use crate::coco::{CocoDataset, KeypointSpec};
use crate::config::{Config, Decoding, Device};
use crate::infer::boxes::{detection_boxes, group_by_image, gt_boxes, PersonBox};
use crate::infer::detect::DetectJob;
use crate::infer::predictor::Predictions;
use crate::infer::{results_of, ImageJob, Person, Predictor};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where the person boxes come from.
pub enum BoxSource {
    /// The persons of a GT file (its images are matched by file name).
    Gt(PathBuf),
    /// A detector's boxes; with a GT file, image ids come from it, else from COCO-style names.
    Detections { gt: Option<PathBuf>, path: PathBuf },
    /// The boxes a person-detector checkpoint finds (image ids as with `Detections`).
    Detector { gt: Option<PathBuf>, checkpoint: PathBuf },
    /// No boxes: the whole image is one person.
    WholeImage,
}

pub struct PredictRequest {
    pub checkpoint: PathBuf,
    /// Another config than the checkpoint's own.
    pub config: Option<PathBuf>,
    pub device: Device,
    pub images: Images,
    pub boxes: BoxSource,
    pub out: PathBuf,
    pub flip: bool,
    pub decoding: Option<Decoding>,
    pub draw: bool,
    pub force: bool,
}

/// What a prediction run did.
pub struct PredictReport {
    pub predictions: Predictions,
    pub images: usize,
    pub results: PathBuf,
    pub seconds: f64,
}

impl std::fmt::Display for PredictReport {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let p = &self.predictions;
        write!(
            f,
            "{} persons in {} images ({} crops, {:.1} crops/s) → {}",
            p.persons.len(),
            self.images - p.failed.len(),
            p.crops,
            p.crops as f64 / self.seconds,
            self.results.display()
        )
    }
}

/// One job per image, with the boxes `source` gives it (`cfg`: the category, the GT's keypoint
/// field and the detection score threshold).
fn jobs(images: &[PathBuf], source: &BoxSource, device: Device, cfg: &Config, joints: usize) -> Result<Vec<ImageJob>> {
    let (category_id, score_threshold) = (cfg.data.category_id, cfg.val.box_score_threshold);
    let gt = match source {
        BoxSource::Gt(p) | BoxSource::Detections { gt: Some(p), .. } | BoxSource::Detector { gt: Some(p), .. } => {
            Some(CocoDataset::load_field(p, &cfg.data.keypoint_field)?)
        }
        _ => None,
    };
    let ids = image_ids(images, gt.as_ref())?;
    let boxes: Vec<PersonBox> = match source {
        BoxSource::Gt(_) => {
            let gt = gt.as_ref().expect("loaded above");
            crate::coco::keypoint_set::ensure_model_joints(gt, category_id, joints)?;
            gt_boxes(gt, category_id, joints)
        }
        BoxSource::Detections { path, .. } => detection_boxes(path, category_id, score_threshold, gt.as_ref())?,
        BoxSource::Detector { checkpoint, .. } => {
            let jobs: Vec<DetectJob> =
                images.iter().zip(&ids).map(|(p, &id)| DetectJob { image_id: id, path: p.clone() }).collect();
            let (boxes, seconds) = super::detect::detector_person_boxes(device, checkpoint, &jobs)?;
            eprintln!("the detector found {} persons in {} images in {seconds:.1}s", boxes.len(), images.len());
            boxes
        }
        BoxSource::WholeImage => Vec::new(),
    };
    // A detector that finds nobody means nobody; an image that a GT or detection file does not
    // mention is one person box, as with no boxes at all.
    let whole_image_when_missing = !matches!(source, BoxSource::Detector { .. });
    let mut by_image = group_by_image(boxes);
    Ok(images
        .iter()
        .zip(ids)
        .map(|(p, id)| {
            let boxes = match by_image.remove(&id) {
                None if whole_image_when_missing => None,
                found => Some(found.unwrap_or_default()),
            };
            ImageJob { image_id: id, path: p.clone(), boxes }
        })
        .collect())
}

/// Runs the checkpoint on the request's images; writes `results.json` (and drawings) into
/// `out`. Unreadable images are reported by name after everything else is written.
pub fn predict(req: &PredictRequest) -> Result<PredictReport> {
    let images = req.images.list()?;
    let results_path = req.out.join("results.json");
    refuse_unsafe_outputs(req, &images, &results_path)?;
    let start = Instant::now();
    let trained = super::open_checkpoint(req.device, &req.checkpoint, req.config.as_deref())?;
    let (mut cfg, spec) = (trained.cfg, trained.spec);
    cfg.val.flip_test &= req.flip;
    cfg.val.decoding = req.decoding.unwrap_or(cfg.val.decoding);
    let category = cfg.data.category_id;
    let jobs = jobs(&images, &req.boxes, req.device, &cfg, spec.len())?;
    let mut predictor = Predictor::for_config(trained.model, &cfg, &spec)?;
    std::fs::create_dir_all(&req.out).with_context(|| format!("{}: cannot create", req.out.display()))?;
    let predictions = predictor.run(&jobs, |job, img, persons| match req.draw {
        true => draw_persons(img, persons, &spec, &crate::viz::drawing_path(&req.out, &job.path, None), req.force),
        false => Ok(()),
    })?;
    let text = crate::coco::results_json(&results_of(&predictions.persons, category));
    crate::fsutil::write_atomic(&results_path, text.as_bytes())?;
    let report = PredictReport {
        images: images.len(),
        results: results_path,
        seconds: start.elapsed().as_secs_f64(),
        predictions,
    };
    fail_on_unreadable(&report.predictions.failed, report.images, &report)?;
    Ok(report)
}

/// Before any work: no output may replace an input (images, checkpoint, config, box files), the
/// output folder may not be a folder of input images, and earlier outputs are replaced only with
/// `--force`.
fn refuse_unsafe_outputs(req: &PredictRequest, images: &[PathBuf], results: &Path) -> Result<()> {
    let mut outputs = vec![results.to_path_buf()];
    if req.draw {
        let drawings: Vec<PathBuf> = images.iter().map(|p| crate::viz::drawing_path(&req.out, p, None)).collect();
        crate::fsutil::refuse_shared_outputs(&drawings, images)?;
        outputs.extend(drawings);
    }
    let mut inputs = images.to_vec();
    inputs.extend([req.checkpoint.clone()].into_iter().chain(req.config.clone()));
    match &req.boxes {
        BoxSource::Gt(p) => inputs.push(p.clone()),
        BoxSource::Detections { gt, path } => inputs.extend(gt.iter().cloned().chain([path.clone()])),
        BoxSource::Detector { gt, checkpoint } => inputs.extend(gt.iter().cloned().chain([checkpoint.clone()])),
        BoxSource::WholeImage => {}
    }
    crate::fsutil::refuse_output_in_input_folder(&req.out, images)?;
    crate::fsutil::refuse_overwriting_inputs(&outputs, &inputs)?;
    crate::fsutil::refuse_existing(&outputs, req.force)
}

/// Draws persons scoring at least 0.3 (joints at least 0.3) on a copy of `img` and saves it
/// (replacing an earlier drawing only with `overwrite`).
pub fn draw_persons(
    img: &image::RgbImage,
    persons: &[Person],
    spec: &KeypointSpec,
    path: &Path,
    overwrite: bool,
) -> Result<()> {
    let mut canvas = img.clone();
    for p in persons.iter().filter(|p| p.score >= 0.3) {
        let pose = crate::viz::Pose { keypoints: &p.keypoints, bbox: Some(p.bbox), score: Some(p.score) };
        crate::viz::draw_pose(&mut canvas, &pose, spec, 0.3);
    }
    crate::viz::save_image(&canvas, path, overwrite)
}
