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

/// Generates `data/synthetic/` when it is not there.
fn ensure_synthetic_data() -> Result<()> {
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
    Ok(())
}

/// Checks that `config` is there and clears `run_dir` (only with `force` when it exists).
fn prepare(config: &str, run_dir: &str, force: bool) -> Result<()> {
    ensure!(Path::new(config).exists(), "{config} not found: run the quickstart from the repository root");
    if Path::new(run_dir).exists() {
        if !force {
            bail!("{run_dir} exists from an earlier quickstart; pass --force to replace it (or move it away)");
        }
        std::fs::remove_dir_all(run_dir).with_context(|| format!("{run_dir}: cannot remove"))?;
    }
    Ok(())
}

pub fn run(force: bool, overrides: &[String]) -> Result<String> {
    let started = std::time::Instant::now();
    prepare(CONFIG, RUN_DIR, force)?;
    let run_dir = Path::new(RUN_DIR);
    ensure_synthetic_data()?;
    let mut cfg = Config::load(Path::new(CONFIG), overrides)?;
    // The trainer validates after the last epoch whenever it validates at all; its last
    // validation is the quickstart's score.
    if cfg.train.val_every == 0 {
        cfg.train.val_every = cfg.train.epochs.max(1);
    }
    let opts = crate::train::TrainOptions { run_dir: run_dir.to_path_buf(), resume: false, stop_after: None };
    let mut last = None;
    let outcome = super::train::run(Device::Cpu, &cfg, &opts, |v| {
        if let super::train::Validated::Pose(v) = v {
            last = Some(v)
        }
    })?;
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
    let gt = crate::coco::CocoDataset::load_field(&cfg.data.val_annotations, &cfg.data.keypoint_field)?;
    let spec = crate::coco::find_keypoint_set(&gt, Some(cfg.data.category_id), cfg.data.keypoints.as_deref())?.spec;
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

pub const DETECT_CONFIG: &str = "configs/detect_quickstart.json";
pub const DETECT_RUN_DIR: &str = "runs/detect_quickstart";

/// `dypose quickstart --detector`: trains the person detector on the synthetic set, scores its
/// boxes, and, when the pose quickstart's model is there (`runs/quickstart/best.safetensors`),
/// scores that model on the detector's boxes next to GT boxes and the provided detection boxes,
/// and draws a few val images with skeletons on the detector's persons.
pub fn run_detector(force: bool, overrides: &[String]) -> Result<String> {
    let started = std::time::Instant::now();
    prepare(DETECT_CONFIG, DETECT_RUN_DIR, force)?;
    ensure_synthetic_data()?;
    let run_dir = Path::new(DETECT_RUN_DIR);
    let mut cfg = Config::load(Path::new(DETECT_CONFIG), overrides)?;
    if cfg.train.val_every == 0 {
        cfg.train.val_every = cfg.train.epochs.max(1);
    }
    let opts = crate::train::TrainOptions { run_dir: run_dir.to_path_buf(), resume: false, stop_after: None };
    let mut last = None;
    let outcome = super::train::run(Device::Cpu, &cfg, &opts, |v| {
        if let super::train::Validated::Detect(stats, found) = v {
            last = Some((stats, found))
        }
    })?;
    ensure!(!outcome.interrupted, "the quickstart was interrupted; its checkpoint is in {DETECT_RUN_DIR}");
    let (stats, found) = last.context("the quickstart trained no epoch, so nothing was scored")?;
    let boxes_json = crate::coco::box_results_json(&found.boxes);
    crate::fsutil::write_atomic(&run_dir.join("val_detections.json"), boxes_json.as_bytes())?;
    let pose = pose_on_detector_boxes(&cfg, run_dir)?;
    let summary = serde_json::json!({
        "val_box_ap": stats.ap,
        "val_box_ap50": stats.ap50,
        "box_stats": stats,
        "pose_ap": pose.as_ref().map(|p| serde_json::json!({
            "gt_boxes": p.gt, "provided_boxes": p.provided, "detector_boxes": p.detector,
        })),
        "train_seconds": outcome.state.train_seconds,
        "images_per_s": outcome.images_per_s,
        "epochs": outcome.state.epoch,
        "model": cfg.model.arch.name(),
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    crate::fsutil::write_atomic(&run_dir.join("summary.json"), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    let pose_line = match &pose {
        Some(p) => format!(
            "\npose AP of {RUN_DIR}/best.safetensors on the synthetic val set: {:.3} (GT boxes), {:.3} (provided boxes), {:.3} (this detector's boxes); drawings in {}",
            p.gt, p.provided, p.detector, run_dir.join("drawings").display()
        ),
        None => "\n(run `dypose quickstart` first to score the pose model on these boxes)".to_string(),
    };
    Ok(format!(
        "{stats}\ndetector quickstart: val box AP {:.3}, AP50 {:.3}; trained {:.0} s at {:.0} images/s; curves in {DETECT_RUN_DIR}/curves.png{pose_line}",
        stats.ap,
        stats.ap50,
        outcome.state.train_seconds,
        outcome.images_per_s,
    ))
}

/// Pose AP of the pose quickstart's model with three sources of person boxes.
struct PoseOnBoxes {
    gt: f64,
    provided: f64,
    detector: f64,
}

/// Scores `runs/quickstart/best.safetensors` (when there) on the synthetic val set with GT
/// boxes, the provided detection boxes and the boxes of the detector just trained, and draws
/// the first val images with the detector's persons.
fn pose_on_detector_boxes(cfg: &Config, run_dir: &Path) -> Result<Option<PoseOnBoxes>> {
    let pose_checkpoint = Path::new(RUN_DIR).join("best.safetensors");
    if !pose_checkpoint.exists() {
        return Ok(None);
    }
    let (gt_path, images) = (&cfg.data.val_annotations, &cfg.data.val_images);
    let provided = Path::new(DATA_DIR).join("annotations/person_detections_val.json");
    let detector = run_dir.join("best.safetensors");
    let score = |boxes: Option<&Path>, detector: Option<&Path>| -> Result<f64> {
        let req = super::eval::CheckpointEval {
            checkpoint: pose_checkpoint.clone(),
            config: None,
            gt: gt_path.clone(),
            images: images.clone(),
            boxes: boxes.map(Path::to_path_buf),
            detector: detector.map(Path::to_path_buf),
            device: Device::Cpu,
        };
        let no_file = super::eval::StatsFile { path: None, force: false };
        match super::eval::eval_checkpoint(&req, &no_file)? {
            super::eval::CheckpointStats::Pose(s) => Ok(s.ap),
            super::eval::CheckpointStats::Boxes(_) => {
                bail!("{}: a detector, not a pose model", pose_checkpoint.display())
            }
        }
    };
    let result = PoseOnBoxes {
        gt: score(None, None)?,
        provided: score(Some(&provided), None)?,
        detector: score(None, Some(&detector))?,
    };
    let gt = crate::coco::CocoDataset::load(gt_path)?;
    let first: Vec<std::path::PathBuf> = gt
        .image_ids_sorted()
        .into_iter()
        .take(DRAWINGS)
        .filter_map(|id| crate::fsutil::inside(images, &gt.image(id)?.file_name).ok())
        .collect();
    super::predict::predict(&super::predict::PredictRequest {
        checkpoint: pose_checkpoint,
        config: None,
        device: Device::Cpu,
        images: super::images::Images::Files(first),
        boxes: super::predict::BoxSource::Detector { gt: Some(gt_path.clone()), checkpoint: detector },
        out: run_dir.join("drawings"),
        flip: true,
        decoding: None,
        draw: true,
        force: false,
    })?;
    Ok(Some(result))
}
