//! `dypose train` (and `dypose pretrain`, the same with `model.task` set to `classify`): a config
//! (and a COCO download, generated data or image folders) in; a run directory with checkpoints,
//! metrics and curves out. One entry point for every task; validation is wired in here, where
//! the predictor is: the pose and detector tasks are handed a function that runs it on the
//! validation set.

use crate::coco::{CocoDataset, KeypointSpec};
use crate::config::{Config, Device, Task};
use crate::eval::{BoxStats, Reference};
use crate::infer::detect::{evaluate_detector, Detections};
use crate::infer::validate::{validate, ValSet, Validation};
use crate::train::tasks::{top_k_accuracy, ClassifierData};
use crate::train::{Classify, Detect, Pose, Scores, TrainOptions, TrainOutcome};
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};

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
    /// Sets `model.task` (`dypose pretrain` sets `classify`).
    pub task: Option<Task>,
}

/// What a validation found, beyond the scores the trainer keeps.
pub enum Validated {
    Pose(Validation),
    Detect(BoxStats, Detections),
    Classify(Scores),
}

/// Trains the request's config; the report is one line on how it ended.
pub fn train(req: &TrainRequest) -> Result<String> {
    let mut cfg = Config::load_as(&req.config, &req.overrides, req.task)?;
    if let Some(root) = &req.data_root {
        ensure!(
            cfg.model.task != Task::Classify,
            "--data-root points at a COCO download; a classifier trains on data.train_images and data.val_images"
        );
        cfg.use_coco_root(root);
    }
    let name = req.config.file_stem().unwrap_or_default();
    let run_dir = req.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(name));
    crate::fsutil::refuse_overwriting_inputs(&run_files(&run_dir), std::slice::from_ref(&req.config))?;
    let opts = TrainOptions { run_dir: run_dir.clone(), resume: req.resume, stop_after: req.stop_after };
    let out = run(req.device, &cfg, &opts, |_| {})?;
    let scores = out.last_scores.as_ref().map(|s| match cfg.model.task {
        Task::Pose => format!(", val AP {:.4}", s.key().unwrap_or(f64::NAN)),
        Task::Detect => format!(", val box AP {:.4}", s.key().unwrap_or(f64::NAN)),
        Task::Classify => {
            let pct = |k: usize| 100.0 * s.0[k].unwrap_or(f64::NAN);
            format!(", val top-1 {:.2}% top-5 {:.2}%", pct(0), pct(1))
        }
    });
    Ok(format!(
        "{} at epoch {}, iteration {}: {:.1} images/s{}; checkpoints in {}",
        if out.interrupted { "stopped" } else { "finished" },
        out.state.epoch,
        out.state.iteration,
        out.images_per_s,
        scores.unwrap_or_default(),
        run_dir.display()
    ))
}

/// Trains `cfg` (any task) on `device` into `opts.run_dir`, validating on the config's val
/// split; `seen` receives every validation.
pub fn run(device: Device, cfg: &Config, opts: &TrainOptions, seen: impl FnMut(Validated)) -> Result<TrainOutcome> {
    match cfg.model.task {
        Task::Pose => pose(device, cfg, opts, seen),
        Task::Detect => detector(device, cfg, opts, seen),
        Task::Classify => classifier(device, cfg, opts, seen),
    }
}

fn run_files(dir: &Path) -> Vec<PathBuf> {
    crate::train::trainer::RUN_FILES.iter().map(|f| dir.join(f)).collect()
}

/// The files a COCO run reads, refused as outputs, and the training set checked to be there.
fn check_run_files(cfg: &Config, opts: &TrainOptions) -> Result<CocoDataset> {
    let d = &cfg.data;
    let inputs: Vec<PathBuf> = [&d.train_annotations, &d.val_annotations]
        .into_iter()
        .cloned()
        .chain(d.val_boxes.clone())
        .chain(d.keypoints.clone())
        .collect();
    crate::fsutil::refuse_overwriting_inputs(&run_files(&opts.run_dir), &inputs)?;
    Config::require(&cfg.data.train_annotations, "data.train_annotations")?;
    Config::require(&cfg.data.train_images, "data.train_images")?;
    CocoDataset::load_field(&cfg.data.train_annotations, &cfg.data.keypoint_field)
}

/// The person detector (`model.task: "detect"`), with box AP on the config's val split.
fn detector(
    device: Device,
    cfg: &Config,
    opts: &TrainOptions,
    mut seen: impl FnMut(Validated),
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
    let (loader, report) = crate::train::tasks::train_loader(cfg, &spec, &train_set)?;
    crate::with_device!(device, |dev: D| {
        let validator = |net: &mut crate::model::network::Network<D>| {
            let val = val.as_ref().context("a validation without a validation set")?;
            let (stats, found) = evaluate_detector(net, cfg, val, &cfg.data.val_images)?;
            seen(Validated::Detect(stats, found));
            Ok(Scores(vec![Some(stats.ap), Some(stats.ap50), None]))
        };
        crate::train::train(dev, cfg, Detect { spec: spec.clone(), validator }, &loader, &report, opts)
    })
}

/// A pose model, with AP on the config's val split (GT boxes, and detector boxes when
/// configured).
fn pose(device: Device, cfg: &Config, opts: &TrainOptions, mut seen: impl FnMut(Validated)) -> Result<TrainOutcome> {
    let train_set = check_run_files(cfg, opts)?;
    let spec =
        super::announced(crate::coco::training_set(&train_set, cfg.data.category_id, cfg.data.keypoints.as_deref())?);
    let val = if cfg.train.val_every > 0 { Some(ValSet::load(cfg, &spec)?) } else { None };
    if let Some(note) = val.as_ref().and_then(|v| Reference::for_gt(&v.gt).note(&v.gt)) {
        eprintln!("{note}");
    }
    let (loader, report) = crate::train::tasks::train_loader(cfg, &spec, &train_set)?;
    crate::with_device!(device, |dev: D| {
        let validator = |net: &mut crate::model::network::Network<D>| {
            let val = val.as_ref().context("a validation without a validation set")?;
            let v = validate(net, cfg, &spec, val)?;
            let scores = Scores(vec![Some(v.gt.0.ap), Some(v.gt.0.ap50), v.detections.as_ref().map(|d| d.0.ap)]);
            seen(Validated::Pose(v));
            Ok(scores)
        };
        crate::train::train(dev, cfg, Pose { spec: spec.clone(), validator }, &loader, &report, opts)
    })
}

/// A classifier on the image folders `data.train_images` and `data.val_images`, with top-1 and
/// top-5 on the latter.
fn classifier(
    device: Device,
    cfg: &Config,
    opts: &TrainOptions,
    mut seen: impl FnMut(Validated),
) -> Result<TrainOutcome> {
    // A run directory inside an image folder would become a class of the next run.
    let dir = absolute(&opts.run_dir);
    for (key, data) in [("data.train_images", &cfg.data.train_images), ("data.val_images", &cfg.data.val_images)] {
        Config::require(data, key)?;
        let data = absolute(data);
        ensure!(
            !dir.starts_with(&data),
            "{}: the run directory is inside the image folder {}",
            opts.run_dir.display(),
            data.display()
        );
    }
    let data = ClassifierData::open(cfg)?;
    crate::with_device!(device, |dev: D| {
        let validator = |net: &mut crate::model::network::Network<D>| {
            let scores = top_k_accuracy(net, &data.val, cfg.input_size)?;
            seen(Validated::Classify(scores.clone()));
            Ok(scores)
        };
        let task = Classify { model: data.model.clone(), validator };
        crate::train::train(dev, cfg, task, &data.train, &data.report, opts)
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
