//! The task seam of the one training core: what a pose model, a person detector and a
//! classifier each bring to a run (their network, loss, validation, score columns and what
//! "best" means). Everything else (run directory, resume, checkpoints, metrics, the epoch loop)
//! is the trainer's, once for all three.
//!
//! Each task is handed its validation as a function: the pose model's and the detector's run
//! the predictor, which lives above training; a classifier's is usually [`top_k_accuracy`].

use super::center_loss::{center_loss, surrogate};
use super::loss::{heatmap_loss, smoothed_cross_entropy};
use super::metrics::Curves;
use crate::coco::{CocoDataset, KeypointSpec};
use crate::config::{ClassifierModel, Config, Size, Task as TaskKind};
use crate::data::detect::{detect_images, DetectSpec};
use crate::data::folder::{FolderSamples, ImageFolder};
use crate::data::instances::train_instances;
use crate::data::loader::{Batch, DetectSamples, Loader, LoaderConfig};
use crate::data::sample::SampleSpec;
use crate::model::backend::ConvBackend;
use crate::model::blueprint::Blueprint;
use crate::model::checkpoint::CheckpointMeta;
use crate::model::conv::T4;
use crate::model::layers::Ctx;
use crate::model::network::Network;
use anyhow::{bail, ensure, Result};
use dfdx::prelude::*;
use std::sync::Arc;

/// A validation's numbers, in the order of the task's score columns (absent where a column does
/// not apply, e.g. AP on detector boxes without detector boxes).
#[derive(Debug, Clone, PartialEq)]
pub struct Scores(pub Vec<Option<f64>>);

impl Scores {
    /// The first column: what "best" maximises.
    pub fn key(&self) -> Option<f64> {
        self.0.first().copied().flatten()
    }
}

/// A traced scalar loss, ready for `backward`.
pub type Loss<D> = Tensor<Rank0, f32, D, OwnedTape<f32, D>>;

/// What one kind of model brings to a training run.
pub trait Task<D: ConvBackend> {
    /// The score columns of `metrics.csv`; the first is what "best" maximises (higher is better)
    /// and the key `best.safetensors` records it under.
    fn score_columns(&self) -> &'static [&'static str];
    /// The curves' right axis.
    fn curves(&self) -> Curves;
    /// A freshly initialised network for the task.
    fn network(&self, dev: &D, cfg: &Config) -> Result<Network<D>>;
    /// Writes what every checkpoint of the run carries besides the config (the keypoint set, the
    /// classifier's description).
    fn describe(&self, meta: &mut CheckpointMeta) -> Result<()>;
    /// The loss of a batch at temperature `tau` (training mode), and its value.
    fn loss(&self, net: &mut Network<D>, cfg: &Config, batch: Batch, tau: f32) -> Result<(Loss<D>, f64)>;
    /// Scores the network on the validation data.
    fn validate(&mut self, net: &mut Network<D>) -> Result<Scores>;
    /// One line on a validation, for the log.
    fn summary(&self, scores: &Scores) -> String;
}

fn input<D: ConvBackend>(net: &Network<D>, cfg: &Config, batch: &mut Batch) -> T4<D> {
    let (n, s) = (batch.len(), cfg.input_size);
    net.device().tensor_from_vec(std::mem::take(&mut batch.inputs), (n, 3, s.height, s.width))
}

fn describe_keypoints(spec: &KeypointSpec, meta: &mut CheckpointMeta) -> Result<()> {
    meta.keypoints = Some(serde_json::to_string(spec)?);
    Ok(())
}

/// Top-down pose: one heatmap per joint of `spec`, the heatmap loss, AP by `validator`.
pub struct Pose<V> {
    pub spec: KeypointSpec,
    pub validator: V,
}

impl<D: ConvBackend, V: FnMut(&mut Network<D>) -> Result<Scores>> Task<D> for Pose<V> {
    fn score_columns(&self) -> &'static [&'static str] {
        &["val_ap", "val_ap50", "val_ap_dets"]
    }
    fn curves(&self) -> Curves {
        Curves { title: "training", axis: "val AP", series: &[("GT boxes", 0), ("detector boxes", 2)] }
    }
    fn network(&self, dev: &D, cfg: &Config) -> Result<Network<D>> {
        Ok(Network::new(dev, &Blueprint::for_config(cfg, self.spec.len())?, cfg.seed))
    }
    fn describe(&self, meta: &mut CheckpointMeta) -> Result<()> {
        describe_keypoints(&self.spec, meta)
    }
    fn loss(&self, net: &mut Network<D>, cfg: &Config, mut batch: Batch, tau: f32) -> Result<(Loss<D>, f64)> {
        let (n, j, h) = (batch.len(), self.spec.len(), cfg.heatmap_size);
        let x = input(net, cfg, &mut batch);
        let pred = net.forward(x.leaky_trace(), Ctx::train(tau));
        let dev = net.device();
        let target: T4<D> = dev.tensor_from_vec(batch.targets, (n, j, h.height, h.width));
        let weights = dev.tensor_from_vec(batch.weights, (n, j));
        let loss = heatmap_loss(pred, target, weights);
        let value = loss.as_vec()[0] as f64;
        Ok((loss, value))
    }
    fn validate(&mut self, net: &mut Network<D>) -> Result<Scores> {
        (self.validator)(net)
    }
    fn summary(&self, s: &Scores) -> String {
        let mut line =
            format!("val AP {:.4} AP50 {:.4} (GT boxes)", s.key().unwrap_or(f64::NAN), s.0[1].unwrap_or(f64::NAN));
        if let Some(d) = s.0[2] {
            line += &format!(", AP {d:.4} (detector boxes)");
        }
        line
    }
}

/// The person detector: centre heatmap and box sides, CenterNet's focal loss and GIoU, box AP
/// by `validator`. Its checkpoints name the data's keypoint set, so every checkpoint opens the
/// same way.
pub struct Detect<V> {
    pub spec: KeypointSpec,
    pub validator: V,
}

impl<D: ConvBackend, V: FnMut(&mut Network<D>) -> Result<Scores>> Task<D> for Detect<V> {
    fn score_columns(&self) -> &'static [&'static str] {
        &["val_ap", "val_ap50", "val_ap_dets"]
    }
    fn curves(&self) -> Curves {
        Curves { title: "training", axis: "val box AP", series: &[("boxes", 0)] }
    }
    fn network(&self, dev: &D, cfg: &Config) -> Result<Network<D>> {
        let mut net = Network::new(dev, &Blueprint::for_config(cfg, self.spec.len())?, cfg.seed);
        // CenterNet's prior: every cell starts at p = 0.1 of being a centre; boxes start at
        // e ≈ 2.7 cells from each side (ln distance 1), not at zero.
        net.set_output_bias(0, -(0.9f32 / 0.1).ln());
        for side in 1..=4 {
            net.set_output_bias(side, 1.0);
        }
        Ok(net)
    }
    fn describe(&self, meta: &mut CheckpointMeta) -> Result<()> {
        describe_keypoints(&self.spec, meta)
    }
    fn loss(&self, net: &mut Network<D>, cfg: &Config, mut batch: Batch, tau: f32) -> Result<(Loss<D>, f64)> {
        let x = input(net, cfg, &mut batch);
        let pred = net.forward(x.leaky_trace(), Ctx::train(tau));
        let c = center_loss(&pred.as_vec(), &batch.targets, cfg.heatmap_size.area(), cfg.detect.box_weight);
        Ok((surrogate(pred, &c), c.total))
    }
    fn validate(&mut self, net: &mut Network<D>) -> Result<Scores> {
        (self.validator)(net)
    }
    fn summary(&self, s: &Scores) -> String {
        format!("val box AP {:.4} AP50 {:.4}", s.key().unwrap_or(f64::NAN), s.0[1].unwrap_or(f64::NAN))
    }
}

/// An image classifier (backbone pretraining): label-smoothed cross-entropy, top-1 and top-5
/// by `validator` (usually [`top_k_accuracy`] on the validation folder).
pub struct Classify<V> {
    pub model: ClassifierModel,
    pub validator: V,
}

impl<D: ConvBackend, V: FnMut(&mut Network<D>) -> Result<Scores>> Task<D> for Classify<V> {
    fn score_columns(&self) -> &'static [&'static str] {
        &["val_top1", "val_top5"]
    }
    fn curves(&self) -> Curves {
        Curves { title: "classifier training", axis: "val accuracy", series: &[("top-1", 0), ("top-5", 1)] }
    }
    fn network(&self, dev: &D, cfg: &Config) -> Result<Network<D>> {
        Ok(Network::new(dev, &Blueprint::classifier(&self.model)?, cfg.seed))
    }
    fn describe(&self, meta: &mut CheckpointMeta) -> Result<()> {
        meta.classifier = Some(self.model.clone());
        Ok(())
    }
    fn loss(&self, net: &mut Network<D>, cfg: &Config, mut batch: Batch, tau: f32) -> Result<(Loss<D>, f64)> {
        let x = input(net, cfg, &mut batch);
        let logits = net.logits(x.leaky_trace(), Ctx::train(tau));
        let loss = smoothed_cross_entropy(logits, &batch.labels, cfg.train.label_smoothing as f32);
        let value = loss.as_vec()[0] as f64;
        Ok((loss, value))
    }
    fn validate(&mut self, net: &mut Network<D>) -> Result<Scores> {
        (self.validator)(net)
    }
    fn summary(&self, s: &Scores) -> String {
        let pct = |k: usize| 100.0 * s.0[k].unwrap_or(f64::NAN);
        format!("val top-1 {:.2}% top-5 {:.2}%", pct(0), pct(1))
    }
}

/// Top-1 and top-5 accuracy of a classifier over one pass of `val`'s batches (inference mode).
pub fn top_k_accuracy<D: ConvBackend>(net: &mut Network<D>, val: &Loader, input: Size) -> Result<Scores> {
    let (mut top1, mut top5, mut n) = (0usize, 0usize, 0usize);
    let mut batches = val.epoch(0);
    for batch in batches.by_ref().filter(|b| !b.is_empty()) {
        let x = net.device().tensor_from_vec(batch.inputs, (batch.labels.len(), 3, input.height, input.width));
        let logits = net.logits(x, Ctx::INFERENCE).as_vec();
        let c = logits.len() / batch.labels.len();
        for (row, &l) in logits.chunks_exact(c).zip(&batch.labels) {
            let above = row.iter().filter(|&&v| v > row[l]).count();
            top1 += usize::from(above == 0);
            top5 += usize::from(above < 5);
        }
        n += batch.labels.len();
    }
    // Every validation image counts: one that cannot be read stops the run (as pose validation
    // does) rather than shrinking the denominator.
    if let Some((path, e)) = batches.report().failed.iter().next() {
        bail!("validation: {} images could not be read, e.g. {}: {e}", batches.report().failed.len(), path.display());
    }
    ensure!(n > 0, "the validation folder has no readable image");
    Ok(Scores(vec![Some(top1 as f64 / n as f64), Some(top5 as f64 / n as f64)]))
}

/// The loader settings of a run's training batches.
fn train_loader_config(cfg: &Config) -> LoaderConfig {
    LoaderConfig {
        batch_size: cfg.loader.batch_size,
        seed: cfg.seed,
        shuffle: true,
        prefetch: cfg.loader.prefetch,
        workers: cfg.loader.workers,
        drop_last: true,
    }
}

/// The training batches of a pose model (person crops of `spec`'s joints) or a detector (whole
/// images), and a line on what the training set holds.
pub fn train_loader(cfg: &Config, spec: &KeypointSpec, train_set: &CocoDataset) -> Result<(Loader, String)> {
    let loader_cfg = train_loader_config(cfg);
    let (loader, report, what) = match cfg.model.task {
        TaskKind::Pose => {
            let (instances, report) =
                train_instances(train_set, &cfg.data.train_images, cfg.data.category_id, spec.len());
            let loader = Loader::new(instances, SampleSpec::from_config(cfg, spec, true), loader_cfg)?;
            (loader, report.to_string(), "persons")
        }
        TaskKind::Detect => {
            let (images, report) = detect_images(train_set, &cfg.data.train_images, cfg.data.category_id);
            let source = DetectSamples { images, spec: DetectSpec::from_config(cfg, true) };
            (Loader::of(Arc::new(source), loader_cfg)?, report.to_string(), "images")
        }
        TaskKind::Classify => bail!("a classifier trains on image folders (ClassifierData)"),
    };
    ensure!(
        loader.batches_per_epoch() > 0,
        "the train set has {} {what}, fewer than one batch of {}",
        loader.len(),
        cfg.loader.batch_size
    );
    Ok((loader, format!("train set {}: {report}", train_set.source.display())))
}

/// A classifier's data: the classifier `cfg` describes over the class folders of
/// `data.train_images`, its training batches (torchvision's training view), its validation
/// batches of `data.val_images` (evaluation view, file order), and a line on what they hold.
pub struct ClassifierData {
    pub model: ClassifierModel,
    pub train: Loader,
    pub val: Loader,
    pub report: String,
}

impl ClassifierData {
    pub fn open(cfg: &Config) -> Result<ClassifierData> {
        let (train_dir, val_dir) = (&cfg.data.train_images, &cfg.data.val_images);
        let train = ImageFolder::open(train_dir)?;
        let val = ImageFolder::open(val_dir)?;
        ensure!(
            train.classes == val.classes,
            "{} and {} hold different classes",
            train_dir.display(),
            val_dir.display()
        );
        let m = &cfg.model;
        let model = ClassifierModel {
            arch: m.arch,
            width: m.width,
            kernels: m.kernels,
            dynamic_shortcut: m.dynamic_shortcut,
            classes: train.classes.len(),
            input_size: cfg.input_size,
            class_names: train.classes.clone(),
            classifier_hidden: None,
        };
        let report = format!(
            "classifier {} on {} images of {} classes, validating on {}",
            m.arch,
            train.len(),
            train.classes.len(),
            val.len()
        );
        let input = cfg.input_size;
        let train =
            Loader::of(Arc::new(FolderSamples { folder: train, input, train: true }), train_loader_config(cfg))?;
        ensure!(
            train.batches_per_epoch() > 0,
            "{}: fewer images than one batch of {}",
            train_dir.display(),
            cfg.loader.batch_size
        );
        let val_cfg = LoaderConfig { shuffle: false, drop_last: false, ..train_loader_config(cfg) };
        let val = Loader::of(Arc::new(FolderSamples { folder: val, input, train: false }), val_cfg)?;
        Ok(ClassifierData { model, train, val, report })
    }
}
