//! Drawing: skeletons with left/right/centre limb colours, heatmap overlays. Plain `image`
//! buffers and imageproc; no tensors.

pub mod attention;
pub mod draw;
pub mod plot;
pub mod text;

use crate::coco::KeypointSpec;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_line_segment_mut};

pub const LEFT: Rgb<u8> = Rgb([255, 140, 0]);
pub const RIGHT: Rgb<u8> = Rgb([30, 144, 255]);
pub const CENTRE: Rgb<u8> = Rgb([50, 205, 50]);

/// Side of a joint from its name.
fn side(name: &str) -> Option<bool> {
    if name.starts_with("left_") {
        Some(true)
    } else if name.starts_with("right_") {
        Some(false)
    } else {
        None
    }
}

/// Colour of a limb: left if both ends are left joints, right if both are right, else centre.
pub fn limb_colour(spec: &KeypointSpec, a: usize, b: usize) -> Rgb<u8> {
    match (side(&spec.keypoints[a]), side(&spec.keypoints[b])) {
        (Some(true), Some(true)) => LEFT,
        (Some(false), Some(false)) => RIGHT,
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
            let c = match side(&spec.keypoints[j]) {
                Some(true) => LEFT,
                Some(false) => RIGHT,
                None => CENTRE,
            };
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
pub fn heatmap_overlay(crop: &RgbImage, heatmaps: &[f32], size: [usize; 2]) -> RgbImage {
    let [w, h] = size;
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
    heatmap_size: [usize; 2],
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

/// `dypose data show`: draws the first `count` samples of epoch 0 of the training set into
/// `out/sample_NNN.png`; returns the files written.
pub fn show_training_samples(
    cfg: &crate::config::Config,
    count: usize,
    out: &std::path::Path,
    overwrite: bool,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    use crate::coco::CocoDataset;
    use crate::config::Config;
    use crate::data::instances::train_instances;
    use crate::data::loader::{epoch_order, load_rgb};
    Config::require(&cfg.data.train_annotations, "data.train_annotations")?;
    Config::require(&cfg.data.train_images, "data.train_images")?;
    let ds = CocoDataset::load(&cfg.data.train_annotations)?;
    let kspec = ds.keypoint_spec(cfg.data.category_id, None)?;
    let (instances, report) = train_instances(&ds, &cfg.data.train_images, cfg.data.category_id, kspec.len());
    eprintln!("{report}");
    let spec = cfg.sample_spec(&kspec, true);
    let order = epoch_order(instances.len(), cfg.seed, 0, true);
    let mut written = Vec::new();
    for &i in order.iter().take(count) {
        let inst = &instances[i];
        let image = match load_rgb(&inst.image_path) {
            Ok(img) => img,
            Err(e) => {
                eprintln!("skipped: {e}");
                continue;
            }
        };
        let sample = spec.build(&image, inst, spec.augmentation(inst, cfg.seed, 0, i as u64));
        let sheet = sample_sheet(&sample, &kspec, cfg.heatmap_size, 2);
        let path = out.join(format!("sample_{:03}.png", written.len()));
        let mut bytes = std::io::Cursor::new(Vec::new());
        sheet.write_to(&mut bytes, image::ImageFormat::Png)?;
        crate::fsutil::write_new(&path, bytes.get_ref(), overwrite)?;
        written.push(path);
    }
    Ok(written)
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

/// Where the drawing of `image` goes in `out`: its name with extension `format`, or by default
/// `.jpg` for JPEG inputs and `.png` for the rest.
pub fn drawing_path(out: &std::path::Path, image: &std::path::Path, format: Option<&str>) -> std::path::PathBuf {
    let stem = image.file_stem().unwrap_or_default().to_string_lossy();
    let jpeg = image.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
    let ext = format.unwrap_or(if jpeg { "jpg" } else { "png" });
    out.join(format!("{stem}.{ext}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limb_colours_follow_the_joint_names() {
        let spec = KeypointSpec::coco17();
        assert_eq!(limb_colour(&spec, 15, 13), LEFT);
        assert_eq!(limb_colour(&spec, 16, 14), RIGHT);
        assert_eq!(limb_colour(&spec, 5, 6), CENTRE);
        assert_eq!(limb_colour(&spec, 0, 1), CENTRE);
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
