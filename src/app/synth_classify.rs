//! `dypose synth --classify`: a generated image folder to pretrain a classifier on without a
//! download. (`dypose pretrain` itself is `train` with `model.task` set to `classify`.)

use crate::data::synth::shapes::{shape_image, CLASSES};
use anyhow::{ensure, Context, Result};
use rayon::prelude::*;
use std::path::Path;

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
