//! Drawing: skeletons with left/right/centre limb colours, heatmap overlays, charts. Plain `image`
//! buffers and imageproc; no tensors.

pub mod attention;
pub mod charts;
pub mod explain;
pub mod plot;
pub mod skeleton;
pub mod text;

use crate::coco::KeypointSpec;
use crate::config::ImageFormat;
use image::{Rgb, RgbImage};

pub use skeleton::{draw_box, draw_pose, draw_skeleton, joint_colour, limb_colour, Pose, CENTRE, LEFT, RIGHT};

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

/// One detector training sample as a picture: the letterboxed input with its target boxes
/// beside the input overlaid with the centre heatmap (crowd cells, which the loss ignores,
/// greyed out), scaled ×`zoom`.
pub fn detect_sample_sheet(
    sample: &crate::data::detect::DetectSample,
    codec: &crate::data::center::CenterCodec,
    zoom: u32,
) -> RgbImage {
    use crate::data::center::IGNORE_CHANNEL;
    use image::imageops::{overlay, resize, FilterType};
    let (input, output) = (codec.input, codec.output);
    let picture = crate::data::warp::denormalize_chw(&sample.input, input);
    let (w, h) = picture.dimensions();
    let big = |img: &RgbImage| resize(img, w * zoom, h * zoom, FilterType::Nearest);
    let mut left = big(&picture);
    for b in &sample.boxes {
        skeleton::draw_box(&mut left, b.map(|v| v * zoom as f64), None);
    }
    let cells = output.area();
    let mut right = heatmap_overlay(&picture, &sample.target[..cells], output);
    let ignore = &sample.target[IGNORE_CHANNEL * cells..][..cells];
    for (x, y, p) in right.enumerate_pixels_mut() {
        let cell = (y as usize * output.height / h as usize) * output.width + x as usize * output.width / w as usize;
        if ignore[cell] > 0.0 {
            p.0 = p.0.map(|v| v / 2 + 64);
        }
    }
    let mut sheet = RgbImage::from_pixel(2 * w * zoom + 4, h * zoom, Rgb([255, 255, 255]));
    overlay(&mut sheet, &left, 0, 0);
    overlay(&mut sheet, &big(&right), (w * zoom + 4) as i64, 0);
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
    fn detector_sheets_show_boxes_heatmap_peaks_and_crowds() {
        use crate::config::Size;
        use crate::data::center::CenterCodec;
        use crate::data::detect::{DetectAugmentation, DetectImage, DetectSpec};
        // A grey 64 × 64 image into a 64 × 64 input at stride 4: the letterbox is the identity.
        let codec = CenterCodec { input: Size::new(64, 64), output: Size::new(16, 16), gaussian_alpha: 0.54 };
        let spec = DetectSpec { codec: codec.clone(), augment: None };
        let item = DetectImage {
            image_id: 1,
            image_path: Default::default(),
            boxes: vec![[8.0, 8.0, 24.0, 40.0]],
            crowds: vec![[48.0, 48.0, 16.0, 16.0]],
        };
        let grey = Rgb([100, 100, 100]);
        let sample = spec.build(&RgbImage::from_pixel(64, 64, grey), &item, DetectAugmentation::NONE);
        let sheet = detect_sample_sheet(&sample, &codec, 2);
        assert_eq!(sheet.dimensions(), (2 * 128 + 4, 128));
        // Left, ×2: the box's outline is white, its inside and the crowd region stay grey.
        assert_eq!(*sheet.get_pixel(2 * 20, 2 * 8), Rgb([255, 255, 255]), "top edge");
        assert_eq!(*sheet.get_pixel(2 * 8, 2 * 30), Rgb([255, 255, 255]), "left edge");
        assert_eq!(*sheet.get_pixel(2 * 20, 2 * 30), grey);
        assert_eq!(*sheet.get_pixel(2 * 56, 2 * 56), grey);
        // Right: the centre's cell (5, 7) carries the peak colour (red, blended at 0.75); far
        // from the box, the background blend of 0 at 0.25; the crowd's cells greyed out.
        let right = |x: u32, y: u32| *sheet.get_pixel(132 + 2 * x, 2 * y);
        let peak = right(4 * 5 + 1, 4 * 7 + 1).0;
        assert!(peak[0] > 100 && peak[1] < 40 && peak[2] < 40, "{peak:?}");
        let zero = colormap(0.0).map(|c| (100.0 * 0.75 + c * 0.25) as u8);
        assert_eq!(right(40, 8).0, zero);
        assert_eq!(right(56, 56).0, zero.map(|v| v / 2 + 64));
    }

    #[test]
    fn drawings_are_named_after_their_image() {
        let out = std::path::Path::new("o");
        assert_eq!(drawing_path(out, "a/b.JPEG".as_ref(), None), out.join("b.jpg"));
        assert_eq!(drawing_path(out, "a/b.bmp".as_ref(), None), out.join("b.png"));
        assert_eq!(drawing_path(out, "a/b.jpg".as_ref(), Some(ImageFormat::Png)), out.join("b.png"));
    }
}
