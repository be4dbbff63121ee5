//! Training-time augmentation: half-body, scale, rotation and flip, in that order,
//! as SimpleBaseline applies them. Every sample draws from its own RNG seeded by
//! (seed, epoch, index), so a batch does not depend on how many threads built it.

use super::affine::{fit_aspect, CropRegion};
use crate::config::AugmentConfig;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// The augmentation recipe of a config, for one input aspect and keypoint set.
#[derive(Debug, Clone, PartialEq)]
pub struct Augmenter {
    pub recipe: AugmentConfig,
    /// Crop aspect w/h of the network input.
    pub aspect: f64,
    /// Joints of the upper body (the rest is the lower body); empty: no half-body crops.
    pub upper_body: Vec<usize>,
}

/// What to crop: region (after half-body and scaling), rotation in degrees, and flip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augmentation {
    pub region: CropRegion,
    pub rotation: f64,
    pub flip: bool,
    /// Brightness, contrast and saturation factors, when colour jitter is on.
    pub color: Option<[f32; 3]>,
}

/// The RNG of one sample, seeded by (seed, epoch, index).
pub fn sample_rng(seed: u64, epoch: u64, index: u64) -> ChaCha8Rng {
    crate::seed::stream(seed, epoch, index)
}

/// Draws one augmentation for an instance with `keypoints` [x, y, v] (image pixels).
pub fn draw(aug: &Augmenter, rng: &mut impl Rng, region: CropRegion, keypoints: &[[f64; 3]]) -> Augmentation {
    let cfg = &aug.recipe;
    let mut region = region;
    let labelled = keypoints.iter().filter(|k| k[2] > 0.0).count();
    if labelled > cfg.half_body_min_joints && rng.random::<f64>() < cfg.half_body_prob {
        if let Some(r) = half_body(aug, rng, keypoints) {
            region = r;
        }
    }
    let normal = |rng: &mut dyn rand::RngCore| -> f64 { rng.sample(StandardNormal) };
    let f = cfg.scale_factor;
    let s = (normal(rng) * f + 1.0).clamp(1.0 - f, 1.0 + f);
    region.size = [region.size[0] * s, region.size[1] * s];
    let rf = cfg.rotation_factor;
    let rotation =
        if rng.random::<f64>() <= cfg.rotation_prob { (normal(rng) * rf).clamp(-2.0 * rf, 2.0 * rf) } else { 0.0 };
    let flip = rng.random::<f64>() <= cfg.flip_prob;
    // Drawn last, so that turning jitter on leaves the geometric draws unchanged.
    let j = cfg.color_jitter;
    let color = (j > 0.0).then(|| std::array::from_fn(|_| rng.random_range(1.0 - j..=1.0 + j) as f32));
    Augmentation { region, rotation, flip, color }
}

/// The box around the labelled upper- or lower-body joints, padded (SimpleBaseline's
/// `half_body_transform`, including its `randn() < 0.5` choice of the upper body).
fn half_body(aug: &Augmenter, rng: &mut impl Rng, keypoints: &[[f64; 3]]) -> Option<CropRegion> {
    if aug.upper_body.is_empty() {
        return None;
    }
    let (mut upper, mut lower) = (Vec::new(), Vec::new());
    for (j, k) in keypoints.iter().enumerate() {
        if k[2] > 0.0 {
            if aug.upper_body.contains(&j) {
                upper.push([k[0], k[1]]);
            } else {
                lower.push([k[0], k[1]]);
            }
        }
    }
    let pick_upper: f64 = rng.sample(StandardNormal);
    let selected = if pick_upper < 0.5 && upper.len() > 2 {
        upper
    } else if lower.len() > 2 {
        lower
    } else {
        upper
    };
    if selected.len() < 2 {
        return None;
    }
    let n = selected.len() as f64;
    let center = [selected.iter().map(|p| p[0]).sum::<f64>() / n, selected.iter().map(|p| p[1]).sum::<f64>() / n];
    let (x0, x1) = selected.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[0]), b.max(p[0])));
    let (y0, y1) = selected.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
    Some(CropRegion { center, size: fit_aspect(x1 - x0, y1 - y0, aug.aspect, aug.recipe.half_body_padding) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recipe for COCO's upper body (joints 0..=10) at aspect 0.75.
    fn coco(recipe: AugmentConfig) -> Augmenter {
        Augmenter { recipe, aspect: 0.75, upper_body: (0..=10).collect() }
    }

    fn person() -> Vec<[f64; 3]> {
        (0..17).map(|j| [100.0 + 3.0 * j as f64, 50.0 + 10.0 * j as f64, 2.0]).collect()
    }

    #[test]
    fn same_seed_same_draws_and_seeds_differ() {
        let region = CropRegion { center: [120.0, 130.0], size: [150.0, 200.0] };
        let cfg = coco(AugmentConfig::default());
        let a = draw(&cfg, &mut sample_rng(7, 3, 11), region, &person());
        let b = draw(&cfg, &mut sample_rng(7, 3, 11), region, &person());
        assert_eq!(a, b);
        let others: Vec<Augmentation> = [(8, 3, 11), (7, 4, 11), (7, 3, 12)]
            .iter()
            .map(|&(s, e, i)| draw(&cfg, &mut sample_rng(s, e, i), region, &person()))
            .collect();
        assert!(others.iter().all(|o| *o != a));
    }

    #[test]
    fn draws_follow_the_recipe_distribution() {
        let region = CropRegion { center: [0.0, 0.0], size: [100.0, 100.0] };
        let cfg = coco(AugmentConfig { half_body_prob: 0.0, ..AugmentConfig::default() });
        let n = 20000;
        let draws: Vec<Augmentation> =
            (0..n).map(|i| draw(&cfg, &mut sample_rng(1, 0, i), region, &person())).collect();
        let flips = draws.iter().filter(|d| d.flip).count() as f64 / n as f64;
        let rotated = draws.iter().filter(|d| d.rotation != 0.0).count() as f64 / n as f64;
        assert!((flips - 0.5).abs() < 0.02, "flip rate {flips}");
        assert!((rotated - 0.6).abs() < 0.02, "rotation rate {rotated}");
        for d in &draws {
            let s = d.region.size[0] / 100.0;
            assert!((0.65..=1.35).contains(&s) && d.region.size[0] == d.region.size[1]);
            assert!(d.rotation.abs() <= 90.0);
        }
        // Scale: clipped N(1, 0.35²) has its median at 1 and hits both clip bounds.
        let mut s: Vec<f64> = draws.iter().map(|d| d.region.size[0] / 100.0).collect();
        s.sort_by(|a, b| a.total_cmp(b));
        assert!((s[n as usize / 2] - 1.0).abs() < 0.02);
        assert_eq!((s[0], s[n as usize - 1]), (0.65, 1.35));
    }

    #[test]
    fn colour_jitter_is_off_by_default_and_leaves_geometry_alone() {
        let region = CropRegion { center: [0.0, 0.0], size: [100.0, 100.0] };
        let off = draw(&coco(AugmentConfig::default()), &mut sample_rng(4, 0, 9), region, &person());
        let cfg = coco(AugmentConfig { color_jitter: 0.3, ..AugmentConfig::default() });
        let on = draw(&cfg, &mut sample_rng(4, 0, 9), region, &person());
        assert_eq!(off.color, None);
        assert_eq!((on.region, on.rotation, on.flip), (off.region, off.rotation, off.flip));
        assert!(on.color.unwrap().iter().all(|f| (0.7..=1.3).contains(f)));
    }

    #[test]
    fn half_body_boxes_the_chosen_joints() {
        let cfg = coco(AugmentConfig {
            half_body_prob: 1.0,
            scale_factor: 0.0,
            rotation_prob: 0.0,
            ..AugmentConfig::default()
        });
        let kp = person();
        let region = CropRegion { center: [0.0, 0.0], size: [1.0, 1.0] };
        let mut seen_upper = false;
        let mut seen_lower = false;
        for i in 0..200 {
            let a = draw(&cfg, &mut sample_rng(2, 0, i), region, &kp);
            // Upper body: joints 0..=10 (y 50..150, x 100..130); lower: 11..=16 (y 160..210, x 133..148).
            let cy = a.region.center[1];
            if (cy - 100.0).abs() < 1e-9 {
                seen_upper = true;
                // h = 100 dominates: w = 75, then ×1.5.
                assert_eq!(a.region.size, [75.0 * 1.5, 150.0]);
            } else {
                assert!((cy - 185.0).abs() < 1e-9, "{cy}");
                seen_lower = true;
            }
        }
        assert!(seen_upper && seen_lower);
        // A keypoint set that names no upper body never gets half-body crops.
        let none = Augmenter { upper_body: Vec::new(), ..cfg };
        assert!((0..50).all(|i| draw(&none, &mut sample_rng(2, 0, i), region, &kp).region == region));
    }
}
