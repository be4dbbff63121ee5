//! The keypoint set a model predicts and the metric scores: names, left/right flip pairs, OKS
//! sigmas, limbs and the upper body, kept together so that any set (COCO's 17 person joints,
//! CrowdPose's 14, a hand's 21, a tool's tips) travels from the data to the checkpoint, the
//! predictions, the metric and the drawings as one value.

use super::schema::CategoryRecord;
use anyhow::{anyhow, bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeypointSpec {
    pub name: String,
    pub keypoints: Vec<String>,
    /// Pairs of (left, right) joint indices, swapped by a horizontal flip.
    #[serde(default)]
    pub flip_pairs: Vec<[usize; 2]>,
    /// Per-joint OKS falloff (COCO's σ; the metric uses (2σ)²). `None` when the set came from
    /// an annotation file that does not give them: fine for drawing, not for scoring.
    #[serde(default)]
    pub sigmas: Option<Vec<f64>>,
    /// 0-based joint index pairs to draw.
    #[serde(default)]
    pub limbs: Vec<[usize; 2]>,
    /// Joints of the upper body, for half-body augmentation (none: no half-body crops).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upper_body: Vec<usize>,
}

/// The most keypoints a set may have (COCO-WholeBody has 133): more is a mistake, not a set.
pub const MAX_KEYPOINTS: usize = 1024;

/// Which side of the body a joint is on, as its flip pair says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
    Centre,
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
            sigmas: Some(COCO_SIGMAS_X10.iter().map(|s| s / 10.0).collect()),
            limbs: COCO_LIMBS.to_vec(),
            upper_body: (0..=10).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.keypoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keypoints.is_empty()
    }

    /// The OKS sigmas, or an error saying that this set does not give them.
    pub fn sigmas(&self) -> Result<&[f64]> {
        self.sigmas.as_deref().ok_or_else(|| {
            anyhow!(
                "the keypoint set '{}' ({} keypoints) has no OKS sigmas: give a keypoint spec file with `sigmas` (see configs/keypoints/)",
                self.name,
                self.len()
            )
        })
    }

    /// A spec from a JSON file with the fields of this struct.
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
        Self::from_json_slice(&bytes, &path.display().to_string())
    }

    /// A spec from JSON bytes (`name` for messages), validated.
    pub fn from_json_slice(bytes: &[u8], name: &str) -> Result<Self> {
        let spec: KeypointSpec =
            super::json::parse_json(super::json::without_bom(bytes)).map_err(|e| anyhow!("{name}: {e}"))?;
        spec.validate().with_context(|| format!("{name}: invalid keypoint spec"))?;
        Ok(spec)
    }

    /// A spec from an annotation file's category: names and skeleton from the category, flip
    /// pairs from left/right names (`left_x`/`right_x`, `l_x`/`r_x`, `x_left`/`x_right`,
    /// `leftX`/`rightX`, `Left X`/`Right X`); no sigmas or upper body: an annotation file does
    /// not give them ([`super::find_keypoint_set`] adds those of a shipped spec).
    pub fn from_category(cat: &CategoryRecord) -> Result<Self> {
        let names = &cat.keypoints;
        ensure!(!names.is_empty(), "category {} ({}) lists no keypoint names", cat.id, cat.name);
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
        let spec = KeypointSpec {
            name: cat.name.clone(),
            keypoints: names.clone(),
            flip_pairs: flip_pairs_from_names(names),
            sigmas: None,
            limbs,
            upper_body: Vec::new(),
        };
        spec.validate().with_context(|| format!("category {} ({})", cat.id, cat.name))?;
        Ok(spec)
    }

    pub fn validate(&self) -> Result<()> {
        let k = self.len();
        ensure!(k > 0, "no keypoints");
        ensure!(k <= MAX_KEYPOINTS, "{k} keypoints: at most {MAX_KEYPOINTS} are supported");
        if let Some(s) = &self.sigmas {
            ensure!(s.len() == k, "{} sigmas for {k} keypoints", s.len());
            ensure!(s.iter().all(|s| s.is_finite() && *s > 0.0), "sigmas must be finite and positive");
        }
        for pair in self.flip_pairs.iter().chain(&self.limbs) {
            ensure!(pair[0] < k && pair[1] < k, "joint pair {pair:?} is out of range 0..{k}");
        }
        let mut paired = vec![false; k];
        for &[a, b] in &self.flip_pairs {
            ensure!(a != b, "flip pair [{a}, {b}] pairs a joint with itself");
            for j in [a, b] {
                ensure!(!paired[j], "joint {j} ({}) is in more than one flip pair", self.keypoints[j]);
                paired[j] = true;
            }
        }
        if let Some(&j) = self.upper_body.iter().find(|&&j| j >= k) {
            bail!("upper_body joint {j} is out of range 0..{k}");
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

    /// The side of joint `j`: the first of a flip pair is the left one.
    pub fn side(&self, j: usize) -> Side {
        for &[l, r] in &self.flip_pairs {
            if j == l {
                return Side::Left;
            }
            if j == r {
                return Side::Right;
            }
        }
        Side::Centre
    }

    /// The 1-based COCO `skeleton` of the limbs.
    pub fn coco_skeleton(&self) -> Vec<[usize; 2]> {
        self.limbs.iter().map(|[a, b]| [a + 1, b + 1]).collect()
    }
}

/// The side a name declares and the rest of the name: `left_wrist`, `l_wrist`, `wrist_left`,
/// `wrist_l`, `leftWrist` (any case; `_`, `-`, `.` or a space as the separator).
fn split_side(name: &str) -> Option<(Side, String)> {
    let lower = name.to_lowercase();
    let seps = ['_', '-', '.', ' '];
    for (side, word, letter) in [(Side::Left, "left", "l"), (Side::Right, "right", "r")] {
        for token in [word, letter] {
            if let Some(rest) = lower.strip_prefix(token).and_then(|r| r.strip_prefix(seps)) {
                return Some((side, rest.to_string()));
            }
            if let Some(rest) = lower.strip_suffix(token).and_then(|r| r.strip_suffix(seps)) {
                return Some((side, rest.to_string()));
            }
        }
        // camelCase: "leftWrist".
        let capitalised = name.strip_prefix(word).filter(|r| r.starts_with(|c: char| c.is_uppercase()));
        if let Some(rest) = capitalised {
            return Some((side, rest.to_lowercase()));
        }
    }
    None
}

/// (left, right) index pairs of names that differ only in the side they declare.
pub fn flip_pairs_from_names(names: &[String]) -> Vec<[usize; 2]> {
    let sides: Vec<Option<(Side, String)>> = names.iter().map(|n| split_side(n)).collect();
    let mut pairs = Vec::new();
    for (i, s) in sides.iter().enumerate() {
        let Some((Side::Left, rest)) = s else { continue };
        let partner = sides.iter().position(|t| matches!(t, Some((Side::Right, r)) if r == rest));
        if let Some(j) = partner {
            if !pairs.iter().any(|p: &[usize; 2]| p[1] == j) {
                pairs.push([i, j]);
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coco::CocoDataset;

    fn category(names: &[&str], skeleton: Vec<[i64; 2]>) -> CategoryRecord {
        CategoryRecord {
            id: 3,
            name: "thing".into(),
            supercategory: String::new(),
            keypoints: names.iter().map(|s| s.to_string()).collect(),
            skeleton,
        }
    }

    #[test]
    fn coco17_matches_the_real_annotation_category() {
        let file: super::super::schema::AnnotationFile = super::super::json::read_json(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/coco-sample/annotations/person_keypoints_sample.json"
        )))
        .unwrap();
        let ds = CocoDataset::from_file(file, "sample.json".into()).unwrap();
        let found = super::super::find_keypoint_set(&ds, None, None).unwrap();
        assert!(found.notes.is_empty(), "COCO's own file needs no note: {:?}", found.notes);
        let from_file = found.spec;
        let coco = KeypointSpec::coco17();
        assert_eq!(from_file.keypoints, coco.keypoints);
        assert_eq!(from_file.flip_pairs, coco.flip_pairs);
        assert_eq!(from_file.sigmas, coco.sigmas);
        assert_eq!(from_file.upper_body, coco.upper_body);
        let mut a = from_file.limbs.clone();
        let mut b = coco.limbs.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "the COCO skeleton, 1-based in the file, is our 0-based limb list");
    }

    #[test]
    fn flip_pairs_name_left_and_right_of_the_same_joint() {
        let spec = KeypointSpec::coco17();
        let sigmas = spec.sigmas().unwrap();
        for [l, r] in &spec.flip_pairs {
            assert_eq!(spec.keypoints[*l].strip_prefix("left_"), spec.keypoints[*r].strip_prefix("right_"));
            assert_eq!(sigmas[*l], sigmas[*r]);
            assert_eq!((spec.side(*l), spec.side(*r)), (Side::Left, Side::Right));
        }
        assert_eq!(spec.side(0), Side::Centre);
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
    fn every_naming_convention_for_sides_is_paired() {
        let names: Vec<String> = [
            "left_wrist",  // 0
            "R_Wrist",     // 1: r_ prefix, any case
            "tip",         // 2
            "ear.left",    // 3
            "ear-right",   // 4
            "hand_l",      // 5
            "hand_r",      // 6
            "leftFoot",    // 7
            "rightFoot",   // 8
            "l_eye",       // 9: no partner
            "lip",         // 10: not a side
            "right_wrist", // 11: a second right wrist is not paired again
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(flip_pairs_from_names(&names), vec![[0, 1], [3, 4], [5, 6], [7, 8]]);
    }

    #[test]
    fn a_category_gives_names_limbs_and_pairs_but_no_sigmas() {
        let cat = category(&["l_tip", "r_tip", "palm"], vec![[1, 3], [2, 3]]);
        let spec = KeypointSpec::from_category(&cat).unwrap();
        assert_eq!(spec.flip_pairs, vec![[0, 1]]);
        assert_eq!(spec.limbs, vec![[0, 2], [1, 2]]);
        assert_eq!(spec.sigmas, None);
        assert!(spec.upper_body.is_empty());
        let e = spec.sigmas().unwrap_err().to_string();
        assert!(e.contains("'thing'") && e.contains("no OKS sigmas"), "{e}");
    }

    #[test]
    fn invalid_specs_are_refused_with_the_reason() {
        let mut spec = KeypointSpec::coco17();
        spec.flip_pairs.push([1, 4]);
        assert!(spec.validate().unwrap_err().to_string().contains("more than one flip pair"));
        let mut spec = KeypointSpec::coco17();
        spec.limbs.push([0, 17]);
        assert!(spec.validate().unwrap_err().to_string().contains("out of range 0..17"));
        let mut spec = KeypointSpec::coco17();
        spec.sigmas = Some(vec![0.1]);
        assert!(spec.validate().unwrap_err().to_string().contains("1 sigmas for 17 keypoints"));
        let mut spec = KeypointSpec::coco17();
        spec.upper_body.push(30);
        assert!(spec.validate().is_err());
    }
}
