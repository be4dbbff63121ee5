//! `dypose pretrain` and `dypose synth --classify`: classification pretraining on an image
//! folder, and a generated folder to pretrain on without a download.

use crate::config::{Device, PretrainConfig};
use crate::data::synth::shapes::{shape_image, CLASSES};
use anyhow::{ensure, Context, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

pub struct PretrainRequest {
    pub config: PathBuf,
    pub overrides: Vec<String>,
    /// The run directory (default: `runs/<config name>`).
    pub out: Option<PathBuf>,
    pub resume: bool,
    pub device: Device,
    pub stop_after: Option<usize>,
}

/// Pretrains the request's config; the report is one line on how it ended.
pub fn pretrain(req: &PretrainRequest) -> Result<String> {
    let cfg = PretrainConfig::load(&req.config, &req.overrides)?;
    let name = req.config.file_stem().unwrap_or_default();
    let dir = req.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(name));
    // A run directory inside an image folder would become a class of the next run.
    for data in [&cfg.train_dir, &cfg.val_dir] {
        let (d, data) = (absolute(&dir), absolute(data));
        ensure!(
            !d.starts_with(&data),
            "{}: the run directory is inside the image folder {}",
            dir.display(),
            data.display()
        );
    }
    let outputs: Vec<PathBuf> = crate::train::pretrain::RUN_FILES.iter().map(|f| dir.join(f)).collect();
    crate::fsutil::refuse_overwriting_inputs(&outputs, std::slice::from_ref(&req.config))?;
    let out = crate::with_device!(req.device, |dev: D| {
        crate::train::pretrain::pretrain(dev, &cfg, &dir, req.resume, req.stop_after)
    })?;
    let accuracy = out
        .last_accuracy
        .map_or(String::new(), |(t1, t5)| format!(", val top-1 {:.2}% top-5 {:.2}%", 100.0 * t1, 100.0 * t5));
    Ok(format!(
        "{} at epoch {}, iteration {}{accuracy}; checkpoints in {}",
        if out.interrupted { "stopped" } else { "finished" },
        out.state.epoch,
        out.state.iteration,
        dir.display()
    ))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Writes `train/<class>/NNNNN.png` and `val/<class>/NNNNN.png`: `train` and `val` images in
/// all, spread evenly over the ten classes, `size`×`size` pixels.
pub fn synth_classify(out: &Path, train: usize, val: usize, size: u32, seed: u64, force: bool) -> Result<String> {
    ensure!((16..=1024).contains(&size), "--image-size must be between 16 and 1024");
    if !force && (out.join("train").exists() || out.join("val").exists()) {
        anyhow::bail!("{}: a data set is already there (pass --force to replace it)", out.display());
    }
    for (split, total, split_seed) in [("train", train, 1u64), ("val", val, 2u64)] {
        let per_class = total.div_ceil(CLASSES.len()).max(1);
        let jobs: Vec<(usize, usize)> = (0..CLASSES.len()).flat_map(|c| (0..per_class).map(move |i| (c, i))).collect();
        let bar = crate::progress::bar(jobs.len() as u64, split, "images");
        jobs.par_iter().try_for_each(|&(c, i)| -> Result<()> {
            let img = shape_image(seed, split_seed, c, i as u64, size);
            let mut bytes = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)?;
            let path = out.join(split).join(CLASSES[c]).join(format!("{i:05}.png"));
            crate::fsutil::write_atomic(&path, &bytes).with_context(|| format!("{}", path.display()))?;
            bar.inc(1);
            Ok(())
        })?;
        bar.finish_and_clear();
    }
    Ok(format!(
        "{}: {} classes, {} train and {} val images per class ({size}×{size})",
        out.display(),
        CLASSES.len(),
        train.div_ceil(CLASSES.len()).max(1),
        val.div_ceil(CLASSES.len()).max(1)
    ))
}
