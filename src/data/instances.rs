//! COCO annotations → the person instances a top-down model trains on, with the filters of
//! the reference code, counted so that they can be reported once.

use crate::coco::CocoDataset;
use std::fmt;
use std::path::{Path, PathBuf};

/// One person to crop: its image, a clean box inside the image, and [x, y, v] per joint.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub image_id: i64,
    pub image_path: PathBuf,
    pub bbox: [f64; 4],
    pub keypoints: Vec<[f64; 3]>,
}

/// How many annotations each filter removed or flagged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterReport {
    pub kept: usize,
    pub crowd: usize,
    pub no_keypoints: usize,
    /// No box, a box empty after clipping to the image, or area ≤ 0.
    pub bad_box: usize,
    pub other_category: usize,
    pub unknown_image: usize,
    /// Persons on images whose `file_name` points outside the image folder (absolute, or `..`).
    pub outside_folder: usize,
    /// Kept instances with labelled joints outside the image (they get zero weight when their
    /// target window misses the heatmap).
    pub joints_outside_image: usize,
    /// The first image record refused for its `file_name`, and why.
    pub first_refused: Option<String>,
}

impl fmt::Display for FilterReport {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{} person instances kept; skipped: {} crowd, {} without labelled joints, {} with an empty or outside box, {} other categories, {} on images not listed, {} on images named outside the image folder; {} kept instances have labelled joints outside the image",
            self.kept, self.crowd, self.no_keypoints, self.bad_box, self.other_category, self.unknown_image, self.outside_folder, self.joints_outside_image
        )?;
        match &self.first_refused {
            Some(e) => write!(f, " (refused: {e})"),
            None => Ok(()),
        }
    }
}

/// Training instances of `category_id` with `num_joints` joints: not crowd, at least one
/// labelled joint, and a box that is non-empty once clipped to the image (SimpleBaseline's rule:
/// x1 = max(0, x), x2 = min(W − 1, x1 + max(0, w − 1)), kept when x2 ≥ x1 and area > 0).
pub fn train_instances(
    ds: &CocoDataset,
    images_dir: &Path,
    category_id: i64,
    num_joints: usize,
) -> (Vec<Instance>, FilterReport) {
    let mut report = FilterReport::default();
    let mut out = Vec::new();
    for ann in &ds.annotations {
        if ann.category_id != category_id {
            report.other_category += 1;
            continue;
        }
        let Some(img) = ds.image(ann.image_id) else {
            report.unknown_image += 1;
            continue;
        };
        if ann.iscrowd {
            report.crowd += 1;
            continue;
        }
        let kps = ann.keypoints.as_deref().unwrap_or(&[]);
        if kps.len() != 3 * num_joints || !kps.chunks_exact(3).any(|p| p[2] > 0.0) {
            report.no_keypoints += 1;
            continue;
        }
        let (w, h) = (img.width.unwrap_or(i64::MAX) as f64, img.height.unwrap_or(i64::MAX) as f64);
        let Some([x, y, bw, bh]) = ann.bbox else {
            report.bad_box += 1;
            continue;
        };
        let (x1, y1) = (x.max(0.0), y.max(0.0));
        let x2 = (w - 1.0).min(x1 + (bw - 1.0).max(0.0));
        let y2 = (h - 1.0).min(y1 + (bh - 1.0).max(0.0));
        if !(ann.area_or_box() > 0.0 && x2 >= x1 && y2 >= y1) {
            report.bad_box += 1;
            continue;
        }
        let image_path = match crate::fsutil::inside(images_dir, &img.file_name) {
            Ok(p) => p,
            Err(e) => {
                report.outside_folder += 1;
                report.first_refused.get_or_insert_with(|| format!("{}: image {}: {e}", ds.source.display(), img.id));
                continue;
            }
        };
        let keypoints: Vec<[f64; 3]> = kps.chunks_exact(3).map(|p| [p[0], p[1], p[2].min(1.0)]).collect();
        if keypoints.iter().any(|k| k[2] > 0.0 && (k[0] < 0.0 || k[1] < 0.0 || k[0] >= w || k[1] >= h)) {
            report.joints_outside_image += 1;
        }
        out.push(Instance { image_id: ann.image_id, image_path, bbox: [x1, y1, x2 - x1, y2 - y1], keypoints });
        report.kept += 1;
    }
    (out, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coco::schema::AnnotationFile;

    fn dataset(anns: &str) -> CocoDataset {
        let text = format!(
            r#"{{"images": [{{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}},
                           {{"id": 2, "file_name": "../b.jpg", "width": 100, "height": 80}}],
                "annotations": [{anns}], "categories": [{{"id": 1}}]}}"#
        );
        let file: AnnotationFile = serde_json::from_str(&text).unwrap();
        CocoDataset::from_file(file, "gt.json".into()).unwrap()
    }

    fn ann(id: i64, extra: &str, bbox: &str, kp: &str) -> String {
        format!(
            r#"{{"id": {id}, "image_id": 1, "category_id": 1, "area": 50, "bbox": {bbox}, "keypoints": {kp} {extra}}}"#
        )
    }

    #[test]
    fn the_reference_filters_are_applied_and_counted() {
        let good = "[10, 10, 2, 0, 0, 0]";
        let anns = [
            ann(1, "", "[10, 10, 30, 40]", good),
            ann(2, r#", "iscrowd": 1"#, "[10, 10, 30, 40]", good),
            ann(3, "", "[10, 10, 30, 40]", "[0, 0, 0, 0, 0, 0]"),
            ann(4, "", "[120, 10, 30, 40]", good),
            ann(5, "", "[-20, -5, 50, 30]", "[10, 10, 2, 150, 10, 1]"),
            ann(6, r#", "category_id": 2"#, "[10, 10, 30, 40]", good).replace(r#""category_id": 1, "#, ""),
            ann(7, "", "[10, 10, 30, 40]", good).replace(r#""image_id": 1"#, r#""image_id": 2"#),
        ]
        .join(",");
        let (inst, report) = train_instances(&dataset(&anns), Path::new("imgs"), 1, 2);
        assert_eq!(inst.len(), 2);
        assert_eq!(
            report,
            FilterReport {
                kept: 2,
                crowd: 1,
                no_keypoints: 1,
                bad_box: 1,
                other_category: 1,
                unknown_image: 0,
                outside_folder: 1,
                joints_outside_image: 1,
                first_refused: Some("gt.json: image 2: '../b.jpg' climbs out of imgs with '..'".into()),
            }
        );
        // Box clipped to the image: x1 = 0, x2 = min(99, 0 + 49) → w 49; y1 = 0, y2 = 29 → h 29.
        assert_eq!(inst[1].bbox, [0.0, 0.0, 49.0, 29.0]);
        assert_eq!(inst[0].image_path, Path::new("imgs/a.jpg"));
        assert_eq!(inst[0].keypoints[0], [10.0, 10.0, 1.0], "visibility capped at 1");
    }
}
