//! Learning rate and dynamic-conv temperature as functions of the position in training, so that
//! a resumed run computes exactly what an uninterrupted one would.

use crate::config::TrainConfig;

/// Learning rate at global iteration `iter` (0-based) in `epoch`: step decay by epoch, and a
/// linear warm-up from `warmup_ratio`·lr over the first `warmup_iters` iterations (mmpose's
/// `warmup='linear'`).
pub fn learning_rate(cfg: &TrainConfig, epoch: usize, iter: usize) -> f64 {
    let steps = cfg.lr_steps.iter().filter(|&&s| epoch >= s).count();
    let lr = cfg.lr * cfg.lr_factor.powi(steps as i32);
    if iter < cfg.warmup_iters {
        let k = (1.0 - iter as f64 / cfg.warmup_iters as f64) * (1.0 - cfg.warmup_ratio);
        lr * (1.0 - k)
    } else {
        lr
    }
}

/// Softmax temperature at global iteration `iter`: `start` → `end` linearly over the first
/// `epochs` epochs, then `end` (DESIGN §3: 30 → 1 over 10 epochs).
pub fn temperature(cfg: &TrainConfig, iter: usize, iters_per_epoch: usize) -> f32 {
    cfg.temperature.at(iter, iters_per_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_by_hand() {
        let cfg = TrainConfig { warmup_iters: 10, ..Default::default() };
        assert!((learning_rate(&cfg, 0, 0) - 1e-6).abs() < 1e-12, "starts at ratio 0.001");
        assert!((learning_rate(&cfg, 0, 5) - 1e-3 * (1.0 - 0.5 * 0.999)).abs() < 1e-12);
        assert_eq!(learning_rate(&cfg, 0, 10), 1e-3);
        assert!((learning_rate(&cfg, 170, 10_000) - 1e-4).abs() < 1e-12);
        assert!((learning_rate(&cfg, 205, 10_000) - 1e-5).abs() < 1e-12);
        // 100 iterations per epoch: τ = 30 at 0, 15.5 at 5 epochs, 1 from 10 epochs on.
        assert_eq!(temperature(&cfg, 0, 100), 30.0);
        assert_eq!(temperature(&cfg, 500, 100), 15.5);
        assert_eq!(temperature(&cfg, 1000, 100), 1.0);
        assert_eq!(temperature(&cfg, 5000, 100), 1.0);
    }
}
