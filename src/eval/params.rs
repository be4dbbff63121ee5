//! Evaluation parameters, built exactly as pycocotools builds them (`Params.setKpParams`,
//! `Params.setDetParams`).

use crate::coco::CocoDataset;

/// An object-area range; both ends are inclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct AreaRange {
    pub label: &'static str,
    pub lo: f64,
    pub hi: f64,
}

impl AreaRange {
    pub fn contains(&self, area: f64) -> bool {
        !(area < self.lo || area > self.hi)
    }
}

pub use crate::config::IouType;

/// Whose rules decide where pycocotools and xtcocotools (mmpose's evaluator) differ. Both agree
/// on COCO's files; they part on files without `area` and on CrowdPose's benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// pycocotools' `COCOeval`: the GT `area` scales OKS and places the GT in an area range; a GT
    /// whose `num_keypoints` is 0 is ignored.
    Pycocotools,
    /// xtcocotools' `COCOeval(use_area=False)`, for files without `area`: the GT box's
    /// w·h·0.53 takes the area's two roles; a GT with no joint of v > 0 is ignored; a result with
    /// no joint score above 0 is dropped.
    XtcocotoolsNoArea,
    /// xtcocotools' `keypoints_crowd` with `use_area=False` (CrowdPose's benchmark): as
    /// `XtcocotoolsNoArea`, but a GT is ignored by its `num_keypoints` field.
    XtcocotoolsCrowd,
}

impl Reference {
    /// pycocotools for a file whose every annotation has an `area`, else xtcocotools'
    /// `use_area=False` (pycocotools cannot score such a file).
    pub fn for_gt(gt: &CocoDataset) -> Reference {
        match gt.annotations_without_area() {
            0 => Reference::Pycocotools,
            _ => Reference::XtcocotoolsNoArea,
        }
    }

    /// The note that says why a file is scored by the box rather than by its areas.
    pub fn note(self, gt: &CocoDataset) -> Option<String> {
        let missing = gt.annotations_without_area();
        (self == Reference::XtcocotoolsNoArea).then(|| {
            format!(
                "note: {}: {missing} of {} annotations have no `area`: every GT is scored with its box w·h·0.53 as OKS scale and for the area ranges, as xtcocotools does with use_area=False",
                gt.source.display(),
                gt.annotations.len()
            )
        })
    }

    /// The GT area that scales OKS and picks the area range (`None`: the file has none).
    pub fn gt_area(self, ann: &crate::coco::schema::AnnotationRecord) -> Option<f64> {
        match self {
            Reference::Pycocotools => ann.area,
            Reference::XtcocotoolsNoArea | Reference::XtcocotoolsCrowd => Some(ann.box_area()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EvalParams {
    pub iou_type: IouType,
    /// OKS or IoU thresholds 0.50:0.05:0.95 (at most 64: accumulation packs them as bits).
    pub thresholds: Vec<f64>,
    /// Recall sample points 0:0.01:1.
    pub recall_thresholds: Vec<f64>,
    /// Detections kept per image (highest scores) for each accumulated curve, ascending: the
    /// last is what matching sees ([20] for keypoints, [1, 10, 100] for boxes).
    pub max_dets: Vec<usize>,
    pub area_ranges: Vec<AreaRange>,
    /// Per-joint OKS sigmas (empty for boxes).
    pub sigmas: Vec<f64>,
    pub reference: Reference,
}

impl EvalParams {
    pub fn keypoints(sigmas: Vec<f64>) -> Self {
        EvalParams {
            iou_type: IouType::Keypoints,
            thresholds: linspace(0.5, 0.95, 10),
            recall_thresholds: linspace(0.0, 1.0, 101),
            max_dets: vec![20],
            area_ranges: vec![
                AreaRange { label: "all", lo: 0.0, hi: 1e10 },
                AreaRange { label: "medium", lo: 1024.0, hi: 9216.0 },
                AreaRange { label: "large", lo: 9216.0, hi: 1e10 },
            ],
            sigmas,
            reference: Reference::Pycocotools,
        }
    }

    /// The same parameters under `reference`'s rules.
    pub fn with_reference(self, reference: Reference) -> Self {
        EvalParams { reference, ..self }
    }

    pub fn bbox() -> Self {
        EvalParams {
            iou_type: IouType::Bbox,
            thresholds: linspace(0.5, 0.95, 10),
            recall_thresholds: linspace(0.0, 1.0, 101),
            max_dets: vec![1, 10, 100],
            area_ranges: vec![
                AreaRange { label: "all", lo: 0.0, hi: 1e10 },
                AreaRange { label: "small", lo: 0.0, hi: 1024.0 },
                AreaRange { label: "medium", lo: 1024.0, hi: 9216.0 },
                AreaRange { label: "large", lo: 9216.0, hi: 1e10 },
            ],
            sigmas: Vec::new(),
            reference: Reference::Pycocotools,
        }
    }

    /// The detections per image that matching sees (the last of `max_dets`, as pycocotools).
    pub fn max_det(&self) -> usize {
        self.max_dets.last().copied().unwrap_or(0)
    }

    /// (2σ)² per joint, as `computeOks` forms it.
    pub fn variances(&self) -> Vec<f64> {
        self.sigmas.iter().map(|s| (s * 2.0) * (s * 2.0)).collect()
    }
}

/// `numpy.linspace(start, stop, num)` to the bit: `i * step + start`, last value set to `stop`.
/// The thresholds must be bit-identical because summaries select them with `==`.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_numpys() {
        let p = EvalParams::keypoints(vec![0.1]);
        // numpy prints 0.8999999999999999 for the 9th OKS threshold: the same bits as here.
        assert_eq!(p.thresholds[8], 0.8999999999999999);
        assert_eq!(p.thresholds[5], 0.75);
        assert_eq!(p.thresholds.len(), 10);
        assert_eq!(p.recall_thresholds.len(), 101);
        assert_eq!(p.recall_thresholds[57], 57.0 * 0.01);
        assert_ne!(p.recall_thresholds[57], 0.57, "0.01 * 57 is not the literal 0.57");
    }

    #[test]
    fn area_ranges_include_both_ends() {
        let m = &EvalParams::keypoints(vec![0.1]).area_ranges[1];
        assert!(m.contains(1024.0) && m.contains(9216.0));
        assert!(!m.contains(1023.999) && !m.contains(9216.001));
    }
}
