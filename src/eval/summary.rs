//! The ten summary numbers (`COCOeval.summarize` for keypoints) and their printed layout.

use super::oks::numpy_mean;
use super::params::EvalParams;
use super::Accumulation;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    #[serde(rename = "AP")]
    pub ap: f64,
    #[serde(rename = "AP50")]
    pub ap50: f64,
    #[serde(rename = "AP75")]
    pub ap75: f64,
    #[serde(rename = "APm")]
    pub apm: f64,
    #[serde(rename = "APl")]
    pub apl: f64,
    #[serde(rename = "AR")]
    pub ar: f64,
    #[serde(rename = "AR50")]
    pub ar50: f64,
    #[serde(rename = "AR75")]
    pub ar75: f64,
    #[serde(rename = "ARm")]
    pub arm: f64,
    #[serde(rename = "ARl")]
    pub arl: f64,
}

/// One summary number: average precision (or recall), at one threshold or averaged over all,
/// in one area range, with at most `max_dets` detections per image.
pub(super) struct StatSpec {
    ap: bool,
    threshold: Option<f64>,
    area: &'static str,
    max_dets: usize,
}

pub(super) const fn stat(ap: bool, threshold: Option<f64>, area: &'static str, max_dets: usize) -> StatSpec {
    StatSpec { ap, threshold, area, max_dets }
}

/// `COCOeval.summarize` for keypoints, in order.
const KEYPOINT_LAYOUT: [StatSpec; 10] = [
    stat(true, None, "all", 20),
    stat(true, Some(0.5), "all", 20),
    stat(true, Some(0.75), "all", 20),
    stat(true, None, "medium", 20),
    stat(true, None, "large", 20),
    stat(false, None, "all", 20),
    stat(false, Some(0.5), "all", 20),
    stat(false, Some(0.75), "all", 20),
    stat(false, None, "medium", 20),
    stat(false, None, "large", 20),
];

/// `COCOeval.summarize` for boxes, in order.
const BOX_LAYOUT: [StatSpec; 12] = [
    stat(true, None, "all", 100),
    stat(true, Some(0.5), "all", 100),
    stat(true, Some(0.75), "all", 100),
    stat(true, None, "small", 100),
    stat(true, None, "medium", 100),
    stat(true, None, "large", 100),
    stat(false, None, "all", 1),
    stat(false, None, "all", 10),
    stat(false, None, "all", 100),
    stat(false, None, "small", 100),
    stat(false, None, "medium", 100),
    stat(false, None, "large", 100),
];

impl Stats {
    pub fn from_accumulation(acc: &Accumulation, p: &EvalParams) -> Stats {
        let v: Vec<f64> = KEYPOINT_LAYOUT.iter().map(|s| summarize_one(acc, p, s)).collect();
        Stats::from_array([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]])
    }

    pub fn from_array(v: [f64; 10]) -> Stats {
        Stats {
            ap: v[0],
            ap50: v[1],
            ap75: v[2],
            apm: v[3],
            apl: v[4],
            ar: v[5],
            ar50: v[6],
            ar75: v[7],
            arm: v[8],
            arl: v[9],
        }
    }

    pub fn to_array(&self) -> [f64; 10] {
        [self.ap, self.ap50, self.ap75, self.apm, self.apl, self.ar, self.ar50, self.ar75, self.arm, self.arl]
    }

    pub const NAMES: [&'static str; 10] = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"];
}

/// Mean of the defined (> −1) entries at the selected thresholds, area range and maximum number
/// of detections; −1 if none. Thresholds are selected with `==` as pycocotools does; values are
/// visited in numpy's C order.
pub(super) fn summarize_one(acc: &Accumulation, p: &EvalParams, s: &StatSpec) -> f64 {
    let [t_len, r_len, k_len, a_len, m_len] = acc.dims;
    let Some(a) = p.area_ranges.iter().position(|r| r.label == s.area) else { return -1.0 };
    let Some(m) = p.max_dets.iter().position(|&v| v == s.max_dets) else { return -1.0 };
    let ts: Vec<usize> = (0..t_len).filter(|&t| s.threshold.is_none_or(|v| p.thresholds[t] == v)).collect();
    let mut vals = Vec::new();
    for &t in &ts {
        if s.ap {
            for r in 0..r_len {
                for k in 0..k_len {
                    vals.push(acc.precision[(((t * r_len + r) * k_len + k) * a_len + a) * m_len + m]);
                }
            }
        } else {
            for k in 0..k_len {
                vals.push(acc.recall[((t * k_len + k) * a_len + a) * m_len + m]);
            }
        }
    }
    vals.retain(|&v| v > -1.0);
    if vals.is_empty() {
        -1.0
    } else {
        numpy_mean(&vals)
    }
}

/// pycocotools' summary lines.
pub(super) fn write_lines(f: &mut fmt::Formatter, layout: &[StatSpec], values: &[f64]) -> fmt::Result {
    for (s, v) in layout.iter().zip(values) {
        let (title, kind) = if s.ap { ("Average Precision", "(AP)") } else { ("Average Recall", "(AR)") };
        let iou = s.threshold.map_or("0.50:0.95".to_string(), |t| format!("{t:.2}"));
        writeln!(f, " {title:<18} {kind} @[ IoU={iou:<9} | area={:>6} | maxDets={:>3} ] = {v:.3}", s.area, s.max_dets)?;
    }
    Ok(())
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write_lines(f, &KEYPOINT_LAYOUT, &self.to_array())
    }
}

/// The twelve numbers of COCO box evaluation (`COCOeval.summarize` for `iouType="bbox"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoxStats {
    #[serde(rename = "AP")]
    pub ap: f64,
    #[serde(rename = "AP50")]
    pub ap50: f64,
    #[serde(rename = "AP75")]
    pub ap75: f64,
    #[serde(rename = "APs")]
    pub aps: f64,
    #[serde(rename = "APm")]
    pub apm: f64,
    #[serde(rename = "APl")]
    pub apl: f64,
    #[serde(rename = "AR1")]
    pub ar1: f64,
    #[serde(rename = "AR10")]
    pub ar10: f64,
    #[serde(rename = "AR100")]
    pub ar100: f64,
    #[serde(rename = "ARs")]
    pub ars: f64,
    #[serde(rename = "ARm")]
    pub arm: f64,
    #[serde(rename = "ARl")]
    pub arl: f64,
}

impl BoxStats {
    pub const NAMES: [&'static str; 12] =
        ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"];

    pub fn from_accumulation(acc: &Accumulation, p: &EvalParams) -> BoxStats {
        let v: Vec<f64> = BOX_LAYOUT.iter().map(|s| summarize_one(acc, p, s)).collect();
        BoxStats::from_array(v.try_into().expect("twelve stats"))
    }

    pub fn from_array(v: [f64; 12]) -> BoxStats {
        let [ap, ap50, ap75, aps, apm, apl, ar1, ar10, ar100, ars, arm, arl] = v;
        BoxStats { ap, ap50, ap75, aps, apm, apl, ar1, ar10, ar100, ars, arm, arl }
    }

    pub fn to_array(&self) -> [f64; 12] {
        [
            self.ap, self.ap50, self.ap75, self.aps, self.apm, self.apl, self.ar1, self.ar10, self.ar100, self.ars,
            self.arm, self.arl,
        ]
    }
}

impl fmt::Display for BoxStats {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write_lines(f, &BOX_LAYOUT, &self.to_array())
    }
}
