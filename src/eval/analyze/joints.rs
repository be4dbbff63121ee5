//! The keypoint error taxonomy of Ronchi & Perona (ICCV 2017, `coco-analyze`): each labelled joint
//! of a matched detection is judged by its keypoint similarity (ks) to the GT joints of its image.

use serde::Serialize;

/// What a detected joint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JointError {
    /// ks ≥ 0.85 to its own GT joint, and nearer to it than to any other.
    Good,
    /// 0.5 ≤ ks < 0.85 to its own GT joint, nearer to it than to any other.
    Jitter,
    /// ks ≥ 0.5 to the mirrored joint of its own person (left for right), nearest to that.
    Inversion,
    /// ks ≥ 0.5 to a joint of another person of the image, nearest to that.
    Swap,
    /// ks < 0.5 to every joint.
    Miss,
}

impl JointError {
    pub const ALL: [JointError; 5] =
        [JointError::Good, JointError::Jitter, JointError::Inversion, JointError::Swap, JointError::Miss];
    /// The four errors, in the order coco-analyze fixes them.
    pub const ERRORS: [JointError; 4] = [JointError::Jitter, JointError::Inversion, JointError::Swap, JointError::Miss];

    pub fn name(self) -> &'static str {
        match self {
            JointError::Good => "good",
            JointError::Jitter => "jitter",
            JointError::Inversion => "inversion",
            JointError::Swap => "swap",
            JointError::Miss => "miss",
        }
    }
}

/// ks at or above which a joint on its own GT joint is good.
pub const GOOD_KS: f64 = 0.85;
/// ks below which a joint is near no GT joint.
pub const NEAR_KS: f64 = 0.5;

/// A GT person as the classifier sees it: `[x, y, v] × K` and its area.
#[derive(Debug, Clone, Copy)]
pub struct Person<'a> {
    pub keypoints: &'a [f64],
    pub area: f64,
}

impl Person<'_> {
    fn joint(&self, j: usize) -> Option<[f64; 2]> {
        let p = self.keypoints.get(3 * j..3 * j + 3)?;
        (p[2] > 0.0).then_some([p[0], p[1]])
    }
}

/// The verdict on one labelled joint of a matched detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JointVerdict {
    pub error: JointError,
    /// ks to its own GT joint.
    pub ks: f64,
    /// Distance to its own GT joint over the person's scale √area (infinite for an area of 0).
    pub error_per_scale: f64,
    /// Where fixing the error puts the joint: on its own GT joint for jitter and miss; for
    /// inversion and swap, as near its own GT joint as it was to the joint it took, so that fixing
    /// those does not also fix jitter.
    pub fixed: [f64; 2],
}

/// The keypoint similarity of a detected point to a GT joint, as in OKS: exp(−d² / (2σ)² / area / 2).
pub fn keypoint_similarity(point: [f64; 2], gt: [f64; 2], variance: f64, area: f64) -> f64 {
    let (dx, dy) = (point[0] - gt[0], point[1] - gt[1]);
    (-((dx * dx + dy * dy) / variance / (area + f64::EPSILON) / 2.0)).exp()
}

/// Judges each joint of `detected` (`[x, y, score] × K`), matched to `persons[own]`; `None` for
/// joints its GT does not label. Candidates, in coco-analyze's order (the first of equal ks
/// wins): its own joint, the same joint of the other persons in file order, the mirrored joint
/// (`flip[j]`) of its own person, then of the others. `variances` are (2σ)² per joint.
pub fn classify(
    detected: &[f64],
    persons: &[Person],
    own: usize,
    flip: &[usize],
    variances: &[f64],
) -> Vec<Option<JointVerdict>> {
    let me = persons[own];
    let others = || (0..persons.len()).filter(move |&p| p != own);
    (0..variances.len())
        .map(|j| {
            let target = me.joint(j)?;
            let point = [detected[3 * j], detected[3 * j + 1]];
            let ks = |p: usize, joint: usize| {
                let person = persons[p];
                person
                    .joint(joint)
                    .map(|at| (keypoint_similarity(point, at, variances[j], person.area), at, person.area))
            };
            // (ks, kind, GT position, area) of each candidate, in order.
            let candidates = std::iter::once((own, j, JointError::Jitter))
                .chain(others().map(|p| (p, j, JointError::Swap)))
                .chain(std::iter::once((own, flip[j], JointError::Inversion)))
                .chain(others().map(|p| (p, flip[j], JointError::Swap)));
            let mut best: Option<(f64, JointError, [f64; 2], f64)> = None;
            for (p, joint, kind) in candidates {
                if let Some((v, at, area)) = ks(p, joint) {
                    if best.is_none_or(|b| v > b.0) {
                        best = Some((v, kind, at, area));
                    }
                }
            }
            let (top, kind, at, area) = best.expect("its own joint is labelled");
            let error = match kind {
                _ if top < NEAR_KS => JointError::Miss,
                JointError::Jitter if top >= GOOD_KS => JointError::Good,
                k => k,
            };
            let fixed = match error {
                JointError::Good => point,
                JointError::Jitter | JointError::Miss => target,
                JointError::Inversion | JointError::Swap => {
                    // The same offset in units of scale: ks to the own joint equals ks to `at`.
                    let scale = ((me.area + f64::EPSILON) / (area + f64::EPSILON)).sqrt();
                    [target[0] + (point[0] - at[0]) * scale, target[1] + (point[1] - at[1]) * scale]
                }
            };
            let d = ((point[0] - target[0]).powi(2) + (point[1] - target[1]).powi(2)).sqrt();
            Some(JointVerdict {
                error,
                ks: keypoint_similarity(point, target, variances[j], me.area),
                error_per_scale: d / me.area.sqrt(),
                fixed,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two joints, a left/right pair; σ = 0.5 so (2σ)² = 1; area 100, so ks = exp(−d²/200).
    fn person(left: [f64; 2], right: [f64; 2]) -> Vec<f64> {
        vec![left[0], left[1], 2.0, right[0], right[1], 2.0]
    }

    fn verdicts(det: [[f64; 2]; 2], persons: &[Vec<f64>]) -> Vec<JointVerdict> {
        let ps: Vec<Person> = persons.iter().map(|k| Person { keypoints: k, area: 100.0 }).collect();
        let det = [det[0][0], det[0][1], 1.0, det[1][0], det[1][1], 1.0];
        classify(&det, &ps, 0, &[1, 0], &[1.0, 1.0]).into_iter().map(|v| v.unwrap()).collect()
    }

    #[test]
    fn each_kind_by_hand() {
        let me = person([0.0, 0.0], [20.0, 0.0]);
        let other = person([100.0, 0.0], [120.0, 0.0]);
        // d = 3: ks = exp(−9/200) = 0.956 → good. d = 10: exp(−0.5) = 0.607 → jitter.
        let v = verdicts([[3.0, 0.0], [20.0, 10.0]], &[me.clone(), other.clone()]);
        assert_eq!((v[0].error, v[1].error), (JointError::Good, JointError::Jitter));
        assert!((v[1].ks - (-0.5f64).exp()).abs() < 1e-12);
        assert!((v[1].error_per_scale - 1.0).abs() < 1e-12, "10 px on a person of scale √100");
        assert_eq!(v[0].fixed, [3.0, 0.0], "good joints stay");
        assert_eq!(v[1].fixed, [20.0, 0.0], "jitter goes to its GT joint");
        // Left and right exchanged, 2 px off: inversions, fixed 2 px off their own joints.
        let v = verdicts([[20.0, 2.0], [0.0, 2.0]], &[me.clone(), other.clone()]);
        assert_eq!((v[0].error, v[1].error), (JointError::Inversion, JointError::Inversion));
        assert_eq!((v[0].fixed, v[1].fixed), ([0.0, 2.0], [20.0, 2.0]));
        // On the other person's joints (its left on our left, its left on our right): swaps.
        let v = verdicts([[100.0, 0.0], [100.0, 1.0]], &[me.clone(), other.clone()]);
        assert_eq!((v[0].error, v[1].error), (JointError::Swap, JointError::Swap));
        assert_eq!((v[0].fixed, v[1].fixed), ([0.0, 0.0], [20.0, 1.0]));
        // Far from everything (ks = exp(−30²/200) ≈ 0.011): misses, fixed onto the GT joint.
        let v = verdicts([[0.0, 30.0], [50.0, 60.0]], &[me, other]);
        assert_eq!((v[0].error, v[1].error), (JointError::Miss, JointError::Miss));
        assert_eq!(v[1].fixed, [20.0, 0.0]);
    }

    #[test]
    fn thresholds_are_inclusive_and_ties_go_to_the_own_joint() {
        // d² = −2·100·ln(0.85) puts ks at 0.85 (up to rounding): good, not jitter.
        let d = (-200.0 * GOOD_KS.ln()).sqrt() * (1.0 - 1e-12);
        let me = person([0.0, 0.0], [20.0, 0.0]);
        let v = verdicts([[d, 0.0], [20.0, 0.0]], std::slice::from_ref(&me));
        assert_eq!(v[0].error, JointError::Good);
        // A point halfway between its own left joint and the same person's right joint: equal ks,
        // the own joint is first, so jitter (ks = exp(−100/200) ≈ 0.61), not inversion.
        let v = verdicts([[10.0, 0.0], [20.0, 0.0]], std::slice::from_ref(&me));
        assert_eq!(v[0].error, JointError::Jitter);
    }

    #[test]
    fn unlabelled_joints_and_joints_only_others_have() {
        // Our right joint is unlabelled: no verdict; the other person's labelled joints still count.
        let me = vec![0.0, 0.0, 2.0, 0.0, 0.0, 0.0];
        let other = person([100.0, 0.0], [120.0, 0.0]);
        let ps = [Person { keypoints: &me, area: 100.0 }, Person { keypoints: &other, area: 400.0 }];
        let det = [120.0, 4.0, 1.0, 5.0, 5.0, 1.0];
        let v = classify(&det, &ps, 0, &[1, 0], &[1.0, 1.0]);
        assert!(v[1].is_none());
        let left = v[0].unwrap();
        // Nearest is the other's right joint (mirrored candidate, another person): a swap; the
        // 4 px offset at area 400 becomes 2 px at area 100, keeping its ks.
        assert_eq!(left.error, JointError::Swap);
        assert!((left.fixed[0] - 0.0).abs() < 1e-9 && (left.fixed[1] - 2.0).abs() < 1e-6);
        let before = keypoint_similarity([120.0, 4.0], [120.0, 0.0], 1.0, 400.0);
        let after = keypoint_similarity(left.fixed, [0.0, 0.0], 1.0, 100.0);
        assert!((before - after).abs() < 1e-9);
    }
}
