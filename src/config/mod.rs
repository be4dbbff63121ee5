//! Experiment configuration: JSON, every unset key taking its task's default, unknown keys
//! rejected, relative paths resolved from the config file, `--set key=value` overrides applied
//! before validation. One config for every task (pose, detect, classify).
//!
//! A leaf: plain serde types that import no other module of the crate. The types built from a
//! config live beside their own definitions (`Blueprint::for_config`, `SampleSpec::from_config`,
//! `PredictOptions::from_config`), and checks that need them run there.

mod legacy;
pub mod reference;
mod types;

pub use legacy::PretrainConfig;
pub use types::{
    Arch, Decoding, Device, HeadKind, ImageFormat, IouType, KeypointMetric, LrSchedule, Optimizer, Size, Task,
};

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Upper bounds of config values (far above any real recipe): a mistyped number is refused
/// instead of allocating gigabytes.
pub struct Limits {
    pub image_side: usize,
    pub batch: usize,
    pub prefetch: usize,
    pub workers: usize,
    pub kernels: usize,
    pub head_channels: usize,
    pub head_layers: usize,
    pub joints: usize,
}

pub const LIMITS: Limits = Limits {
    image_side: 4096,
    batch: 4096,
    prefetch: 256,
    workers: 1024,
    kernels: 64,
    head_channels: 4096,
    head_layers: 5,
    joints: 1024,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Derives every random stream (shuffling, augmentation).
    pub seed: u64,
    pub data: DataConfig,
    /// Network input, `[w, h]` in the file.
    pub input_size: Size,
    /// Heatmaps, `[w, h]` in the file; the input must be an integer multiple.
    pub heatmap_size: Size,
    pub sigma: f32,
    /// DarkPose targets centred on the exact location.
    pub unbiased_targets: bool,
    /// Person box padding before cropping.
    pub box_padding: f64,
    pub augment: AugmentConfig,
    pub loader: LoaderSection,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub val: ValConfig,
    /// The person detector's targets, augmentation and decoding (`model.task: "detect"`).
    #[serde(skip_serializing_if = "DetectConfig::is_default")]
    pub detect: DetectConfig,
}

/// A CenterNet-style person detector (Zhou et al., "Objects as Points", 2019): a centre heatmap,
/// box sizes and sub-pixel offsets at the head's stride, read off by 3×3 peak picking.
/// `input_size` is the letterboxed image; `augment.flip_prob` and `augment.color_jitter` apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// The centre Gaussian's σ is α·w/6 across and α·h/6 down, and the central α·w × α·h of
    /// each box regresses it (TTFNet's α = 0.54), in heatmap cells.
    pub gaussian_alpha: f64,
    /// Loss weight of the box regression, GIoU (the heatmap's is 1; TTFNet's 5).
    pub box_weight: f64,
    /// Random scaling of the letterboxed image in [1 − s, 1 + s] while training.
    pub scale_range: f64,
    /// Random shift of the image centre, a fraction of the input size, while training.
    pub shift: f64,
    /// Peaks kept per image (top-K), for evaluation and for the pose model.
    pub max_detections: usize,
    /// Peaks scoring below this are dropped when evaluating (low, as box AP rewards recall).
    pub min_score: f64,
    /// Boxes handed to the pose model: score at least this, then box NMS at `nms_iou`.
    pub person_score: f64,
    pub nms_iou: f64,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            gaussian_alpha: 0.54,
            box_weight: 5.0,
            scale_range: 0.3,
            shift: 0.1,
            max_detections: 100,
            min_score: 0.01,
            person_score: 0.3,
            nms_iou: 0.6,
        }
    }
}

impl DetectConfig {
    pub fn is_default(&self) -> bool {
        *self == DetectConfig::default()
    }
}

/// Training-time augmentation, in the order SimpleBaseline applies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    pub flip_prob: f64,
    /// s = clip(N(0,1)·f + 1, 1 − f, 1 + f).
    pub scale_factor: f64,
    /// r = clip(N(0,1)·f, −2f, 2f), applied with `rotation_prob`.
    pub rotation_factor: f64,
    pub rotation_prob: f64,
    pub half_body_prob: f64,
    /// Half-body needs more than this many labelled joints.
    pub half_body_min_joints: usize,
    pub half_body_padding: f64,
    /// Joints of the upper body (0-based); default: the keypoint set's `upper_body`, and no
    /// half-body augmentation for a set that names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upper_body: Option<Vec<usize>>,
    /// Colour jitter strength j: brightness, contrast and saturation factors drawn from
    /// [1 − j, 1 + j]. 0 (the reference recipe) turns it off.
    pub color_jitter: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            flip_prob: 0.5,
            scale_factor: 0.35,
            rotation_factor: 45.0,
            rotation_prob: 0.6,
            half_body_prob: 0.3,
            half_body_min_joints: 8,
            half_body_padding: 1.5,
            upper_body: None,
            color_jitter: 0.0,
        }
    }
}

/// The optimisation recipe (SimpleBaseline/mmpose defaults) and the trainer's habits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    /// The optimiser: `adam` (pose and detector) or `sgd` (classifiers).
    pub optimizer: Optimizer,
    /// Peak learning rate.
    pub lr: f64,
    /// SGD's momentum (`sgd` only).
    pub momentum: f64,
    /// Nesterov momentum (`sgd` only).
    pub nesterov: bool,
    /// `step`: multiplied by `lr_factor` at the start of each of `lr_steps`; `cosine`: half a
    /// cosine from lr after the warm-up to 0 at the end of the last epoch (`lr_steps` unused).
    pub lr_schedule: LrSchedule,
    /// Epochs at whose start the learning rate is multiplied by `lr_factor`.
    pub lr_steps: Vec<usize>,
    pub lr_factor: f64,
    /// Linear warm-up from `warmup_ratio`·lr over this many iterations (mmpose's).
    pub warmup_iters: usize,
    pub warmup_ratio: f64,
    /// Linear warm-up from 0 over this many epochs, counted in iterations: lr·(i + 1)/W at
    /// iteration i (the classifiers' recipe); set this or `warmup_iters`, not both.
    pub warmup_epochs: f64,
    /// Cross-entropy against (1 − ε)·one-hot + ε/classes (`classify` only).
    pub label_smoothing: f64,
    /// L2 penalty added to the gradients (PyTorch's `weight_decay`, for Adam and SGD).
    pub weight_decay: f64,
    /// Dynamic-conv softmax temperature: `start` → `end` linearly over `epochs`, per iteration.
    pub temperature: TemperatureSchedule,
    /// Validation every this many epochs (and after the last); 0: never.
    pub val_every: usize,
    /// A `metrics.csv` row every this many iterations besides the one at each epoch's end
    /// (0: at epoch ends only).
    pub log_every: usize,
    /// Also write `last.safetensors` every this many iterations (0: at epoch ends only).
    pub checkpoint_every: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemperatureSchedule {
    pub start: f64,
    pub end: f64,
    pub epochs: f64,
}

impl TemperatureSchedule {
    /// τ at global iteration `iter`: `start` → `end` linearly over the first `epochs` epochs
    /// of `iters_per_epoch` iterations, then `end`.
    pub fn at(&self, iter: usize, iters_per_epoch: usize) -> f32 {
        let span = self.epochs * iters_per_epoch as f64;
        if span <= 0.0 || iter as f64 >= span {
            return self.end as f32;
        }
        (self.start + (self.end - self.start) * iter as f64 / span) as f32
    }
}

/// How validation (and `dypose eval`/`predict` from a config) runs the predictor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValConfig {
    pub flip_test: bool,
    pub decoding: Decoding,
    pub batch_size: usize,
    /// Detector boxes scoring below this are dropped.
    pub box_score_threshold: f64,
    /// Joints above this score count toward the instance score.
    pub joint_score_threshold: f64,
    pub nms_oks_threshold: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 210,
            optimizer: Optimizer::Adam,
            lr: 1e-3,
            momentum: 0.9,
            nesterov: true,
            lr_schedule: LrSchedule::Step,
            lr_steps: vec![170, 200],
            lr_factor: 0.1,
            warmup_iters: 500,
            warmup_ratio: 0.001,
            warmup_epochs: 0.0,
            label_smoothing: 0.0,
            weight_decay: 0.0,
            temperature: TemperatureSchedule::default(),
            val_every: 10,
            log_every: 50,
            checkpoint_every: 0,
        }
    }
}

impl Default for TemperatureSchedule {
    fn default() -> Self {
        TemperatureSchedule { start: 30.0, end: 1.0, epochs: 10.0 }
    }
}

impl Default for ValConfig {
    fn default() -> Self {
        ValConfig {
            flip_test: true,
            decoding: Decoding::Quarter,
            batch_size: 32,
            box_score_threshold: 0.0,
            joint_score_threshold: 0.2,
            nms_oks_threshold: 0.9,
        }
    }
}

/// The network: a backbone and a task head (one heatmap per joint of the keypoint set, so the
/// joint count is not a model key; the detector's five maps; or a classifier).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Pose (one heatmap per joint), detect (centre heatmap, box size, offset) or classify
    /// (an image classifier; its defaults are the DY-Conv paper's ImageNet recipe).
    #[serde(skip_serializing_if = "Task::is_pose")]
    pub task: Task,
    pub arch: Arch,
    /// Channel width multiplier (MobileNetV2 and ResNet).
    pub width: f64,
    pub head: HeadKind,
    pub head_channels: usize,
    pub head_layers: usize,
    /// Dynamic head convs (default: as the backbone).
    pub dynamic_head: Option<bool>,
    /// Dynamic 1×1 shortcut convs in DY-ResNets.
    pub dynamic_shortcut: bool,
    /// Kernels per dynamic conv.
    pub kernels: usize,
    /// Earlier releases' joint count; when present it must equal the keypoint set's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joints: Option<usize>,
    /// Start the backbone from this checkpoint (a `pretrain` run's, imported torchvision
    /// weights, another pose model's) instead of random weights; the head starts fresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backbone_checkpoint: Option<PathBuf>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            task: Task::Pose,
            arch: Arch::DyResnet18,
            width: 1.0,
            head: HeadKind::Deconv,
            head_channels: 256,
            head_layers: 3,
            dynamic_head: None,
            dynamic_shortcut: false,
            kernels: 4,
            joints: None,
            backbone_checkpoint: None,
        }
    }
}

/// The detector's output maps: centre heatmap, and the distances to the box's four sides.
pub const DETECT_OUTPUTS: usize = 5;

/// The checkpoint metadata key under which a classifier describes its network.
pub const CLASSIFIER_KEY: &str = "classifier";

/// An image classifier (imported torchvision weights, pretraining, `classify`): what its
/// checkpoints store under the `classifier` metadata key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierModel {
    pub arch: Arch,
    #[serde(default = "one")]
    pub width: f64,
    #[serde(default = "four")]
    pub kernels: usize,
    #[serde(default)]
    pub dynamic_shortcut: bool,
    pub classes: usize,
    /// The network's input, [width, height].
    pub input_size: Size,
    /// Class names by index (may be empty).
    #[serde(default)]
    pub class_names: Vec<String>,
    /// MobileNetV3's hidden classifier layer at another width than torchvision's
    /// (`init --classifier-hidden`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier_hidden: Option<usize>,
}

fn one() -> f64 {
    1.0
}

fn four() -> usize {
    4
}

impl ModelConfig {
    /// Whether the head's convs are dynamic: `dynamic_head`, else as the backbone.
    pub fn head_is_dynamic(&self) -> bool {
        self.dynamic_head.unwrap_or(self.arch.is_dynamic())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    pub train_annotations: PathBuf,
    /// The training images; for `classify`, a folder of class folders (`<class>/<image>`, as
    /// torchvision's `ImageFolder`).
    pub train_images: PathBuf,
    pub val_annotations: PathBuf,
    /// The validation images (for `classify`, class folders as in `train_images`).
    pub val_images: PathBuf,
    /// Detector boxes for validation (COCO detection results); GT boxes when absent.
    pub val_boxes: Option<PathBuf>,
    pub category_id: i64,
    /// A keypoint spec file (names, flip pairs, OKS sigmas, limbs; `configs/keypoints/*.json`).
    /// When absent, the annotations' keypoint arrays and category decide (see `coco::keypoint_set`).
    pub keypoints: Option<PathBuf>,
    /// The annotation array that holds the joints: `keypoints`, or another that a data set keeps
    /// beside it (Human-Art's `keypoints_21`, COCO-WholeBody's `foot_kpts`).
    pub keypoint_field: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoaderSection {
    pub batch_size: usize,
    /// 0: all cores.
    pub workers: usize,
    pub prefetch: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 0,
            data: DataConfig::default(),
            input_size: Size::new(192, 256),
            heatmap_size: Size::new(48, 64),
            sigma: 2.0,
            unbiased_targets: false,
            box_padding: 1.25,
            augment: AugmentConfig::default(),
            loader: LoaderSection::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            val: ValConfig::default(),
            detect: DetectConfig::default(),
        }
    }
}

impl Config {
    /// The defaults of a task: `Config::default()` for pose and detect; for `classify`, the
    /// DY-Conv paper's ImageNet recipe (DY-MobileNetV3-Small at 224×224, SGD with Nesterov
    /// momentum, batch 256, 300 epochs, lr 0.1 after a 5-epoch warm-up then cosine, weight decay
    /// 4e-5, label smoothing 0.1, τ 30 → 1 over 10 epochs, validation every epoch).
    pub fn defaults(task: Task) -> Config {
        let mut cfg = Config::default();
        cfg.model.task = task;
        if task == Task::Classify {
            (cfg.input_size, cfg.heatmap_size) = (Size::new(224, 224), Size::new(224, 224));
            (cfg.model.arch, cfg.loader.batch_size) = (Arch::DyMobilenetv3Small, 256);
            let t = &mut cfg.train;
            (t.epochs, t.optimizer, t.lr, t.weight_decay) = (300, Optimizer::Sgd, 0.1, 4e-5);
            (t.warmup_iters, t.warmup_epochs, t.lr_schedule, t.lr_steps) = (0, 5.0, LrSchedule::Cosine, vec![]);
            (t.label_smoothing, t.val_every, t.log_every) = (0.1, 1, 0);
        }
        cfg
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            train_annotations: PathBuf::new(),
            train_images: PathBuf::new(),
            val_annotations: PathBuf::new(),
            val_images: PathBuf::new(),
            val_boxes: None,
            category_id: 1,
            keypoints: None,
            keypoint_field: "keypoints".into(),
        }
    }
}

impl Default for LoaderSection {
    fn default() -> Self {
        LoaderSection { batch_size: 32, workers: 0, prefetch: 4 }
    }
}

impl Config {
    /// Loads `path`, applies `overrides` (`a.b=value`, the value read as JSON or else as a
    /// string), resolves relative paths from the file's directory, and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Config> {
        Config::load_as(path, overrides, None)
    }

    /// [`Config::load`] with `model.task` set to `task` when given (as `dypose pretrain` sets
    /// `classify`), before the task's defaults fill the unset keys.
    pub fn load_as(path: &Path, overrides: &[String], task: Option<Task>) -> Result<Config> {
        let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read the config", path.display()))?;
        let mut value = json_with_overrides(&bytes, path, overrides)?;
        if let (Some(task), false) = (task, legacy::is_pretrain_config(&value)) {
            apply_override(&mut value, &format!("model.task={}", serde_json::to_string(&task)?))?;
        }
        Config::from_json_value(value, path)
    }

    /// [`Config::load`] of a file's bytes; `path` names it in messages and anchors relative paths.
    pub fn from_slice(bytes: &[u8], path: &Path, overrides: &[String]) -> Result<Config> {
        Config::from_json_value(json_with_overrides(bytes, path, overrides)?, path)
    }

    fn from_json_value(value: Value, path: &Path) -> Result<Config> {
        let cfg = if legacy::is_pretrain_config(&value) { legacy::parse(value) } else { Config::from_value(value) };
        let mut cfg = cfg.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let d = &mut cfg.data;
        for p in [&mut d.train_annotations, &mut d.train_images, &mut d.val_annotations, &mut d.val_images] {
            resolve(base, p);
        }
        for p in [d.val_boxes.as_mut(), d.keypoints.as_mut()].into_iter().flatten() {
            resolve(base, p);
        }
        if let Some(p) = cfg.model.backbone_checkpoint.as_mut() {
            resolve(base, p);
        }
        cfg.validate().with_context(|| format!("{}: invalid config", path.display()))?;
        Ok(cfg)
    }

    /// A config from JSON (a file's, or a checkpoint's `config` metadata), unset keys taking
    /// the defaults of its `model.task`; errors name the key.
    pub fn from_value(value: Value) -> Result<Config> {
        let task = value.pointer("/model/task").and_then(|t| Task::deserialize(t).ok()).unwrap_or_default();
        let mut merged = serde_json::to_value(Config::defaults(task))?;
        merge(&mut merged, value);
        deserialize_keyed(merged)
    }

    /// [`Config::from_value`] of JSON text, validated.
    pub fn from_json(text: &str) -> Result<Config> {
        let cfg = Config::from_value(serde_json::from_str(text)?)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that need nothing but the config itself; the network checks its own fit to
    /// `input_size` and `heatmap_size` when it is built. Sizes, counts and factors are bounded
    /// (see [`LIMITS`]), so that a mistyped number is an error, not gigabytes allocated.
    pub fn validate(&self) -> Result<()> {
        let (i, h) = (self.input_size, self.heatmap_size);
        for (name, s) in [("input_size", i), ("heatmap_size", h)] {
            let ok = (1..=LIMITS.image_side).contains(&s.width) && (1..=LIMITS.image_side).contains(&s.height);
            ensure!(ok, "{name} {:?} must be between 1 and {} a side", [s.width, s.height], LIMITS.image_side);
        }
        if self.model.task == Task::Classify {
            ensure!(i.width >= 32 && i.height >= 32, "input_size must be at least 32 a side for a classifier");
        } else {
            ensure!(
                i.width % h.width == 0 && i.height % h.height == 0 && i.width / h.width == i.height / h.height,
                "input_size {:?} must be the same integer multiple of heatmap_size {:?} in x and y ([w, h])",
                [i.width, i.height],
                [h.width, h.height]
            );
        }
        ensure!(self.sigma > 0.0 && self.sigma <= 64.0, "sigma must be in (0, 64]");
        ensure!(self.box_padding >= 1.0 && self.box_padding <= 10.0, "box_padding must be in [1, 10]");
        ensure!(!self.data.keypoint_field.is_empty(), "data.keypoint_field must name an annotation field");
        let a = &self.augment;
        for (name, p) in [
            ("augment.flip_prob", a.flip_prob),
            ("augment.rotation_prob", a.rotation_prob),
            ("augment.half_body_prob", a.half_body_prob),
        ] {
            ensure!((0.0..=1.0).contains(&p), "{name} = {p} is not a probability");
        }
        ensure!((0.0..1.0).contains(&a.scale_factor), "augment.scale_factor must be in [0, 1)");
        ensure!((0.0..=180.0).contains(&a.rotation_factor), "augment.rotation_factor must be in [0, 180] degrees");
        ensure!((1.0..=10.0).contains(&a.half_body_padding), "augment.half_body_padding must be in [1, 10]");
        ensure!((0.0..1.0).contains(&a.color_jitter), "augment.color_jitter must be in [0, 1)");
        for (name, n) in [("loader.batch_size", self.loader.batch_size), ("val.batch_size", self.val.batch_size)] {
            ensure!((1..=LIMITS.batch).contains(&n), "{name} must be between 1 and {}", LIMITS.batch);
        }
        ensure!(self.loader.prefetch <= LIMITS.prefetch, "loader.prefetch must be at most {}", LIMITS.prefetch);
        ensure!(self.loader.workers <= LIMITS.workers, "loader.workers must be at most {}", LIMITS.workers);
        let m = &self.model;
        ensure!(m.width > 0.0 && m.width <= 4.0, "model.width {} is out of range (0, 4]", m.width);
        ensure!((1..=LIMITS.kernels).contains(&m.kernels), "model.kernels must be between 1 and {}", LIMITS.kernels);
        ensure!(
            (1..=LIMITS.head_channels).contains(&m.head_channels),
            "model.head_channels must be between 1 and {}",
            LIMITS.head_channels
        );
        ensure!(
            (1..=LIMITS.head_layers).contains(&m.head_layers),
            "model.head_layers must be between 1 and {} (each doubles the map size)",
            LIMITS.head_layers
        );
        ensure!(
            m.joints.is_none_or(|j| (1..=LIMITS.joints).contains(&j)),
            "model.joints must be between 1 and {}",
            LIMITS.joints
        );
        let t = &self.train;
        ensure!(t.lr > 0.0 && t.lr.is_finite(), "train.lr must be a positive number");
        ensure!(t.lr_factor > 0.0, "train.lr_factor must be positive");
        ensure!((0.0..=1.0).contains(&t.warmup_ratio), "train.warmup_ratio must be in [0, 1]");
        ensure!(t.warmup_epochs >= 0.0 && t.warmup_epochs.is_finite(), "train.warmup_epochs must not be negative");
        ensure!(
            t.warmup_iters == 0 || t.warmup_epochs == 0.0,
            "set train.warmup_iters or train.warmup_epochs, not both (they are two recipes' warm-ups)"
        );
        ensure!(t.weight_decay >= 0.0 && t.weight_decay.is_finite(), "train.weight_decay must not be negative");
        ensure!((0.0..1.0).contains(&t.momentum), "train.momentum must be in [0, 1)");
        ensure!((0.0..1.0).contains(&t.label_smoothing), "train.label_smoothing must be in [0, 1)");
        ensure!(
            t.label_smoothing == 0.0 || self.model.task == Task::Classify,
            "train.label_smoothing is for classifiers (model.task \"classify\")"
        );
        let tau = &t.temperature;
        ensure!(tau.start >= 1.0 && tau.end >= 1.0, "train.temperature start and end must be at least 1");
        ensure!(tau.epochs >= 0.0, "train.temperature.epochs must not be negative");
        let d = &self.detect;
        ensure!(d.gaussian_alpha > 0.0 && d.gaussian_alpha <= 4.0, "detect.gaussian_alpha must be in (0, 4]");
        ensure!(d.box_weight >= 0.0 && d.box_weight.is_finite(), "detect.box_weight must not be negative");
        ensure!((0.0..1.0).contains(&d.scale_range), "detect.scale_range must be in [0, 1)");
        ensure!((0.0..=0.5).contains(&d.shift), "detect.shift must be in [0, 0.5]");
        ensure!((1..=1000).contains(&d.max_detections), "detect.max_detections must be between 1 and 1000");
        for (name, v) in
            [("detect.min_score", d.min_score), ("detect.person_score", d.person_score), ("detect.nms_iou", d.nms_iou)]
        {
            ensure!((0.0..=1.0).contains(&v), "{name} = {v} must be in [0, 1]");
        }
        Ok(())
    }

    /// The network's output maps: one per joint of a set of `joints` for pose, the detector's
    /// five (centre heatmap, distances to the box's sides) for detection.
    pub fn outputs(&self, joints: usize) -> usize {
        match self.model.task {
            Task::Pose => joints,
            Task::Detect => DETECT_OUTPUTS,
            Task::Classify => 0,
        }
    }

    /// The crop aspect ratio w/h of the network input.
    pub fn aspect(&self) -> f64 {
        self.input_size.width as f64 / self.input_size.height as f64
    }

    /// Points the data section at a COCO download laid out as cocodataset.org ships it:
    /// `annotations/person_keypoints_{train,val}2017.json`, `train2017/`, `val2017/`, and the
    /// SimpleBaseline detector boxes `person_detection_results/COCO_val2017_detections_AP_H_56_person.json`
    /// when present (GT boxes otherwise).
    pub fn use_coco_root(&mut self, root: &Path) {
        let d = &mut self.data;
        d.train_annotations = root.join("annotations/person_keypoints_train2017.json");
        d.train_images = root.join("train2017");
        d.val_annotations = root.join("annotations/person_keypoints_val2017.json");
        d.val_images = root.join("val2017");
        let dets = root.join("person_detection_results/COCO_val2017_detections_AP_H_56_person.json");
        d.val_boxes = dets.exists().then_some(dets);
    }

    /// Fails with a clear message when a data path the caller needs is unset or missing.
    pub fn require(path: &Path, key: &str) -> Result<()> {
        if path.as_os_str().is_empty() {
            bail!("{key} is not set in the config (use --set {key}=PATH)");
        }
        ensure!(path.exists(), "{key}: {} does not exist", path.display());
        Ok(())
    }
}

/// A config file's bytes as JSON, with `overrides` (`a.b=value`) applied; errors name the file.
fn json_with_overrides(bytes: &[u8], path: &Path, overrides: &[String]) -> Result<Value> {
    // A leading UTF-8 byte-order mark (Windows editors write one) is not JSON; RFC 8259 lets
    // a parser ignore it.
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut value: Value = serde_json::from_slice(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for o in overrides {
        apply_override(&mut value, o).with_context(|| format!("--set {o}"))?;
    }
    Ok(value)
}

/// `value` as `T`; an error names the key it is about (`config` for the whole).
fn deserialize_keyed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let at = e.path().to_string();
        anyhow::anyhow!("{}: {}", if at == "." { "config".into() } else { at }, e.inner())
    })
}

/// Writes `over` onto `base`: objects key by key, anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn resolve(base: &Path, p: &mut PathBuf) {
    if !p.as_os_str().is_empty() && p.is_relative() {
        *p = base.join(&*p);
    }
}

/// Sets `a.b.c` in a JSON object to `value` (JSON if it parses, a string otherwise).
fn apply_override(root: &mut Value, assignment: &str) -> Result<()> {
    let Some((key, raw)) = assignment.split_once('=') else { bail!("expected key=value") };
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    let mut node = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let Value::Object(map) = node else { bail!("{} is not an object", parts[..i].join(".")) };
        if i + 1 == parts.len() {
            map.insert(part.to_string(), value);
            return Ok(());
        }
        node = map.entry(part.to_string()).or_insert_with(|| Value::Object(Default::default()));
    }
    unreachable!("split yields at least one part")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("c.json");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn defaults_overrides_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            r#"{"data": {"train_images": "imgs", "val_boxes": "/abs/b.json", "keypoints": "k.json"}, "augment": {"flip_prob": 0.25}}"#,
        );
        let cfg =
            Config::load(&p, &["seed=7".into(), "loader.batch_size=8".into(), "data.val_images=v".into()]).unwrap();
        assert_eq!(cfg.seed, 7);
        assert_eq!(cfg.loader.batch_size, 8);
        assert_eq!(cfg.augment.flip_prob, 0.25);
        assert_eq!(cfg.augment.rotation_factor, 45.0, "unset fields keep their defaults");
        assert_eq!(cfg.data.train_images, dir.path().join("imgs"));
        assert_eq!(cfg.data.val_images, dir.path().join("v"));
        assert_eq!(cfg.data.val_boxes, Some(PathBuf::from("/abs/b.json")));
        assert_eq!(cfg.data.keypoints, Some(dir.path().join("k.json")));
        assert_eq!(cfg.input_size, Size::new(192, 256));
        assert_eq!(cfg.val.decoding, Decoding::Quarter);
        // What a run directory stores reads back as the same config.
        let again: Config = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(again, cfg);
    }

    #[test]
    fn errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let err = |text: &str, set: &[&str]| {
            let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
            format!("{:#}", Config::load(&write(dir.path(), text), &set).unwrap_err())
        };
        let e = err(r#"{"augment": {"flip_prob": "high"}}"#, &[]);
        assert!(e.contains("augment.flip_prob") && e.contains("invalid type"), "{e}");
        let e = err(r#"{"augmnt": {}}"#, &[]);
        assert!(e.contains("unknown field `augmnt`"), "{e}");
        let e = err("{}", &["augment.flip_prob=1.5"]);
        assert!(e.contains("augment.flip_prob = 1.5 is not a probability"), "{e}");
        let e = err("{}", &["heatmap_size=[50, 64]"]);
        assert!(e.contains("integer multiple"), "{e}");
        let e = err("{}", &["model.arch=vgg16"]);
        assert!(e.contains("model.arch") && e.contains("unknown variant `vgg16`"), "{e}");
        let e = err("{}", &["model.arch=mobilenetv2", "model.width=-2"]);
        assert!(e.contains("model.width -2 is out of range"), "{e}");
        let e = err("{}", &["model.head=fpn"]);
        assert!(e.contains("model.head") && e.contains("unknown variant `fpn`"), "{e}");
        let e = err("{}", &["val.decoding=argmax"]);
        assert!(e.contains("val.decoding") && e.contains("expected `quarter` or `dark`"), "{e}");
        let e = err("{}", &["input_size=[192]"]);
        assert!(e.contains("input_size") && e.contains("length 1"), "{e}");
        let e = err("{}", &["model.head_layers=1000000000"]);
        assert!(e.contains("model.head_layers must be between 1 and 5"), "{e}");
        let e = err("{}", &["input_size=[4294967296, 4294967296]", "heatmap_size=[1073741824, 1073741824]"]);
        assert!(e.contains("input_size [4294967296, 4294967296] must be between 1 and 4096 a side"), "{e}");
        let e = err("{}", &["sigma=1e30"]);
        assert!(e.contains("sigma must be in (0, 64]"), "{e}");
        let e = err("{}", &["seed"]);
        assert!(e.contains("--set seed") && e.contains("key=value"), "{e}");
    }
}
