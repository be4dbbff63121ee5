//! `dypose explain`: what the network sees and does for one person crop: the crop with the
//! predicted heatmaps overlaid and the decoded skeleton, beside the attention weights π of
//! every dynamic conv for that crop. One forward pass without the flip test, so the attention
//! shown is the one that produced the heatmaps.

use super::boxes::whole_image_box;
use super::predictor::{crop_of, person_from_heatmaps, HeatmapModel, Person};
use crate::coco::KeypointSpec;
use crate::config::Config;
use crate::data::warp::{normalize_chw, warp_rgb};
use anyhow::{Context, Result};
use image::{imageops, Rgb, RgbImage};
use std::path::Path;

pub struct Explanation {
    /// The person decoded from the crop, in image coordinates.
    pub person: Person,
    /// (layer, K weights) of every dynamic conv; empty for a static model.
    pub attention: Vec<(String, Vec<f32>)>,
    pub picture: RgbImage,
}

/// Explains the crop of `bbox` (x, y, w, h; the whole image when `None`) of `image`.
pub fn explain(
    device: &str,
    cfg: &Config,
    checkpoint: &Path,
    image: &Path,
    bbox: Option<[f64; 4]>,
) -> Result<Explanation> {
    let img = crate::data::loader::load_rgb(image).map_err(anyhow::Error::msg)?;
    let pb = match bbox {
        Some(b) => {
            anyhow::ensure!(b[2] > 0.0 && b[3] > 0.0, "--box {b:?}: width and height must be positive");
            super::PersonBox { image_id: 0, bbox: b, score: 1.0 }
        }
        None => whole_image_box(0, img.width(), img.height()),
    };
    let spec = KeypointSpec::coco17();
    let mut predictor =
        super::Predictor::for_config(super::run::build_model(device, cfg, Some(checkpoint))?, cfg, &spec)?;
    predictor.options.flip = false;
    let (codec, options) = (&predictor.codec, &predictor.options);
    let (_, m) = crop_of(pb.bbox, codec, options.padding);
    let crop = warp_rgb(&img, &m, codec.input);
    let [w, h] = codec.input;
    let mut input = vec![0.0f32; 3 * w * h];
    normalize_chw(&crop, &mut input);
    let maps = predictor.model.heatmaps(&input, 1, codec.input)?;
    let attention = predictor.model.last_attention();
    let person = person_from_heatmaps(&maps, &pb, codec, options);
    // The decoded joints, back in crop pixels for the drawing.
    let in_crop: Vec<[f64; 3]> = person
        .keypoints
        .iter()
        .map(|k| {
            let q = m.apply([k[0], k[1]]);
            [q[0], q[1], k[2]]
        })
        .collect();
    let picture = compose(&crop, &maps, codec.heatmap, &in_crop, &attention, &spec, options.joint_threshold);
    Ok(Explanation { person, attention, picture })
}

/// The crop (×2) with heatmaps and skeleton, and the attention chart to its right.
fn compose(
    crop: &RgbImage,
    maps: &[f32],
    heatmap: [usize; 2],
    keypoints: &[[f64; 3]],
    attention: &[(String, Vec<f32>)],
    spec: &KeypointSpec,
    min_joint_score: f64,
) -> RgbImage {
    const ZOOM: u32 = 2;
    let overlay = crate::viz::heatmap_overlay(crop, maps, heatmap);
    let mut left =
        imageops::resize(&overlay, crop.width() * ZOOM, crop.height() * ZOOM, imageops::FilterType::Triangle);
    let scaled: Vec<[f64; 3]> = keypoints.iter().map(|k| [k[0] * ZOOM as f64, k[1] * ZOOM as f64, k[2]]).collect();
    let pose = crate::viz::Pose { keypoints: &scaled, bbox: None, score: None };
    crate::viz::draw_pose(&mut left, &pose, spec, min_joint_score);
    let chart = if attention.is_empty() {
        let mut c = RgbImage::from_pixel(300, 40, Rgb([255, 255, 255]));
        crate::viz::text::draw(&mut c, "static model: no attention", 6, 10, 14.0, Rgb([40, 40, 40]));
        c
    } else {
        crate::viz::attention::attention_chart("dynamic-conv attention π (this crop, τ = 1)", attention)
    };
    let mut sheet =
        RgbImage::from_pixel(left.width() + 8 + chart.width(), left.height().max(chart.height()), Rgb([255, 255, 255]));
    imageops::overlay(&mut sheet, &left, 0, 0);
    imageops::overlay(&mut sheet, &chart, (left.width() + 8) as i64, 0);
    sheet
}

/// Parses `x,y,w,h`.
pub fn parse_box(s: &str) -> Result<[f64; 4]> {
    let v: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("--box {s}: expected x,y,w,h numbers"))?;
    anyhow::ensure!(v.len() == 4, "--box {s}: expected four numbers x,y,w,h");
    Ok([v[0], v[1], v[2], v[3]])
}
