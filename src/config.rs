//! Experiment configuration: JSON, every field defaulted, unknown keys rejected, relative paths
//! resolved from the config file, `--set key=value` overrides applied before validation.
//! The model and training sections join with the network and training issues.

use crate::data::augment::AugmentConfig;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Derives every random stream (shuffling, augmentation).
    pub seed: u64,
    pub data: DataConfig,
    /// Network input (w, h).
    pub input_size: [usize; 2],
    /// Heatmap (w, h); the input must be an integer multiple.
    pub heatmap_size: [usize; 2],
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
}

/// The optimisation recipe (SimpleBaseline/mmpose defaults, DESIGN §4) and the trainer's habits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    /// Adam learning rate, β (0.9, 0.999), ε 1e-8.
    pub lr: f64,
    /// Epochs at whose start the learning rate is multiplied by `lr_factor`.
    pub lr_steps: Vec<usize>,
    pub lr_factor: f64,
    /// Linear warm-up from `warmup_ratio`·lr over this many iterations.
    pub warmup_iters: usize,
    pub warmup_ratio: f64,
    /// L2 penalty added to the gradients (PyTorch Adam's `weight_decay`).
    pub weight_decay: f64,
    /// Dynamic-conv softmax temperature: `start` → `end` linearly over `epochs`, per iteration.
    pub temperature: TemperatureSchedule,
    /// Validation AP every this many epochs (and after the last); 0: never.
    pub val_every: usize,
    /// A `metrics.csv` row every this many iterations.
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

/// How validation (and `dypose eval`/`predict` from a config) runs the predictor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValConfig {
    pub flip_test: bool,
    /// "quarter" (argmax + ¼ px) or "dark".
    pub decoding: String,
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
            lr: 1e-3,
            lr_steps: vec![170, 200],
            lr_factor: 0.1,
            warmup_iters: 500,
            warmup_ratio: 0.001,
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
            decoding: "quarter".into(),
            batch_size: 32,
            box_score_threshold: 0.0,
            joint_score_threshold: 0.2,
            nms_oks_threshold: 0.9,
        }
    }
}

impl ValConfig {
    /// Predictor options for this section and a box padding.
    pub fn predict_options(&self, padding: f64) -> Result<crate::infer::PredictOptions> {
        use crate::data::codec::Decoding;
        let decoding = match self.decoding.as_str() {
            "quarter" => Decoding::Quarter,
            "dark" => Decoding::Dark,
            other => bail!("val.decoding: unknown decoding '{other}' (use quarter or dark)"),
        };
        Ok(crate::infer::PredictOptions {
            flip: self.flip_test,
            decoding,
            batch_size: self.batch_size.max(1),
            joint_threshold: self.joint_score_threshold,
            nms_threshold: self.nms_oks_threshold,
            padding,
        })
    }
}

/// The network: a backbone from `model::blueprint::ARCHS` and a keypoint head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    pub arch: String,
    /// Channel width multiplier (MobileNetV2 and ResNet).
    pub width: f64,
    /// "deconv" (SimpleBaseline) or "light" (bilinear ×2 + depthwise-separable).
    pub head: String,
    pub head_channels: usize,
    pub head_layers: usize,
    /// Dynamic head convs (default: as the backbone).
    pub dynamic_head: Option<bool>,
    /// Dynamic 1×1 shortcut convs in DY-ResNets.
    pub dynamic_shortcut: bool,
    /// Kernels per dynamic conv.
    pub kernels: usize,
    pub joints: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: "dy-resnet18".into(),
            width: 1.0,
            head: "deconv".into(),
            head_channels: 256,
            head_layers: 3,
            dynamic_head: None,
            dynamic_shortcut: false,
            kernels: 4,
            joints: 17,
        }
    }
}

impl ModelConfig {
    /// The architecture this section describes.
    pub fn blueprint(&self) -> Result<crate::model::blueprint::Blueprint> {
        use crate::model::blueprint::{backbone, deconv_head, light_head, Blueprint};
        ensure!(self.kernels >= 1, "model.kernels must be at least 1");
        ensure!(
            self.joints >= 1 && self.head_channels >= 1 && self.head_layers >= 1,
            "model.joints, head_channels and head_layers must be positive"
        );
        let b = backbone(&self.arch, self.width, self.dynamic_shortcut)
            .map_err(|e| anyhow::anyhow!("model.arch/width: {e}"))?;
        let dynamic = self.dynamic_head.unwrap_or(self.arch.starts_with("dy-"));
        let head = match self.head.as_str() {
            "deconv" => deconv_head(b.out_channels, self.head_channels, self.head_layers, self.joints, dynamic),
            "light" => light_head(b.out_channels, self.head_channels, self.head_layers, self.joints, dynamic),
            other => bail!("model.head: unknown head '{other}' (use deconv or light)"),
        };
        Ok(Blueprint { backbone: b, head: Some(head), classifier: None, kernels: self.kernels })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    pub train_annotations: PathBuf,
    pub train_images: PathBuf,
    pub val_annotations: PathBuf,
    pub val_images: PathBuf,
    /// Detector boxes for validation (COCO detection results); GT boxes when absent.
    pub val_boxes: Option<PathBuf>,
    pub category_id: i64,
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
            input_size: [192, 256],
            heatmap_size: [48, 64],
            sigma: 2.0,
            unbiased_targets: false,
            box_padding: 1.25,
            augment: AugmentConfig::default(),
            loader: LoaderSection::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            val: ValConfig::default(),
        }
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
        let mut value: Value = crate::coco::json::read_json(path)?;
        for o in overrides {
            apply_override(&mut value, o).with_context(|| format!("--set {o}"))?;
        }
        let mut cfg: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let at = e.path().to_string();
            anyhow::anyhow!("{}: {}: {}", path.display(), if at == "." { "config".into() } else { at }, e.inner())
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let d = &mut cfg.data;
        for p in [&mut d.train_annotations, &mut d.train_images, &mut d.val_annotations, &mut d.val_images] {
            resolve(base, p);
        }
        if let Some(p) = d.val_boxes.as_mut() {
            resolve(base, p);
        }
        cfg.validate().with_context(|| format!("{}: invalid config", path.display()))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        let [iw, ih] = self.input_size;
        let [hw, hh] = self.heatmap_size;
        ensure!(iw > 0 && ih > 0 && hw > 0 && hh > 0, "input_size and heatmap_size must be positive");
        ensure!(
            iw % hw == 0 && ih % hh == 0 && iw / hw == ih / hh,
            "input_size {:?} must be the same integer multiple of heatmap_size {:?} in x and y",
            self.input_size,
            self.heatmap_size
        );
        ensure!(self.sigma > 0.0, "sigma must be positive");
        ensure!(self.box_padding >= 1.0, "box_padding must be at least 1");
        let a = &self.augment;
        for (name, p) in [
            ("augment.flip_prob", a.flip_prob),
            ("augment.rotation_prob", a.rotation_prob),
            ("augment.half_body_prob", a.half_body_prob),
        ] {
            ensure!((0.0..=1.0).contains(&p), "{name} = {p} is not a probability");
        }
        ensure!((0.0..1.0).contains(&a.scale_factor), "augment.scale_factor must be in [0, 1)");
        ensure!(self.loader.batch_size > 0, "loader.batch_size must be positive");
        let t = &self.train;
        ensure!(t.lr > 0.0 && t.lr.is_finite(), "train.lr must be a positive number");
        ensure!(t.lr_factor > 0.0, "train.lr_factor must be positive");
        ensure!((0.0..=1.0).contains(&t.warmup_ratio), "train.warmup_ratio must be in [0, 1]");
        ensure!(t.weight_decay >= 0.0, "train.weight_decay must not be negative");
        let tau = &t.temperature;
        ensure!(tau.start >= 1.0 && tau.end >= 1.0, "train.temperature start and end must be at least 1");
        ensure!(tau.epochs >= 0.0, "train.temperature.epochs must not be negative");
        self.val.predict_options(self.box_padding)?;
        let bp = self.model.blueprint()?;
        // The head must turn the backbone's stride-32 map into the heatmap size.
        let (_, out) = crate::model::cost::blueprint_cost(&bp, [ih, iw]);
        ensure!(
            out == [hh, hw],
            "model: a {}×{} input gives {}×{} heatmaps, but heatmap_size is {:?} (w, h); use an input that is a multiple of 32 and input/heatmap = 4",
            ih,
            iw,
            out[0],
            out[1],
            self.heatmap_size
        );
        Ok(())
    }

    /// How samples are made from this config: the codec, and augmentation when `train`.
    pub fn sample_spec(&self, spec: &crate::coco::KeypointSpec, train: bool) -> crate::data::sample::SampleSpec {
        let [w, h] = self.input_size;
        let codec = crate::data::codec::HeatmapCodec {
            unbiased: self.unbiased_targets,
            ..crate::data::codec::HeatmapCodec::new(self.input_size, self.heatmap_size, self.sigma)
        };
        let augment = train.then(|| AugmentConfig { aspect: w as f64 / h as f64, ..self.augment.clone() });
        crate::data::sample::SampleSpec {
            codec,
            augment,
            padding: self.box_padding,
            flip_permutation: spec.flip_permutation(),
        }
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
            r#"{"data": {"train_images": "imgs", "val_boxes": "/abs/b.json"}, "augment": {"flip_prob": 0.25}}"#,
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
        assert_eq!(cfg.input_size, [192, 256]);
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
        assert!(e.contains("unknown architecture 'vgg16'"), "{e}");
        let e = err("{}", &["model.arch=mobilenetv2", "model.width=-2"]);
        assert!(e.contains("width -2 is out of range"), "{e}");
        let e = err("{}", &["model.head=fpn"]);
        assert!(e.contains("unknown head 'fpn'"), "{e}");
        let e = err("{}", &["input_size=[200, 256]", "heatmap_size=[50, 64]"]);
        assert!(e.contains("heatmaps"), "{e}");
        let e = err("{}", &["seed"]);
        assert!(e.contains("--set seed") && e.contains("key=value"), "{e}");
    }
}
