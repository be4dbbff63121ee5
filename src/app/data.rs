//! `dypose synth` and `dypose data show`: generated data sets, and augmented training samples
//! (pose crops or detector images) drawn with their targets.

use crate::coco::{CocoDataset, KeypointSpec};
use crate::config::{Config, Task};
use crate::data::detect::{detect_images, DetectSpec};
use crate::data::instances::train_instances;
use crate::data::loader::{epoch_order, load_rgb};
use crate::data::sample::SampleSpec;
use crate::data::synth::{write_dataset, Figures, SynthConfig};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What `dypose synth` generates.
pub struct SynthRequest {
    pub out: PathBuf,
    pub train: usize,
    pub val: usize,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    /// Articulated figures of this keypoint spec instead of COCO's stick persons.
    pub keypoints: Option<PathBuf>,
    pub force: bool,
}

/// `dypose synth`: COCO's stick persons, or with `keypoints` articulated figures of that spec,
/// in `out` (never over the spec file it is given).
pub fn synth(req: &SynthRequest) -> Result<String> {
    if let Some(spec) = &req.keypoints {
        let annotations = req.out.join("annotations");
        let names = [
            "keypoints.json",
            "person_keypoints_train.json",
            "person_keypoints_val.json",
            "person_detections_val.json",
        ];
        let outputs: Vec<PathBuf> = names.iter().map(|n| annotations.join(n)).collect();
        crate::fsutil::refuse_overwriting_inputs(&outputs, std::slice::from_ref(spec))?;
    }
    let figures = match &req.keypoints {
        Some(p) => Figures::Articulated(KeypointSpec::from_json_file(p)?),
        None => Figures::Persons,
    };
    let cfg = SynthConfig { width: req.width, height: req.height, seed: req.seed, ..Default::default() };
    write_dataset(&req.out, &cfg, &figures, req.train, req.val, req.force)
}

/// `dypose data show`: draws the first `count` samples of epoch 0 of the training set into
/// `out/sample_NNN.png`; returns the files written.
pub fn show_training_samples(cfg: &Config, count: usize, out: &Path, overwrite: bool) -> Result<Vec<PathBuf>> {
    Config::require(&cfg.data.train_annotations, "data.train_annotations")?;
    Config::require(&cfg.data.train_images, "data.train_images")?;
    let ds = CocoDataset::load_field(&cfg.data.train_annotations, &cfg.data.keypoint_field)?;
    if cfg.model.task == Task::Detect {
        return show_detector_samples(cfg, &ds, count, out, overwrite);
    }
    let found = crate::coco::find_keypoint_set(&ds, Some(cfg.data.category_id), cfg.data.keypoints.as_deref())?;
    let kspec = super::announced(found);
    let (instances, report) = train_instances(&ds, &cfg.data.train_images, cfg.data.category_id, kspec.len());
    eprintln!("{report}");
    let spec = SampleSpec::from_config(cfg, &kspec, true);
    let shown = Shown { count, total: instances.len(), out, overwrite };
    shown.draw(
        cfg,
        |i| &instances[i].image_path,
        |image, i| {
            let sample = spec.build(image, &instances[i], spec.augmentation(&instances[i], cfg.seed, 0, i as u64));
            crate::viz::sample_sheet(&sample, &kspec, cfg.heatmap_size, 2)
        },
    )
}

/// `data show` for a detector config: letterboxed training images with their boxes and centre
/// heatmaps, as the detector's loader makes them in epoch 0.
fn show_detector_samples(
    cfg: &Config,
    ds: &CocoDataset,
    count: usize,
    out: &Path,
    overwrite: bool,
) -> Result<Vec<PathBuf>> {
    let (images, report) = detect_images(ds, &cfg.data.train_images, cfg.data.category_id);
    eprintln!("{report}");
    let spec = DetectSpec::from_config(cfg, true);
    let shown = Shown { count, total: images.len(), out, overwrite };
    shown.draw(
        cfg,
        |i| &images[i].image_path,
        |image, i| {
            let sample = spec.build(image, &images[i], spec.augmentation(cfg.seed, 0, i as u64));
            crate::viz::detect_sample_sheet(&sample, &spec.codec, 2)
        },
    )
}

/// The first `count` of `total` training samples in epoch 0's order, drawn into
/// `out/sample_NNN.png`.
struct Shown<'a> {
    count: usize,
    total: usize,
    out: &'a Path,
    overwrite: bool,
}

impl Shown<'_> {
    /// Refuses outputs that would replace an input (the images shown, the annotation file) or,
    /// without `overwrite`, an existing file; then draws each sample in turn (an unreadable
    /// image is reported and skipped). Returns the files written.
    fn draw<'p>(
        &self,
        cfg: &Config,
        path_of: impl Fn(usize) -> &'p Path,
        draw: impl Fn(&image::RgbImage, usize) -> image::RgbImage,
    ) -> Result<Vec<PathBuf>> {
        let order = epoch_order(self.total, cfg.seed, 0, true);
        let indices = &order[..self.count.min(order.len())];
        let outputs: Vec<PathBuf> = (0..self.count).map(|k| self.out.join(format!("sample_{k:03}.png"))).collect();
        let mut inputs: Vec<PathBuf> = indices.iter().map(|&i| path_of(i).to_path_buf()).collect();
        inputs.push(cfg.data.train_annotations.clone());
        crate::fsutil::refuse_overwriting_inputs(&outputs, &inputs)?;
        crate::fsutil::refuse_existing(&outputs, self.overwrite)?;
        let mut written = Vec::new();
        for &i in indices {
            let image = match load_rgb(path_of(i)) {
                Ok(img) => img,
                Err(e) => {
                    eprintln!("skipped: {e}");
                    continue;
                }
            };
            let path = self.out.join(format!("sample_{:03}.png", written.len()));
            crate::viz::save_image(&draw(&image, i), &path, self.overwrite)?;
            written.push(path);
        }
        Ok(written)
    }
}
