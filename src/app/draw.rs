//! `dypose draw`: skeletons of a GT file or of a results file on the images of a folder, with
//! the GT file's own keypoint set (or a spec file's). Drawings keep the folders of the images'
//! `file_name`s (PoseTrack18's per-video folders hold frames of the same names).

use crate::coco::CocoDataset;
use crate::config::ImageFormat;
use crate::viz::{draw_pose, drawing_path, save_image, Pose};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Joints, box and score of one person to draw.
type Drawn = (Vec<[f64; 3]>, Option<[f64; 4]>, Option<f64>);

pub struct DrawRequest {
    pub ann: PathBuf,
    pub images: PathBuf,
    pub out: PathBuf,
    pub results: Option<PathBuf>,
    /// A keypoint spec file; default: the GT file's own set (`coco::find_keypoint_set`).
    pub spec: Option<PathBuf>,
    /// The GT annotations' array that holds the joints.
    pub keypoint_field: String,
    pub min_score: f64,
    /// The input's own format when `None`.
    pub format: Option<ImageFormat>,
    pub force: bool,
}

/// Draws every image of the GT file that has something to draw; returns how many were written.
/// Unreadable images are named in the error after the others are written.
pub fn draw(req: &DrawRequest) -> Result<usize> {
    let gt = CocoDataset::load_field(&req.ann, &req.keypoint_field)?;
    let spec = super::announced(crate::coco::find_keypoint_set(&gt, None, req.spec.as_deref())?);
    let mut poses: BTreeMap<i64, Vec<Drawn>> = BTreeMap::new();
    match &req.results {
        Some(r) => {
            for res in crate::coco::load_results(r, &gt, spec.len())? {
                if res.score >= req.min_score {
                    let kps = res.keypoints.chunks_exact(3).map(|k| [k[0], k[1], k[2]]).collect();
                    poses.entry(res.image_id).or_default().push((kps, None, Some(res.score)));
                }
            }
        }
        None => {
            // The set's joint count is that of every non-empty keypoint array (checked when found).
            for a in gt.annotations.iter().filter(|a| !a.iscrowd) {
                let Some(k) = a.keypoints.as_ref().filter(|k| !k.is_empty()) else { continue };
                // GT visibility 1/2 shown, 0 hidden.
                let kps = k.chunks_exact(3).map(|k| [k[0], k[1], if k[2] > 0.0 { 1.0 } else { 0.0 }]).collect();
                poses.entry(a.image_id).or_default().push((kps, a.bbox, None));
            }
            if poses.is_empty() {
                bail!(
                    "{}: no person has a non-empty `{}` array: nothing to draw (--keypoint-field reads another array)",
                    gt.source.display(),
                    gt.keypoint_field
                );
            }
        }
    }
    // What will be written, checked before any work: never over an input, nor over an earlier
    // drawing without --force; records whose file_name points outside --images are refused.
    let mut failed = Vec::new();
    let mut plan = Vec::new();
    for (id, list) in &poses {
        let Some(rec) = gt.image(*id) else { continue };
        match crate::fsutil::inside(&req.images, &rec.file_name) {
            Ok(src) => {
                let folder = req.out.join(Path::new(&rec.file_name).parent().unwrap_or(Path::new("")));
                plan.push((src, drawing_path(&folder, Path::new(&rec.file_name), req.format), list))
            }
            Err(e) => failed.push(format!("{}: image {id}: {e}", req.ann.display())),
        }
    }
    let outputs: Vec<PathBuf> = plan.iter().map(|(_, out, _)| out.clone()).collect();
    let mut inputs: Vec<PathBuf> = plan.iter().map(|(src, _, _)| src.clone()).collect();
    inputs.extend([req.ann.clone()].into_iter().chain(req.results.clone()));
    crate::fsutil::refuse_shared_outputs(&outputs, &inputs)?;
    let mut folders: Vec<PathBuf> = outputs.iter().filter_map(|p| p.parent()).map(Path::to_path_buf).collect();
    folders.push(req.out.clone());
    folders.sort();
    folders.dedup();
    crate::fsutil::refuse_outputs_in_input_folders(&req.out, &folders, &inputs)?;
    crate::fsutil::refuse_overwriting_inputs(&outputs, &inputs)?;
    crate::fsutil::refuse_existing(&outputs, req.force)?;
    let mut written = 0;
    for (src, out, list) in plan {
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
        save_image(&img, &out, req.force)?;
        written += 1;
    }
    if !failed.is_empty() {
        bail!(
            "{} images could not be read or were refused ({written} drawings written): {}",
            failed.len(),
            failed.join("; ")
        );
    }
    Ok(written)
}
