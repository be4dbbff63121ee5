//! `dypose detect`: a person-detector checkpoint and images in; COCO detection results and one
//! drawing per image out. Also the detector's boxes for `predict --detector` and
//! `eval --checkpoint … --detector`.

use super::images::{image_ids, Images};
use crate::coco::CocoDataset;
use crate::config::Device;
use crate::infer::boxes::PersonBox;
use crate::infer::detect::{person_boxes, DetectJob, Detector};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct DetectRequest {
    pub checkpoint: PathBuf,
    pub device: Device,
    pub images: Images,
    /// GT annotations whose image ids the results take (by file name).
    pub ann: Option<PathBuf>,
    pub out: PathBuf,
    pub draw: bool,
    pub force: bool,
}

/// What a detection run did.
pub struct DetectReport {
    pub boxes: usize,
    pub persons: usize,
    pub images: usize,
    pub results: PathBuf,
    pub seconds: f64,
}

impl std::fmt::Display for DetectReport {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{} boxes ({} persons drawn) in {} images ({:.1} images/s) → {}",
            self.boxes,
            self.persons,
            self.images,
            self.images as f64 / self.seconds,
            self.results.display()
        )
    }
}

/// Runs the detector on the request's images: `detections.json` holds every box the decoding
/// keeps (the top `detect.max_detections` peaks above `detect.min_score`, as box AP wants them);
/// the drawings show the persons the pose model would get (`detect.person_score`, box NMS).
pub fn detect(req: &DetectRequest) -> Result<DetectReport> {
    let images = req.images.list()?;
    let results = req.out.join("detections.json");
    let mut outputs = vec![results.clone()];
    if req.draw {
        outputs.extend(images.iter().map(|p| crate::viz::drawing_path(&req.out, p, None)));
    }
    let mut inputs = images.clone();
    inputs.extend([req.checkpoint.clone()].into_iter().chain(req.ann.clone()));
    crate::fsutil::refuse_output_in_input_folder(&req.out, &images)?;
    crate::fsutil::refuse_overwriting_inputs(&outputs, &inputs)?;
    crate::fsutil::refuse_existing(&outputs, req.force)?;
    let start = Instant::now();
    let gt = req.ann.as_deref().map(CocoDataset::load).transpose()?;
    let ids = image_ids(&images, gt.as_ref())?;
    let jobs: Vec<DetectJob> =
        images.iter().zip(ids).map(|(p, id)| DetectJob { image_id: id, path: p.clone() }).collect();
    let trained = super::open_checkpoint(req.device, &req.checkpoint, None)?;
    let cfg = trained.cfg;
    let mut detector = Detector::for_config(trained.model, &cfg)?;
    std::fs::create_dir_all(&req.out).with_context(|| format!("{}: cannot create", req.out.display()))?;
    let mut persons = 0;
    let found = detector.run(&jobs, cfg.data.category_id, |job, img, boxes| {
        let kept = person_boxes(job.image_id, boxes, cfg.detect.person_score, cfg.detect.nms_iou);
        persons += kept.len();
        if !req.draw {
            return Ok(());
        }
        let mut canvas = img.clone();
        for b in &kept {
            crate::viz::draw_box(&mut canvas, b.bbox, Some(b.score));
        }
        crate::viz::save_image(&canvas, &crate::viz::drawing_path(&req.out, &job.path, None), req.force)
    })?;
    crate::fsutil::write_atomic(&results, crate::coco::box_results_json(&found.boxes).as_bytes())?;
    let report = DetectReport {
        boxes: found.boxes.len(),
        persons,
        images: images.len() - found.failed.len(),
        results,
        seconds: start.elapsed().as_secs_f64(),
    };
    super::images::fail_on_unreadable(&found.failed, images.len(), &report)?;
    Ok(report)
}

/// The person boxes a detector checkpoint finds in `jobs`' images for the pose model (score at
/// least its `detect.person_score`, box NMS at `detect.nms_iou`), and how long that took.
pub fn detector_person_boxes(device: Device, checkpoint: &Path, jobs: &[DetectJob]) -> Result<(Vec<PersonBox>, f64)> {
    let start = Instant::now();
    let trained = super::open_checkpoint(device, checkpoint, None)?;
    let cfg = trained.cfg;
    let mut detector =
        Detector::for_config(trained.model, &cfg).with_context(|| format!("{}: --detector", checkpoint.display()))?;
    let mut out = Vec::new();
    let found = detector.run(jobs, cfg.data.category_id, |job, _, boxes| {
        out.extend(person_boxes(job.image_id, boxes, cfg.detect.person_score, cfg.detect.nms_iou));
        Ok(())
    })?;
    crate::infer::ensure_all_read(&found.failed)?;
    Ok((out, start.elapsed().as_secs_f64()))
}
