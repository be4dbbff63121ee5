//! `dypose train`: a config (and a COCO download or generated data) in; a run directory with
//! checkpoints, metrics and curves out. Validation is wired in here: the trainer is handed a
//! function that runs the predictor on the validation set.

use crate::coco::{CocoDataset, KeypointSpec};
use crate::config::{Config, Device, Task};
use crate::eval::{BoxStats, Reference};
use crate::infer::detect::{evaluate_detector, Detections};
use crate::infer::validate::{validate, ValSet, Validation};
use crate::train::{TrainOptions, TrainOutcome, ValScores};
use anyhow::{Context, Result};
use std::path::PathBuf;

pub struct TrainRequest {
    pub config: PathBuf,
    /// `--set key=value` overrides.
    pub overrides: Vec<String>,
    /// The run directory (default: `runs/<config name>`).
    pub out: Option<PathBuf>,
    pub resume: bool,
    /// A COCO download whose standard layout replaces the config's data paths.
    pub data_root: Option<PathBuf>,
    pub device: Device,
    pub stop_after: Option<usize>,
}

/// Trains the request's config; the report is one line on how it ended.
pub fn train(req: &TrainRequest) -> Result<String> {
    let mut cfg = Config::load(&req.config, &req.overrides)?;
    if let Some(root) = &req.data_root {
        cfg.use_coco_root(root);
    }
    let name = req.config.file_stem().unwrap_or_default();
    let run_dir = req.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(name));
    let outputs: Vec<PathBuf> = crate::train::trainer::RUN_FILES.iter().map(|f| run_dir.join(f)).collect();
    crate::fsutil::refuse_overwriting_inputs(&outputs, std::slice::from_ref(&req.config))?;
    let opts = TrainOptions { run_dir: run_dir.clone(), resume: req.resume, stop_after: req.stop_after };
    let (out, what) = match cfg.model.task {
        Task::Pose => (run(req.device, &cfg, &opts, |_| {})?, "val AP"),
        Task::Detect => (run_detector(req.device, &cfg, &opts, |_, _| {})?, "val box AP"),
    };
    Ok(format!(
        "{} at epoch {}, iteration {}: {:.1} images/s{}; checkpoints in {}",
        if out.interrupted { "stopped" } else { "finished" },
        out.state.epoch,
        out.state.iteration,
        out.images_per_s,
        out.last_scores.map(|v| format!(", {what} {:.4}", v.ap)).unwrap_or_default(),
        run_dir.display()
    ))
}

/// The files a run reads, refused as outputs, and the training set checked to be there.
fn check_run_files(cfg: &Config, opts: &TrainOptions) -> Result<CocoDataset> {
    let d = &cfg.data;
    let inputs: Vec<PathBuf> = [&d.train_annotations, &d.val_annotations]
        .into_iter()
        .cloned()
        .chain(d.val_boxes.clone())
        .chain(d.keypoints.clone())
        .collect();
    let outputs: Vec<PathBuf> = crate::train::trainer::RUN_FILES.iter().map(|f| opts.run_dir.join(f)).collect();
    crate::fsutil::refuse_overwriting_inputs(&outputs, &inputs)?;
    Config::require(&cfg.data.train_annotations, "data.train_annotations")?;
    Config::require(&cfg.data.train_images, "data.train_images")?;
    CocoDataset::load_field(&cfg.data.train_annotations, &cfg.data.keypoint_field)
}

/// Trains the person detector `cfg` describes (`model.task: "detect"`) on `device`, with box AP
/// on the config's val split; `seen` receives every validation's stats and boxes.
pub fn run_detector(
    device: Device,
    cfg: &Config,
    opts: &TrainOptions,
    mut seen: impl FnMut(BoxStats, Detections),
) -> Result<TrainOutcome> {
    let train_set = check_run_files(cfg, opts)?;
    // The detector needs no keypoint set; its checkpoints still name the data's, when it has one,
    // so that every checkpoint opens the same way.
    let spec = crate::coco::training_set(&train_set, cfg.data.category_id, cfg.data.keypoints.as_deref())
        .map_or_else(|_| KeypointSpec::coco17(), |found| found.spec);
    let val = if cfg.train.val_every > 0 {
        Config::require(&cfg.data.val_annotations, "data.val_annotations")?;
        Config::require(&cfg.data.val_images, "data.val_images")?;
        Some(CocoDataset::load(&cfg.data.val_annotations)?)
    } else {
        None
    };
    crate::with_device!(device, |dev: D| {
        crate::train::train(dev, cfg, &spec, &train_set, opts, |net| {
            let val = val.as_ref().context("a validation without a validation set")?;
            let (stats, found) = evaluate_detector(net, cfg, val, &cfg.data.val_images)?;
            seen(stats, found);
            Ok(ValScores { ap: stats.ap, ap50: stats.ap50, ap_detector_boxes: None })
        })
    })
}

/// Trains `cfg` on `device` with validation on the config's val split (GT boxes, and detector
/// boxes when configured); `seen` receives every validation, predictions included.
pub fn run(
    device: Device,
    cfg: &Config,
    opts: &TrainOptions,
    mut seen: impl FnMut(Validation),
) -> Result<TrainOutcome> {
    anyhow::ensure!(
        cfg.model.task == Task::Pose,
        "a detector config (model.task \"detect\") trains through run_detector"
    );
    let train_set = check_run_files(cfg, opts)?;
    let spec =
        super::announced(crate::coco::training_set(&train_set, cfg.data.category_id, cfg.data.keypoints.as_deref())?);
    let val = if cfg.train.val_every > 0 { Some(ValSet::load(cfg, &spec)?) } else { None };
    if let Some(note) = val.as_ref().and_then(|v| Reference::for_gt(&v.gt).note(&v.gt)) {
        eprintln!("{note}");
    }
    crate::with_device!(device, |dev: D| {
        crate::train::train(dev, cfg, &spec, &train_set, opts, |net| {
            let val = val.as_ref().context("a validation without a validation set")?;
            let v = validate(net, cfg, &spec, val)?;
            let scores = ValScores {
                ap: v.gt.0.ap,
                ap50: v.gt.0.ap50,
                ap_detector_boxes: v.detections.as_ref().map(|d| d.0.ap),
            };
            seen(v);
            Ok(scores)
        })
    })
}
