//! Serde types for COCO keypoint annotation files and results files.
//!
//! Real files vary: ids written as `785` or `785.0`, ids above 2^32, `iscrowd` as `0/1` or
//! `true/false`, polygon or RLE `segmentation`, extra keys. Unknown keys (and `segmentation`,
//! which evaluation never reads) are skipped without being built, which keeps loading the
//! 238 MB train2017 file fast.

use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// COCO ids: integers, possibly written as integral floats, possibly above 2^32.
pub type Id = i64;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AnnotationFile {
    #[serde(default)]
    pub images: Vec<ImageRecord>,
    /// Required: a file without it is not an annotation file (COCO's image-info files, e.g.
    /// `image_info_test2017.json`, have none), though an empty list is fine.
    pub annotations: Vec<AnnotationRecord>,
    #[serde(default)]
    pub categories: Vec<CategoryRecord>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ImageRecord {
    #[serde(deserialize_with = "de_id")]
    pub id: Id,
    #[serde(default)]
    pub file_name: String,
    #[serde(default, deserialize_with = "de_opt_id")]
    pub width: Option<Id>,
    #[serde(default, deserialize_with = "de_opt_id")]
    pub height: Option<Id>,
    /// CrowdPose's crowding of the image (0 = nobody overlaps): its easy / medium / hard split.
    #[serde(default, rename = "crowdIndex", skip_serializing_if = "Option::is_none")]
    pub crowd_index: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AnnotationRecord {
    #[serde(deserialize_with = "de_id")]
    pub id: Id,
    #[serde(deserialize_with = "de_id")]
    pub image_id: Id,
    #[serde(deserialize_with = "de_id")]
    pub category_id: Id,
    #[serde(default, deserialize_with = "de_flag")]
    pub iscrowd: bool,
    /// Absent in several public data sets (CrowdPose, AI Challenger, PoseTrack18, ExLPose):
    /// xtcocotools then scales OKS by the box, see [`AnnotationRecord::area_or_box`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<f64>,
    /// `[x, y, w, h]`; absent or `[]` in PoseTrack18's release for persons without labelled joints.
    #[serde(default, deserialize_with = "de_opt_box", skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
    #[serde(default)]
    pub keypoints: Option<Vec<f64>>,
    /// When absent it is derived from the v flags (pycocotools would fail with a KeyError).
    #[serde(default, deserialize_with = "de_opt_id")]
    pub num_keypoints: Option<Id>,
}

impl AnnotationRecord {
    /// The `num_keypoints` field, or the count of labelled joints (v > 0) when it is absent.
    pub fn num_keypoints(&self) -> Id {
        self.num_keypoints.unwrap_or_else(|| {
            self.keypoints.as_deref().map_or(0, |k| k.chunks_exact(3).filter(|p| p[2] > 0.0).count() as Id)
        })
    }

    /// The box's stand-in for a missing area: w·h·0.53, as xtcocotools (`use_area=False`) and
    /// mmpose compute it for files without `area`.
    pub fn box_area(&self) -> f64 {
        let [_, _, w, h] = self.bbox_or_zero();
        w * h * 0.53
    }

    /// The box, or `[0, 0, 0, 0]` when the record has none (as openpifpaf reads PoseTrack18's
    /// box-less persons, which have no labelled joints: an ignored GT that nothing matches).
    pub fn bbox_or_zero(&self) -> [f64; 4] {
        self.bbox.unwrap_or([0.0; 4])
    }

    /// The `area` field, or [`AnnotationRecord::box_area`] when the file gives none.
    pub fn area_or_box(&self) -> f64 {
        self.area.unwrap_or_else(|| self.box_area())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CategoryRecord {
    #[serde(deserialize_with = "de_id")]
    pub id: Id,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub supercategory: String,
    /// Keypoint names, in the order of the `keypoints` triples.
    #[serde(default)]
    pub keypoints: Vec<String>,
    /// Limbs as 1-based keypoint index pairs (COCO convention).
    #[serde(default)]
    pub skeleton: Vec<[i64; 2]>,
}

/// One entry of a COCO keypoint results file.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ResultRecord {
    #[serde(deserialize_with = "de_id")]
    pub image_id: Id,
    #[serde(deserialize_with = "de_id")]
    pub category_id: Id,
    pub keypoints: Vec<f64>,
    pub score: f64,
    /// pycocotools takes a result's area from `bbox` when the *first* result has a non-empty one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<Vec<f64>>,
    /// Only its presence matters (pycocotools would compute a mask area from it).
    #[serde(default, skip_serializing)]
    pub segmentation: Option<IgnoredAny>,
}

/// One entry of a COCO detection results file; other fields (keypoints, segmentation) are
/// passed over, so a keypoint results file with boxes is also a box results file.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BoxRecord {
    #[serde(deserialize_with = "de_id")]
    pub image_id: Id,
    #[serde(deserialize_with = "de_id")]
    pub category_id: Id,
    pub bbox: Vec<f64>,
    pub score: f64,
}

struct IdVisitor;

impl Visitor<'_> for IdVisitor {
    type Value = Id;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer id (integral floats are accepted)")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
        Id::try_from(v).map_err(|_| E::custom(format!("id {v} is larger than 2^63-1")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Id, E> {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            Ok(v as Id)
        } else {
            Err(E::custom(format!("id {v} is not an integer")))
        }
    }
}

fn de_id<'de, D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
    d.deserialize_any(IdVisitor)
}

fn de_opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id>, D::Error> {
    struct OptId;
    impl<'de> Visitor<'de> for OptId {
        type Value = Option<Id>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            de_id(d).map(Some)
        }
    }
    d.deserialize_option(OptId)
}

/// A box `[x, y, w, h]`, or none for `[]` and `null`.
fn de_opt_box<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[f64; 4]>, D::Error> {
    let v: Option<Vec<f64>> = Option::deserialize(d)?;
    match v.as_deref() {
        None | Some([]) => Ok(None),
        Some(&[x, y, w, h]) => Ok(Some([x, y, w, h])),
        Some(other) => {
            Err(de::Error::custom(format!("bbox has {} numbers, expected 4 ([x, y, w, h]) or none", other.len())))
        }
    }
}

/// `iscrowd` as `0`/`1`, `0.0`/`1.0` or `false`/`true`; Python truthiness decides.
fn de_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct Flag;
    impl Visitor<'_> for Flag {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean or a number")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
            Ok(v != 0)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
            Ok(v != 0)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
            Ok(v != 0.0)
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    d.deserialize_any(Flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerates_the_shapes_real_files_carry() {
        let text = r#"{"info": {"x": 1}, "licenses": [],
          "images": [{"id": 5000000000.0, "file_name": "a.jpg", "width": 640, "height": 480.0, "coco_url": "u"}],
          "annotations": [
            {"id": 1, "image_id": 5000000000, "category_id": 1.0, "iscrowd": true, "area": 10,
             "bbox": [1, 2, 3.5, 4], "segmentation": {"counts": "abc", "size": [480, 640]},
             "keypoints": [1, 2, 2.0], "num_keypoints": 1, "extra": [[1]]},
            {"id": 2, "image_id": 5000000000, "category_id": 1, "iscrowd": 0, "area": 1.5,
             "bbox": [0, 0, 1, 1], "segmentation": [[1.0, 2.0, 3.0, 4.0]], "keypoints": [0, 0, 0, 4, 5, 1]}
          ],
          "categories": [{"id": 1, "name": "person", "keypoints": ["a", "b"], "skeleton": [[1, 2]]}]}"#;
        let file: AnnotationFile = serde_json::from_str(text).unwrap();
        assert_eq!(file.images[0].id, 5_000_000_000);
        assert_eq!(file.images[0].height, Some(480));
        let a = &file.annotations;
        assert!(a[0].iscrowd && !a[1].iscrowd);
        assert_eq!(a[0].category_id, 1);
        assert_eq!(a[0].bbox, Some([1.0, 2.0, 3.5, 4.0]));
        assert_eq!(a[0].num_keypoints(), 1);
        assert_eq!(a[1].num_keypoints(), 1, "derived from the v flags when absent");
        assert_eq!(file.categories[0].skeleton, vec![[1, 2]]);
    }

    #[test]
    fn rejects_non_integral_ids() {
        let err = serde_json::from_str::<ImageRecord>(r#"{"id": 1.5}"#).unwrap_err();
        assert!(err.to_string().contains("not an integer"), "{err}");
    }
}
