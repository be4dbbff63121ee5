//! The detector's samples: whole images letterboxed into the network input (random scale,
//! shift, flip and colour while training), with centre-net targets of their person boxes.

use super::affine::Affine;
use super::center::CenterCodec;
use super::sample::jitter_colours;
use super::warp::{normalize_chw, warp_rgb};
use crate::coco::CocoDataset;
use crate::config::{Config, Size};
use image::RgbImage;
use rand::Rng;
use std::path::PathBuf;

/// One training or validation image with its person boxes (`[x, y, w, h]`, image pixels).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectImage {
    pub image_id: i64,
    pub image_path: PathBuf,
    pub boxes: Vec<[f64; 4]>,
    /// Crowd regions: neither persons nor background to the loss.
    pub crowds: Vec<[f64; 4]>,
}

/// How many images and boxes [`detect_images`] kept, and why others were left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectReport {
    pub images: usize,
    pub boxes: usize,
    pub crowds: usize,
    /// Boxes with a width or height that is not positive.
    pub empty_boxes: usize,
    /// Images whose `file_name` points outside the image folder; the first refusal, and why.
    pub outside_folder: usize,
    pub first_refused: Option<String>,
}

impl std::fmt::Display for DetectReport {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{} images with {} person boxes and {} crowd regions; skipped {} empty boxes and {} images named outside the image folder",
            self.images, self.boxes, self.crowds, self.empty_boxes, self.outside_folder
        )?;
        match &self.first_refused {
            Some(e) => write!(f, " (refused: {e})"),
            None => Ok(()),
        }
    }
}

/// Every image of `ds` (images without persons too: they teach the background) with its boxes
/// of `category_id`, in image-id order.
pub fn detect_images(
    ds: &CocoDataset,
    images_dir: &std::path::Path,
    category_id: i64,
) -> (Vec<DetectImage>, DetectReport) {
    let mut report = DetectReport::default();
    let mut out = Vec::new();
    for id in ds.image_ids_sorted() {
        let rec = ds.image(id).expect("listed ids have records");
        let image_path = match crate::fsutil::inside(images_dir, &rec.file_name) {
            Ok(p) => p,
            Err(e) => {
                report.outside_folder += 1;
                report.first_refused.get_or_insert_with(|| format!("{}: image {id}: {e}", ds.source.display()));
                continue;
            }
        };
        let mut item = DetectImage { image_id: id, image_path, boxes: Vec::new(), crowds: Vec::new() };
        for ann in ds.annotations_of(id).filter(|a| a.category_id == category_id) {
            match ann.bbox {
                Some(b) if b[2] > 0.0 && b[3] > 0.0 && ann.iscrowd => item.crowds.push(b),
                Some(b) if b[2] > 0.0 && b[3] > 0.0 => item.boxes.push(b),
                _ => report.empty_boxes += 1,
            }
        }
        report.images += 1;
        report.boxes += item.boxes.len();
        report.crowds += item.crowds.len();
        out.push(item);
    }
    (out, report)
}

/// The map from an image into the network input: the image scaled to fit (times `scale`),
/// centred (moved by `shift`, a fraction of the input), optionally mirrored; the rest is black.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Pixel-index coordinates (pixel centres at integers), as the warp samples.
    pub map: Affine,
}

impl Letterbox {
    pub fn new(width: u32, height: u32, input: Size, scale: f64, shift: [f64; 2], flip: bool) -> Letterbox {
        let (w, h) = (width as f64, height as f64);
        let (iw, ih) = (input.width as f64, input.height as f64);
        let fit = (iw / w).min(ih / h) * scale;
        // In edge coordinates: x' = ±fit·(x − w/2) + W/2 + shift·W (− when mirrored), the same
        // for y without the sign; then moved by half a pixel either side for pixel indices.
        let sx = if flip { -fit } else { fit };
        let cx = sx * (0.5 - w / 2.0) + iw / 2.0 + shift[0] * iw - 0.5;
        let cy = fit * (0.5 - h / 2.0) + ih / 2.0 + shift[1] * ih - 0.5;
        Letterbox { map: Affine([sx, 0.0, cx, 0.0, fit, cy]) }
    }

    /// The plain fit of an image (evaluation and inference).
    pub fn fit(width: u32, height: u32, input: Size) -> Letterbox {
        Letterbox::new(width, height, input, 1.0, [0.0, 0.0], false)
    }

    /// A box in image coordinates (pixel edges at integers, as COCO boxes) → input coordinates.
    pub fn box_to_input(&self, b: [f64; 4]) -> [f64; 4] {
        map_box(&self.map, b)
    }

    /// A box in input coordinates → image coordinates.
    pub fn box_to_image(&self, b: [f64; 4]) -> [f64; 4] {
        map_box(&self.map.inverse(), b)
    }
}

/// The box around the image of `b`'s corners under `m` (an index-coordinate map, so edges are
/// moved by half a pixel on either side of it).
fn map_box(m: &Affine, b: [f64; 4]) -> [f64; 4] {
    let corner = |x: f64, y: f64| {
        let p = m.apply([x - 0.5, y - 0.5]);
        [p[0] + 0.5, p[1] + 0.5]
    };
    let a = corner(b[0], b[1]);
    let c = corner(b[0] + b[2], b[1] + b[3]);
    let (x0, x1) = (a[0].min(c[0]), a[0].max(c[0]));
    let (y0, y1) = (a[1].min(c[1]), a[1].max(c[1]));
    [x0, y0, x1 - x0, y1 - y0]
}

/// A box clipped to `[0, w] × [0, h]`; `None` when less than `min_side` is left of a side.
pub fn clip_box(b: [f64; 4], size: Size, min_side: f64) -> Option<[f64; 4]> {
    let x0 = b[0].max(0.0);
    let y0 = b[1].max(0.0);
    let x1 = (b[0] + b[2]).min(size.width as f64);
    let y1 = (b[1] + b[3]).min(size.height as f64);
    (x1 - x0 >= min_side && y1 - y0 >= min_side).then_some([x0, y0, x1 - x0, y1 - y0])
}

/// The training-time draws of one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectAugmentation {
    pub scale: f64,
    pub shift: [f64; 2],
    pub flip: bool,
    pub color: Option<[f32; 3]>,
}

impl DetectAugmentation {
    pub const NONE: DetectAugmentation = DetectAugmentation { scale: 1.0, shift: [0.0, 0.0], flip: false, color: None };
}

/// The augmentation recipe (from `detect.*` and `augment.flip_prob`/`color_jitter`).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectAugmenter {
    pub scale_range: f64,
    pub shift: f64,
    pub flip_prob: f64,
    pub color_jitter: f64,
}

/// How detector samples are made: the codec and, while training, the augmentation.
#[derive(Debug, Clone)]
pub struct DetectSpec {
    pub codec: CenterCodec,
    pub augment: Option<DetectAugmenter>,
}

/// One letterboxed image and its targets.
#[derive(Debug, Clone)]
pub struct DetectSample {
    /// Normalised 3 × H × W input.
    pub input: Vec<f32>,
    /// `TARGET_CHANNELS × h × w` (see [`super::center`]).
    pub target: Vec<f32>,
    /// The boxes as they lie in the input (clipped), for drawing and checks.
    pub boxes: Vec<[f64; 4]>,
    pub letterbox: Letterbox,
}

/// Boxes with less than this many input pixels left on a side after clipping are dropped.
const MIN_BOX_SIDE: f64 = 2.0;

impl DetectSpec {
    pub fn from_config(cfg: &Config, train: bool) -> DetectSpec {
        let d = &cfg.detect;
        DetectSpec {
            codec: CenterCodec { input: cfg.input_size, output: cfg.heatmap_size, gaussian_alpha: d.gaussian_alpha },
            augment: train.then_some(DetectAugmenter {
                scale_range: d.scale_range,
                shift: d.shift,
                flip_prob: cfg.augment.flip_prob,
                color_jitter: cfg.augment.color_jitter,
            }),
        }
    }

    /// The draws of sample `index` in `epoch` (none when not augmenting).
    pub fn augmentation(&self, seed: u64, epoch: u64, index: u64) -> DetectAugmentation {
        let Some(a) = &self.augment else { return DetectAugmentation::NONE };
        let rng = &mut crate::seed::stream(seed, epoch, index);
        let scale = 1.0 + a.scale_range * rng.random_range(-1.0..=1.0);
        let shift = [a.shift * rng.random_range(-1.0..=1.0), a.shift * rng.random_range(-1.0..=1.0)];
        let flip = rng.random::<f64>() < a.flip_prob;
        let j = a.color_jitter;
        let color = (j > 0.0).then(|| std::array::from_fn(|_| rng.random_range(1.0 - j..=1.0 + j) as f32));
        DetectAugmentation { scale, shift, flip, color }
    }

    /// Letterboxes `image` as `aug` says and encodes the targets of `item`'s boxes.
    pub fn build(&self, image: &RgbImage, item: &DetectImage, aug: DetectAugmentation) -> DetectSample {
        let size = self.codec.input;
        let letterbox = Letterbox::new(image.width(), image.height(), size, aug.scale, aug.shift, aug.flip);
        let mut warped = warp_rgb(image, &letterbox.map, size);
        if let Some(f) = aug.color {
            jitter_colours(&mut warped, f);
        }
        let mut input = vec![0.0f32; 3 * size.area()];
        normalize_chw(&warped, &mut input);
        let moved = |bs: &[[f64; 4]]| -> Vec<[f64; 4]> {
            bs.iter().filter_map(|&b| clip_box(letterbox.box_to_input(b), size, MIN_BOX_SIDE)).collect()
        };
        let (boxes, crowds) = (moved(&item.boxes), moved(&item.crowds));
        let target = self.codec.encode(&boxes, &crowds);
        DetectSample { input, target, boxes, letterbox }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_fits_centres_and_maps_boxes_both_ways() {
        // A 400 × 200 image into 128 × 96: scale 0.32 (width-bound), 32 px of image height.
        let input = Size::new(128, 96);
        let lb = Letterbox::fit(400, 200, input);
        let whole = lb.box_to_input([0.0, 0.0, 400.0, 200.0]);
        for (g, w) in whole.iter().zip([0.0, 16.0, 128.0, 64.0]) {
            assert!((g - w).abs() < 1e-9, "{whole:?}");
        }
        let b = [50.0, 20.0, 100.0, 150.0];
        let back = lb.box_to_image(lb.box_to_input(b));
        assert!(b.iter().zip(back).all(|(a, c)| (a - c).abs() < 1e-9), "{back:?}");
        // Flipped: the box mirrors about the input's vertical centre line.
        let f = Letterbox::new(400, 200, input, 1.0, [0.0, 0.0], true).box_to_input(b);
        let p = lb.box_to_input(b);
        assert!((f[0] - (128.0 - p[0] - p[2])).abs() < 1e-9 && (f[2] - p[2]).abs() < 1e-9);
        // Twice the scale: boxes twice as large about the input centre.
        let z = Letterbox::new(400, 200, input, 2.0, [0.0, 0.0], false).box_to_input([0.0, 0.0, 400.0, 200.0]);
        assert!((z[2] - 256.0).abs() < 1e-9 && (z[0] + 64.0).abs() < 1e-9);
    }

    #[test]
    fn clipping_keeps_what_is_inside() {
        let s = Size::new(100, 50);
        assert_eq!(clip_box([-10.0, 5.0, 30.0, 100.0], s, 2.0), Some([0.0, 5.0, 20.0, 45.0]));
        assert_eq!(clip_box([99.0, 5.0, 30.0, 10.0], s, 2.0), None, "1 px left");
    }

    #[test]
    fn a_sample_encodes_its_boxes_where_the_input_shows_them() {
        let spec = DetectSpec {
            codec: CenterCodec { input: Size::new(64, 64), output: Size::new(16, 16), gaussian_alpha: 0.54 },
            augment: None,
        };
        let mut img = RgbImage::new(128, 128);
        for y in 40..80 {
            for x in 20..40 {
                img.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
        let item = DetectImage {
            image_id: 1,
            image_path: "x.png".into(),
            boxes: vec![[20.0, 40.0, 20.0, 40.0]],
            crowds: vec![],
        };
        let s = spec.build(&img, &item, DetectAugmentation::NONE);
        // Half scale: the box is 10..20 × 20..40 in the input; its centre (15, 30) is cell (3, 7).
        assert!(s.boxes[0].iter().zip([10.0, 20.0, 10.0, 20.0]).all(|(a, b)| (a - b).abs() < 1e-9));
        assert_eq!(s.target[7 * 16 + 3], 1.0);
        // The white block shows at the box in the normalised input (channel 0 well above the rest).
        let at = |x: usize, y: usize| s.input[y * 64 + x];
        assert!(at(15, 30) > 1.5 && at(40, 30) < -1.5, "{} {}", at(15, 30), at(40, 30));
    }
}
