//! Image-folder classification data (`train/<class>/*.jpg`, as torchvision's `ImageFolder`):
//! the class list, and a [`SampleSource`] of the one loader with torchvision's training view
//! (random-resized crop and flip, each sample's randomness from (seed, epoch, index)) or its
//! evaluation view (shorter side to input/0.875, centre crop). Plain Rust.

use super::affine::Affine;
use super::augment::sample_rng;
use super::classify::eval_input;
use super::loader::{BatchItem, SampleSource};
use super::warp::{normalize_chw, warp_rgb};
use crate::config::Size;
use anyhow::{ensure, Context, Result};
use image::RgbImage;
use rand::Rng;
use std::path::{Path, PathBuf};

const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "bmp", "webp", "ppm"];

/// The images of a folder of class folders, classes in name order.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    pub root: PathBuf,
    pub classes: Vec<String>,
    /// (image, class index), classes in order, images by name within each.
    pub samples: Vec<(PathBuf, usize)>,
}

impl ImageFolder {
    pub fn open(root: &Path) -> Result<ImageFolder> {
        let listing = |dir: &Path| -> Result<Vec<PathBuf>> {
            let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("{}: cannot list the folder", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            v.sort();
            Ok(v)
        };
        let class_dirs: Vec<PathBuf> = listing(root)?.into_iter().filter(|p| p.is_dir()).collect();
        ensure!(
            !class_dirs.is_empty(),
            "{}: no class folders (expected {}/<class>/<image>)",
            root.display(),
            root.display()
        );
        let mut classes = Vec::new();
        let mut samples = Vec::new();
        for (c, dir) in class_dirs.iter().enumerate() {
            classes.push(dir.file_name().unwrap_or_default().to_string_lossy().into_owned());
            let images: Vec<PathBuf> = listing(dir)?
                .into_iter()
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str()))
                })
                .collect();
            ensure!(!images.is_empty(), "{}: no images in class folder '{}'", root.display(), classes[c]);
            samples.extend(images.into_iter().map(|p| (p, c)));
        }
        Ok(ImageFolder { root: root.to_path_buf(), classes, samples })
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// torchvision's `RandomResizedCrop(scale=(0.08, 1), ratio=(3/4, 4/3))` window: (x, y, w, h),
/// ten tries, then the centre crop of the closest allowed aspect.
pub fn random_resized_window(rng: &mut impl Rng, width: u32, height: u32) -> [f64; 4] {
    let (w, h) = (width as f64, height as f64);
    let area = w * h;
    let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.random_range(0.08..=1.0);
        let aspect = rng.random_range(lo..=hi).exp();
        let (cw, ch) = ((target * aspect).sqrt().round(), (target / aspect).sqrt().round());
        if cw > 0.0 && ch > 0.0 && cw <= w && ch <= h {
            let x = rng.random_range(0..=(w - cw) as u32) as f64;
            let y = rng.random_range(0..=(h - ch) as u32) as f64;
            return [x, y, cw, ch];
        }
    }
    let ratio = w / h;
    let (cw, ch) = if ratio < 3.0 / 4.0 {
        (w, (w / (3.0 / 4.0)).round())
    } else if ratio > 4.0 / 3.0 {
        ((h * 4.0 / 3.0).round(), h)
    } else {
        (w, h)
    };
    [((w - cw) / 2.0).floor(), ((h - ch) / 2.0).floor(), cw, ch]
}

/// The map from the image to the input for a window, mirrored when `flip`.
pub fn window_map([x, y, w, h]: [f64; 4], input: Size, flip: bool) -> Affine {
    let (sx, sy) = (input.width as f64 / w, input.height as f64 / h);
    // Pixel centres: input u samples the image at x + (u + 0.5)/sx − 0.5.
    let m = Affine([sx, 0.0, sx * (0.5 - x) - 0.5, 0.0, sy, sy * (0.5 - y) - 0.5]);
    if flip {
        Affine::mirror_x(input.width as u32).after(&m)
    } else {
        m
    }
}

/// A folder's images as a classifier's samples: the training view when `train`, else the
/// evaluation view; the label is the class index.
pub struct FolderSamples {
    pub folder: ImageFolder,
    pub input: Size,
    pub train: bool,
}

impl SampleSource for FolderSamples {
    fn len(&self) -> usize {
        self.folder.len()
    }
    fn image_path(&self, index: usize) -> &Path {
        &self.folder.samples[index].0
    }
    fn make(&self, image: &RgbImage, index: usize, seed: u64, epoch: u64) -> BatchItem {
        let label = Some(self.folder.samples[index].1);
        if !self.train {
            return BatchItem { input: eval_input(image, self.input), label, ..Default::default() };
        }
        let mut rng = sample_rng(seed, epoch, index as u64);
        let window = random_resized_window(&mut rng, image.width(), image.height());
        let flip = rng.random_bool(0.5);
        let crop = warp_rgb(image, &window_map(window, self.input, flip), self.input);
        let mut input = vec![0.0; 3 * self.input.area()];
        normalize_chw(&crop, &mut input);
        BatchItem { input, label, ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_lie_inside_and_keep_torchvisions_bounds() {
        let mut rng = sample_rng(1, 2, 3);
        for _ in 0..500 {
            let [x, y, w, h] = random_resized_window(&mut rng, 100, 60);
            assert!(x >= 0.0 && y >= 0.0 && x + w <= 100.0 && y + h <= 60.0, "{x} {y} {w} {h}");
            let share = w * h / 6000.0;
            // Rounding the sides moves the share a little around [0.08, 1].
            assert!(share > 0.06 && share <= 1.0, "{share}");
        }
    }

    #[test]
    fn a_window_maps_onto_the_input_and_flips() {
        // Window (10, 20, 40×40) → 20×20: pixel centres 10.5 + 2k map to k.
        let m = window_map([10.0, 20.0, 40.0, 40.0], Size::new(20, 20), false);
        let p = m.apply([10.5, 20.5]);
        assert!((p[0]).abs() < 1e-12 && (p[1]).abs() < 1e-12, "{p:?}");
        let p = m.apply([48.5, 58.5]);
        assert!((p[0] - 19.0).abs() < 1e-12 && (p[1] - 19.0).abs() < 1e-12, "{p:?}");
        let f = window_map([10.0, 20.0, 40.0, 40.0], Size::new(20, 20), true);
        let p = f.apply([10.5, 20.5]);
        assert!((p[0] - 19.0).abs() < 1e-12 && p[1].abs() < 1e-12, "mirrored: {p:?}");
    }
}
