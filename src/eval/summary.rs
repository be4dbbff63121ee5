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

/// (average precision?, OKS threshold, area label) of each stat, in order.
const LAYOUT: [(bool, Option<f64>, &str); 10] = [
    (true, None, "all"),
    (true, Some(0.5), "all"),
    (true, Some(0.75), "all"),
    (true, None, "medium"),
    (true, None, "large"),
    (false, None, "all"),
    (false, Some(0.5), "all"),
    (false, Some(0.75), "all"),
    (false, None, "medium"),
    (false, None, "large"),
];

impl Stats {
    pub fn from_accumulation(acc: &Accumulation, p: &EvalParams) -> Stats {
        let v: Vec<f64> = LAYOUT.iter().map(|&(ap, thr, area)| summarize_one(acc, p, ap, thr, area)).collect();
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

/// Mean of the defined (> −1) entries at the selected thresholds and area range; −1 if none.
/// Thresholds are selected with `==` as pycocotools does; values are visited in numpy's C order.
fn summarize_one(acc: &Accumulation, p: &EvalParams, ap: bool, thr: Option<f64>, area: &str) -> f64 {
    let [t_len, r_len, k_len, a_len] = acc.dims;
    let Some(a) = p.area_ranges.iter().position(|r| r.label == area) else { return -1.0 };
    let ts: Vec<usize> = (0..t_len).filter(|&t| thr.is_none_or(|v| p.oks_thresholds[t] == v)).collect();
    let mut vals = Vec::new();
    for &t in &ts {
        if ap {
            for r in 0..r_len {
                for k in 0..k_len {
                    vals.push(acc.precision[((t * r_len + r) * k_len + k) * a_len + a]);
                }
            }
        } else {
            for k in 0..k_len {
                vals.push(acc.recall[(t * k_len + k) * a_len + a]);
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
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (&(ap, thr, area), v) in LAYOUT.iter().zip(self.to_array()) {
            let (title, kind) = if ap { ("Average Precision", "(AP)") } else { ("Average Recall", "(AR)") };
            let iou = thr.map_or("0.50:0.95".to_string(), |t| format!("{t:.2}"));
            writeln!(f, " {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6} | maxDets={:>3} ] = {v:.3}", 20)?;
        }
        Ok(())
    }
}
