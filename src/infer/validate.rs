//! Scoring a network on a COCO set: the validation of `dypose train`, `dypose eval --checkpoint`
//! and the quickstart all run through here, and through `eval::evaluate_keypoints`.

use super::boxes::{detection_boxes, group_by_image, gt_boxes, PersonBox};
use super::predictor::Person;
use super::predictor::{HeatmapModel, Predictions};
use super::{ImageJob, Predictor};
use crate::coco::{CocoDataset, KeypointSpec};
use crate::config::Config;
use crate::eval::Stats;
use crate::model::backend::ConvBackend;
use crate::model::network::Network;
use anyhow::{bail, ensure, Context, Result};
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
///
/// In a job of several ranks each rank predicts its contiguous part of `jobs`; rank 0 gathers
/// the persons in job order (so they are what one process finds), scores them and hands the
/// stats to every rank. The predictions come back in rank 0 only.
pub fn predict_and_score(
    net: &mut impl HeatmapModel,
    cfg: &Config,
    spec: &KeypointSpec,
    gt: &CocoDataset,
    jobs: &[ImageJob],
) -> Result<(Stats, Predictions)> {
    let world = crate::dist::world();
    let mut predictor = Predictor::for_config(net, cfg, spec)?;
    let mut out = predictor.run(&jobs[world.part(jobs.len())], |_, _, _| Ok(()))?;
    super::ensure_all_read(&out.failed)?;
    if world.size > 1 {
        let mut crops = [out.crops as f64];
        world.sum_f64(&mut crops);
        out.crops = crops[0] as usize;
        let parts = world.gather(&encode_persons(&out.persons))?;
        if world.is_root() {
            out.persons = parts.iter().map(|p| decode_persons(p)).collect::<Result<Vec<_>>>()?.concat();
        }
    }
    let stats = match world.is_root() {
        true => {
            let results = super::predictor::results_of(&out.persons, cfg.data.category_id);
            Some(crate::eval::evaluate_keypoints(gt, &results, spec.sigmas()?)?.stats)
        }
        false => None,
    };
    if world.size == 1 {
        return Ok((stats.expect("one rank is rank 0"), out));
    }
    let shared = world.broadcast(stats.map(|s| stats_bytes(&s)).unwrap_or_default());
    let stats = stats_from_bytes(&shared).context("the stats rank 0 sent")?;
    if !world.is_root() {
        out = Predictions::default();
    }
    Ok((stats, out))
}

/// The ten stats as little-endian f64 bits (exact, NaN included), for a broadcast.
fn stats_bytes(s: &Stats) -> Vec<u8> {
    [s.ap, s.ap50, s.ap75, s.apm, s.apl, s.ar, s.ar50, s.ar75, s.arm, s.arl]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

fn stats_from_bytes(bytes: &[u8]) -> Result<Stats> {
    ensure!(bytes.len() == 80, "{} bytes, not the ten stats", bytes.len());
    let v: Vec<f64> = bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
    let [ap, ap50, ap75, apm, apl, ar, ar50, ar75, arm, arl] = v[..] else { unreachable!("ten values") };
    Ok(Stats { ap, ap50, ap75, apm, apl, ar, ar50, ar75, arm, arl })
}

/// Persons as bytes, for a gather: per person its count of joints, then image id, box, box
/// score, score, area and joints as little-endian f64 (image ids are exact in f64 up to 2^53).
fn encode_persons(persons: &[Person]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in persons {
        let head = [p.keypoints.len() as f64, p.image_id as f64, p.bbox[0], p.bbox[1], p.bbox[2], p.bbox[3]];
        let tail = [p.box_score, p.score, p.area];
        for v in head.iter().chain(&tail).chain(p.keypoints.iter().flatten()) {
            out.extend(v.to_le_bytes());
        }
    }
    out
}

fn decode_persons(bytes: &[u8]) -> Result<Vec<Person>> {
    let values: Vec<f64> = bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
    let mut persons = Vec::new();
    let mut rest = &values[..];
    while let [joints, image_id, x, y, w, h, box_score, score, area, more @ ..] = rest {
        let j = *joints as usize;
        ensure!(more.len() >= 3 * j, "a truncated list of persons from another rank");
        let keypoints = more[..3 * j].chunks_exact(3).map(|k| [k[0], k[1], k[2]]).collect();
        let (image_id, bbox) = (*image_id as crate::coco::Id, [*x, *y, *w, *h]);
        persons.push(Person { image_id, bbox, box_score: *box_score, keypoints, score: *score, area: *area });
        rest = &more[3 * j..];
    }
    ensure!(rest.is_empty(), "a truncated list of persons from another rank");
    Ok(persons)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Persons sent to rank 0 arrive as they were, whatever their joint count.
    #[test]
    fn persons_round_trip_through_bytes() {
        let person = |id: i64, joints: usize| Person {
            image_id: id,
            bbox: [1.5, -2.0, 30.25, 40.0],
            box_score: 0.75,
            keypoints: (0..joints).map(|j| [j as f64 + 0.1, 1e-300, f64::MIN_POSITIVE]).collect(),
            score: 0.3,
            area: 1234.5,
        };
        let persons = vec![person(785, 17), person(1 << 40, 0), person(-3, 133)];
        assert_eq!(decode_persons(&encode_persons(&persons)).unwrap(), persons);
        assert!(decode_persons(&encode_persons(&persons)[..100]).is_err());
    }

    #[test]
    fn stats_round_trip_through_bytes_nan_and_all() {
        let s = Stats {
            ap: 0.1,
            ap50: f64::NAN,
            ap75: -1.0,
            apm: 1e-300,
            apl: 1.0,
            ar: 0.3,
            ar50: 0.5,
            ar75: 0.7,
            arm: 0.0,
            arl: 2.0 / 3.0,
        };
        let back = stats_from_bytes(&stats_bytes(&s)).unwrap();
        assert_eq!(stats_bytes(&back), stats_bytes(&s));
        assert!(back.ap50.is_nan() && back.arl == 2.0 / 3.0);
        assert!(stats_from_bytes(&[0; 79]).is_err());
    }
}
