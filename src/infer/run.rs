//! `dypose predict` and `dypose eval --checkpoint`: a config, a checkpoint and images in;
//! COCO results, drawings and stats out.

use super::boxes::{detection_boxes, group_by_image, gt_boxes, PersonBox};
use super::predictor::{HeatmapModel, Person, Predictions};
use super::validate::{evaluate, ValSet};
use super::{results_json, ImageJob, Predictor};
use crate::coco::{CocoDataset, KeypointSpec};
use crate::config::Config;
use crate::model::posenet::PoseNet;
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the person boxes come from.
pub enum BoxSource<'a> {
    Gt(&'a Path),
    Detections { gt: Option<&'a Path>, path: &'a Path },
    WholeImage,
}

pub struct PredictRequest<'a> {
    pub config: &'a Config,
    pub checkpoint: &'a Path,
    /// `cpu` or `cuda`.
    pub device: &'a str,
    pub images: Vec<PathBuf>,
    pub boxes: BoxSource<'a>,
    pub out: &'a Path,
    pub draw: bool,
    pub force: bool,
}

/// The network of `cfg` on the named device, with the weights of `checkpoint` (shape-checked),
/// or freshly initialised ones.
pub fn build_model(device: &str, cfg: &Config, checkpoint: Option<&Path>) -> Result<Box<dyn HeatmapModel>> {
    crate::with_device!(device, |dev: D| {
        let mut net = PoseNet::new(&dev, &cfg.model.blueprint()?, cfg.seed);
        if let Some(path) = checkpoint {
            crate::model::checkpoint::load(&mut net, path)?;
        }
        Ok(Box::new(net) as Box<dyn HeatmapModel>)
    })
}

/// The image files of a folder (sorted; sub-folders skipped).
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list the folder", dir.display()))? {
        let e = e.with_context(|| format!("{}: cannot list the folder", dir.display()))?;
        if e.file_type().map(|t| t.is_file()).unwrap_or(false) && !e.file_name().to_string_lossy().starts_with('.') {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// An image id for a file: from the GT by file name, else the digits of a COCO-style name, else
/// its position (1-based).
fn image_ids(images: &[PathBuf], gt: Option<&CocoDataset>) -> Result<Vec<i64>> {
    let by_name: BTreeMap<&str, i64> =
        gt.map(|g| g.images.iter().map(|i| (i.file_name.as_str(), i.id)).collect()).unwrap_or_default();
    images
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            if let Some(g) = gt {
                return by_name
                    .get(name.as_ref())
                    .copied()
                    .with_context(|| format!("{}: not an image of {}", p.display(), g.source.display()));
            }
            let stem = p.file_stem().unwrap_or_default().to_string_lossy();
            Ok(stem.parse::<i64>().unwrap_or(k as i64 + 1))
        })
        .collect()
}

/// Runs the model on the request's images; writes `results.json` (and drawings) into `out`.
/// Unreadable images are reported by name after everything else is written.
pub fn predict(req: &PredictRequest) -> Result<(Predictions, PathBuf)> {
    let cfg = req.config;
    ensure!(!req.images.is_empty(), "no images given");
    let results_path = req.out.join("results.json");
    if results_path.exists() && !req.force {
        bail!("{}: already exists (pass --force to overwrite it)", results_path.display());
    }
    let spec = KeypointSpec::coco17();
    let gt = match &req.boxes {
        BoxSource::Gt(p) | BoxSource::Detections { gt: Some(p), .. } => Some(CocoDataset::load(p)?),
        _ => None,
    };
    let ids = image_ids(&req.images, gt.as_ref())?;
    let boxes: Vec<PersonBox> = match &req.boxes {
        BoxSource::Gt(_) => gt_boxes(gt.as_ref().expect("loaded"), cfg.data.category_id, spec.len()),
        BoxSource::Detections { path, .. } => {
            detection_boxes(path, cfg.data.category_id, cfg.val.box_score_threshold, gt.as_ref())?
        }
        BoxSource::WholeImage => Vec::new(),
    };
    let mut by_image = group_by_image(boxes);
    let jobs: Vec<ImageJob> = req
        .images
        .iter()
        .zip(&ids)
        .map(|(p, &id)| ImageJob { image_id: id, path: p.clone(), boxes: by_image.remove(&id).unwrap_or_default() })
        .collect();
    let mut predictor = Predictor::for_config(build_model(req.device, cfg, Some(req.checkpoint))?, cfg, &spec)?;
    std::fs::create_dir_all(req.out).with_context(|| format!("{}: cannot create", req.out.display()))?;
    let out = predictor.run(&jobs, |job, img, persons| {
        if req.draw {
            draw_persons(img, persons, &spec, &crate::viz::drawing_path(req.out, &job.path, None))?;
        }
        Ok(())
    })?;
    crate::fsutil::write_atomic(
        &results_path,
        serde_json::to_string(&results_json(&out.persons, cfg.data.category_id))?.as_bytes(),
    )?;
    Ok((out, results_path))
}

/// Draws persons scoring at least 0.3 (joints at least 0.3) and saves the image.
pub fn draw_persons(img: &image::RgbImage, persons: &[Person], spec: &KeypointSpec, path: &Path) -> Result<()> {
    let mut canvas = img.clone();
    for p in persons.iter().filter(|p| p.score >= 0.3) {
        let pose = crate::viz::Pose { keypoints: &p.keypoints, bbox: Some(p.bbox), score: Some(p.score) };
        crate::viz::draw_pose(&mut canvas, &pose, spec, 0.3);
    }
    crate::viz::save_image(&canvas, path, true)
}

/// The stats of a checkpoint on a COCO set: GT boxes, or detector boxes; and the crops run.
pub fn evaluate_checkpoint(
    device: &str,
    cfg: &Config,
    checkpoint: &Path,
    gt_path: &Path,
    images: &Path,
    dets: Option<&Path>,
) -> Result<(crate::eval::Stats, usize)> {
    let spec = KeypointSpec::coco17();
    let val = ValSet::from_files(cfg, &spec, gt_path, images, dets)?;
    let jobs = val.det_jobs.as_ref().unwrap_or(&val.gt_jobs);
    let mut net = build_model(device, cfg, Some(checkpoint))?;
    let (stats, preds) = evaluate(&mut net, cfg, &spec, &val.gt, jobs)?;
    Ok((stats, preds.crops))
}
