//! A loaded COCO annotation file with the indexes the rest of the pipeline needs.

use super::json::{parse_json, split_array, split_object, try_array_par, without_bom};
use super::schema::{AnnotationFile, AnnotationRecord, CategoryRecord, Id, ImageRecord};
use anyhow::{anyhow, bail, ensure, Context, Result};
use rayon::prelude::*;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The annotation array that holds the joints unless a data set keeps another set beside it
/// (Human-Art's `keypoints_21`, COCO-WholeBody's `foot_kpts`): config key `data.keypoint_field`,
/// flag `--keypoint-field`.
pub const KEYPOINTS_FIELD: &str = "keypoints";

#[derive(Debug, Clone)]
pub struct CocoDataset {
    /// Where the data came from, for error messages.
    pub source: PathBuf,
    pub images: Vec<ImageRecord>,
    pub annotations: Vec<AnnotationRecord>,
    pub categories: Vec<CategoryRecord>,
    /// The annotation field `keypoints` was read from ([`KEYPOINTS_FIELD`] unless told otherwise).
    pub keypoint_field: String,
    image_pos: HashMap<Id, usize>,
    /// Annotation positions per image id, in file order (annotations of unknown images included).
    anns_of_image: HashMap<Id, Vec<usize>>,
}

impl CocoDataset {
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_field(path, KEYPOINTS_FIELD)
    }

    /// Loads a file whose joints are in the annotations' `field` array instead of `keypoints`
    /// (which is then passed over); `num_keypoints` is counted from that array's v flags.
    pub fn load_field(path: &Path, field: &str) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
        let bytes = without_bom(&bytes);
        let named = |e: String| anyhow!("{}: {e}", path.display());
        let mut file = parse_annotation_file(bytes).map_err(named)?;
        if field != KEYPOINTS_FIELD {
            take_keypoint_field(bytes, &mut file, field).map_err(named)?;
        }
        Self::from_parsed(file, path.to_path_buf(), field)
    }

    /// Validates and indexes a parsed file; errors name `source` and the record.
    pub fn from_file(file: AnnotationFile, source: PathBuf) -> Result<Self> {
        Self::from_parsed(file, source, KEYPOINTS_FIELD)
    }

    fn from_parsed(file: AnnotationFile, source: PathBuf, field: &str) -> Result<Self> {
        let AnnotationFile { images, annotations, categories } = file;
        let name = source.display().to_string();
        let mut image_pos = HashMap::with_capacity(images.len());
        for (i, img) in images.iter().enumerate() {
            if let Some(first) = image_pos.insert(img.id, i) {
                bail!("{name}: images[{i}]: image id {} already used by images[{first}]", img.id);
            }
        }
        let mut ann_ids = HashMap::with_capacity(annotations.len());
        let mut anns_of_image: HashMap<Id, Vec<usize>> = HashMap::with_capacity(images.len());
        for (i, ann) in annotations.iter().enumerate() {
            let at = || format!("{name}: annotations[{i}] (id {})", ann.id);
            if let Some(first) = ann_ids.insert(ann.id, i) {
                bail!("{}: annotation id already used by annotations[{first}]", at());
            }
            if let Some(area) = ann.area {
                ensure!(area.is_finite(), "{}: area {area} is not a finite number", at());
            }
            if let Some(b) = ann.bbox {
                ensure!(b.iter().all(|v| v.is_finite()), "{}: bbox {b:?} has a non-finite number", at());
            }
            if let Some(kps) = &ann.keypoints {
                ensure!(
                    kps.len() % 3 == 0,
                    "{}: {field} has {} numbers, not a multiple of 3 (x, y, v)",
                    at(),
                    kps.len()
                );
                if let Some(j) = kps.iter().position(|v| !v.is_finite()) {
                    bail!("{}: {field}[{j}] is {}, not a finite number", at(), kps[j]);
                }
            }
            anns_of_image.entry(ann.image_id).or_default().push(i);
        }
        let mut cat_ids = HashMap::new();
        for (i, cat) in categories.iter().enumerate() {
            if let Some(first) = cat_ids.insert(cat.id, i) {
                bail!("{name}: categories[{i}]: category id {} already used by categories[{first}]", cat.id);
            }
        }
        let keypoint_field = field.to_string();
        Ok(CocoDataset { source, images, annotations, categories, keypoint_field, image_pos, anns_of_image })
    }

    /// How many annotations carry no `area` (xtcocotools then scales OKS by the box).
    pub fn annotations_without_area(&self) -> usize {
        self.annotations.iter().filter(|a| a.area.is_none()).count()
    }

    pub fn image(&self, id: Id) -> Option<&ImageRecord> {
        self.image_pos.get(&id).map(|&i| &self.images[i])
    }

    pub fn contains_image(&self, id: Id) -> bool {
        self.image_pos.contains_key(&id)
    }

    /// The annotations of one image, in file order.
    pub fn annotations_of(&self, image_id: Id) -> impl Iterator<Item = &AnnotationRecord> {
        self.anns_of_image.get(&image_id).into_iter().flatten().map(|&i| &self.annotations[i])
    }

    pub fn image_ids_sorted(&self) -> Vec<Id> {
        let mut ids: Vec<Id> = self.images.iter().map(|i| i.id).collect();
        ids.sort_unstable();
        ids
    }

    pub fn category_ids_sorted(&self) -> Vec<Id> {
        let mut ids: Vec<Id> = self.categories.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids
    }

    pub fn category(&self, id: Id) -> Option<&CategoryRecord> {
        self.categories.iter().find(|c| c.id == id)
    }
}

/// Parses an annotation file with the `images` and `annotations` records spread over threads
/// (the 238 MB train2017 file loads ~2× faster on 2 cores); errors as the strict parse gives them.
pub fn parse_annotation_file(bytes: &[u8]) -> std::result::Result<AnnotationFile, String> {
    parse_annotation_file_par(bytes).map_or_else(|| parse_json(bytes), Ok).map_err(|e| {
        if e.contains("missing field `annotations`") {
            format!("{e}: not an annotation file (an image-info file such as image_info_test2017.json has no `annotations` list)")
        } else {
            e
        }
    })
}

/// Puts each annotation's `field` array in place of its `keypoints` (absent or `null`: none) and
/// drops its `num_keypoints`, which counts the other set. A field no annotation has is an error
/// that lists the first annotation's fields, since it is most likely a typo.
fn take_keypoint_field(bytes: &[u8], file: &mut AnnotationFile, field: &str) -> std::result::Result<(), String> {
    let members = split_object(bytes).ok_or("the annotation file is not one JSON object with unique keys")?;
    let range = members.iter().find(|(k, _)| k == "annotations").map(|(_, r)| r.clone()).unwrap_or(0..0);
    let elems = split_array(bytes, range).ok_or("`annotations` is not a list")?;
    let values: Vec<std::result::Result<Option<Vec<f64>>, String>> = elems
        .par_iter()
        .map(|r| {
            let mut de = serde_json::Deserializer::from_slice(&bytes[r.clone()]);
            // serde's position would count from the record, not the file: the record names it.
            FieldSeed(field).deserialize(&mut de).map_err(|e| {
                let text = e.to_string();
                text.rfind(" at line ").map_or(text.clone(), |at| text[..at].to_string())
            })
        })
        .collect();
    let mut found = 0;
    for (i, (ann, value)) in file.annotations.iter_mut().zip(values).enumerate() {
        let value = value.map_err(|e| format!("annotations[{i}] (id {}).{field}: {e}", ann.id))?;
        found += value.is_some() as usize;
        ann.keypoints = value;
        ann.num_keypoints = None;
    }
    if found == 0 && !file.annotations.is_empty() {
        let first: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes[elems[0].clone()]).map_err(|e| e.to_string())?;
        let keys: Vec<&str> = first.keys().map(String::as_str).collect();
        return Err(format!(
            "no annotation has a `{field}` field (the keypoint field asked for); annotations[0] has: {}",
            keys.join(", ")
        ));
    }
    Ok(())
}

/// Reads one key of an annotation object as a list of numbers, passing over the others.
struct FieldSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Option<Vec<f64>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Option<Vec<f64>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an annotation object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut value = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == self.0 {
                value = map.next_value::<Option<Vec<f64>>>()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(value)
    }
}

fn parse_annotation_file_par(bytes: &[u8]) -> Option<AnnotationFile> {
    let members = split_object(bytes)?;
    let range = |key: &str| members.iter().find(|(k, _)| k == key).map(|(_, r)| r.clone());
    // Members we do not read must still be valid JSON, as the strict parse requires.
    for (k, r) in &members {
        if k != "images" && k != "annotations" && k != "categories" {
            serde_json::from_slice::<serde::de::IgnoredAny>(&bytes[r.clone()]).ok()?;
        }
    }
    let (images, annotations) = rayon::join(
        || range("images").map_or(Some(Vec::new()), |r| try_array_par(bytes, r)),
        || range("annotations").and_then(|r| try_array_par(bytes, r)),
    );
    let categories = match range("categories") {
        Some(r) => serde_json::from_slice(&bytes[r]).ok()?,
        None => Vec::new(),
    };
    Some(AnnotationFile { images: images?, annotations: annotations?, categories })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coco::json::read_with;

    fn sample() -> CocoDataset {
        CocoDataset::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/coco-sample/annotations/person_keypoints_sample.json"
        )))
        .unwrap()
    }

    #[test]
    fn indexes_the_real_sample() {
        let ds = sample();
        assert_eq!(ds.image_ids_sorted(), vec![785, 40083, 196141, 197388]);
        assert_eq!(ds.image(785).unwrap().file_name, "000000000785.jpg");
        let total: usize = ds.images.iter().map(|i| ds.annotations_of(i.id).count()).sum();
        assert_eq!(total, ds.annotations.len());
        assert!(ds.annotations_of(785).all(|a| a.image_id == 785));
    }

    #[test]
    fn parallel_parse_agrees_with_serde_and_reports_the_same_errors() {
        let bytes = std::fs::read(sample().source).unwrap();
        let fast = parse_annotation_file_par(&bytes).unwrap();
        let strict: AnnotationFile = parse_json(&bytes).unwrap();
        assert_eq!(format!("{fast:?}"), format!("{strict:?}"));
        let text = String::from_utf8(bytes).unwrap();
        let at = text.match_indices("\"area\": ").nth(2).unwrap().0;
        let broken = format!("{}\"area\": \"big\", \"x\": {}", &text[..at], &text[at + 8..]);
        let err = parse_annotation_file(broken.as_bytes()).unwrap_err();
        assert!(err.contains("record annotations[2].area"), "{err}");
        let bad_info = text.replacen("\"info\": {", "\"info\": {1", 1);
        assert!(parse_annotation_file(bad_info.as_bytes()).is_err(), "unread members are still validated");
    }

    #[test]
    fn another_keypoint_field_replaces_keypoints_and_its_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("art.json");
        let write = |k21: &str| {
            let text = format!(
                r#"{{"images": [], "annotations": [
                  {{"id": 7, "image_id": 1, "category_id": 1, "keypoints": [1, 2, 2], "num_keypoints": 1,
                   "keypoints_21": {k21}, "bbox": [0, 0, 1, 1]}}], "categories": []}}"#
            );
            std::fs::write(&path, text).unwrap();
        };
        write("[3, 4, 2, 5, 6, 1]");
        let ds = CocoDataset::load_field(&path, "keypoints_21").unwrap();
        assert_eq!(ds.annotations[0].keypoints, Some(vec![3.0, 4.0, 2.0, 5.0, 6.0, 1.0]));
        assert_eq!(ds.annotations[0].num_keypoints(), 2, "counted from the array read, not the file's 1");
        assert_eq!(CocoDataset::load(&path).unwrap().annotations[0].num_keypoints(), 1);
        write(r#"[3, "x", 2]"#);
        let e = format!("{:#}", CocoDataset::load_field(&path, "keypoints_21").unwrap_err());
        assert!(e.contains("art.json: annotations[0] (id 7).keypoints_21: invalid type") && !e.contains("line"), "{e}");
        let e = format!("{:#}", CocoDataset::load_field(&path, "keypoint_21").unwrap_err());
        assert!(e.contains("no annotation has a `keypoint_21` field") && e.contains("keypoints_21"), "{e}");
    }

    #[test]
    fn duplicate_ids_are_errors_that_name_the_records() {
        let mut file = read_with(&sample().source, parse_annotation_file).unwrap();
        file.annotations[3].id = file.annotations[1].id;
        let err = CocoDataset::from_file(file, "gt.json".into()).unwrap_err().to_string();
        assert!(err.starts_with("gt.json: annotations[3]") && err.contains("annotations[1]"), "{err}");
    }
}
