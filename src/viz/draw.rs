//! `dypose draw`: skeletons of a GT file or of a results file on the images of a folder.

use super::{draw_pose, drawing_path, save_image, Pose};
use crate::coco::{CocoDataset, KeypointSpec};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Joints, box and score of one person to draw.
type Drawn = (Vec<[f64; 3]>, Option<[f64; 4]>, Option<f64>);

pub struct DrawRequest<'a> {
    pub ann: &'a Path,
    pub images: &'a Path,
    pub out: &'a Path,
    pub results: Option<&'a Path>,
    pub min_score: f64,
    /// "png" or "jpg"; None: the input's own format.
    pub format: Option<&'a str>,
    pub force: bool,
}

/// Draws every image of the GT file that has something to draw; returns how many were written.
/// Unreadable images are named in the error after the others are written.
pub fn draw_dataset(req: &DrawRequest) -> Result<usize> {
    let gt = CocoDataset::load(req.ann)?;
    let spec = KeypointSpec::coco17();
    let mut poses: BTreeMap<i64, Vec<Drawn>> = BTreeMap::new();
    match req.results {
        Some(r) => {
            for res in crate::coco::load_results(r, &gt, spec.len())? {
                if res.score >= req.min_score {
                    let kps = res.keypoints.chunks_exact(3).map(|k| [k[0], k[1], k[2]]).collect();
                    poses.entry(res.image_id).or_default().push((kps, None, Some(res.score)));
                }
            }
        }
        None => {
            for a in gt.annotations.iter().filter(|a| !a.iscrowd) {
                let Some(k) = &a.keypoints else { continue };
                // GT visibility 1/2 shown, 0 hidden.
                let kps = k.chunks_exact(3).map(|k| [k[0], k[1], if k[2] > 0.0 { 1.0 } else { 0.0 }]).collect();
                poses.entry(a.image_id).or_default().push((kps, Some(a.bbox), None));
            }
        }
    }
    let (mut written, mut failed) = (0, Vec::new());
    for (id, list) in &poses {
        let Some(rec) = gt.image(*id) else { continue };
        let src = req.images.join(&rec.file_name);
        let mut img = match crate::data::loader::load_rgb(&src) {
            Ok(i) => i,
            Err(e) => {
                failed.push(e);
                continue;
            }
        };
        for (kps, bbox, score) in list {
            let pose = Pose { keypoints: kps, bbox: *bbox, score: *score };
            draw_pose(&mut img, &pose, &spec, if req.results.is_some() { req.min_score } else { 0.5 });
        }
        save_image(&img, &drawing_path(req.out, Path::new(&rec.file_name), req.format), req.force)?;
        written += 1;
    }
    if !failed.is_empty() {
        bail!("{} images could not be read ({written} drawings written): {}", failed.len(), failed.join("; "));
    }
    Ok(written)
}
