//! Learning rate and dynamic-conv temperature as functions of the position in training, so that
//! a resumed run computes exactly what an uninterrupted one would.

use crate::config::{LrSchedule, TrainConfig};

/// Learning rate at global iteration `iter` (0-based) in `epoch` of `per_epoch` iterations: step
/// decay by epoch or cosine decay by iteration, after one of two warm-ups: linear from
/// `warmup_ratio`·lr over the first `warmup_iters` iterations (mmpose's `warmup='linear'`), or
/// lr·(i + 1)/W over the W = `warmup_epochs`·`per_epoch` first (the classifiers' recipe).
pub fn learning_rate(cfg: &TrainConfig, epoch: usize, iter: usize, per_epoch: usize) -> f64 {
    let t = iter as f64;
    let warmup = if cfg.warmup_epochs > 0.0 { cfg.warmup_epochs * per_epoch as f64 } else { cfg.warmup_iters as f64 };
    if cfg.warmup_epochs > 0.0 && t < warmup {
        return cfg.lr * (t + 1.0) / warmup;
    }
    let lr = match cfg.lr_schedule {
        LrSchedule::Step => cfg.lr * cfg.lr_factor.powi(cfg.lr_steps.iter().filter(|&&s| epoch >= s).count() as i32),
        LrSchedule::Cosine => {
            let warm = warmup.min(t);
            let span = (cfg.epochs * per_epoch) as f64 - warm;
            let done = ((iter as f64 - warm) / span.max(1.0)).clamp(0.0, 1.0);
            cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * done).cos())
        }
    };
    if iter < cfg.warmup_iters {
        let k = (1.0 - iter as f64 / cfg.warmup_iters as f64) * (1.0 - cfg.warmup_ratio);
        lr * (1.0 - k)
    } else {
        lr
    }
}

/// Softmax temperature at global iteration `iter`: `start` → `end` linearly over the first
/// `epochs` epochs, then `end` (the DY-Conv paper: 30 → 1 over 10 epochs).
pub fn temperature(cfg: &TrainConfig, iter: usize, iters_per_epoch: usize) -> f32 {
    cfg.temperature.at(iter, iters_per_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_by_hand() {
        let cfg = TrainConfig { warmup_iters: 10, ..Default::default() };
        assert!((learning_rate(&cfg, 0, 0, 100) - 1e-6).abs() < 1e-12, "starts at ratio 0.001");
        assert!((learning_rate(&cfg, 0, 5, 100) - 1e-3 * (1.0 - 0.5 * 0.999)).abs() < 1e-12);
        assert_eq!(learning_rate(&cfg, 0, 10, 100), 1e-3);
        assert!((learning_rate(&cfg, 170, 10_000, 100) - 1e-4).abs() < 1e-12);
        assert!((learning_rate(&cfg, 205, 10_000, 100) - 1e-5).abs() < 1e-12);
        // 100 iterations per epoch: τ = 30 at 0, 15.5 at 5 epochs, 1 from 10 epochs on.
        assert_eq!(temperature(&cfg, 0, 100), 30.0);
        assert_eq!(temperature(&cfg, 500, 100), 15.5);
        assert_eq!(temperature(&cfg, 1000, 100), 1.0);
        assert_eq!(temperature(&cfg, 5000, 100), 1.0);
    }

    #[test]
    fn cosine_by_hand() {
        // 4 epochs of 100 iterations, 100 of warm-up: the cosine runs over iterations 100..400.
        let cfg = TrainConfig {
            lr: 0.01,
            epochs: 4,
            warmup_iters: 100,
            lr_schedule: LrSchedule::Cosine,
            ..Default::default()
        };
        let at = |iter: usize| learning_rate(&cfg, iter / 100, iter, 100);
        assert!((at(50) - 0.01 * (1.0 - 0.5 * 0.999)).abs() < 1e-12, "warm-up as for steps");
        assert_eq!(at(100), 0.01);
        assert!((at(250) - 0.005).abs() < 1e-12, "half way: half the rate");
        assert!((at(175) - 0.01 * (0.5 + 0.5 * 0.5f64.sqrt())).abs() < 1e-12, "a quarter: cos(π/4)");
        assert!(at(399) > 0.0 && at(399) < 1e-6);
        assert_eq!(at(400), 0.0);
        let none = TrainConfig { warmup_iters: 0, ..cfg.clone() };
        assert_eq!(learning_rate(&none, 0, 0, 100), 0.01);
    }

    #[test]
    fn warmup_by_epochs_by_hand() {
        // 10 epochs of 100 iterations, lr 0.4, warm-up over 1 epoch: 0.004, 0.008, … 0.4 over
        // the first 100 steps, then the cosine over the remaining 900.
        let cfg = TrainConfig {
            lr: 0.4,
            epochs: 10,
            warmup_iters: 0,
            warmup_epochs: 1.0,
            lr_schedule: LrSchedule::Cosine,
            ..Default::default()
        };
        let at = |iter: usize| learning_rate(&cfg, iter / 100, iter, 100);
        assert!((at(0) - 0.004).abs() < 1e-12);
        assert!((at(99) - 0.4).abs() < 1e-12);
        assert!((at(100) - 0.4).abs() < 1e-12);
        assert!((at(550) - 0.2).abs() < 1e-12, "half way through the cosine");
        assert!(at(1000).abs() < 1e-12);
        let step = TrainConfig { lr_schedule: LrSchedule::Step, lr_steps: vec![3, 6], warmup_epochs: 0.0, ..cfg };
        assert!((learning_rate(&step, 2, 299, 100) - 0.4).abs() < 1e-12);
        assert!((learning_rate(&step, 3, 300, 100) - 0.04).abs() < 1e-12);
        assert!((learning_rate(&step, 6, 650, 100) - 0.004).abs() < 1e-12);
    }
}
