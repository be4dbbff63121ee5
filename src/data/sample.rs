//! One training or evaluation sample: crop the person, normalise, encode targets.

use super::affine::{Affine, CropRegion};
use super::augment::{self, Augmentation, Augmenter};
use super::codec::{HeatmapCodec, Target};
use super::instances::Instance;
use super::warp::{normalize_chw, warp_rgb};
use crate::coco::KeypointSpec;
use crate::config::{Config, Size};
use image::RgbImage;

/// How samples are made: input size, target codec, and augmentation (None: evaluation crops).
#[derive(Debug, Clone)]
pub struct SampleSpec {
    pub codec: HeatmapCodec,
    pub augment: Option<Augmenter>,
    /// Box padding (1.25).
    pub padding: f64,
    /// For each joint, the joint it becomes under a horizontal flip.
    pub flip_permutation: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Sample {
    /// Normalised 3 × H × W input.
    pub input: Vec<f32>,
    pub target: Target,
    /// The crop as RGB, for drawing.
    pub crop: RgbImage,
    /// Joints in crop pixels after the flip's pair swap, and whether each is labelled.
    pub keypoints: Vec<[f32; 2]>,
    pub visible: Vec<bool>,
    pub augmentation: Augmentation,
}

impl SampleSpec {
    /// Samples of `cfg` for the keypoint set `spec`, augmented when `train`: the upper body of
    /// half-body crops is `augment.upper_body` when configured, else the set's own.
    pub fn from_config(cfg: &Config, spec: &KeypointSpec, train: bool) -> SampleSpec {
        let augment = train.then(|| Augmenter {
            recipe: cfg.augment.clone(),
            aspect: cfg.aspect(),
            upper_body: cfg.augment.upper_body.clone().unwrap_or_else(|| spec.upper_body.clone()),
        });
        SampleSpec {
            codec: HeatmapCodec::from_config(cfg),
            augment,
            padding: cfg.box_padding,
            flip_permutation: spec.flip_permutation(),
        }
    }

    pub fn input_size(&self) -> Size {
        self.codec.input
    }

    /// The unaugmented crop region of an instance.
    pub fn region(&self, inst: &Instance) -> CropRegion {
        let size = self.input_size();
        CropRegion::from_bbox(inst.bbox, size.width as f64 / size.height as f64, self.padding)
    }

    /// The augmentation of sample `index` in `epoch` (identity when not augmenting).
    pub fn augmentation(&self, inst: &Instance, seed: u64, epoch: u64, index: u64) -> Augmentation {
        let region = self.region(inst);
        match &self.augment {
            Some(aug) => augment::draw(aug, &mut augment::sample_rng(seed, epoch, index), region, &inst.keypoints),
            None => Augmentation { region, rotation: 0.0, flip: false, color: None },
        }
    }

    /// Crops `image` for `inst` as `aug` says and encodes its targets.
    pub fn build(&self, image: &RgbImage, inst: &Instance, aug: Augmentation) -> Sample {
        let size = self.input_size();
        let m = Affine::crop_flipped(aug.region.center, aug.region.size, aug.rotation, aug.flip, image.width(), size);
        let mut crop = warp_rgb(image, &m, size);
        if let Some(f) = aug.color {
            jitter_colours(&mut crop, f);
        }
        let mut input = vec![0.0f32; 3 * size.area()];
        normalize_chw(&crop, &mut input);
        let moved: Vec<([f32; 2], bool)> = inst
            .keypoints
            .iter()
            .map(|k| {
                let p = m.apply([k[0], k[1]]);
                ([p[0] as f32, p[1] as f32], k[2] > 0.0)
            })
            .collect();
        // A flipped left wrist is a right wrist: joint j takes the data of its mirror joint.
        let order: Vec<usize> = if aug.flip { self.flip_permutation.clone() } else { (0..moved.len()).collect() };
        let keypoints: Vec<[f32; 2]> = order.iter().map(|&j| moved[j].0).collect();
        let visible: Vec<bool> = order.iter().map(|&j| moved[j].1).collect();
        let target = self.codec.encode(&keypoints, &visible);
        Sample { input, target, crop, keypoints, visible, augmentation: aug }
    }
}

/// Brightness, contrast (about the mean grey) and saturation (about each pixel's grey).
pub fn jitter_colours(img: &mut RgbImage, [brightness, contrast, saturation]: [f32; 3]) {
    let grey = |p: [f32; 3]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    let n = (img.width() * img.height()).max(1) as f32;
    let mean = img.pixels().map(|p| grey(p.0.map(|v| v as f32))).sum::<f32>() / n * brightness;
    for px in img.pixels_mut() {
        let v = px.0.map(|v| v as f32 * brightness);
        let v = v.map(|c| (c - mean) * contrast + mean);
        let g = grey(v);
        px.0 = v.map(|c| (g + (c - g) * saturation).round().clamp(0.0, 255.0) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SampleSpec {
        SampleSpec {
            codec: HeatmapCodec::new(Size::new(192, 256), Size::new(48, 64), 2.0),
            augment: None,
            padding: 1.25,
            flip_permutation: KeypointSpec::coco17().flip_permutation(),
        }
    }

    fn instance() -> Instance {
        let keypoints = (0..17)
            .map(|j| [200.0 + 7.0 * (j % 5) as f64, 100.0 + 12.0 * j as f64, if j == 4 { 0.0 } else { 2.0 }])
            .collect();
        Instance { image_id: 1, image_path: "x.jpg".into(), bbox: [180.0, 90.0, 60.0, 210.0], keypoints }
    }

    #[test]
    fn a_flipped_sample_has_mirrored_and_pair_swapped_keypoints() {
        let s = spec();
        let img = RgbImage::new(640, 480);
        let inst = instance();
        let plain = s.augmentation(&inst, 0, 0, 0);
        let a = s.build(&img, &inst, plain);
        let b = s.build(&img, &inst, Augmentation { flip: true, ..plain });
        let perm = KeypointSpec::coco17().flip_permutation();
        for (j, &pj) in perm.iter().enumerate() {
            let src = a.keypoints[pj];
            assert!((b.keypoints[j][0] - (192.0 - src[0])).abs() < 1e-3, "joint {j}");
            assert!((b.keypoints[j][1] - src[1]).abs() < 1e-3);
            assert_eq!(b.visible[j], a.visible[pj]);
        }
        assert!(!b.visible[3] && b.target.weights[3] == 0.0, "unlabelled right ear becomes the unlabelled left ear");
    }

    #[test]
    fn jitter_by_hand() {
        let mut img = RgbImage::from_raw(2, 1, vec![100, 100, 100, 200, 200, 200]).unwrap();
        jitter_colours(&mut img, [1.0, 1.0, 1.0]);
        assert_eq!(img.as_raw(), &vec![100, 100, 100, 200, 200, 200], "identity factors");
        jitter_colours(&mut img, [1.1, 1.0, 1.0]);
        assert_eq!(img.as_raw(), &vec![110, 110, 110, 220, 220, 220]);
        // Contrast ×2 about the mean grey 165: 110 → 55, 220 → 275 → 255.
        jitter_colours(&mut img, [1.0, 2.0, 0.0]);
        assert_eq!(img.as_raw(), &vec![55, 55, 55, 255, 255, 255]);
    }

    #[test]
    fn the_crop_maps_the_region_centre_to_the_crop_centre() {
        let s = spec();
        let inst = instance();
        let mut inst_centered = inst.clone();
        let region = s.region(&inst);
        inst_centered.keypoints[0] = [region.center[0], region.center[1], 2.0];
        let sample = s.build(&RgbImage::new(640, 480), &inst_centered, s.augmentation(&inst_centered, 0, 0, 0));
        assert!((sample.keypoints[0][0] - 96.0).abs() < 1e-4 && (sample.keypoints[0][1] - 128.0).abs() < 1e-4);
        // 1.25 padding on the 210-high box: the crop spans 262.5 px of image for 256 px.
        assert!((region.size[1] - 262.5).abs() < 1e-9);
    }
}
