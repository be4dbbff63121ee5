//! `dypose explain`'s picture: the crop (×2) with the predicted heatmaps overlaid and the decoded
//! skeleton, beside the chart of every dynamic conv's attention for that crop.

use super::{attention, draw_pose, heatmap_overlay, text, Pose};
use crate::coco::KeypointSpec;
use crate::config::Size;
use image::{imageops, Rgb, RgbImage};

/// What one crop shows: the crop, its `J × h × w` heatmaps of `heatmap` size, the decoded joints
/// `[x, y, score]` in crop pixels and (layer, π) per dynamic conv.
pub struct CropView<'a> {
    pub crop: &'a RgbImage,
    pub heatmaps: &'a [f32],
    pub heatmap: Size,
    pub joints: &'a [[f64; 3]],
    pub attention: &'a [(String, Vec<f32>)],
}

/// The crop (×2) with heatmaps and skeleton (joints scoring at least `min_joint_score`), and the
/// attention chart to its right.
pub fn sheet(view: &CropView, spec: &KeypointSpec, min_joint_score: f64) -> RgbImage {
    const ZOOM: u32 = 2;
    let crop = view.crop;
    let overlay = heatmap_overlay(crop, view.heatmaps, view.heatmap);
    let mut left =
        imageops::resize(&overlay, crop.width() * ZOOM, crop.height() * ZOOM, imageops::FilterType::Triangle);
    let scaled: Vec<[f64; 3]> = view.joints.iter().map(|k| [k[0] * ZOOM as f64, k[1] * ZOOM as f64, k[2]]).collect();
    let pose = Pose { keypoints: &scaled, bbox: None, score: None };
    draw_pose(&mut left, &pose, spec, min_joint_score);
    let chart = if view.attention.is_empty() {
        let mut c = RgbImage::from_pixel(300, 40, Rgb([255, 255, 255]));
        text::draw(&mut c, "static model: no attention", 6, 10, 14.0, Rgb([40, 40, 40]));
        c
    } else {
        attention::attention_chart("dynamic-conv attention π (this crop, τ = 1)", view.attention)
    };
    let mut sheet =
        RgbImage::from_pixel(left.width() + 8 + chart.width(), left.height().max(chart.height()), Rgb([255, 255, 255]));
    imageops::overlay(&mut sheet, &left, 0, 0);
    imageops::overlay(&mut sheet, &chart, (left.width() + 8) as i64, 0);
    sheet
}
