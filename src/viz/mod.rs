//! Drawing: skeletons with left/right/centre limb colours, heatmap overlays. Plain `image`
//! buffers and imageproc; no tensors.

pub mod attention;
pub mod explain;
pub mod plot;
pub mod text;

use crate::coco::{KeypointSpec, Side};
use crate::config::ImageFormat;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_line_segment_mut};

pub const LEFT: Rgb<u8> = Rgb([255, 140, 0]);
pub const RIGHT: Rgb<u8> = Rgb([30, 144, 255]);
pub const CENTRE: Rgb<u8> = Rgb([50, 205, 50]);

/// Colour of a joint: its side in the keypoint set's flip pairs.
pub fn joint_colour(spec: &KeypointSpec, j: usize) -> Rgb<u8> {
    match spec.side(j) {
        Side::Left => LEFT,
        Side::Right => RIGHT,
        Side::Centre => CENTRE,
    }
}

/// Colour of a limb: left if both ends are left joints, right if both are right, else centre.
pub fn limb_colour(spec: &KeypointSpec, a: usize, b: usize) -> Rgb<u8> {
    match (spec.side(a), spec.side(b)) {
        (Side::Left, Side::Left) => LEFT,
        (Side::Right, Side::Right) => RIGHT,
        _ => CENTRE,
    }
}

/// Draws limbs between shown joints and a dot per shown joint; `thickness` in pixels.
pub fn draw_skeleton(img: &mut RgbImage, keypoints: &[[f32; 2]], shown: &[bool], spec: &KeypointSpec, thickness: f32) {
    let half = (thickness / 2.0).max(0.5);
    for &[a, b] in &spec.limbs {
        if !(shown[a] && shown[b]) {
            continue;
        }
        let (p, q) = (keypoints[a], keypoints[b]);
        let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
        let len = (dx * dx + dy * dy).sqrt().max(1e-3);
        let (nx, ny) = (-dy / len * half, dx / len * half);
        let colour = limb_colour(spec, a, b);
        // A filled quad: parallel 1-px lines would leave holes along diagonal limbs.
        let corners = [(p[0] + nx, p[1] + ny), (q[0] + nx, q[1] + ny), (q[0] - nx, q[1] - ny), (p[0] - nx, p[1] - ny)];
        let poly: Vec<imageproc::point::Point<i32>> =
            corners.iter().map(|c| imageproc::point::Point::new(c.0.round() as i32, c.1.round() as i32)).collect();
        if thickness >= 2.0 && poly[0] != poly[3] && poly[1] != poly[2] && poly[0] != poly[1] {
            imageproc::drawing::draw_polygon_mut(img, &poly, colour);
        }
        draw_line_segment_mut(img, (p[0], p[1]), (q[0], q[1]), colour);
    }
    let r = (thickness * 0.9).round().max(1.0) as i32;
    for (j, k) in keypoints.iter().enumerate() {
        if shown[j] {
            let c = joint_colour(spec, j);
            draw_filled_circle_mut(img, (k[0].round() as i32, k[1].round() as i32), r + 1, Rgb([255, 255, 255]));
            draw_filled_circle_mut(img, (k[0].round() as i32, k[1].round() as i32), r, c);
        }
    }
}

/// One person to draw: `[x, y, score]` per joint (image pixels), optional box and score label.
pub struct Pose<'a> {
    pub keypoints: &'a [[f64; 3]],
    pub bbox: Option<[f64; 4]>,
    pub score: Option<f64>,
}

/// Draws a person: limbs and joints scoring at least `min_joint_score` (line width and dot size
/// follow the person's size), the box, and the score on a label.
pub fn draw_pose(img: &mut RgbImage, pose: &Pose, spec: &KeypointSpec, min_joint_score: f64) {
    let shown: Vec<bool> = pose.keypoints.iter().map(|k| k[2] >= min_joint_score).collect();
    let pts: Vec<[f32; 2]> = pose.keypoints.iter().map(|k| [k[0] as f32, k[1] as f32]).collect();
    let extent = pose.bbox.map(|b| b[2].max(b[3])).unwrap_or_else(|| {
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for k in pose.keypoints.iter().zip(&shown).filter(|(_, s)| **s).map(|(k, _)| k) {
            lo = [lo[0].min(k[0]), lo[1].min(k[1])];
            hi = [hi[0].max(k[0]), hi[1].max(k[1])];
        }
        (hi[0] - lo[0]).max(hi[1] - lo[1]).max(0.0)
    });
    let thickness = (extent / 60.0).clamp(1.0, 6.0) as f32;
    if let Some(b) = pose.bbox {
        let rect = imageproc::rect::Rect::at(b[0].round() as i32, b[1].round() as i32)
            .of_size(b[2].round().max(1.0) as u32, b[3].round().max(1.0) as u32);
        imageproc::drawing::draw_hollow_rect_mut(img, rect, Rgb([255, 255, 255]));
        if let Some(s) = pose.score {
            text::label(
                img,
                &format!("{s:.2}"),
                rect.left(),
                rect.top() - 16,
                13.0,
                Rgb([0, 0, 0]),
                Rgb([255, 255, 255]),
            );
        }
    }
    draw_skeleton(img, &pts, &shown, spec, thickness);
}

/// A jet-like colour for v in [0, 1].
pub fn colormap(v: f32) -> [f32; 3] {
    let v = v.clamp(0.0, 1.0);
    let f = |c: f32| (1.5 - (4.0 * v - c).abs()).clamp(0.0, 1.0) * 255.0;
    [f(3.0), f(2.0), f(1.0)]
}

/// The crop blended with the per-pixel maximum over joints of `J × h × w` heatmaps
/// (nearest upsampling to the crop size).
pub fn heatmap_overlay(crop: &RgbImage, heatmaps: &[f32], size: crate::config::Size) -> RgbImage {
    let (w, h) = (size.width, size.height);
    let joints = heatmaps.len() / (w * h);
    let (cw, ch) = crop.dimensions();
    RgbImage::from_fn(cw, ch, |x, y| {
        let (hx, hy) = ((x as usize * w / cw as usize).min(w - 1), (y as usize * h / ch as usize).min(h - 1));
        let v = (0..joints).map(|j| heatmaps[j * w * h + hy * w + hx]).fold(0.0f32, f32::max);
        let c = colormap(v);
        let p = crop.get_pixel(x, y).0;
        let a = 0.25 + 0.5 * v.clamp(0.0, 1.0);
        Rgb(std::array::from_fn(|i| (p[i] as f32 * (1.0 - a) + c[i] * a) as u8))
    })
}

/// One augmented training sample as a picture: the crop with its target keypoints (labelled
/// joints only) beside the crop overlaid with its target heatmaps, scaled ×`zoom`.
pub fn sample_sheet(
    sample: &crate::data::sample::Sample,
    spec: &KeypointSpec,
    heatmap_size: crate::config::Size,
    zoom: u32,
) -> RgbImage {
    use image::imageops::{overlay, resize, FilterType};
    let (w, h) = sample.crop.dimensions();
    let big = |img: &RgbImage| resize(img, w * zoom, h * zoom, FilterType::Nearest);
    let mut left = big(&sample.crop);
    let kp: Vec<[f32; 2]> = sample.keypoints.iter().map(|p| [p[0] * zoom as f32, p[1] * zoom as f32]).collect();
    let shown: Vec<bool> = sample.target.weights.iter().map(|&w| w > 0.0).collect();
    draw_skeleton(&mut left, &kp, &shown, spec, 1.5 * zoom as f32);
    let right = big(&heatmap_overlay(&sample.crop, &sample.target.heatmaps, heatmap_size));
    let mut sheet = RgbImage::from_pixel(2 * w * zoom + 4, h * zoom, Rgb([255, 255, 255]));
    overlay(&mut sheet, &left, 0, 0);
    overlay(&mut sheet, &right, (w * zoom + 4) as i64, 0);
    sheet
}

/// Writes an image atomically, PNG or JPEG by the file's extension; an existing file is
/// replaced only with `overwrite`.
pub fn save_image(img: &RgbImage, path: &std::path::Path, overwrite: bool) -> anyhow::Result<()> {
    let format = image::ImageFormat::from_path(path)
        .map_err(|_| anyhow::anyhow!("{}: unknown image extension (use .png or .jpg)", path.display()))?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, format).map_err(|e| anyhow::anyhow!("{}: cannot encode: {e}", path.display()))?;
    crate::fsutil::write_new(path, bytes.get_ref(), overwrite)
}

/// Where the drawing of `image` goes in `out`: its name with the extension of `format`, or by
/// default `.jpg` for JPEG inputs and `.png` for the rest.
pub fn drawing_path(out: &std::path::Path, image: &std::path::Path, format: Option<ImageFormat>) -> std::path::PathBuf {
    let stem = image.file_stem().unwrap_or_default().to_string_lossy();
    let jpeg = image.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
    let format = format.unwrap_or(if jpeg { ImageFormat::Jpg } else { ImageFormat::Png });
    out.join(format!("{stem}.{}", format.extension()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limb_colours_follow_the_flip_pairs() {
        let spec = KeypointSpec::coco17();
        assert_eq!(limb_colour(&spec, 15, 13), LEFT);
        assert_eq!(limb_colour(&spec, 16, 14), RIGHT);
        assert_eq!(limb_colour(&spec, 5, 6), CENTRE);
        assert_eq!(limb_colour(&spec, 0, 1), CENTRE);
        // Names play no part: a set whose pair is (b, a) colours b left and a right.
        let tips = KeypointSpec {
            name: "tips".into(),
            keypoints: vec!["a".into(), "b".into(), "c".into()],
            flip_pairs: vec![[1, 0]],
            sigmas: None,
            limbs: vec![[0, 2], [1, 2]],
            upper_body: Vec::new(),
        };
        assert_eq!((joint_colour(&tips, 1), joint_colour(&tips, 0), joint_colour(&tips, 2)), (LEFT, RIGHT, CENTRE));
    }

    #[test]
    fn drawings_are_named_after_their_image() {
        let out = std::path::Path::new("o");
        assert_eq!(drawing_path(out, "a/b.JPEG".as_ref(), None), out.join("b.jpg"));
        assert_eq!(drawing_path(out, "a/b.bmp".as_ref(), None), out.join("b.png"));
        assert_eq!(drawing_path(out, "a/b.jpg".as_ref(), Some(ImageFormat::Png)), out.join("b.png"));
    }

    #[test]
    fn skeleton_pixels_take_the_limb_colour() {
        let spec = KeypointSpec::coco17();
        let mut img = RgbImage::new(100, 100);
        let mut kp = vec![[0.0f32, 0.0]; 17];
        kp[13] = [20.0, 20.0];
        kp[15] = [20.0, 80.0];
        let mut shown = vec![false; 17];
        shown[13] = true;
        shown[15] = true;
        draw_skeleton(&mut img, &kp, &shown, &spec, 3.0);
        assert_eq!(*img.get_pixel(20, 50), LEFT, "mid-limb");
        assert_eq!(*img.get_pixel(60, 50), Rgb([0, 0, 0]), "away from the limb");
        assert_eq!(*img.get_pixel(20, 20), LEFT, "joint dot");
    }
}
