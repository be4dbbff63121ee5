//! The keypoint set a model predicts and the metric scores: names, left/right flip pairs,
//! OKS sigmas and limbs, kept together so that other keypoint sets can be configured.

use super::schema::CategoryRecord;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeypointSpec {
    pub name: String,
    pub keypoints: Vec<String>,
    /// Pairs of (left, right) joint indices, swapped by a horizontal flip.
    pub flip_pairs: Vec<[usize; 2]>,
    /// Per-joint OKS falloff (COCO's σ; the metric uses (2σ)²).
    pub sigmas: Vec<f64>,
    /// 0-based joint index pairs to draw.
    pub limbs: Vec<[usize; 2]>,
}

const COCO_NAMES: [&str; 17] = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
];

/// pycocotools writes these as `np.array([.26, …]) / 10.0`; several of those quotients differ
/// from the literals `.026…` in the last bit, and the metric must be bit-identical.
const COCO_SIGMAS_X10: [f64; 17] =
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89];

const COCO_LIMBS: [[usize; 2]; 19] = [
    [15, 13],
    [13, 11],
    [16, 14],
    [14, 12],
    [11, 12],
    [5, 11],
    [6, 12],
    [5, 6],
    [5, 7],
    [6, 8],
    [7, 9],
    [8, 10],
    [1, 2],
    [0, 1],
    [0, 2],
    [1, 3],
    [2, 4],
    [3, 5],
    [4, 6],
];

impl KeypointSpec {
    /// The 17 COCO person keypoints.
    pub fn coco17() -> Self {
        KeypointSpec {
            name: "coco17".into(),
            keypoints: COCO_NAMES.iter().map(|s| s.to_string()).collect(),
            flip_pairs: (0..8).map(|i| [2 * i + 1, 2 * i + 2]).collect(),
            sigmas: COCO_SIGMAS_X10.iter().map(|s| s / 10.0).collect(),
            limbs: COCO_LIMBS.to_vec(),
        }
    }

    pub fn len(&self) -> usize {
        self.keypoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keypoints.is_empty()
    }

    /// A spec from a JSON file with the fields of this struct.
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let spec: KeypointSpec = super::json::read_json(path)?;
        spec.validate().with_context(|| format!("{}: invalid keypoint spec", path.display()))?;
        Ok(spec)
    }

    /// A spec from an annotation file's category: names and skeleton from the category,
    /// flip pairs from `left_*`/`right_*` names, sigmas given (or COCO's when the names are COCO's).
    pub fn from_category(cat: &CategoryRecord, sigmas: Option<Vec<f64>>) -> Result<Self> {
        let names = &cat.keypoints;
        ensure!(!names.is_empty(), "category {} ({}) lists no keypoint names", cat.id, cat.name);
        let sigmas = match sigmas {
            Some(s) => s,
            None if names.iter().map(String::as_str).eq(COCO_NAMES) => Self::coco17().sigmas,
            None => {
                bail!("category {} ({}) has keypoints other than COCO's 17: give their OKS sigmas", cat.id, cat.name)
            }
        };
        let mut flip_pairs = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if let Some(rest) = n.strip_prefix("left_") {
                if let Some(j) = names.iter().position(|m| m.strip_prefix("right_") == Some(rest)) {
                    flip_pairs.push([i, j]);
                }
            }
        }
        let mut limbs = Vec::with_capacity(cat.skeleton.len());
        for &[a, b] in &cat.skeleton {
            let ok = |v: i64| v >= 1 && v as usize <= names.len();
            ensure!(
                ok(a) && ok(b),
                "category {}: skeleton pair [{a}, {b}] is out of range 1..={}",
                cat.id,
                names.len()
            );
            limbs.push([a as usize - 1, b as usize - 1]);
        }
        let spec = KeypointSpec { name: cat.name.clone(), keypoints: names.clone(), flip_pairs, sigmas, limbs };
        spec.validate()?;
        Ok(spec)
    }

    pub fn validate(&self) -> Result<()> {
        let k = self.len();
        ensure!(k > 0, "no keypoints");
        ensure!(self.sigmas.len() == k, "{} sigmas for {k} keypoints", self.sigmas.len());
        ensure!(self.sigmas.iter().all(|s| s.is_finite() && *s > 0.0), "sigmas must be finite and positive");
        for pair in self.flip_pairs.iter().chain(&self.limbs) {
            ensure!(pair[0] < k && pair[1] < k, "joint pair {pair:?} is out of range 0..{k}");
        }
        Ok(())
    }

    /// For each joint, the joint it becomes under a horizontal flip.
    pub fn flip_permutation(&self) -> Vec<usize> {
        let mut perm: Vec<usize> = (0..self.len()).collect();
        for &[a, b] in &self.flip_pairs {
            perm[a] = b;
            perm[b] = a;
        }
        perm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coco17_matches_the_real_annotation_category() {
        let file: super::super::schema::AnnotationFile = super::super::json::read_json(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/coco-sample/annotations/person_keypoints_sample.json"
        )))
        .unwrap();
        let from_file = KeypointSpec::from_category(&file.categories[0], None).unwrap();
        let coco = KeypointSpec::coco17();
        assert_eq!(from_file.keypoints, coco.keypoints);
        assert_eq!(from_file.flip_pairs, coco.flip_pairs);
        let mut a = from_file.limbs.clone();
        let mut b = coco.limbs.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "the COCO skeleton, 1-based in the file, is our 0-based limb list");
    }

    #[test]
    fn flip_pairs_name_left_and_right_of_the_same_joint() {
        let spec = KeypointSpec::coco17();
        for [l, r] in &spec.flip_pairs {
            assert_eq!(spec.keypoints[*l].strip_prefix("left_"), spec.keypoints[*r].strip_prefix("right_"));
            assert_eq!(spec.sigmas[*l], spec.sigmas[*r]);
        }
        let perm = spec.flip_permutation();
        assert!((0..17).all(|i| perm[perm[i]] == i));
        assert_eq!(perm[0], 0);
        assert_eq!(perm[5], 6);
    }

    #[test]
    fn the_shipped_coco17_file_is_the_built_in_spec() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/keypoints/coco17.json"));
        assert_eq!(KeypointSpec::from_json_file(path).unwrap(), KeypointSpec::coco17());
    }

    #[test]
    fn other_keypoint_sets_need_sigmas() {
        let cat = CategoryRecord {
            id: 3,
            name: "hand".into(),
            supercategory: String::new(),
            keypoints: vec!["left_tip".into(), "right_tip".into(), "palm".into()],
            skeleton: vec![[1, 3], [2, 3]],
        };
        assert!(KeypointSpec::from_category(&cat, None).is_err());
        let spec = KeypointSpec::from_category(&cat, Some(vec![0.1, 0.1, 0.2])).unwrap();
        assert_eq!(spec.flip_pairs, vec![[0, 1]]);
        assert_eq!(spec.limbs, vec![[0, 2], [1, 2]]);
        assert!(KeypointSpec::from_category(&cat, Some(vec![0.1])).is_err());
    }
}
