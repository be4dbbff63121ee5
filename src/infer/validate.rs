//! Scoring a network on a COCO set: the validation of `dypose train`, `dypose eval --checkpoint`
//! and the quickstart all run through here, and through `eval::evaluate_keypoints`.

use super::boxes::{detection_boxes, group_by_image, gt_boxes, PersonBox};
use super::predictor::{HeatmapModel, Predictions};
use super::{ImageJob, Predictor};
use crate::coco::{CocoDataset, KeypointSpec};
use crate::config::Config;
use crate::eval::Stats;
use crate::model::backend::ConvBackend;
use crate::model::network::Network;
use anyhow::{bail, Result};
use std::path::Path;

/// A validation set: GT boxes, and detector boxes when given.
pub struct ValSet {
    pub gt: CocoDataset,
    pub gt_jobs: Vec<ImageJob>,
    pub det_jobs: Option<Vec<ImageJob>>,
}

impl ValSet {
    /// The config's val split (`data.val_annotations`, `val_images`, `val_boxes`).
    pub fn load(cfg: &Config, spec: &KeypointSpec) -> Result<ValSet> {
        Config::require(&cfg.data.val_annotations, "data.val_annotations")?;
        Config::require(&cfg.data.val_images, "data.val_images")?;
        Self::from_files(cfg, spec, &cfg.data.val_annotations, &cfg.data.val_images, cfg.data.val_boxes.as_deref())
    }

    pub fn from_files(
        cfg: &Config,
        spec: &KeypointSpec,
        annotations: &Path,
        images: &Path,
        detections: Option<&Path>,
    ) -> Result<ValSet> {
        let gt = CocoDataset::load_field(annotations, &cfg.data.keypoint_field)?;
        crate::coco::keypoint_set::ensure_model_joints(&gt, cfg.data.category_id, spec.len())?;
        let gt_jobs = jobs(&gt, images, gt_boxes(&gt, cfg.data.category_id, spec.len()))?;
        let det_jobs = match detections {
            Some(p) => {
                let boxes = detection_boxes(p, cfg.data.category_id, cfg.val.box_score_threshold, Some(&gt))?;
                Some(jobs(&gt, images, boxes)?)
            }
            None => None,
        };
        Ok(ValSet { gt, gt_jobs, det_jobs })
    }
}

/// One job per GT image that has boxes, in image-id order. An image whose `file_name` points
/// outside `images` is refused, as an unreadable one would stop the scoring.
pub fn jobs(gt: &CocoDataset, images: &Path, boxes: Vec<PersonBox>) -> Result<Vec<ImageJob>> {
    let refused: Vec<String> = gt
        .images
        .iter()
        .filter_map(|img| crate::fsutil::inside(images, &img.file_name).err().map(|e| format!("image {}: {e}", img.id)))
        .collect();
    if let Some(first) = refused.first() {
        bail!("{}: {} images are named outside the image folder, e.g. {first}", gt.source.display(), refused.len());
    }
    Ok(group_by_image(boxes)
        .into_iter()
        .filter_map(|(id, boxes)| {
            let img = gt.image(id)?;
            Some(ImageJob { image_id: id, path: images.join(&img.file_name), boxes: Some(boxes) })
        })
        .collect())
}

/// COCO stats of `net` on `jobs` (τ = 1, BN in inference mode, the config's flip test and decoding).
pub fn predict_and_score(
    net: &mut impl HeatmapModel,
    cfg: &Config,
    spec: &KeypointSpec,
    gt: &CocoDataset,
    jobs: &[ImageJob],
) -> Result<(Stats, Predictions)> {
    let mut predictor = Predictor::for_config(net, cfg, spec)?;
    let out = predictor.run(jobs, |_, _, _| Ok(()))?;
    super::ensure_all_read(&out.failed)?;
    let results = super::predictor::results_of(&out.persons, cfg.data.category_id);
    let stats = crate::eval::evaluate_keypoints(gt, &results, spec.sigmas()?)?.stats;
    Ok((stats, out))
}

/// One validation: stats and predictions with GT boxes, and with detector boxes when configured.
#[derive(Debug, Clone)]
pub struct Validation {
    pub gt: (Stats, Predictions),
    pub detections: Option<(Stats, Predictions)>,
    /// Wall time of the GT-box pass.
    pub gt_seconds: f64,
}

/// Scores `net` on `val` with GT boxes and, when there are some, detector boxes.
pub fn validate<D: ConvBackend>(
    net: &mut Network<D>,
    cfg: &Config,
    spec: &KeypointSpec,
    val: &ValSet,
) -> Result<Validation> {
    let t = std::time::Instant::now();
    let gt = predict_and_score(net, cfg, spec, &val.gt, &val.gt_jobs)?;
    let gt_seconds = t.elapsed().as_secs_f64();
    let detections = match &val.det_jobs {
        Some(j) => Some(predict_and_score(net, cfg, spec, &val.gt, j)?),
        None => None,
    };
    Ok(Validation { gt, detections, gt_seconds })
}
