//! A loaded COCO annotation file with the indexes the rest of the pipeline needs.

use super::json::{parse_json, read_with, split_object, try_array_par};
use super::keypoints::KeypointSpec;
use super::schema::{AnnotationFile, AnnotationRecord, CategoryRecord, Id, ImageRecord};
use anyhow::{anyhow, bail, ensure, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct CocoDataset {
    /// Where the data came from, for error messages.
    pub source: PathBuf,
    pub images: Vec<ImageRecord>,
    pub annotations: Vec<AnnotationRecord>,
    pub categories: Vec<CategoryRecord>,
    image_pos: HashMap<Id, usize>,
    /// Annotation positions per image id, in file order (annotations of unknown images included).
    anns_of_image: HashMap<Id, Vec<usize>>,
}

impl CocoDataset {
    pub fn load(path: &Path) -> Result<Self> {
        let file = read_with(path, parse_annotation_file)?;
        Self::from_file(file, path.to_path_buf())
    }

    /// Validates and indexes a parsed file; errors name `source` and the record.
    pub fn from_file(file: AnnotationFile, source: PathBuf) -> Result<Self> {
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
            ensure!(ann.area.is_finite(), "{}: area {} is not a finite number", at(), ann.area);
            ensure!(ann.bbox.iter().all(|v| v.is_finite()), "{}: bbox {:?} has a non-finite number", at(), ann.bbox);
            if let Some(kps) = &ann.keypoints {
                ensure!(
                    kps.len() % 3 == 0,
                    "{}: keypoints has {} numbers, not a multiple of 3 (x, y, v)",
                    at(),
                    kps.len()
                );
                if let Some(j) = kps.iter().position(|v| !v.is_finite()) {
                    bail!("{}: keypoints[{j}] is {}, not a finite number", at(), kps[j]);
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
        Ok(CocoDataset { source, images, annotations, categories, image_pos, anns_of_image })
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

    /// The keypoint set a category declares (OKS sigmas only for COCO's 17 names).
    pub fn keypoint_spec(&self, category_id: Id) -> Result<KeypointSpec> {
        let cat = self
            .category(category_id)
            .ok_or_else(|| anyhow!("{}: no category with id {category_id}", self.source.display()))?;
        KeypointSpec::from_category(cat).map_err(|e| anyhow!("{}: {e:#}", self.source.display()))
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
        assert_eq!(ds.keypoint_spec(1).unwrap().len(), 17);
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
    fn duplicate_ids_are_errors_that_name_the_records() {
        let mut file = read_with(&sample().source, parse_annotation_file).unwrap();
        file.annotations[3].id = file.annotations[1].id;
        let err = CocoDataset::from_file(file, "gt.json".into()).unwrap_err().to_string();
        assert!(err.starts_with("gt.json: annotations[3]") && err.contains("annotations[1]"), "{err}");
    }
}
