//! `dypose quickstart`: the whole pipeline on the CPU in minutes, on generated data. Generates
//! `data/synthetic/` when absent, trains `configs/quickstart.json` into `runs/quickstart/`,
//! scores the synthetic val split with GT and detector boxes, draws a few val images, and writes
//! `runs/quickstart/summary.json`.

use crate::config::{Config, Device};
use crate::infer::results_of;
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;

pub const CONFIG: &str = "configs/quickstart.json";
pub const RUN_DIR: &str = "runs/quickstart";
pub const DATA_DIR: &str = "data/synthetic";
/// Synthetic train and val images generated when `data/synthetic` is absent.
pub const TRAIN_IMAGES: usize = 3000;
pub const VAL_IMAGES: usize = 300;
const DRAWINGS: usize = 6;

pub fn run(force: bool, overrides: &[String]) -> Result<String> {
    let started = std::time::Instant::now();
    ensure!(Path::new(CONFIG).exists(), "{CONFIG} not found: run the quickstart from the repository root");
    let run_dir = Path::new(RUN_DIR);
    if run_dir.exists() {
        if !force {
            bail!("{RUN_DIR} exists from an earlier quickstart; pass --force to replace it (or move it away)");
        }
        std::fs::remove_dir_all(run_dir).with_context(|| format!("{RUN_DIR}: cannot remove"))?;
    }
    if !Path::new(DATA_DIR).join("annotations/person_keypoints_val.json").exists() {
        eprintln!("generating the synthetic data set in {DATA_DIR} ({TRAIN_IMAGES} train, {VAL_IMAGES} val images)");
        let cfg = crate::data::synth::SynthConfig::default();
        eprintln!(
            "{}",
            crate::data::synth::write_dataset(
                Path::new(DATA_DIR),
                &cfg,
                &crate::data::synth::Figures::Persons,
                TRAIN_IMAGES,
                VAL_IMAGES,
                false
            )?
        );
    }
    let mut cfg = Config::load(Path::new(CONFIG), overrides)?;
    // The trainer validates after the last epoch whenever it validates at all; its last
    // validation is the quickstart's score.
    if cfg.train.val_every == 0 {
        cfg.train.val_every = cfg.train.epochs.max(1);
    }
    let opts = crate::train::TrainOptions { run_dir: run_dir.to_path_buf(), resume: false, stop_after: None };
    let mut last = None;
    let outcome = super::train::run(Device::Cpu, &cfg, &opts, |v| last = Some(v))?;
    ensure!(!outcome.interrupted, "the quickstart was interrupted; its checkpoint is in {RUN_DIR}");
    let val = last.as_ref().context("the quickstart trained no epoch, so nothing was scored")?;
    let (stats, preds) = &val.gt;
    let dets = val.detections.as_ref();
    let results = crate::coco::results_json(&results_of(&preds.persons, cfg.data.category_id));
    crate::fsutil::write_atomic(&run_dir.join("val_results.json"), results.as_bytes())?;

    // Draw the detector-box predictions (what a user without GT boxes gets) on a few val images.
    let drawn_from = dets.map(|d| &d.1).unwrap_or(preds);
    // The first val images with labelled persons (GT-box predictions come one image after another).
    let mut image_ids: Vec<i64> = preds.persons.iter().map(|p| p.image_id).collect();
    image_ids.dedup();
    let gt = crate::coco::CocoDataset::load(&cfg.data.val_annotations)?;
    let spec = gt.keypoint_spec(cfg.data.category_id)?;
    let draw_dir = run_dir.join("drawings");
    for id in image_ids.into_iter().take(DRAWINGS) {
        let Some(rec) = gt.image(id) else { continue };
        let path = crate::fsutil::inside(&cfg.data.val_images, &rec.file_name).map_err(anyhow::Error::msg)?;
        let img = crate::data::loader::load_rgb(&path).map_err(anyhow::Error::msg)?;
        let persons: Vec<_> = drawn_from.persons.iter().filter(|p| p.image_id == id).cloned().collect();
        let name = path.file_stem().unwrap_or_default().to_string_lossy().to_string();
        super::predict::draw_persons(&img, &persons, &spec, &draw_dir.join(format!("{name}.png")), false)?;
    }

    let summary = serde_json::json!({
        "val_ap": stats.ap,
        "val_ap50": stats.ap50,
        "val_ap_detector_boxes": dets.map(|d| d.0.ap),
        "train_seconds": outcome.state.train_seconds,
        "images_per_s": outcome.images_per_s,
        "val_crops_per_s": preds.crops as f64 / val.gt_seconds,
        "epochs": outcome.state.epoch,
        "iterations": outcome.state.iteration,
        "model": cfg.model.arch.name(),
        "total_seconds": started.elapsed().as_secs_f64(),
        "stats_gt_boxes": stats,
    });
    let text = serde_json::to_string_pretty(&summary)?;
    crate::fsutil::write_atomic(&run_dir.join("summary.json"), text.as_bytes())?;
    Ok(format!(
        "{}\nquickstart: val AP {:.3} (GT boxes){}; trained {:.0} s at {:.0} images/s; drawings in {}, curves in {}/curves.png",
        stats,
        stats.ap,
        dets.map(|d| format!(", {:.3} (detector boxes)", d.0.ap)).unwrap_or_default(),
        outcome.state.train_seconds,
        outcome.images_per_s,
        draw_dir.display(),
        RUN_DIR
    ))
}
