//! The config of `dypose pretrain`: ImageNet-style classification on an image folder, with the
//! recipe of the DY-Conv paper's ImageNet runs as defaults (SGD with Nesterov momentum, cosine
//! decay after a warm-up, label smoothing 0.1, τ from 30 to 1 over the first 10 epochs).

use super::{parse_with_overrides, resolve, Arch, Size, TemperatureSchedule, LIMITS};
use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainConfig {
    pub seed: u64,
    /// `train/<class>/*` and `val/<class>/*` image folders (relative to the config file).
    pub train_dir: PathBuf,
    pub val_dir: PathBuf,
    pub arch: Arch,
    pub width: f64,
    pub kernels: usize,
    pub dynamic_shortcut: bool,
    /// [width, height] of the network input.
    pub input_size: Size,
    pub batch_size: usize,
    pub epochs: usize,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Linear warm-up from 0 over this many epochs (counted in iterations).
    pub warmup_epochs: f64,
    pub lr_schedule: LrSchedule,
    /// Epochs at which a step schedule multiplies the rate by `lr_factor`.
    pub lr_steps: Vec<usize>,
    pub lr_factor: f64,
    pub label_smoothing: f64,
    pub temperature: TemperatureSchedule,
    /// Validate every this many epochs (and after the last); 0: only after the last.
    pub val_every: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    Cosine,
    Step,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            seed: 0,
            train_dir: PathBuf::new(),
            val_dir: PathBuf::new(),
            arch: Arch::DyMobilenetv3Small,
            width: 1.0,
            kernels: 4,
            dynamic_shortcut: false,
            input_size: Size::new(224, 224),
            batch_size: 256,
            epochs: 300,
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 4e-5,
            warmup_epochs: 5.0,
            lr_schedule: LrSchedule::Cosine,
            lr_steps: vec![],
            lr_factor: 0.1,
            label_smoothing: 0.1,
            temperature: TemperatureSchedule { start: 30.0, end: 1.0, epochs: 10.0 },
            val_every: 1,
        }
    }
}

impl PretrainConfig {
    /// Loads `path` with `overrides` (`key=value`), paths resolved from the file's folder.
    pub fn load(path: &Path, overrides: &[String]) -> Result<PretrainConfig> {
        let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read the config", path.display()))?;
        let mut cfg: PretrainConfig = parse_with_overrides(&bytes, path, overrides)?;
        let base = path.parent().unwrap_or(Path::new("."));
        resolve(base, &mut cfg.train_dir);
        resolve(base, &mut cfg.val_dir);
        cfg.validate().with_context(|| format!("{}: invalid config", path.display()))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        let s = self.input_size;
        ensure!(
            (32..=LIMITS.image_side).contains(&s.width) && (32..=LIMITS.image_side).contains(&s.height),
            "input_size must be between 32 and {} a side",
            LIMITS.image_side
        );
        ensure!((1..=LIMITS.batch).contains(&self.batch_size), "batch_size must be between 1 and {}", LIMITS.batch);
        ensure!(self.width > 0.0 && self.width <= 4.0, "width {} is out of range (0, 4]", self.width);
        ensure!((1..=LIMITS.kernels).contains(&self.kernels), "kernels must be between 1 and {}", LIMITS.kernels);
        ensure!(self.lr > 0.0 && self.lr.is_finite(), "lr must be a positive number");
        ensure!((0.0..1.0).contains(&self.momentum), "momentum must be in [0, 1)");
        ensure!(self.weight_decay >= 0.0 && self.weight_decay.is_finite(), "weight_decay must not be negative");
        ensure!(self.warmup_epochs >= 0.0, "warmup_epochs must not be negative");
        ensure!(self.lr_factor > 0.0, "lr_factor must be positive");
        ensure!((0.0..1.0).contains(&self.label_smoothing), "label_smoothing must be in [0, 1)");
        let t = &self.temperature;
        ensure!(t.start >= 1.0 && t.end >= 1.0 && t.epochs >= 0.0, "temperature: start and end at least 1, epochs ≥ 0");
        Ok(())
    }

    /// Learning rate at global iteration `iter` of `per_epoch` per epoch: linear warm-up from
    /// 0, then cosine to 0 at the end of the last epoch, or steps by epoch.
    pub fn learning_rate(&self, iter: usize, per_epoch: usize) -> f64 {
        let warmup = self.warmup_epochs * per_epoch as f64;
        let t = iter as f64;
        if t < warmup {
            return self.lr * (t + 1.0) / warmup;
        }
        match self.lr_schedule {
            LrSchedule::Cosine => {
                let total = (self.epochs * per_epoch) as f64 - warmup;
                let done = ((t - warmup) / total.max(1.0)).min(1.0);
                self.lr * 0.5 * (1.0 + (std::f64::consts::PI * done).cos())
            }
            LrSchedule::Step => {
                let epoch = iter / per_epoch.max(1);
                self.lr * self.lr_factor.powi(self.lr_steps.iter().filter(|&&s| epoch >= s).count() as i32)
            }
        }
    }

    /// τ at global iteration `iter`: `start` → `end` linearly over `temperature.epochs`.
    pub fn temperature_at(&self, iter: usize, per_epoch: usize) -> f32 {
        self.temperature.at(iter, per_epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_by_hand() {
        let cfg = PretrainConfig { epochs: 10, warmup_epochs: 1.0, lr: 0.4, ..Default::default() };
        // 100 iterations per epoch: warm-up 0.004, 0.008, … 0.4 over the first 100 steps.
        assert!((cfg.learning_rate(0, 100) - 0.004).abs() < 1e-12);
        assert!((cfg.learning_rate(99, 100) - 0.4).abs() < 1e-12);
        // Cosine over the remaining 900: half-way (iteration 550) is lr/2, the end 0.
        assert!((cfg.learning_rate(100, 100) - 0.4).abs() < 1e-12);
        assert!((cfg.learning_rate(550, 100) - 0.2).abs() < 1e-12);
        assert!(cfg.learning_rate(1000, 100).abs() < 1e-12);
        let step =
            PretrainConfig { lr_schedule: LrSchedule::Step, lr_steps: vec![3, 6], warmup_epochs: 0.0, ..cfg.clone() };
        assert!((step.learning_rate(299, 100) - 0.4).abs() < 1e-12);
        assert!((step.learning_rate(300, 100) - 0.04).abs() < 1e-12);
        assert!((step.learning_rate(650, 100) - 0.004).abs() < 1e-12);
        // τ: 30 → 1 over 10 epochs of 100 iterations.
        assert_eq!(cfg.temperature_at(0, 100), 30.0);
        assert_eq!(cfg.temperature_at(500, 100), 15.5);
        assert_eq!(cfg.temperature_at(2000, 100), 1.0);
    }
}
