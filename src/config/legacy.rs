//! Configs of earlier releases that still load: `dypose pretrain`'s flat pretraining config
//! (`{"train_dir": …, "arch": …, "lr": …}`), which is now a [`Config`] with `model.task:
//! "classify"`. Old config files and the `pretrain_config` metadata of old pretraining
//! checkpoints read through [`PretrainConfig::into_config`], so their runs resume.

use super::{Arch, Config, LrSchedule, Optimizer, Size, Task, TemperatureSchedule};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

/// The flat pretraining config of earlier releases, with its defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainConfig {
    pub seed: u64,
    pub train_dir: PathBuf,
    pub val_dir: PathBuf,
    pub arch: Arch,
    pub width: f64,
    pub kernels: usize,
    pub dynamic_shortcut: bool,
    pub input_size: Size,
    pub batch_size: usize,
    pub epochs: usize,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub warmup_epochs: f64,
    pub lr_schedule: LrSchedule,
    pub lr_steps: Vec<usize>,
    pub lr_factor: f64,
    pub label_smoothing: f64,
    pub temperature: TemperatureSchedule,
    /// 0 meant "only after the last epoch".
    pub val_every: usize,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        let c = Config::defaults(Task::Classify);
        let t = c.train;
        PretrainConfig {
            seed: 0,
            train_dir: PathBuf::new(),
            val_dir: PathBuf::new(),
            arch: c.model.arch,
            width: c.model.width,
            kernels: c.model.kernels,
            dynamic_shortcut: c.model.dynamic_shortcut,
            input_size: c.input_size,
            batch_size: c.loader.batch_size,
            epochs: t.epochs,
            lr: t.lr,
            momentum: t.momentum,
            nesterov: t.nesterov,
            weight_decay: t.weight_decay,
            warmup_epochs: t.warmup_epochs,
            lr_schedule: t.lr_schedule,
            lr_steps: t.lr_steps,
            lr_factor: t.lr_factor,
            label_smoothing: t.label_smoothing,
            temperature: t.temperature,
            val_every: t.val_every,
        }
    }
}

impl PretrainConfig {
    /// The same run as a classifier [`Config`] (paths as they are).
    pub fn into_config(self) -> Config {
        let mut cfg = Config::defaults(Task::Classify);
        (cfg.seed, cfg.input_size) = (self.seed, self.input_size);
        (cfg.data.train_images, cfg.data.val_images) = (self.train_dir, self.val_dir);
        let m = &mut cfg.model;
        (m.arch, m.width, m.kernels, m.dynamic_shortcut) = (self.arch, self.width, self.kernels, self.dynamic_shortcut);
        cfg.loader.batch_size = self.batch_size;
        let t = &mut cfg.train;
        (t.epochs, t.optimizer, t.lr, t.momentum, t.nesterov) =
            (self.epochs, Optimizer::Sgd, self.lr, self.momentum, self.nesterov);
        (t.weight_decay, t.warmup_iters, t.warmup_epochs) = (self.weight_decay, 0, self.warmup_epochs);
        (t.lr_schedule, t.lr_steps, t.lr_factor) = (self.lr_schedule, self.lr_steps, self.lr_factor);
        (t.label_smoothing, t.temperature) = (self.label_smoothing, self.temperature);
        // "Only after the last": an interval no run reaches validates at the last epoch alone,
        // whatever `epochs` a resumed run asks for.
        t.val_every = if self.val_every == 0 { usize::MAX } else { self.val_every };
        t.log_every = 0;
        cfg
    }
}

/// Whether a config file's JSON is the flat pretraining config (its image folders, keys a
/// [`Config`] never has at its top level).
pub fn is_pretrain_config(value: &Value) -> bool {
    value.as_object().is_some_and(|o| ["train_dir", "val_dir"].iter().any(|k| o.contains_key(*k)))
}

/// A flat pretraining config as a [`Config`]; errors name the key.
pub fn parse(value: Value) -> Result<Config> {
    Ok(super::deserialize_keyed::<PretrainConfig>(value)?.into_config())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_pretraining_config_is_the_same_classifier_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.json");
        std::fs::write(
            &p,
            r#"{"seed": 3, "train_dir": "shapes/train", "val_dir": "shapes/val", "arch": "resnet10",
               "width": 0.25, "input_size": [48, 48], "batch_size": 32, "epochs": 4, "lr": 0.2,
               "warmup_epochs": 1, "temperature": {"start": 30, "end": 1, "epochs": 1}, "val_every": 0}"#,
        )
        .unwrap();
        let cfg = Config::load(&p, &["nesterov=false".into()]).unwrap();
        assert_eq!(cfg.model.task, Task::Classify);
        assert_eq!((cfg.seed, cfg.model.arch, cfg.model.width), (3, Arch::Resnet10, 0.25));
        assert_eq!(cfg.data.train_images, dir.path().join("shapes/train"));
        assert_eq!(cfg.data.val_images, dir.path().join("shapes/val"));
        assert_eq!((cfg.input_size, cfg.loader.batch_size), (Size::new(48, 48), 32));
        let t = &cfg.train;
        assert_eq!((t.optimizer, t.lr, t.momentum, t.nesterov), (Optimizer::Sgd, 0.2, 0.9, false));
        assert_eq!((t.warmup_epochs, t.warmup_iters, t.lr_schedule), (1.0, 0, LrSchedule::Cosine));
        assert_eq!((t.weight_decay, t.label_smoothing, t.epochs), (4e-5, 0.1, 4));
        assert_eq!((t.val_every, t.log_every), (usize::MAX, 0), "0 meant: after the last epoch only");
        let longer = Config::load(&p, &["nesterov=false".into(), "epochs=9".into()]).unwrap();
        assert_eq!(longer.train.val_every, t.val_every, "a resumed run may ask for more epochs");
        // The same keys in the new layout give the same config.
        let new = dir.path().join("new.json");
        std::fs::write(
            &new,
            r#"{"seed": 3, "input_size": [48, 48],
               "data": {"train_images": "shapes/train", "val_images": "shapes/val"},
               "model": {"task": "classify", "arch": "resnet10", "width": 0.25},
               "loader": {"batch_size": 32},
               "train": {"epochs": 4, "lr": 0.2, "warmup_epochs": 1, "nesterov": false, "val_every": 18446744073709551615,
                         "temperature": {"start": 30, "end": 1, "epochs": 1}}}"#,
        )
        .unwrap();
        assert_eq!(Config::load(&new, &[]).unwrap(), cfg);
        let e = format!("{:#}", Config::load(&p, &["lr=\"high\"".into()]).unwrap_err());
        assert!(e.contains("old.json: lr: invalid type"), "errors name the file and the key: {e}");
    }
}
