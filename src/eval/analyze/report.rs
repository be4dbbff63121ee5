//! What `--analyze` reports: per-keypoint tables, the fixes, PR curves; `analysis.json` is this
//! serialised, `summary.txt` is `Analysis::summary`.

use super::fixes::Fix;
use super::joints::{JointError, JointVerdict};
use super::MatchedDetection;
use crate::coco::KeypointSpec;
use crate::eval::{Accumulation, EvalParams, Stats};
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub keypoint_set: String,
    pub detections: usize,
    /// Detections matched at OKS 0.5 over all areas to a GT that is not ignored.
    pub matched_detections: usize,
    /// GTs that count for recall over all areas.
    pub regular_gts: usize,
    /// Scored detections with OKS < 0.1 to every GT of their image.
    pub background_false_positives: usize,
    /// Regular GTs that no scored detection reaches with OKS 0.1.
    pub missed_gts: usize,
    pub original: Stats,
    /// Per joint, over the labelled joints of matched detections.
    pub keypoints: Vec<KeypointReport>,
    /// All joints together.
    pub total: KeypointReport,
    pub fixes: Vec<Fix>,
    /// Over all areas, averaged over categories.
    pub pr_curves: Vec<PrCurve>,
}

/// Counts of each kind of joint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    pub good: usize,
    pub jitter: usize,
    pub inversion: usize,
    pub swap: usize,
    pub miss: usize,
}

impl ErrorCounts {
    pub fn get(&self, e: JointError) -> usize {
        match e {
            JointError::Good => self.good,
            JointError::Jitter => self.jitter,
            JointError::Inversion => self.inversion,
            JointError::Swap => self.swap,
            JointError::Miss => self.miss,
        }
    }

    fn slot(&mut self, e: JointError) -> &mut usize {
        match e {
            JointError::Good => &mut self.good,
            JointError::Jitter => &mut self.jitter,
            JointError::Inversion => &mut self.inversion,
            JointError::Swap => &mut self.swap,
            JointError::Miss => &mut self.miss,
        }
    }

    pub fn total(&self) -> usize {
        JointError::ALL.iter().map(|&e| self.get(e)).sum()
    }

    /// The share of `e` among all joints (0 when there are none).
    pub fn share(&self, e: JointError) -> f64 {
        self.get(e) as f64 / self.total().max(1) as f64
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct KeypointReport {
    pub name: String,
    /// Labelled joints of matched detections.
    pub joints: usize,
    pub errors: ErrorCounts,
    /// Mean ks to the own GT joint.
    pub mean_ks: Option<f64>,
    /// ks to the own GT joint in ten bins [0, 0.1), …, [0.9, 1].
    pub ks_histogram: [usize; 10],
    /// Mean distance to the own GT joint over the person's scale √area (persons with area > 0).
    pub mean_error_per_scale: Option<f64>,
    /// (threshold, share of joints with ks ≥ threshold) at 0.50, 0.55, …, 0.95.
    pub pck: Vec<(f64, f64)>,
}

/// Sums over joints, turned into a report at the end.
#[derive(Debug, Clone, Default)]
struct Tally {
    errors: ErrorCounts,
    ks_sum: f64,
    histogram: [usize; 10],
    error_sum: f64,
    error_count: usize,
    pck_hits: Vec<usize>,
}

impl Tally {
    fn add(&mut self, v: &JointVerdict, thresholds: &[f64]) {
        *self.errors.slot(v.error) += 1;
        self.ks_sum += v.ks;
        self.histogram[((v.ks * 10.0) as usize).min(9)] += 1;
        if v.error_per_scale.is_finite() {
            self.error_sum += v.error_per_scale;
            self.error_count += 1;
        }
        self.pck_hits.resize(thresholds.len(), 0);
        for (hits, &t) in self.pck_hits.iter_mut().zip(thresholds) {
            *hits += usize::from(v.ks >= t);
        }
    }

    fn merge(&mut self, other: &Tally) {
        for e in JointError::ALL {
            *self.errors.slot(e) += other.errors.get(e);
        }
        self.ks_sum += other.ks_sum;
        self.histogram.iter_mut().zip(other.histogram).for_each(|(a, b)| *a += b);
        self.error_sum += other.error_sum;
        self.error_count += other.error_count;
        self.pck_hits.resize(other.pck_hits.len().max(self.pck_hits.len()), 0);
        self.pck_hits.iter_mut().zip(&other.pck_hits).for_each(|(a, b)| *a += b);
    }

    fn report(&self, name: &str, thresholds: &[f64]) -> KeypointReport {
        let n = self.errors.total();
        let mean = |sum: f64, count: usize| (count > 0).then(|| sum / count as f64);
        KeypointReport {
            name: name.to_string(),
            joints: n,
            errors: self.errors,
            mean_ks: mean(self.ks_sum, n),
            ks_histogram: self.histogram,
            mean_error_per_scale: mean(self.error_sum, self.error_count),
            pck: thresholds
                .iter()
                .enumerate()
                .map(|(i, &t)| (t, self.pck_hits.get(i).copied().unwrap_or(0) as f64 / n.max(1) as f64))
                .collect(),
        }
    }
}

/// One report per joint of `spec`, then the total, over the matched detections.
pub fn keypoint_reports(matched: &[MatchedDetection], spec: &KeypointSpec, thresholds: &[f64]) -> Vec<KeypointReport> {
    let mut tallies = vec![Tally::default(); spec.len()];
    for m in matched {
        for (j, v) in m.verdicts.iter().enumerate() {
            if let Some(v) = v {
                tallies[j].add(v, thresholds);
            }
        }
    }
    let mut total = Tally::default();
    tallies.iter().for_each(|t| total.merge(t));
    let mut out: Vec<KeypointReport> =
        tallies.iter().zip(&spec.keypoints).map(|(t, name)| t.report(name, thresholds)).collect();
    out.push(total.report("all", thresholds));
    out
}

/// Splits the total off the end of `keypoint_reports`' list.
pub fn total(reports: &mut Vec<KeypointReport>) -> KeypointReport {
    reports.pop().expect("keypoint_reports ends with the total")
}

/// Precision at the 101 recall samples for one OKS threshold (−1 where undefined).
#[derive(Debug, Clone, Serialize)]
pub struct PrCurve {
    pub oks: f64,
    pub recall: Vec<f64>,
    pub precision: Vec<f64>,
}

impl PrCurve {
    /// The curves at `thresholds` (each must be one of the metric's), area "all", averaged over
    /// the categories that have regular GTs.
    pub fn from_accumulation(acc: &Accumulation, p: &EvalParams, thresholds: &[f64]) -> Vec<PrCurve> {
        let [_, r_len, k_len, a_len, m_len] = acc.dims;
        let last_m = m_len - 1;
        thresholds
            .iter()
            .filter_map(|&oks| {
                let t = p.thresholds.iter().position(|&v| (v - oks).abs() < 1e-9)?;
                let precision = (0..r_len)
                    .map(|r| {
                        let v: Vec<f64> = (0..k_len)
                            .map(|k| acc.precision[((t * r_len + r) * k_len + k) * a_len * m_len + last_m])
                            .filter(|&v| v > -1.0)
                            .collect();
                        if v.is_empty() {
                            -1.0
                        } else {
                            v.iter().sum::<f64>() / v.len() as f64
                        }
                    })
                    .collect();
                Some(PrCurve { oks, recall: p.recall_thresholds.clone(), precision })
            })
            .collect()
    }
}

impl Analysis {
    /// The readable tables of `summary.txt`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Keypoint analysis ({}): {} detections, {} matched at OKS 0.5 (all areas) to {} regular GTs;\n\
             {} scored detections are on the background (OKS < 0.1 to every GT), {} GTs are missed by every detection.\n",
            self.keypoint_set,
            self.detections,
            self.matched_detections,
            self.regular_gts,
            self.background_false_positives,
            self.missed_gts
        );
        let _ = writeln!(s, "Per keypoint, over the labelled joints of matched detections:");
        let _ = writeln!(
            s,
            "{:<18} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6}  {:>7} {:>9}  {:>6} {:>6} {:>6}",
            "keypoint",
            "joints",
            "good",
            "jitter",
            "invers",
            "swap",
            "miss",
            "mean ks",
            "err/scale",
            "ks≥.50",
            "ks≥.75",
            "ks≥.95"
        );
        for k in self.keypoints.iter().chain(std::iter::once(&self.total)) {
            let pct = |e| format!("{:.1}%", 100.0 * k.errors.share(e));
            let opt = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |v| format!("{v:.d$}"));
            let pck = |t: f64| {
                k.pck.iter().find(|p| (p.0 - t).abs() < 1e-9).map_or("-".into(), |p| format!("{:.1}%", 100.0 * p.1))
            };
            let _ = writeln!(
                s,
                "{:<18} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6}  {:>7} {:>9}  {:>6} {:>6} {:>6}",
                truncate(&k.name, 18),
                k.joints,
                pct(JointError::Good),
                pct(JointError::Jitter),
                pct(JointError::Inversion),
                pct(JointError::Swap),
                pct(JointError::Miss),
                opt(k.mean_ks, 3),
                opt(k.mean_error_per_scale, 3),
                pck(0.5),
                pck(0.75),
                pck(0.95)
            );
        }
        let _ = writeln!(s, "\nAP after each fix (re-evaluated; Δ against the original):");
        let _ = writeln!(
            s,
            "{:<20} {:>8}  {:>6} {:>7}  {:>6} {:>6}  {:>6} {:>7}  {:>6} {:>7}",
            "fix", "changed", "AP", "ΔAP", "AP50", "AP75", "APm", "ΔAPm", "APl", "ΔAPl"
        );
        let o = &self.original;
        let row = |name: &str, changed: String, st: &Stats| {
            format!(
                "{:<20} {:>8}  {:>6.3} {:>+7.3}  {:>6.3} {:>6.3}  {:>6.3} {:>+7.3}  {:>6.3} {:>+7.3}\n",
                name,
                changed,
                st.ap,
                st.ap - o.ap,
                st.ap50,
                st.ap75,
                st.apm,
                st.apm - o.apm,
                st.apl,
                st.apl - o.apl
            )
        };
        s += &row("original", String::new(), o);
        for f in &self.fixes {
            s += &row(f.name, f.changed.map_or(String::new(), |c| c.to_string()), &f.stats);
        }
        let _ = writeln!(s, "\nWhat each fix does:");
        for f in &self.fixes {
            let _ = writeln!(s, "  {:<20} {}", f.name, f.what);
        }
        s
    }
}

fn truncate(name: &str, width: usize) -> String {
    name.chars().take(width).collect()
}
