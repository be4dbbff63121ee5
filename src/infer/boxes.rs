//! Where the persons are: ground-truth boxes, a detector's boxes, or the whole image.

use crate::coco::results::box_results_from_records;
use crate::coco::schema::{BoxRecord, Id};
use crate::coco::CocoDataset;
use anyhow::Result;
use std::path::Path;

/// One person box to run the pose model on.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonBox {
    pub image_id: Id,
    /// COCO `[x, y, w, h]` in image pixels.
    pub bbox: [f64; 4],
    pub score: f64,
}

/// The ground-truth persons that SimpleBaseline evaluates with GT boxes: not crowd, at least one
/// labelled joint, the box clipped to the image and non-empty; score 1.
pub fn gt_boxes(gt: &CocoDataset, category_id: i64, num_joints: usize) -> Vec<PersonBox> {
    let (instances, _) = crate::data::instances::train_instances(gt, Path::new(""), category_id, num_joints);
    instances.into_iter().map(|i| PersonBox { image_id: i.image_id, bbox: i.bbox, score: 1.0 }).collect()
}

/// Person boxes from a COCO detection results file (`[{image_id, category_id, bbox, score}]`):
/// `category_id` only, score at least `min_score`, boxes with positive size. With `gt`, every
/// image must be one of its images.
pub fn detection_boxes(
    path: &Path,
    category_id: i64,
    min_score: f64,
    gt: Option<&CocoDataset>,
) -> Result<Vec<PersonBox>> {
    let records: Vec<BoxRecord> = crate::coco::json::read_with(path, crate::coco::json::parse_array_par)?;
    boxes_from_records(records, &path.display().to_string(), category_id, min_score, gt)
}

/// [`detection_boxes`] of a file's bytes (`name` for messages).
pub fn detection_boxes_from_bytes(
    bytes: &[u8],
    name: &str,
    category_id: i64,
    min_score: f64,
    gt: Option<&CocoDataset>,
) -> Result<Vec<PersonBox>> {
    let records = crate::coco::json::parse_array_par(crate::coco::json::without_bom(bytes))
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    boxes_from_records(records, name, category_id, min_score, gt)
}

fn boxes_from_records(
    records: Vec<BoxRecord>,
    name: &str,
    category_id: i64,
    min_score: f64,
    gt: Option<&CocoDataset>,
) -> Result<Vec<PersonBox>> {
    Ok(box_results_from_records(records, name, gt)?
        .into_iter()
        .filter(|r| r.category_id == category_id && r.score >= min_score && r.bbox[2] > 0.0 && r.bbox[3] > 0.0)
        .map(|r| PersonBox { image_id: r.image_id, bbox: r.bbox, score: r.score })
        .collect())
}

/// Boxes grouped by image, in image-id order.
pub fn group_by_image(boxes: Vec<PersonBox>) -> std::collections::BTreeMap<Id, Vec<PersonBox>> {
    let mut by_image: std::collections::BTreeMap<Id, Vec<PersonBox>> = Default::default();
    for b in boxes {
        by_image.entry(b.image_id).or_default().push(b);
    }
    by_image
}

/// The whole image as one person box (for images nobody has boxed).
pub fn whole_image_box(image_id: Id, width: u32, height: u32) -> PersonBox {
    PersonBox { image_id, bbox: [0.0, 0.0, width as f64, height as f64], score: 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detections_are_filtered_and_bad_records_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dets.json");
        std::fs::write(
            &p,
            r#"[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.9},
                {"image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 0.9},
                {"image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.1},
                {"image_id": 2, "category_id": 1, "bbox": [1, 2, 0, 4], "score": 0.9}]"#,
        )
        .unwrap();
        let b = detection_boxes(&p, 1, 0.2, None).unwrap();
        assert_eq!(b, vec![PersonBox { image_id: 1, bbox: [1.0, 2.0, 3.0, 4.0], score: 0.9 }]);
        assert_eq!(detection_boxes(&p, 1, 0.0, None).unwrap().len(), 2);
        std::fs::write(&p, r#"[{"image_id": 7, "category_id": 1, "bbox": [1, 2, 3], "score": 0.9}]"#).unwrap();
        let e = format!("{:#}", detection_boxes(&p, 1, 0.0, None).unwrap_err());
        assert!(e.contains("dets.json: record [0] (image_id 7, category_id 1): bbox has 3 numbers"), "{e}");
    }
}
