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

/// A joint's name in a shipped spec, and another name a data set's release gives it.
type ReleaseName = (&'static str, &'static str);

/// The specs of `configs/keypoints/`, built into the binary, each with the other names that data
/// set releases give its joints.
const SHIPPED: [(&str, &str, &[ReleaseName]); 5] = [
    ("coco17.json", include_str!("../../configs/keypoints/coco17.json"), &[]),
    // The CrowdPose release calls the head `head`; mmpose calls it `top_head`.
    ("crowdpose14.json", include_str!("../../configs/keypoints/crowdpose14.json"), &[("top_head", "head")]),
    ("aic14.json", include_str!("../../configs/keypoints/aic14.json"), &[]),
    ("humanart21.json", include_str!("../../configs/keypoints/humanart21.json"), &[]),
    ("hand21.json", include_str!("../../configs/keypoints/hand21.json"), &[]),
];

/// A shipped keypoint spec: its file name under `configs/keypoints/` and the spec.
pub struct ShippedSpec {
    pub file: &'static str,
    pub spec: KeypointSpec,
    aliases: &'static [ReleaseName],
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
    let k = counted.or((!names.is_empty()).then_some(names.len()));
    if let Some(path) = given {
        let spec = KeypointSpec::from_json_file(path)?;
        if let Some(k) = k.filter(|&k| k != spec.len()) {
            bail!("{}: {} keypoints, but {}", path.display(), spec.len(), count_source(gt, cat, counted, k));
        }
        return Ok(FoundSet { spec, notes: Vec::new() });
    }
    let mut notes = Vec::new();
    let Some(k) = k else {
        notes.push(format!(
            "note: {file}: no annotation has a `{}` array and no category names joints: COCO's 17 joints are assumed, as pycocotools assumes them",
            gt.keypoint_field
        ));
        return Ok(FoundSet { spec: KeypointSpec::coco17(), notes });
    };
    let shipped = shipped_specs();
    let mut spec = match cat.filter(|c| c.keypoints.len() == k) {
        Some(cat) => named_by_category(gt, cat, &shipped, &mut notes)?,
        None => named_by_count(gt, cat, k, &shipped, &mut notes),
    };
    if spec.sigmas.is_none() && k == 17 {
        let coco = KeypointSpec::coco17();
        notes.push(format!(
            "note: {file}: the 17 joints ({}) are not COCO's names; COCO's OKS sigmas are used for them, as pycocotools uses them for every 17-joint file (--spec or data.keypoints gives others)",
            names_preview(&spec.keypoints)
        ));
        spec.sigmas = coco.sigmas;
        spec.upper_body = coco.upper_body;
    }
    spec.validate().with_context(|| file.to_string())?;
    Ok(FoundSet { spec, notes })
}

/// The set a category names whose names fit the joint count: its names, its skeleton when that
/// fits the joints, flip pairs by name, and what the shipped spec of those names adds.
fn named_by_category(
    gt: &CocoDataset,
    cat: &CategoryRecord,
    shipped: &[ShippedSpec],
    notes: &mut Vec<String>,
) -> Result<KeypointSpec> {
    let k = cat.keypoints.len();
    // CrowdPose's release carries COCO's skeleton, ExLPose's is 0-based: such a skeleton
    // draws nonsense, so it gives way to the shipped spec's limbs (or none).
    let mut cat = cat.clone();
    let outside = cat.skeleton.iter().find(|pair| pair.iter().any(|&j| j < 1 || j > k as i64)).copied();
    if outside.is_some() {
        cat.skeleton.clear();
    }
    let from_category = KeypointSpec::from_category(&cat).with_context(|| gt.source.display().to_string())?;
    let (spec, known) = completed_by_shipped(from_category, shipped);
    if let Some([a, b]) = outside {
        notes.push(format!(
            "warning: {}: category {}'s skeleton pair [{a}, {b}] is outside joints 1..={k} (a skeleton of another set, or 0-based): {}",
            gt.source.display(),
            cat.id,
            known.map_or("the joints have no limbs".to_string(), |f| format!("the limbs of {f} are used instead"))
        ));
    }
    Ok(spec)
}

/// The set of `k` joints whose category does not name them: the one shipped spec of that count,
/// else joints known by number only; with a warning either way.
fn named_by_count(
    gt: &CocoDataset,
    cat: Option<&CategoryRecord>,
    k: usize,
    shipped: &[ShippedSpec],
    notes: &mut Vec<String>,
) -> KeypointSpec {
    let names = cat.map_or(&[][..], |c| c.keypoints.as_slice());
    let why = match (cat, names.len()) {
        (None, _) => "no category describes them".to_string(),
        (Some(c), 0) => format!("category {} lists no joint names", c.id),
        (Some(c), n) => format!("category {} names {n} joints ({})", c.id, names_preview(names)),
    };
    let head = format!(
        "warning: {}: {why}, but the annotations' `{}` arrays hold {k}",
        gt.source.display(),
        gt.keypoint_field
    );
    let of_count: Vec<&ShippedSpec> = shipped.iter().filter(|s| s.spec.len() == k).collect();
    if let [one] = of_count.as_slice() {
        notes.push(format!("{head}: the joints are named and drawn as in {}", one.file));
        return one.spec.clone();
    }
    let files: Vec<&str> = of_count.iter().map(|s| s.file).collect();
    notes.push(match files.len() {
        0 => format!("{head}: the joints are numbered, without limbs"),
        _ => format!(
            "{head}: the joints are numbered, without limbs (configs/keypoints/{} names them)",
            files.join(" or ")
        ),
    });
    numbered(k)
}

/// The category's spec with the sigmas and upper body of the shipped spec its names are, and
/// that spec's limbs and flip pairs where the category has none; and that spec's file.
fn completed_by_shipped(mut spec: KeypointSpec, shipped: &[ShippedSpec]) -> (KeypointSpec, Option<&'static str>) {
    let known = shipped.iter().find(|s| s.names_match(&spec.keypoints));
    if let Some(known) = known {
        spec.sigmas = known.spec.sigmas.clone();
        spec.upper_body = known.spec.upper_body.clone();
        if spec.limbs.is_empty() {
            spec.limbs = known.spec.limbs.clone();
        }
        if spec.flip_pairs.is_empty() {
            spec.flip_pairs = known.spec.flip_pairs.clone();
        }
    }
    (spec, known.map(|k| k.file))
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

/// Refuses a file whose annotations of `category` hold other joints than a model's `joints`:
/// its persons would silently be left out of GT boxes and scoring.
pub fn ensure_model_joints(gt: &CocoDataset, category: Id, joints: usize) -> Result<()> {
    if let Some(k) = joint_count(gt, Some(category))?.filter(|&k| k != joints) {
        bail!(
            "{}: the annotations' `{}` arrays hold {k} joints, but the checkpoint's keypoint set has {joints} (a config's data.keypoint_field picks another array)",
            gt.source.display(),
            gt.keypoint_field
        );
    }
    Ok(())
}

/// The category that names the joints: `category` when given, else that of the first
/// annotation with keypoints (names or not), else, with no such annotation, the first category
/// listing keypoint names.
fn pick_category(gt: &CocoDataset, category: Option<Id>) -> Option<&CategoryRecord> {
    if let Some(id) = category {
        return gt.category(id);
    }
    match gt.annotations.iter().find(|a| a.keypoints.as_ref().is_some_and(|k| !k.is_empty())) {
        Some(a) => gt.category(a.category_id),
        None => gt.categories.iter().find(|c| !c.keypoints.is_empty()),
    }
}

/// Where a joint count came from: "the annotations' `keypoints` arrays of F hold K" or
/// "category C of F has K".
fn count_source(gt: &CocoDataset, cat: Option<&CategoryRecord>, counted: Option<usize>, k: usize) -> String {
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
    let source = gt.source.display();
    let cat = gt.category(category).ok_or_else(|| anyhow!("{source}: no category with id {category}"))?;
    let found = find_keypoint_set(gt, Some(category), given)?;
    if let Some(path) = given {
        found.spec.sigmas().with_context(|| path.display().to_string())?;
    } else if found.spec.sigmas.is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CROWDPOSE_RELEASE: [&str; 14] = [
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
        "head",
        "neck",
    ];

    /// COCO's 1-based skeleton, as PoseTrack18 and CrowdPose's release carry it.
    fn coco_skeleton() -> Vec<[i64; 2]> {
        KeypointSpec::coco17().coco_skeleton().iter().map(|&[a, b]| [a as i64, b as i64]).collect()
    }

    /// A file whose one category names `names` with `skeleton`, and one annotation per entry of
    /// `joint_counts` with that many joints (2 labelled).
    fn file(names: &[&str], skeleton: Vec<[i64; 2]>, joint_counts: &[usize]) -> CocoDataset {
        let anns: Vec<_> = joint_counts
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                let kps: Vec<f64> = (0..k).flat_map(|j| [j as f64, 1.0, if j < 2 { 2.0 } else { 0.0 }]).collect();
                json!({"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "keypoints": kps})
            })
            .collect();
        let text = json!({
            "images": [{"id": 1, "file_name": "a.jpg"}],
            "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": names, "skeleton": skeleton}],
        });
        CocoDataset::from_file(serde_json::from_value(text).unwrap(), "f.json".into()).unwrap()
    }

    fn shipped(file: &str) -> KeypointSpec {
        shipped_specs().into_iter().find(|s| s.file == file).unwrap().spec
    }

    #[test]
    fn shipped_specs_load_and_crowdpose_sigmas_are_xtcocotools_arithmetic() {
        let all = shipped_specs();
        assert_eq!(all.len(), 5);
        assert_eq!(shipped("coco17.json"), KeypointSpec::coco17());
        // CrowdPose's evaluator: np.array([.79, .79, .72, …]) / 10.0; 1.07 / 10.0 is
        // 0.10700000000000001, one ulp above the decimal 0.107.
        let x10 = [0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89, 0.79, 0.79];
        let want: Vec<f64> = x10.iter().map(|s| s / 10.0).collect();
        assert_eq!(shipped("crowdpose14.json").sigmas.unwrap(), want);
        assert_ne!(want[6], 0.107);
        // mmpose's AI Challenger sigmas, digit for digit.
        assert_eq!(shipped("aic14.json").sigmas.unwrap()[13], 0.01236173);
        for s in &all {
            assert!(s.spec.sigmas.is_some() && s.names_match(&s.spec.keypoints), "{}", s.file);
            let by_name = crate::coco::keypoints::flip_pairs_from_names(&s.spec.keypoints);
            assert_eq!(by_name, s.spec.flip_pairs, "{}: the pairs are the left/right names", s.file);
        }
    }

    #[test]
    fn a_crowdpose_release_file_needs_no_flag() {
        // The release names the head `head` and carries COCO's skeleton (joints up to 17).
        let found = find_keypoint_set(&file(&CROWDPOSE_RELEASE, coco_skeleton(), &[14, 14]), None, None).unwrap();
        let cp = shipped("crowdpose14.json");
        assert_eq!(found.spec.sigmas, cp.sigmas);
        assert_eq!(found.spec.limbs, cp.limbs, "the skeleton that does not fit gives way to CrowdPose's limbs");
        assert_eq!(found.spec.flip_pairs, cp.flip_pairs);
        assert_eq!(found.notes.len(), 1, "{:?}", found.notes);
        assert!(
            found.notes[0].contains("[16, 14]") && found.notes[0].contains("crowdpose14.json"),
            "{:?}",
            found.notes
        );
        // mmpose's names (`top_head`) and any case or separator name the same joints.
        let mut names: Vec<String> = cp.keypoints.iter().map(|n| n.replace('_', " ").to_uppercase()).collect();
        names[12] = "Top-Head".into();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let found = find_keypoint_set(&file(&refs, vec![[13, 14]], &[14]), None, None).unwrap();
        assert_eq!((found.spec.sigmas, found.notes.len()), (cp.sigmas, 0));
    }

    #[test]
    fn seventeen_joints_of_other_names_get_cocos_sigmas_with_a_note() {
        let coco = KeypointSpec::coco17();
        let mut names: Vec<&str> = coco.keypoints.iter().map(String::as_str).collect();
        names[1] = "head_bottom";
        names[2] = "head_top";
        let found = find_keypoint_set(&file(&names, coco_skeleton(), &[17, 17]), None, None).unwrap();
        assert_eq!(found.spec.keypoints[1], "head_bottom", "names from the category");
        assert_eq!(found.spec.limbs.len(), 19);
        assert_eq!((found.spec.sigmas, found.spec.upper_body), (coco.sigmas, coco.upper_body));
        assert_eq!(found.notes.len(), 1);
        assert!(
            found.notes[0].starts_with("note: f.json") && found.notes[0].contains("COCO's OKS sigmas"),
            "{:?}",
            found.notes
        );
        assert!(found.spec.flip_pairs.contains(&[3, 4]) && !found.spec.flip_pairs.contains(&[1, 2]));
    }

    #[test]
    fn the_arrays_decide_the_count_and_the_names_follow_when_they_fit() {
        // Human-Art: 21 names, 17-joint arrays: COCO's names and limbs, with one warning.
        let coco = KeypointSpec::coco17();
        let mut names: Vec<&str> = coco.keypoints.iter().map(String::as_str).collect();
        names.extend(["left_finger", "right_finger", "left_toe", "right_toe"]);
        let found = find_keypoint_set(&file(&names, vec![[20, 16]], &[17]), None, None).unwrap();
        assert_eq!(found.spec, KeypointSpec::coco17());
        assert_eq!(found.notes.len(), 1);
        assert!(found.notes[0].contains("names 21 joints") && found.notes[0].contains("hold 17"), "{:?}", found.notes);
        // The same names over 21-joint arrays are Human-Art's 21, sigmas included.
        let found = find_keypoint_set(&file(&names, vec![[20, 16]], &[21]), None, None).unwrap();
        assert_eq!((found.spec.len(), found.spec.sigmas.clone()), (21, shipped("humanart21.json").sigmas));
        // 14 joints under 17 names: two shipped specs have 14, so the joints are numbered.
        let found = find_keypoint_set(&file(&names[..17], vec![], &[14]), None, None).unwrap();
        assert_eq!(found.spec.keypoints[13], "joint_14");
        assert!(found.spec.sigmas.is_none() && found.spec.limbs.is_empty());
        assert!(found.notes[0].contains("crowdpose14.json or aic14.json"), "{:?}", found.notes);
        // No annotation with joints: the category's names count.
        let found = find_keypoint_set(&file(&CROWDPOSE_RELEASE, vec![], &[]), None, None).unwrap();
        assert_eq!(found.spec.len(), 14);
    }

    #[test]
    fn a_file_without_arrays_or_names_is_cocos_and_the_annotations_category_is_the_one_named() {
        let text = json!({
            "images": [{"id": 1, "file_name": "a.jpg"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}],
            "categories": [{"id": 1, "name": "person"}],
        });
        let ds = CocoDataset::from_file(serde_json::from_value(text).unwrap(), "boxes.json".into()).unwrap();
        let found = find_keypoint_set(&ds, None, None).unwrap();
        assert_eq!(found.spec, KeypointSpec::coco17());
        assert!(found.notes[0].contains("no annotation has a `keypoints` array"), "{:?}", found.notes);
        // Persons of category 2, which names nothing, beside category 1, which names 3 joints.
        let text = json!({
            "images": [{"id": 1, "file_name": "a.jpg"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [0, 0, 5, 5], "keypoints": vec![1.0; 51]}],
            "categories": [{"id": 1, "name": "tool", "keypoints": ["a", "b", "c"]}, {"id": 2, "name": "person"}],
        });
        let ds = CocoDataset::from_file(serde_json::from_value(text).unwrap(), "two.json".into()).unwrap();
        let found = find_keypoint_set(&ds, None, None).unwrap();
        assert_eq!(found.spec, KeypointSpec::coco17());
        assert!(found.notes[0].contains("category 2 lists no joint names"), "{:?}", found.notes);
    }

    #[test]
    fn arrays_that_disagree_are_an_error_naming_both() {
        let e = find_keypoint_set(&file(&CROWDPOSE_RELEASE, vec![], &[14, 14, 17]), None, None).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.starts_with("f.json: annotations[2] (id 3) has 51 `keypoints` numbers (17 joints)"), "{e}");
        assert!(e.contains("annotations[0] (id 1) has 42 (14 joints)"), "{e}");
    }

    #[test]
    fn ai_challenger_names_pair_and_score() {
        let names = [
            "Right Shoulder",
            "Right Elbow",
            "Right Wrist",
            "Left Shoulder",
            "Left Elbow",
            "Left Wrist",
            "Right Hip",
            "Right Knee",
            "Right Ankle",
            "Left Hip",
            "Left Knee",
            "Left Ankle",
            "Head top",
            "Neck",
        ];
        let found = find_keypoint_set(&file(&names, vec![[3, 2], [13, 14]], &[14]), None, None).unwrap();
        let aic = shipped("aic14.json");
        assert_eq!(found.spec.sigmas, aic.sigmas);
        assert_eq!(found.spec.flip_pairs, aic.flip_pairs, "title case with spaces pairs left and right");
        assert_eq!(found.spec.limbs, vec![[2, 1], [12, 13]], "limbs from the category's skeleton");
        assert!(found.notes.is_empty());
    }

    #[test]
    fn other_sets_need_a_spec_to_train_and_a_spec_must_fit() {
        let ds = file(&["l_tip", "r_tip", "palm"], vec![[1, 3], [2, 3]], &[3]);
        let found = find_keypoint_set(&ds, None, None).unwrap();
        assert_eq!((found.spec.flip_pairs.clone(), found.spec.limbs.clone()), (vec![[0, 1]], vec![[0, 2], [1, 2]]));
        assert!(found.spec.sigmas.is_none(), "drawing needs no sigmas");
        let e = format!("{:#}", training_set(&ds, 1, None).unwrap_err());
        assert!(e.starts_with("f.json: category 1 (person)") && e.contains("data.keypoints"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| {
            let p = dir.path().join("spec.json");
            std::fs::write(&p, text).unwrap();
            p
        };
        let good = write(r#"{"name": "tips", "keypoints": ["a", "b", "c"], "sigmas": [0.1, 0.1, 0.2]}"#);
        assert_eq!(training_set(&ds, 1, Some(&good)).unwrap().spec.sigmas.unwrap(), vec![0.1, 0.1, 0.2]);
        let two = write(r#"{"name": "tips", "keypoints": ["a", "b"], "sigmas": [0.1, 0.1]}"#);
        let e = format!("{:#}", training_set(&ds, 1, Some(&two)).unwrap_err());
        assert!(e.contains("spec.json: 2 keypoints, but the annotations' `keypoints` arrays of f.json hold 3"), "{e}");
        let unscored = write(r#"{"name": "tips", "keypoints": ["a", "b", "c"]}"#);
        let e = format!("{:#}", training_set(&ds, 1, Some(&unscored)).unwrap_err());
        assert!(e.contains("spec.json") && e.contains("no OKS sigmas"), "{e}");
    }
}
