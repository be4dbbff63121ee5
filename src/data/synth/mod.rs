//! A synthetic COCO keypoint data set on textured backgrounds, so that anyone can train and test
//! without COCO: stick persons with COCO's 17 joints (`person`), or random articulated figures
//! of any keypoint set (`articulated`).
//!
//! Left limbs (and the left eye and ear) are drawn in warm colours, right ones in cool colours,
//! so the sides are learnable even with flip augmentation. A pixel-ownership buffer decides
//! visibility: a joint covered by a later figure or an occluder is labelled but occluded
//! (v = 1), a joint outside the image is unlabelled (v = 0). Each image also exercises the
//! metric's branches: small persons (area < 32²), persons left unlabelled (num_keypoints 0), and
//! sometimes a crowd of tiny figures with one `iscrowd` region. `area` is the visible pixel
//! count, as COCO's segmentation areas are.

mod articulated;
mod person;
pub mod shapes;

use crate::coco::KeypointSpec;
use articulated::Anatomy;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_polygon_mut};
use imageproc::point::Point;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// What the figures of a data set are.
#[derive(Debug, Clone)]
pub enum Figures {
    /// COCO's stick persons (17 joints).
    Persons,
    /// Random articulated figures of a keypoint set.
    Articulated(KeypointSpec),
}

/// The figures of one data set, ready to draw: an articulated set's anatomy is drawn once from
/// the data set's seed, so all its figures share it.
pub struct FigureModel {
    spec: KeypointSpec,
    anatomy: Option<Anatomy>,
}

impl FigureModel {
    pub fn new(figures: &Figures, seed: u64) -> FigureModel {
        match figures {
            Figures::Persons => FigureModel { spec: KeypointSpec::coco17(), anatomy: None },
            Figures::Articulated(spec) => {
                let anatomy = Anatomy::new(spec, &mut crate::seed::stream(seed, 4, 0));
                FigureModel { spec: spec.clone(), anatomy: Some(anatomy) }
            }
        }
    }

    fn pose(&self, rng: &mut ChaCha8Rng, center: [f32; 2], height: f32, roll: f32) -> Vec<[f32; 2]> {
        match &self.anatomy {
            Some(a) => a.pose(rng, center, height, roll),
            None => person::random_pose(rng, center, height, roll).to_vec(),
        }
    }

    fn mask(&self, w: u32, h: u32, joints: &[[f32; 2]], height: f32) -> image::GrayImage {
        match &self.anatomy {
            Some(a) => a.mask(w, h, joints, height),
            None => person::figure_mask(w, h, joints.try_into().expect("a person has 17 joints"), height),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub width: u32,
    pub height: u32,
    pub seed: u64,
    /// Person heights are drawn log-uniformly in this range (pixels).
    pub person_height: [f32; 2],
    pub max_persons: usize,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig { width: 384, height: 288, seed: 0, person_height: [48.0, 260.0], max_persons: 4 }
    }
}

/// One generated image: pixels and its annotations (ids filled in by the caller).
pub struct SynthImage {
    pub image: RgbImage,
    /// COCO annotation objects without `id` and `image_id`.
    pub annotations: Vec<Value>,
}

// Part codes in a figure's mask; the palette gives each a colour.
const LEFT: u8 = 1;
const RIGHT: u8 = 2;
const BODY: u8 = 3;
const HEAD: u8 = 4;
const NOSE: u8 = 5;

fn pt(p: [f32; 2]) -> Point<i32> {
    Point::new(p[0].round() as i32, p[1].round() as i32)
}

/// A thick segment as a quadrilateral with round caps, in part code `code`.
fn segment(mask: &mut image::GrayImage, a: [f32; 2], b: [f32; 2], width: f32, code: u8) {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt().max(1e-3);
    let (nx, ny) = (-dy / len * width * 0.5, dx / len * width * 0.5);
    let quad = [
        pt([a[0] + nx, a[1] + ny]),
        pt([b[0] + nx, b[1] + ny]),
        pt([b[0] - nx, b[1] - ny]),
        pt([a[0] - nx, a[1] - ny]),
    ];
    if quad.windows(2).all(|w| w[0] != w[1]) && quad[0] != quad[3] {
        draw_polygon_mut(mask, &quad, image::Luma([code]));
    }
    let r = (width * 0.5).round().max(1.0) as i32;
    draw_filled_circle_mut(mask, (pt(a).x, pt(a).y), r, image::Luma([code]));
    draw_filled_circle_mut(mask, (pt(b).x, pt(b).y), r, image::Luma([code]));
}

fn random_colour(rng: &mut ChaCha8Rng, hue: std::ops::Range<f32>, light: std::ops::Range<f32>) -> [f32; 3] {
    let h: f32 = rng.random_range(hue).rem_euclid(360.0) / 60.0;
    let (s, v): (f32, f32) = (rng.random_range(0.55..1.0), rng.random_range(light));
    let c = v * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [(r + m) * 255.0, (g + m) * 255.0, (b + m) * 255.0]
}

/// A textured background: gradient, coarse value noise, clutter shapes, fine noise.
fn background(rng: &mut ChaCha8Rng, w: u32, h: u32) -> RgbImage {
    let a = random_colour(rng, 0.0..360.0, 0.2..0.9);
    let b = random_colour(rng, 0.0..360.0, 0.2..0.9);
    let angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let (gx, gy) = (cos_sin(angle).0 / w as f32, cos_sin(angle).1 / h as f32);
    let (cw, ch) = (9usize, 7usize);
    let grid: Vec<f32> = (0..cw * ch).map(|_| rng.random_range(-45.0..45.0)).collect();
    let mut img = RgbImage::from_fn(w, h, |x, y| {
        let t = ((x as f32 * gx + y as f32 * gy) * 0.5 + 0.5).clamp(0.0, 1.0);
        let (fx, fy) = (x as f32 / w as f32 * (cw - 1) as f32, y as f32 / h as f32 * (ch - 1) as f32);
        let (ix, iy) = ((fx as usize).min(cw - 2), (fy as usize).min(ch - 2));
        let (ax, ay) = (fx - ix as f32, fy - iy as f32);
        let g = |i: usize, j: usize| grid[j * cw + i];
        let n = (g(ix, iy) * (1.0 - ax) + g(ix + 1, iy) * ax) * (1.0 - ay)
            + (g(ix, iy + 1) * (1.0 - ax) + g(ix + 1, iy + 1) * ax) * ay;
        Rgb(std::array::from_fn(|c| (a[c] * (1.0 - t) + b[c] * t + n).clamp(0.0, 255.0) as u8))
    });
    for _ in 0..rng.random_range(3..10) {
        let col = random_colour(rng, 0.0..360.0, 0.1..1.0).map(|v| v as u8);
        let (x, y) = (rng.random_range(0..w) as i32, rng.random_range(0..h) as i32);
        match rng.random_range(0..3) {
            0 => {
                let (rw, rh) = (rng.random_range(5..w / 3) as i32, rng.random_range(5..h / 3) as i32);
                let quad = [Point::new(x, y), Point::new(x + rw, y), Point::new(x + rw, y + rh), Point::new(x, y + rh)];
                draw_polygon_mut(&mut img, &quad, Rgb(col));
            }
            1 => draw_filled_circle_mut(&mut img, (x, y), rng.random_range(3..w as i32 / 8), Rgb(col)),
            _ => {
                let mut m = image::GrayImage::new(w, h);
                let end = [rng.random_range(0.0..w as f32), rng.random_range(0.0..h as f32)];
                segment(&mut m, [x as f32, y as f32], end, rng.random_range(1.5..6.0), 1);
                for (px, m) in img.pixels_mut().zip(m.pixels()) {
                    if m.0[0] > 0 {
                        *px = Rgb(col);
                    }
                }
            }
        }
    }
    for px in img.pixels_mut() {
        let n: i16 = rng.random_range(-6..=6);
        px.0 = px.0.map(|v| (v as i16 + n).clamp(0, 255) as u8);
    }
    img
}

fn cos_sin(a: f32) -> (f32, f32) {
    (a.cos(), a.sin())
}

struct Placed {
    joints: Vec<[f32; 2]>,
    /// None: drawn but not annotated individually (crowd member).
    annotate: Annotate,
    bbox: [u32; 4],
}

#[derive(Clone, Copy, PartialEq)]
enum Annotate {
    Person,
    /// Annotated without joints (num_keypoints 0), like COCO's unlabelled people.
    Unlabelled,
    CrowdMember,
}

/// Generates image `index` of a split; the same (seed, index) always gives the same image.
pub fn generate_image(cfg: &SynthConfig, model: &FigureModel, split_seed: u64, index: u64) -> SynthImage {
    let mut rng = crate::seed::stream(cfg.seed, split_seed, index);
    let (w, h) = (cfg.width, cfg.height);
    let mut img = background(&mut rng, w, h);
    let mut owner = vec![-1i32; (w * h) as usize];
    let mut placed: Vec<Placed> = Vec::new();
    let mut figures: Vec<(Vec<[f32; 2]>, f32, Annotate)> = Vec::new();
    let n = rng.random_range(1..=cfg.max_persons);
    let [lo, hi] = cfg.person_height;
    for _ in 0..n {
        let height = (rng.random_range(lo.ln()..hi.ln())).exp();
        let center = [rng.random_range(-0.1..1.1) * w as f32, rng.random_range(0.0..1.0) * h as f32];
        let roll = if rng.random_bool(0.15) { rng.random_range(-1.6..1.6) } else { rng.random_range(-0.3..0.3) };
        let kind = if rng.random_bool(0.06) { Annotate::Unlabelled } else { Annotate::Person };
        figures.push((model.pose(&mut rng, center, height, roll), height, kind));
    }
    let crowd = rng.random_bool(0.12);
    let mut crowd_region = None;
    if crowd {
        let (cx, cy) = (rng.random_range(0.2..0.8) * w as f32, rng.random_range(0.2..0.8) * h as f32);
        let members = rng.random_range(5..10);
        for _ in 0..members {
            let c = [cx + rng.random_range(-40.0..40.0), cy + rng.random_range(-20.0..20.0)];
            let height = rng.random_range(14.0..22.0);
            figures.push((model.pose(&mut rng, c, height, 0.0), height, Annotate::CrowdMember));
        }
        crowd_region = Some(placed.len());
    }
    for (id, (joints, height, kind)) in figures.iter().enumerate() {
        let mask = model.mask(w, h, joints, *height);
        let palette: [[f32; 3]; 6] = [
            [0.0; 3],
            random_colour(&mut rng, -30.0..50.0, 0.6..1.0),
            random_colour(&mut rng, 170.0..250.0, 0.5..1.0),
            random_colour(&mut rng, 0.0..360.0, 0.25..0.7),
            random_colour(&mut rng, 20.0..40.0, 0.7..0.95),
            [20.0, 20.0, 20.0],
        ];
        let mut bbox = [u32::MAX, u32::MAX, 0, 0];
        for (i, (px, m)) in img.pixels_mut().zip(mask.pixels()).enumerate() {
            let code = m.0[0] as usize;
            if code > 0 {
                let shade: f32 = 0.85 + 0.15 * (((i * 2654435761) % 97) as f32 / 97.0);
                *px = Rgb(palette[code].map(|v| (v * shade).clamp(0.0, 255.0) as u8));
                owner[i] = id as i32;
                let (x, y) = ((i as u32) % w, (i as u32) / w);
                bbox = [bbox[0].min(x), bbox[1].min(y), bbox[2].max(x), bbox[3].max(y)];
            }
        }
        placed.push(Placed { joints: joints.clone(), annotate: *kind, bbox });
        if rng.random_bool(0.2) {
            // An occluder over part of the scene drawn so far.
            let col = random_colour(&mut rng, 0.0..360.0, 0.2..0.9).map(|v| v as u8);
            let (x0, y0) = (rng.random_range(0..w), rng.random_range(0..h));
            let (ow, oh) = (rng.random_range(10..w / 3), rng.random_range(10..h / 3));
            for y in y0..(y0 + oh).min(h) {
                for x in x0..(x0 + ow).min(w) {
                    img.put_pixel(x, y, Rgb(col));
                    owner[(y * w + x) as usize] = -2;
                }
            }
        }
    }
    let mut annotations = Vec::new();
    let visible_area = |id: usize| owner.iter().filter(|&&o| o == id as i32).count() as f64;
    for (id, p) in placed.iter().enumerate() {
        if p.annotate == Annotate::CrowdMember || p.bbox[0] == u32::MAX {
            continue;
        }
        let area = visible_area(id);
        if area < 4.0 {
            continue;
        }
        let mut kps = Vec::with_capacity(3 * p.joints.len());
        let mut labelled = 0;
        for q in &p.joints {
            let inside = q[0] >= 0.0 && q[1] >= 0.0 && q[0] < w as f32 && q[1] < h as f32;
            if p.annotate == Annotate::Unlabelled || !inside {
                kps.extend_from_slice(&[json!(0), json!(0), json!(0)]);
                continue;
            }
            let (x, y) = (q[0].floor() as u32, q[1].floor() as u32);
            let v = if owner[(y * w + x) as usize] == id as i32 { 2 } else { 1 };
            labelled += 1;
            kps.extend_from_slice(&[
                json!((q[0] * 100.0).round() / 100.0),
                json!((q[1] * 100.0).round() / 100.0),
                json!(v),
            ]);
        }
        let [x0, y0, x1, y1] = p.bbox;
        annotations.push(json!({
            "category_id": 1, "iscrowd": 0, "num_keypoints": labelled, "area": area,
            "bbox": [x0, y0, x1 - x0 + 1, y1 - y0 + 1], "keypoints": kps,
        }));
    }
    if let Some(first) = crowd_region {
        let members: Vec<usize> =
            (first..placed.len()).filter(|&i| placed[i].annotate == Annotate::CrowdMember).collect();
        let area: f64 = members.iter().map(|&i| visible_area(i)).sum();
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for &i in &members {
            let b = placed[i].bbox;
            if b[0] != u32::MAX {
                (x0, y0, x1, y1) = (x0.min(b[0]), y0.min(b[1]), x1.max(b[2]), y1.max(b[3]));
            }
        }
        if area >= 4.0 && x0 != u32::MAX {
            annotations.push(json!({
                "category_id": 1, "iscrowd": 1, "num_keypoints": 0, "area": area,
                "bbox": [x0, y0, x1 - x0 + 1, y1 - y0 + 1], "keypoints": vec![0; 3 * model.spec.len()],
            }));
        }
    }
    SynthImage { image: img, annotations }
}

/// Writes `train` and `val` images of `figures` with their COCO files under `out`:
/// `annotations/person_keypoints_{train,val}.json`, `{train,val}/*.jpg`,
/// `annotations/person_detections_val.json` (detector-like boxes: jittered GT boxes and a few
/// false ones, with scores) and `annotations/keypoints.json` (the keypoint spec). Refuses to
/// write into an existing data set unless `overwrite`.
pub fn write_dataset(
    out: &std::path::Path,
    cfg: &SynthConfig,
    figures: &Figures,
    train: usize,
    val: usize,
    overwrite: bool,
) -> anyhow::Result<String> {
    use anyhow::Context;
    use rayon::prelude::*;
    let ann_dir = out.join("annotations");
    if !overwrite && ann_dir.join("person_keypoints_train.json").exists() {
        anyhow::bail!("{}: a data set is already there (pass --force to replace it)", out.display());
    }
    let model = FigureModel::new(figures, cfg.seed);
    let spec = &model.spec;
    let mut summary = String::new();
    for (split, count, split_seed) in [("train", train, 1u64), ("val", val, 2u64)] {
        let dir = out.join(split);
        std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create directory", dir.display()))?;
        let bar = crate::progress::bar(count as u64, split, "images");
        let images: Vec<anyhow::Result<(Value, Vec<Value>)>> = (0..count)
            .into_par_iter()
            .map(|i| {
                let s = generate_image(cfg, &model, split_seed, i as u64);
                let id = i as i64 + 1;
                let name = format!("{id:012}.jpg");
                let mut bytes = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&s.image)?;
                crate::fsutil::write_atomic(&dir.join(&name), &bytes)?;
                bar.inc(1);
                let record = json!({"id": id, "file_name": name, "width": cfg.width, "height": cfg.height});
                Ok((record, s.annotations))
            })
            .collect();
        bar.finish_and_clear();
        let mut records = Vec::with_capacity(count);
        let mut anns = Vec::new();
        for r in images {
            let (record, annotations) = r?;
            let image_id = record["id"].clone();
            for mut a in annotations {
                a["id"] = json!(anns.len() + 1);
                a["image_id"] = image_id.clone();
                anns.push(a);
            }
            records.push(record);
        }
        let name = if matches!(figures, Figures::Persons) { "person" } else { spec.name.as_str() };
        let categories = json!([{
            "id": 1, "name": name, "supercategory": name,
            "keypoints": spec.keypoints, "skeleton": spec.coco_skeleton(),
        }]);
        if split == "val" {
            let dets = detections(&anns, cfg);
            crate::fsutil::write_atomic(
                &ann_dir.join("person_detections_val.json"),
                serde_json::to_string(&dets)?.as_bytes(),
            )?;
        }
        let persons = anns.iter().filter(|a| a["iscrowd"] == 0 && a["num_keypoints"].as_u64() > Some(0)).count();
        summary +=
            &format!("{split}: {count} images, {} annotations ({persons} persons with labelled joints)\n", anns.len());
        let file = json!({
            "info": {"description": "dypose synthetic stick-figure persons", "seed": cfg.seed},
            "images": records, "annotations": anns, "categories": categories,
        });
        crate::fsutil::write_atomic(
            &ann_dir.join(format!("person_keypoints_{split}.json")),
            serde_json::to_string(&file)?.as_bytes(),
        )?;
    }
    let spec_text = serde_json::to_string_pretty(spec)? + "\n";
    crate::fsutil::write_atomic(&ann_dir.join("keypoints.json"), spec_text.as_bytes())?;
    Ok(summary + &format!("written to {}", out.display()))
}

/// Detector-like person boxes for the val split: each non-crowd GT box jittered, plus false boxes.
fn detections(anns: &[Value], cfg: &SynthConfig) -> Vec<Value> {
    let mut rng = crate::seed::stream(cfg.seed, 3, 0);
    let mut out = Vec::new();
    let mut last_image = None;
    for a in anns.iter().filter(|a| a["iscrowd"] == 0) {
        let bb: Vec<f64> = a["bbox"].as_array().into_iter().flatten().filter_map(Value::as_f64).collect();
        let j = |rng: &mut ChaCha8Rng, v: f64, s: f64| v + rng.random_range(-0.06..0.06) * s;
        let (w, h) = (j(&mut rng, bb[2], bb[2]).max(1.0), j(&mut rng, bb[3], bb[3]).max(1.0));
        let bbox = [j(&mut rng, bb[0], bb[2]), j(&mut rng, bb[1], bb[3]), w, h];
        out.push(
            json!({"image_id": a["image_id"], "category_id": 1, "bbox": bbox, "score": rng.random_range(0.5..1.0)}),
        );
        if last_image != Some(a["image_id"].clone()) {
            last_image = Some(a["image_id"].clone());
            for _ in 0..rng.random_range(0..3) {
                let (x, y) =
                    (rng.random_range(0.0..cfg.width as f64 * 0.8), rng.random_range(0.0..cfg.height as f64 * 0.8));
                let bbox = [x, y, rng.random_range(10.0..80.0), rng.random_range(20.0..120.0)];
                out.push(json!({"image_id": a["image_id"], "category_id": 1, "bbox": bbox, "score": rng.random_range(0.05..0.6)}));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CrowdPose's 14 joints, as shipped in configs/keypoints/.
    fn crowdpose() -> KeypointSpec {
        KeypointSpec::from_json_file(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/configs/keypoints/crowdpose14.json"
        )))
        .unwrap()
    }

    #[test]
    fn same_seed_same_image_and_labels_follow_the_drawing() {
        let cfg = SynthConfig::default();
        for figures in [Figures::Persons, Figures::Articulated(crowdpose())] {
            let model = FigureModel::new(&figures, cfg.seed);
            let joints = model.spec.len();
            let a = generate_image(&cfg, &model, 0, 5);
            let b = generate_image(&cfg, &model, 0, 5);
            assert_eq!(a.image, b.image);
            assert_eq!(a.annotations, b.annotations);
            assert_ne!(generate_image(&cfg, &model, 0, 6).image, a.image);
            let mut seen_occluded = false;
            let mut seen_outside = false;
            for i in 0..40 {
                let s = generate_image(&cfg, &model, 1, i);
                for ann in &s.annotations {
                    let k: Vec<f64> =
                        ann["keypoints"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                    assert_eq!(k.len(), 3 * joints);
                    let labelled = k.chunks(3).filter(|p| p[2] > 0.0).count() as u64;
                    assert_eq!(ann["num_keypoints"].as_u64().unwrap(), labelled);
                    let bb: Vec<f64> = ann["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                    assert!(bb[0] >= 0.0 && bb[1] >= 0.0 && bb[0] + bb[2] <= 384.0 && bb[1] + bb[3] <= 288.0);
                    assert!(ann["area"].as_f64().unwrap() <= bb[2] * bb[3]);
                    for p in k.chunks(3) {
                        if p[2] == 2.0 {
                            // A visible joint lies on its own figure's pixels, which differ from the
                            // background: check it is inside the image and its box (±1 px).
                            assert!(p[0] >= bb[0] - 1.0 && p[0] <= bb[0] + bb[2] + 1.0, "{p:?} {bb:?}");
                            assert!(p[1] >= bb[1] - 1.0 && p[1] <= bb[1] + bb[3] + 1.0);
                        }
                        seen_occluded |= p[2] == 1.0;
                    }
                    seen_outside |= k.chunks(3).any(|p| p[2] == 0.0) && labelled > 0;
                }
            }
            assert!(seen_occluded && seen_outside, "{:?}", model.spec.name);
        }
    }

    #[test]
    fn a_visible_joint_shows_its_figure_and_its_side_colour_nearby() {
        // Visible joints (v = 2) sit on a dark joint dot, and a left (right) joint's limb is drawn
        // in a warm (cool) colour: the network can tell the sides apart.
        let cfg = SynthConfig::default();
        let spec = crowdpose();
        let model = FigureModel::new(&Figures::Articulated(spec.clone()), cfg.seed);
        let (mut dark, mut visible) = (0, 0);
        for i in 0..20 {
            let s = generate_image(&cfg, &model, 1, i);
            for ann in s.annotations.iter().filter(|a| a["iscrowd"] == 0) {
                let k: Vec<f64> = ann["keypoints"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                for p in k.chunks(3).filter(|p| p[2] == 2.0) {
                    let px = s.image.get_pixel(p[0] as u32, p[1] as u32).0;
                    visible += 1;
                    dark += (px.iter().all(|&c| c <= 40)) as usize;
                }
            }
        }
        assert!(visible > 100 && dark * 10 >= visible * 9, "{dark} of {visible} visible joints on a dark dot");
    }
}
