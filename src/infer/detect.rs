//! The person detector at inference: images → letterboxed inputs → centre-net maps → boxes in
//! image coordinates (3×3 peaks, top-K); box NMS and a score threshold for the pose model; box
//! AP on a COCO set. Only `HeatmapModel` touches tensors.

use super::boxes::PersonBox;
use super::post::mirror_inputs;
use super::predictor::HeatmapModel;
use crate::coco::boxes::box_iou;
use crate::coco::{BoxResult, CocoDataset, Id};
use crate::config::{Config, Size, Task};
use crate::data::center::{CenterCodec, ScoredBox};
use crate::data::detect::{clip_box, DetectSpec, Letterbox};
use crate::data::warp::{normalize_chw, warp_rgb};
use crate::eval::{evaluate_boxes, BoxStats};
use anyhow::{ensure, Result};
use image::RgbImage;
use rayon::prelude::*;
use std::path::PathBuf;

/// A detector network with its decoding settings.
pub struct Detector<M> {
    model: M,
    codec: CenterCodec,
    max_detections: usize,
    min_score: f64,
    batch_size: usize,
    /// Also run the mirrored images and average (`val.flip_test`).
    flip: bool,
}

/// One image to detect persons in.
#[derive(Debug, Clone)]
pub struct DetectJob {
    pub image_id: Id,
    pub path: PathBuf,
}

/// What [`Detector::run`] found: boxes of every readable image, and the unreadable ones.
#[derive(Debug, Clone, Default)]
pub struct Detections {
    pub boxes: Vec<BoxResult>,
    pub failed: Vec<(PathBuf, String)>,
}

impl<M: HeatmapModel> Detector<M> {
    /// `model` (trained with `model.task: "detect"`) with the config's input size and decoding.
    pub fn for_config(model: M, cfg: &Config) -> Result<Self> {
        ensure!(
            cfg.model.task == Task::Detect,
            "this checkpoint is a pose model, not a person detector (model.task is \"pose\")"
        );
        Ok(Detector {
            model,
            codec: DetectSpec::from_config(cfg, false).codec,
            max_detections: cfg.detect.max_detections,
            min_score: cfg.detect.min_score,
            batch_size: cfg.val.batch_size.max(1),
            flip: cfg.val.flip_test,
        })
    }

    pub fn input_size(&self) -> Size {
        self.codec.input
    }

    /// The boxes of each image, in image coordinates (clipped to the image), best first.
    pub fn detect(&mut self, images: &[&RgbImage]) -> Result<Vec<Vec<ScoredBox>>> {
        let size = self.codec.input;
        let per_image = 3 * size.area();
        let mut out = Vec::with_capacity(images.len());
        for batch in images.chunks(self.batch_size) {
            let mut inputs = vec![0.0f32; batch.len() * per_image];
            let letterboxes: Vec<_> = inputs
                .par_chunks_mut(per_image)
                .zip(batch)
                .map(|(dst, img)| {
                    let lb = Letterbox::fit(img.width(), img.height(), size);
                    normalize_chw(&warp_rgb(img, &lb.map, size), dst);
                    lb
                })
                .collect();
            let maps = self.model.heatmaps(&inputs, batch.len(), size)?;
            let per = maps.len() / batch.len();
            let plane = self.codec.output.area();
            ensure!(per == 5 * plane, "the network gives {per} values per image, a detector {}", 5 * plane);
            let mirrored = match self.flip {
                true => Some(self.model.heatmaps(&mirror_inputs(&inputs, size), batch.len(), size)?),
                false => None,
            };
            let found = boxes_of_maps(&self.codec, maps, mirrored, self.max_detections, self.min_score);
            out.par_extend(found.into_par_iter().zip(letterboxes).zip(batch).map(|((boxes, lb), img)| {
                let image_size = Size::new(img.width() as usize, img.height() as usize);
                boxes
                    .into_iter()
                    .filter_map(|b| {
                        let bbox = clip_box(lb.box_to_image(b.bbox), image_size, f64::MIN_POSITIVE)?;
                        Some(ScoredBox { bbox, score: b.score })
                    })
                    .collect::<Vec<_>>()
            }));
        }
        Ok(out)
    }

    /// Detects persons in every job (`category_id` on the results); `each` sees every readable
    /// image with its boxes (for drawing).
    pub fn run(
        &mut self,
        jobs: &[DetectJob],
        category_id: Id,
        mut each: impl FnMut(&DetectJob, &RgbImage, &[ScoredBox]) -> Result<()>,
    ) -> Result<Detections> {
        let bar = crate::progress::bar(jobs.len() as u64, "detect", "images");
        let mut out = Detections::default();
        let per_chunk = (self.batch_size * 2).max(rayon::current_num_threads());
        for chunk in jobs.chunks(per_chunk) {
            let loaded: Vec<_> = chunk.par_iter().map(|j| crate::data::loader::load_rgb(&j.path)).collect();
            let mut readable = Vec::new();
            for (job, img) in chunk.iter().zip(&loaded) {
                match img {
                    Ok(img) => readable.push((job, img)),
                    Err(e) => out.failed.push((job.path.clone(), e.clone())),
                }
            }
            let images: Vec<&RgbImage> = readable.iter().map(|(_, img)| *img).collect();
            for ((job, img), boxes) in readable.iter().zip(self.detect(&images)?) {
                each(job, img, &boxes)?;
                out.boxes.extend(boxes.iter().map(|b| BoxResult {
                    image_id: job.image_id,
                    category_id,
                    bbox: b.bbox,
                    score: b.score,
                }));
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(out)
    }
}

/// The boxes (input pixels, best first) in each image's raw network maps, the mirrored images'
/// maps averaged in when given (the flip test): the detector's whole decoding.
pub fn boxes_of_maps(
    codec: &CenterCodec,
    mut maps: Vec<f32>,
    mirrored: Option<Vec<f32>>,
    top_k: usize,
    min_score: f64,
) -> Vec<Vec<ScoredBox>> {
    let plane = codec.output.area();
    sigmoid(&mut maps, plane);
    if let Some(mut mirrored) = mirrored {
        sigmoid(&mut mirrored, plane);
        average_mirrored(&mut maps, &mirrored, codec.output);
    }
    maps.par_chunks(5 * plane).map(|m| codec.decode(&m[..plane], &m[plane..], top_k, min_score)).collect()
}

/// The centre logits (the first map of every 5) as probabilities.
fn sigmoid(maps: &mut [f32], plane: usize) {
    for m in maps.chunks_exact_mut(5 * plane) {
        m[..plane].iter_mut().for_each(|x| *x = 1.0 / (1.0 + (-*x).exp()));
    }
}

/// The flip test: `maps` becomes the mean of itself and the mirrored input's maps mirrored back,
/// where the mirror's left distance is the right one (CenterNet averages the probabilities;
/// the log distances are averaged too). Stride 4 maps cell x to cell W − 1 − x exactly.
fn average_mirrored(maps: &mut [f32], mirrored: &[f32], output: Size) {
    let (w, plane) = (output.width, output.area());
    // Channel c of the result reads channel `from[c]` of the mirror: left ↔ right.
    let from = [0, 3, 2, 1, 4];
    for (m, f) in maps.chunks_exact_mut(5 * plane).zip(mirrored.chunks_exact(5 * plane)) {
        for (c, &fc) in from.iter().enumerate() {
            for (row, frow) in
                m[c * plane..(c + 1) * plane].chunks_exact_mut(w).zip(f[fc * plane..(fc + 1) * plane].chunks_exact(w))
            {
                for x in 0..w {
                    row[x] = 0.5 * (row[x] + frow[w - 1 - x]);
                }
            }
        }
    }
}

/// Greedy box NMS: best first, each box dropped when its IoU with a kept one exceeds `iou`.
pub fn nms(mut boxes: Vec<ScoredBox>, iou: f64) -> Vec<ScoredBox> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<ScoredBox> = Vec::new();
    for b in boxes {
        if kept.iter().all(|k| box_iou(b.bbox, k.bbox, false) <= iou) {
            kept.push(b);
        }
    }
    kept
}

/// The person boxes the pose model runs on: score at least `min_score`, then NMS at `iou`.
pub fn person_boxes(image_id: Id, boxes: &[ScoredBox], min_score: f64, iou: f64) -> Vec<PersonBox> {
    let confident = boxes.iter().filter(|b| b.score >= min_score).copied().collect();
    nms(confident, iou).into_iter().map(|b| PersonBox { image_id, bbox: b.bbox, score: b.score }).collect()
}

/// One job per image of `gt`, in image-id order (file names must stay inside `images`).
pub fn detect_jobs(gt: &CocoDataset, images: &std::path::Path) -> Result<Vec<DetectJob>> {
    gt.image_ids_sorted()
        .into_iter()
        .map(|id| {
            let rec = gt.image(id).expect("listed ids have records");
            let path = crate::fsutil::inside(images, &rec.file_name)
                .map_err(|e| anyhow::anyhow!("{}: image {id}: {e}", gt.source.display()))?;
            Ok(DetectJob { image_id: id, path })
        })
        .collect()
}

/// Box AP of `model` on the images of `gt` (every image, as COCO scores detectors), and the
/// boxes it found.
pub fn evaluate_detector(
    model: &mut impl HeatmapModel,
    cfg: &Config,
    gt: &CocoDataset,
    images: &std::path::Path,
) -> Result<(BoxStats, Detections)> {
    let mut detector = Detector::for_config(model, cfg)?;
    let found = detector.run(&detect_jobs(gt, images)?, cfg.data.category_id, |_, _, _| Ok(()))?;
    super::ensure_all_read(&found.failed)?;
    Ok((evaluate_boxes(gt, &found.boxes)?.stats, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb(x: f64, score: f64) -> ScoredBox {
        ScoredBox { bbox: [x, 0.0, 10.0, 10.0], score }
    }

    #[test]
    fn the_flip_test_swaps_left_and_right_and_mirrors_columns() {
        // One image, 3 × 1 maps. The mirror saw a box whose left distance (channel 1) is 1 and
        // right (channel 3) 5 at its cell 0, i.e. at cell 2 of the image, left 5 and right 1.
        let out = Size::new(3, 1);
        let mut maps = vec![0.0f32; 15];
        let mut mirrored = vec![0.0f32; 15];
        (mirrored[0], mirrored[3], mirrored[9]) = (0.8, 1.0, 5.0);
        (maps[2], maps[5], maps[11]) = (0.4, 3.0, 3.0);
        average_mirrored(&mut maps, &mirrored, out);
        assert_eq!(&maps[..3], &[0.0, 0.0, 0.6], "heat: mean of 0.4 and the mirrored 0.8");
        assert_eq!(&maps[3..6], &[0.0, 0.0, 4.0], "left: mean of 3 and the mirror's right 5");
        assert_eq!(&maps[9..12], &[0.0, 0.0, 2.0], "right: mean of 3 and the mirror's left 1");
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        // 0 and 2 overlap with IoU 8/12 = 0.67; 5 overlaps 0 with IoU 5/15 = 0.33.
        let kept = nms(vec![sb(2.0, 0.8), sb(0.0, 0.9), sb(5.0, 0.7), sb(40.0, 0.1)], 0.6);
        let xs: Vec<f64> = kept.iter().map(|b| b.bbox[0]).collect();
        assert_eq!(xs, vec![0.0, 5.0, 40.0]);
        let p = person_boxes(7, &[sb(2.0, 0.8), sb(0.0, 0.9), sb(40.0, 0.1)], 0.3, 0.6);
        assert_eq!(p, vec![PersonBox { image_id: 7, bbox: [0.0, 0.0, 10.0, 10.0], score: 0.9 }]);
    }
}
