//! CrowdPose's benchmark (`dypose eval --metric crowdpose`), as xtcocotools computes it with
//! `iouType="keypoints_crowd"` and `use_area=False`: AP and AR over all persons without area
//! ranges, then the AP of the easy, medium and hard images by their `crowdIndex`.

use super::oks::numpy_mean;
use super::summary::{stat, summarize_one, write_lines, StatSpec};
use super::{Accumulation, CocoEval, EvalParams, EvalReport, Reference};
use crate::coco::{CocoDataset, Id, KeypointResult};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CrowdPoseStats {
    #[serde(rename = "AP")]
    pub ap: f64,
    #[serde(rename = "AP50")]
    pub ap50: f64,
    #[serde(rename = "AP75")]
    pub ap75: f64,
    #[serde(rename = "AR")]
    pub ar: f64,
    #[serde(rename = "AR50")]
    pub ar50: f64,
    #[serde(rename = "AR75")]
    pub ar75: f64,
    /// Images with `crowdIndex` below 0.2; rounded to 4 decimals, as xtcocotools rounds them
    /// (numpy's `round`).
    #[serde(rename = "AP_easy")]
    pub ap_easy: f64,
    /// `crowdIndex` from 0.2 to below 0.8.
    #[serde(rename = "AP_medium")]
    pub ap_medium: f64,
    /// `crowdIndex` 0.8 and above.
    #[serde(rename = "AP_hard")]
    pub ap_hard: f64,
}

/// The six summary numbers before the crowd bands (`_summarizeKps_crowd`).
const CROWD_LAYOUT: [StatSpec; 6] = [
    stat(true, None, "all", 20),
    stat(true, Some(0.5), "all", 20),
    stat(true, Some(0.75), "all", 20),
    stat(false, None, "all", 20),
    stat(false, Some(0.5), "all", 20),
    stat(false, Some(0.75), "all", 20),
];

/// CrowdPose's easy / medium / hard bands: `crowdIndex < 0.2`, `< 0.8`, the rest.
const BAND_EDGES: [f64; 2] = [0.2, 0.8];

impl CrowdPoseStats {
    pub const NAMES: [&'static str; 9] =
        ["AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard"];

    pub fn to_array(&self) -> [f64; 9] {
        [self.ap, self.ap50, self.ap75, self.ar, self.ar50, self.ar75, self.ap_easy, self.ap_medium, self.ap_hard]
    }

    pub fn from_array(v: [f64; 9]) -> Self {
        let [ap, ap50, ap75, ar, ar50, ar75, ap_easy, ap_medium, ap_hard] = v;
        CrowdPoseStats { ap, ap50, ap75, ar, ar50, ar75, ap_easy, ap_medium, ap_hard }
    }
}

impl fmt::Display for CrowdPoseStats {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let v = self.to_array();
        write_lines(f, &CROWD_LAYOUT, &v[..6])?;
        for (band, value) in ["easy", "medium", "hard"].iter().zip(&v[6..]) {
            writeln!(
                f,
                " {:<18} (AP) @[ IoU=0.50:0.95 | type={band:>6} | maxDets= 20 ] = {value:.3}",
                "Average Precision"
            )?;
        }
        Ok(())
    }
}

/// Scores `results` with CrowdPose's benchmark; every image needs its `crowdIndex`.
pub fn evaluate_crowdpose(
    gt: &CocoDataset,
    results: &[KeypointResult],
    sigmas: &[f64],
) -> Result<EvalReport<CrowdPoseStats>> {
    let mut bands: [Vec<Id>; 3] = Default::default();
    for (i, img) in gt.images.iter().enumerate() {
        let Some(c) = img.crowd_index else {
            bail!(
                "{}: images[{i}] (id {}) has no `crowdIndex`, which --metric crowdpose needs (CrowdPose's files give every image one)",
                gt.source.display(),
                img.id
            );
        };
        bands[BAND_EDGES.iter().filter(|&&edge| c >= edge).count()].push(img.id);
    }
    let params = EvalParams::keypoints(sigmas.to_vec()).with_reference(Reference::XtcocotoolsCrowd);
    let eval = CocoEval::new(gt, results, params.clone())?;
    let acc = eval.evaluate_and_accumulate();
    let mut v = [0.0; 9];
    for (slot, s) in v.iter_mut().zip(&CROWD_LAYOUT) {
        *slot = summarize_one(&acc, &params, s);
    }
    for (slot, mut ids) in v[6..].iter_mut().zip(bands) {
        ids.sort_unstable();
        ids.dedup();
        let band = CocoEval::on_images(gt, results, params.clone(), ids)?;
        *slot = numpy_round4(mean_precision_area_all(&band.evaluate_and_accumulate()));
    }
    Ok(EvalReport::of(&eval, CrowdPoseStats::from_array(v), gt))
}

/// `np.mean(precision[:, :, :, 0, :])`: every threshold, recall sample, category and
/// max-detections entry of the first area range, in C order, the −1 of categories without GT
/// included (xtcocotools' `get_type_result` does not leave them out).
fn mean_precision_area_all(acc: &Accumulation) -> f64 {
    let [t_len, r_len, k_len, a_len, m_len] = acc.dims;
    let mut vals = Vec::with_capacity(t_len * r_len * k_len * m_len);
    for t in 0..t_len {
        for r in 0..r_len {
            for k in 0..k_len {
                for m in 0..m_len {
                    vals.push(acc.precision[(((t * r_len + r) * k_len + k) * a_len) * m_len + m]);
                }
            }
        }
    }
    numpy_mean(&vals)
}

/// `round(x, 4)` of the `np.float64` that `np.mean` returns: numpy's `rint(x * 1e4) / 1e4`
/// (ties to even after the rounded product), not Python's decimal rounding of a `float`.
fn numpy_round4(x: f64) -> f64 {
    (x * 1e4).round_ties_even() / 1e4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_numpys() {
        // numpy 1.26: float(round(np.float64(x), 4)); Python's round(x, 4) differs on the first two.
        assert_eq!(numpy_round4(0.00005), 0.0, "Python's round gives 0.0001");
        assert_eq!(numpy_round4(0.61395), 0.614, "Python's round gives 0.6139");
        assert_eq!(numpy_round4(0.03125), 0.0312, "a tie goes to the even digit");
        assert_eq!(numpy_round4(0.15625), 0.1562);
        assert_eq!(numpy_round4(0.123456), 0.1235);
        assert_eq!(numpy_round4(0.99995), 1.0);
        assert_eq!(numpy_round4(-1.0), -1.0);
    }
}
