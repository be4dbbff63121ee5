//! COCO results files, keypoints (`[{image_id, category_id, keypoints, score}]`) and boxes
//! (`[{image_id, category_id, bbox, score}]`), validated against the ground truth they will be
//! scored with.

use super::dataset::CocoDataset;
use super::json::{parse_array_par, read_with};
use super::schema::{BoxRecord, Id, ResultRecord};
use anyhow::{bail, ensure, Result};
use std::path::Path;

/// One detected person, with the area pycocotools assigns to it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeypointResult {
    pub image_id: Id,
    pub category_id: Id,
    pub keypoints: Vec<f64>,
    pub score: f64,
    pub area: f64,
}

/// Loads a results file; every record must have `3 × num_keypoints` finite numbers, a finite
/// score and an image that the ground truth has.
pub fn load_results(path: &Path, gt: &CocoDataset, num_keypoints: usize) -> Result<Vec<KeypointResult>> {
    let records = read_result_records(path)?;
    results_from_records(records, &path.display().to_string(), gt, num_keypoints)
}

/// The raw records of a results file, parsed in parallel.
pub fn read_result_records(path: &Path) -> Result<Vec<ResultRecord>> {
    read_with(path, parse_array_par)
}

pub fn results_from_records(
    records: Vec<ResultRecord>,
    name: &str,
    gt: &CocoDataset,
    num_keypoints: usize,
) -> Result<Vec<KeypointResult>> {
    // pycocotools (COCO.loadRes) picks the area rule from the first record only.
    let area_from_bbox = records.first().is_some_and(|r| r.bbox.as_ref().is_some_and(|b| !b.is_empty()));
    if !area_from_bbox {
        if let Some(i) = records.iter().position(|r| r.segmentation.is_some()) {
            bail!("{name}: record [{i}]: 'segmentation' in keypoint results is not supported (pycocotools would take the area from the mask)");
        }
    }
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.into_iter().enumerate() {
        let at = || format!("{name}: record [{i}] (image_id {}, category_id {})", r.image_id, r.category_id);
        ensure!(
            r.keypoints.len() == 3 * num_keypoints,
            "{}: keypoints has {} numbers, expected {} ({num_keypoints} keypoints × 3)",
            at(),
            r.keypoints.len(),
            3 * num_keypoints
        );
        if let Some(j) = r.keypoints.iter().position(|v| !v.is_finite()) {
            bail!("{}: keypoints[{j}] is {}, not a finite number", at(), r.keypoints[j]);
        }
        check_score_and_image(&at(), r.score, r.image_id, Some(gt))?;
        let area = if area_from_bbox {
            match r.bbox.as_deref() {
                Some(&[_, _, w, h, ..]) if w.is_finite() && h.is_finite() => w * h,
                _ => bail!("{}: the first result has a bbox, so every result needs a finite [x, y, w, h] bbox (pycocotools takes the area from it)", at()),
            }
        } else {
            keypoint_box_area(&r.keypoints)
        };
        out.push(KeypointResult {
            image_id: r.image_id,
            category_id: r.category_id,
            keypoints: r.keypoints,
            score: r.score,
            area,
        });
    }
    Ok(out)
}

/// A results file's text: `[{image_id, category_id, keypoints, score}]`, as pycocotools reads it.
pub fn results_json(results: &[KeypointResult]) -> String {
    serde_json::to_string(&result_records(results)).expect("results hold finite numbers only")
}

/// The records of a results file (`results_json` writes them).
pub fn result_records(results: &[KeypointResult]) -> Vec<ResultRecord> {
    results
        .iter()
        .map(|r| ResultRecord {
            image_id: r.image_id,
            category_id: r.category_id,
            keypoints: r.keypoints.clone(),
            score: r.score,
            bbox: None,
            segmentation: None,
        })
        .collect()
}

/// One detected box (`[x, y, w, h]`); its area for the area ranges is `w × h`, as pycocotools
/// assigns it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxResult {
    pub image_id: Id,
    pub category_id: Id,
    pub bbox: [f64; 4],
    pub score: f64,
}

/// What keypoint and box results both need: a finite score and, with `gt`, an image of it
/// (`at` names the record).
fn check_score_and_image(at: &str, score: f64, image_id: Id, gt: Option<&CocoDataset>) -> Result<()> {
    ensure!(score.is_finite(), "{at}: score {score} is not a finite number");
    if let Some(gt) = gt {
        ensure!(
            gt.contains_image(image_id),
            "{at}: image_id {image_id} is not an image of the ground truth {}",
            gt.source.display()
        );
    }
    Ok(())
}

/// Loads a box results file; every record needs a bbox of 4 finite numbers, a finite score and
/// an image that the ground truth has.
pub fn load_box_results(path: &Path, gt: &CocoDataset) -> Result<Vec<BoxResult>> {
    let records: Vec<BoxRecord> = read_with(path, parse_array_par)?;
    box_results_from_records(records, &path.display().to_string(), Some(gt))
}

/// Validates box records (`name` for messages); with `gt`, every image must be one of its images.
pub fn box_results_from_records(
    records: Vec<BoxRecord>,
    name: &str,
    gt: Option<&CocoDataset>,
) -> Result<Vec<BoxResult>> {
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.into_iter().enumerate() {
        let at = || format!("{name}: record [{i}] (image_id {}, category_id {})", r.image_id, r.category_id);
        let &[x, y, w, h] = r.bbox.as_slice() else {
            bail!("{}: bbox has {} numbers, expected 4 ([x, y, w, h])", at(), r.bbox.len());
        };
        ensure!(r.bbox.iter().all(|v| v.is_finite()), "{}: bbox {:?} is not finite", at(), r.bbox);
        check_score_and_image(&at(), r.score, r.image_id, gt)?;
        out.push(BoxResult { image_id: r.image_id, category_id: r.category_id, bbox: [x, y, w, h], score: r.score });
    }
    Ok(out)
}

/// A box results file's text, as COCO detection results are written.
pub fn box_results_json(results: &[BoxResult]) -> String {
    let records: Vec<BoxRecord> = results
        .iter()
        .map(|r| BoxRecord { image_id: r.image_id, category_id: r.category_id, bbox: r.bbox.to_vec(), score: r.score })
        .collect();
    serde_json::to_string(&records).expect("results hold finite numbers only")
}

/// Area of the box around *all* keypoints, labelled or not (pycocotools' rule for results).
pub fn keypoint_box_area(keypoints: &[f64]) -> f64 {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for p in keypoints.chunks_exact(3) {
        x0 = x0.min(p[0]);
        x1 = x1.max(p[0]);
        y0 = y0.min(p[1]);
        y1 = y1.max(p[1]);
    }
    (x1 - x0) * (y1 - y0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coco::schema::AnnotationFile;

    fn gt() -> CocoDataset {
        let file: AnnotationFile =
            serde_json::from_str(r#"{"images": [{"id": 7}], "annotations": [], "categories": [{"id": 1}]}"#).unwrap();
        CocoDataset::from_file(file, "gt.json".into()).unwrap()
    }

    fn parse(text: &str) -> Result<Vec<KeypointResult>> {
        results_from_records(serde_json::from_str(text).unwrap(), "res.json", &gt(), 2)
    }

    #[test]
    fn area_is_the_box_of_all_keypoints_unless_the_first_result_has_a_bbox() {
        let r = parse(r#"[{"image_id": 7, "category_id": 1, "score": 1, "keypoints": [1, 2, 0, 4, 10, 2]}]"#).unwrap();
        assert_eq!(r[0].area, 3.0 * 8.0);
        let r = parse(
            r#"[{"image_id": 7, "category_id": 1, "score": 1, "keypoints": [1, 2, 0, 4, 10, 2], "bbox": [0, 0, 5, 6]},
                {"image_id": 7, "category_id": 1, "score": 1, "keypoints": [1, 2, 0, 4, 10, 2], "bbox": [0, 0, 2, 2]}]"#,
        )
        .unwrap();
        assert_eq!((r[0].area, r[1].area), (30.0, 4.0));
        let r = parse(
            r#"[{"image_id": 7, "category_id": 1, "score": 1, "keypoints": [1, 2, 0, 4, 10, 2], "bbox": []},
                {"image_id": 7, "category_id": 1, "score": 1, "keypoints": [1, 2, 0, 4, 10, 2], "bbox": [0, 0, 2, 2]}]"#,
        )
        .unwrap();
        assert_eq!(r[1].area, 24.0, "an empty first bbox selects the keypoint rule for all");
    }

    #[test]
    fn written_results_read_back_equal() {
        let text = r#"[{"image_id": 7, "category_id": 1, "score": 0.25, "keypoints": [1.5, 2, 0.1, 4, 10.125, 2]}]"#;
        let first = parse(text).unwrap();
        let again = parse(&results_json(&first)).unwrap();
        assert_eq!(again, first);
        assert!(results_json(&first).starts_with(r#"[{"image_id":7,"category_id":1,"keypoints":[1.5,2.0,0.1"#));
    }

    #[test]
    fn bad_records_are_named() {
        let err = parse(
            r#"[{"image_id": 7, "category_id": 1, "score": 1, "keypoints": [1, 2, 0, 4, 10, 2]},
                            {"image_id": 8, "category_id": 1, "score": 1, "keypoints": [1, 2, 0, 4, 10, 2]}]"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("res.json: record [1] (image_id 8") && err.contains("not an image of the ground truth"),
            "{err}"
        );
        let err = parse(r#"[{"image_id": 7, "category_id": 1, "score": 1, "keypoints": [1, 2, 0, 4, 10]}]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("record [0]") && err.contains("5 numbers, expected 6"), "{err}");
    }
}
