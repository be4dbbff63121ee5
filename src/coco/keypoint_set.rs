//! Which keypoint set a COCO-format file carries: the one rule behind `eval`, `draw`, `train`,
//! `data show`, `eval --analyze` and `predict`'s GT boxes.
//!
//! The keypoint arrays decide, as they do for pycocotools: the number of joints is the length of
//! the annotations' arrays. The category's names are a description that files in the wild
//! rename (PoseTrack18's `head_bottom`), extend (Human-Art lists 21 names over 17-joint arrays)
//! or spell their own way (CrowdPose's `head`), so they name the joints only when they fit.

use super::keypoints::KeypointSpec;
use super::schema::{CategoryRecord, Id};
use super::CocoDataset;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// The specs of `configs/keypoints/`, built into the binary, each with the other names that data
/// set releases give its joints (spec name, release name).
const SHIPPED: [(&str, &str, &[(&str, &str)]); 5] = [
    ("coco17.json", include_str!("../../configs/keypoints/coco17.json"), &[]),
    // The CrowdPose release calls the head `head`; mmpose calls it `top_head`.
    ("crowdpose14.json", include_str!("../../configs/keypoints/crowdpose14.json"), &[("top_head", "head")]),
    ("aic14.json", include_str!("../../configs/keypoints/aic14.json"), &[("head_top", "top_head")]),
    ("humanart21.json", include_str!("../../configs/keypoints/humanart21.json"), &[]),
    ("hand21.json", include_str!("../../configs/keypoints/hand21.json"), &[]),
];

/// A shipped keypoint spec: its file name under `configs/keypoints/` and the spec.
pub struct ShippedSpec {
    pub file: &'static str,
    pub spec: KeypointSpec,
    aliases: &'static [(&'static str, &'static str)],
}

/// Every shipped spec, in the order above.
pub fn shipped_specs() -> Vec<ShippedSpec> {
    SHIPPED
        .iter()
        .map(|&(file, text, aliases)| ShippedSpec {
            file,
            spec: KeypointSpec::from_json_slice(text.as_bytes(), file).expect("shipped specs are valid (tested)"),
            aliases,
        })
        .collect()
}

impl ShippedSpec {
    /// Whether `names` are this spec's joints, in order: equal up to case and separators
    /// (`Right Shoulder` is `right_shoulder`), or one of the release names of a joint.
    pub fn names_match(&self, names: &[String]) -> bool {
        names.len() == self.spec.len()
            && names.iter().zip(&self.spec.keypoints).all(|(given, ours)| {
                let given = normalise(given);
                given == normalise(ours) || self.aliases.iter().any(|&(o, alt)| o == ours && normalise(alt) == given)
            })
    }
}

/// A name in one spelling: lower case, `_` for spaces, hyphens and dots.
fn normalise(name: &str) -> String {
    name.trim().to_lowercase().chars().map(|c| if matches!(c, ' ' | '-' | '.') { '_' } else { c }).collect()
}

/// The keypoint set of a file, and what was assumed to get it (for the caller to print once).
#[derive(Debug, Clone)]
pub struct FoundSet {
    pub spec: KeypointSpec,
    pub notes: Vec<String>,
}

/// Which keypoint set `gt` carries, for its annotations of `category` (all categories when
/// `None`):
/// - the joint count is the length of the annotations' keypoint arrays, which must all agree;
/// - a spec file `given` (`--spec`, `data.keypoints`) is the set, if it has that count;
/// - else names and limbs come from the category when its names fit the count (limbs from its
///   1-based `skeleton`, flip pairs from left/right names), else from the one shipped spec of
///   that count, with a warning naming the mismatch;
/// - sigmas come from the shipped spec whose names are the category's (`coco17`, `crowdpose14`,
///   `aic14`, `humanart21`, `hand21`), else, for 17 joints, COCO's with a note (pycocotools
///   scores every 17-joint file so), else there are none and scoring asks for a spec.
pub fn find_keypoint_set(gt: &CocoDataset, category: Option<Id>, given: Option<&Path>) -> Result<FoundSet> {
    let file = gt.source.display();
    let counted = joint_count(gt, category)?;
    let cat = pick_category(gt, category);
    let names = cat.map_or(&[][..], |c| c.keypoints.as_slice());
    if let Some(path) = given {
        let spec = KeypointSpec::from_json_file(path)?;
        let k = counted.or((!names.is_empty()).then_some(names.len())).unwrap_or(spec.len());
        if spec.len() != k {
            bail!("{}: {} keypoints, but {}", path.display(), spec.len(), describe_count(gt, cat, counted, k));
        }
        return Ok(FoundSet { spec, notes: Vec::new() });
    }
    let k = counted.or((!names.is_empty()).then_some(names.len())).unwrap_or(17);
    let shipped = shipped_specs();
    let mut notes = Vec::new();
    let mut spec = match cat.filter(|c| c.keypoints.len() == k) {
        Some(cat) => with_known_sigmas(KeypointSpec::from_category(cat).with_context(|| file.to_string())?, &shipped),
        None => {
            let of_count: Vec<&ShippedSpec> = shipped.iter().filter(|s| s.spec.len() == k).collect();
            let why = match names.len() {
                0 => "the category lists no joint names".to_string(),
                n => format!("the category names {n} joints ({})", names_preview(names)),
            };
            match of_count.as_slice() {
                [one] => {
                    notes.push(format!(
                        "warning: {file}: {why}, but the annotations' `{}` arrays hold {k}: drawn and named as {}",
                        gt.keypoint_field, one.file
                    ));
                    one.spec.clone()
                }
                several => {
                    let files: Vec<&str> = several.iter().map(|s| s.file).collect();
                    notes.push(format!(
                        "warning: {file}: {why}, but the annotations' `{}` arrays hold {k}: joints are numbered, without limbs{}",
                        gt.keypoint_field,
                        match files.len() {
                            0 => String::new(),
                            _ => format!(" (a spec names them: configs/keypoints/{})", files.join(" or ")),
                        }
                    ));
                    numbered(k)
                }
            }
        }
    };
    if spec.sigmas.is_none() && k == 17 {
        let coco = KeypointSpec::coco17();
        notes.push(format!(
            "note: {file}: the 17 joints ({}) are not COCO's names; scored with COCO's OKS sigmas, as pycocotools scores every 17-joint file (--spec or data.keypoints gives others)",
            names_preview(&spec.keypoints)
        ));
        spec.sigmas = coco.sigmas;
        spec.upper_body = coco.upper_body;
    }
    spec.validate().with_context(|| file.to_string())?;
    Ok(FoundSet { spec, notes })
}

/// The category's spec with the sigmas and upper body of the shipped spec its names are, and
/// that spec's limbs and flip pairs where the category has none.
fn with_known_sigmas(mut spec: KeypointSpec, shipped: &[ShippedSpec]) -> KeypointSpec {
    if let Some(known) = shipped.iter().find(|s| s.names_match(&spec.keypoints)) {
        spec.sigmas = known.spec.sigmas.clone();
        spec.upper_body = known.spec.upper_body.clone();
        if spec.limbs.is_empty() {
            spec.limbs = known.spec.limbs.clone();
        }
        if spec.flip_pairs.is_empty() {
            spec.flip_pairs = known.spec.flip_pairs.clone();
        }
    }
    spec
}

/// `joint_1` … `joint_k`, no limbs, no pairs, no sigmas: a set known only by its size.
fn numbered(k: usize) -> KeypointSpec {
    KeypointSpec {
        name: format!("{k} joints"),
        keypoints: (1..=k).map(|j| format!("joint_{j}")).collect(),
        flip_pairs: Vec::new(),
        sigmas: None,
        limbs: Vec::new(),
        upper_body: Vec::new(),
    }
}

/// The joint count of the annotations' keypoint arrays (of `category`, or all), `None` when
/// no annotation has a non-empty one; an annotation that disagrees with the first is an error
/// naming both.
fn joint_count(gt: &CocoDataset, category: Option<Id>) -> Result<Option<usize>> {
    let mut first: Option<(usize, usize)> = None;
    for (i, a) in gt.annotations.iter().enumerate() {
        let Some(k) = a.keypoints.as_deref().filter(|k| !k.is_empty()) else { continue };
        if category.is_some_and(|c| c != a.category_id) {
            continue;
        }
        match first {
            None => first = Some((i, k.len())),
            Some((f, len)) if len != k.len() => bail!(
                "{}: annotations[{i}] (id {}) has {} `{field}` numbers ({} joints), but annotations[{f}] (id {}) has {len} ({} joints): every annotation must hold the same joints",
                gt.source.display(),
                a.id,
                k.len(),
                k.len() / 3,
                gt.annotations[f].id,
                len / 3,
                field = gt.keypoint_field,
            ),
            Some(_) => {}
        }
    }
    Ok(first.map(|(_, len)| len / 3))
}

/// The category that names the joints: `category` when given, else that of the first annotation
/// with keypoints, else the first category listing keypoint names.
fn pick_category(gt: &CocoDataset, category: Option<Id>) -> Option<&CategoryRecord> {
    if let Some(id) = category {
        return gt.category(id);
    }
    let with_keypoints = gt.annotations.iter().find(|a| a.keypoints.as_ref().is_some_and(|k| !k.is_empty()));
    with_keypoints
        .and_then(|a| gt.category(a.category_id).filter(|c| !c.keypoints.is_empty()))
        .or_else(|| gt.categories.iter().find(|c| !c.keypoints.is_empty()))
}

/// "the annotations of F hold K joints" or "category C of F names K joints".
fn describe_count(gt: &CocoDataset, cat: Option<&CategoryRecord>, counted: Option<usize>, k: usize) -> String {
    let file = gt.source.display();
    match (counted, cat) {
        (Some(_), _) | (None, None) => format!("the annotations' `{}` arrays of {file} hold {k}", gt.keypoint_field),
        (None, Some(c)) => format!("category {} of {file} has {k}", c.id),
    }
}

/// "a, b, c, … (n in all)".
pub fn names_preview(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(4).map(String::as_str).collect();
    if names.len() > shown.len() {
        format!("{}, … ({} in all)", shown.join(", "), names.len())
    } else {
        shown.join(", ")
    }
}

/// The set a model trains on: [`find_keypoint_set`] for `category`, which must give sigmas
/// (the loss does not need them, but validation, OKS-NMS and every score do).
pub fn training_set(gt: &CocoDataset, category: Id, given: Option<&Path>) -> Result<FoundSet> {
    let found = find_keypoint_set(gt, Some(category), given)?;
    if found.spec.sigmas.is_none() {
        let source = gt.source.display();
        let cat = gt.category(category).ok_or_else(|| anyhow!("{source}: no category with id {category}"))?;
        bail!(
            "{source}: category {} ({}) has keypoints other than COCO's 17 ({}), whose OKS sigmas are not known: \
             give a keypoint spec file with `sigmas` (config key data.keypoints; see configs/keypoints/)",
            cat.id,
            cat.name,
            names_preview(&found.spec.keypoints)
        );
    }
    Ok(found)
}
