//! The inference geometry without a network: the GT joints of the real COCO sample, encoded as
//! heatmaps in each box's crop, must come back through decoding, the inverse affine, rescoring
//! and OKS-NMS close enough to score AP ≥ 0.95 (the 64×48 round trip costs about 2.5 AP).

use dypose::coco::{CocoDataset, KeypointSpec};
use dypose::config::Size;
use dypose::data::codec::HeatmapCodec;
use dypose::eval::{evaluate_keypoints, Stats};
use dypose::infer::boxes::{detection_boxes, gt_boxes};
use dypose::infer::predictor::{crop_of, person_from_heatmaps, suppress};
use dypose::infer::{results_of, Person, PersonBox, PredictOptions};
use std::path::Path;

const GT: &str = "data/coco-sample/annotations/person_keypoints_sample.json";
const DETS: &str = "data/coco-sample/annotations/person_detections_sample.json";

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let w = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let h = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    let inter = w.max(0.0) * h.max(0.0);
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

/// Heatmaps a perfect network would give for `pb`: the GT person it overlaps most, encoded in
/// the box's crop (zero maps when it overlaps none).
fn oracle_persons(gt: &CocoDataset, boxes: &[PersonBox], codec: &HeatmapCodec, spec: &KeypointSpec) -> Vec<Person> {
    let opts = PredictOptions::default();
    let mut by_image: std::collections::BTreeMap<i64, Vec<Person>> = Default::default();
    for pb in boxes {
        let (_, m) = crop_of(pb.bbox, codec, opts.padding);
        let best = gt
            .annotations_of(pb.image_id)
            .filter(|a| !a.iscrowd && a.keypoints.as_ref().is_some_and(|k| k.chunks(3).any(|p| p[2] > 0.0)))
            .map(|a| (iou(pb.bbox, a.bbox.unwrap()), a))
            .filter(|(o, _)| *o > 0.0)
            .max_by(|x, y| x.0.total_cmp(&y.0));
        let (kps, vis): (Vec<[f32; 2]>, Vec<bool>) = match best {
            Some((_, a)) => a
                .keypoints
                .as_ref()
                .unwrap()
                .chunks(3)
                .map(|p| {
                    let q = m.apply([p[0], p[1]]);
                    ([q[0] as f32, q[1] as f32], p[2] > 0.0)
                })
                .unzip(),
            None => (vec![[0.0; 2]; spec.len()], vec![false; spec.len()]),
        };
        let maps = codec.encode(&kps, &vis).heatmaps;
        by_image.entry(pb.image_id).or_default().push(person_from_heatmaps(&maps, pb, codec, &opts));
    }
    by_image.into_values().flat_map(|p| suppress(p, spec.sigmas().unwrap(), opts.nms_threshold)).collect()
}

fn setup() -> (CocoDataset, HeatmapCodec, KeypointSpec) {
    let gt = CocoDataset::load(Path::new(GT)).unwrap();
    (gt, HeatmapCodec::new(Size::new(192, 256), Size::new(48, 64), 2.0), KeypointSpec::coco17())
}

/// The COCO stats of `persons` against `gt`, through the one evaluation entry point.
fn stats(gt: &CocoDataset, persons: &[Person], spec: &KeypointSpec) -> Stats {
    evaluate_keypoints(gt, &results_of(persons, 1), spec.sigmas().unwrap()).unwrap().stats
}

#[test]
fn gt_boxes_through_the_whole_inference_path_score_ap_095() {
    let (gt, codec, spec) = setup();
    let boxes = gt_boxes(&gt, 1, 17);
    assert!(boxes.len() >= 10, "the sample has {} labelled persons", boxes.len());
    let persons = oracle_persons(&gt, &boxes, &codec, &spec);
    assert_eq!(persons.len(), boxes.len(), "distinct persons survive OKS-NMS");
    let stats = stats(&gt, &persons, &spec);
    assert!(stats.ap >= 0.95, "AP {}", stats.ap);
    // Each labelled joint comes back within half a heatmap pixel per axis (rounding) plus the
    // quarter offset, in image pixels: stride 4 × crop scale.
    let mut worst = 0.0f64;
    for p in &persons {
        let a = gt
            .annotations_of(p.image_id)
            .max_by(|a, b| iou(p.bbox, a.bbox.unwrap()).total_cmp(&iou(p.bbox, b.bbox.unwrap())))
            .unwrap();
        let (region, _) = crop_of(p.bbox, &codec, 1.25);
        let px = 4.0 * region.size[0] / 192.0;
        for (k, g) in p.keypoints.iter().zip(a.keypoints.as_ref().unwrap().chunks(3)) {
            if g[2] > 0.0 {
                let e = (k[0] - g[0]).abs().max((k[1] - g[1]).abs()) / px;
                worst = worst.max(e);
            }
        }
    }
    assert!(worst <= 0.75 + 1e-6 && worst > 0.05, "worst joint error {worst} heatmap px");
}

/// With the sample's detector boxes: the same oracle path written independently in Python
/// (`tools/infer_geometry_reference.py`: SimpleBaseline's encoding and decoding, the crop affine
/// and its inverse, rescoring and mmpose's OKS-NMS, in numpy) gives the same persons, and
/// pycocotools scores them as our evaluator does.
#[test]
fn detector_boxes_give_the_independent_reference_and_pycocotools_stats() {
    let (gt, codec, spec) = setup();
    let boxes = detection_boxes(Path::new(DETS), 1, 0.0, Some(&gt)).unwrap();
    let persons = oracle_persons(&gt, &boxes, &codec, &spec);
    let dir = Path::new("tests/data/infer_geometry");
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("detector_results.json")).unwrap()).unwrap();
    let reference = reference.as_array().unwrap();
    assert_eq!(persons.len(), reference.len());
    // Scores are f32 heatmap maxima: numpy's and Rust's expf may differ in the last bit (6e-8).
    let close = |a: f64, b: &serde_json::Value| (a - b.as_f64().unwrap()).abs() < 1e-6;
    for (p, r) in persons.iter().zip(reference) {
        assert_eq!(p.image_id, r["image_id"].as_i64().unwrap());
        assert!(close(p.score, &r["score"]), "image {}: score {} vs {}", p.image_id, p.score, r["score"]);
        let theirs = r["keypoints"].as_array().unwrap();
        for (ours, t) in p.keypoints.iter().flatten().zip(theirs) {
            assert!(close(*ours, t), "image {}: {ours} vs {t}", p.image_id);
        }
    }
    let ours = stats(&gt, &persons, &spec).to_array();
    let pycocotools: Vec<f64> =
        serde_json::from_slice(&std::fs::read(dir.join("pycocotools_stats.json")).unwrap()).unwrap();
    for (k, (o, r)) in ours.iter().zip(&pycocotools).enumerate() {
        assert!((o - r).abs() < 1e-9, "stat {k}: ours {o}, pycocotools {r}");
    }
    assert!(ours[0] > 0.5, "detector boxes around the same persons should still score: {ours:?}");
}
