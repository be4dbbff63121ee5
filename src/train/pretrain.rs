//! Classification pretraining (`dypose pretrain`): SGD with (Nesterov) momentum and weight
//! decay, label-smoothed cross-entropy, warm-up then cosine or step decay, the τ schedule;
//! top-1 and top-5 on the validation folder; the run directory of `train` (config.json,
//! train.log, metrics.csv, curves.png, last and best checkpoints) with exact resume.

use super::metrics::{read_rows, write_rows};
use super::trainer::Log;
use crate::config::{ClassifierModel, PretrainConfig};
use crate::data::folder::{ClassBatch, FolderLoader, ImageFolder};
use crate::model::backend::ConvBackend;
use crate::model::blueprint::Blueprint;
use crate::model::checkpoint::{load_into, to_bytes, OPTIMIZER_PREFIX};
use crate::model::layers::{Ctx, Flat, Param};
use crate::model::network::Network;
use anyhow::{bail, ensure, Context, Result};
use dfdx::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use super::trainer::{BEST, LAST, RUN_FILES};
/// The columns of `metrics.csv`.
pub const HEADER: &str = "epoch,iteration,loss,lr,temperature,images_per_s,val_top1,val_top5";

/// PyTorch's SGD: d = g + λp; b = μb + d (b = d at the first step); p −= lr·(d + μb) with
/// Nesterov, lr·b without.
pub struct Sgd<D: Device<f32>> {
    pub momentum: f32,
    pub nesterov: bool,
    pub weight_decay: f32,
    pub buffers: Vec<Flat<D>>,
}

impl<D: Device<f32>> Sgd<D> {
    pub fn new(params: &[&Param<D>], momentum: f32, nesterov: bool, weight_decay: f32) -> Self {
        let buffers =
            params.iter().filter(|p| p.trainable).map(|p| p.value.device().zeros_like(&(p.numel(),))).collect();
        Sgd { momentum, nesterov, weight_decay, buffers }
    }

    pub fn update(&mut self, params: Vec<&mut Param<D>>, grads: &Gradients<f32, D>, lr: f64) {
        let lr = lr as f32;
        for (p, b) in params.into_iter().filter(|p| p.trainable).zip(self.buffers.iter_mut()) {
            let mut d: Flat<D> = grads.get(&p.value);
            if self.weight_decay > 0.0 {
                d = d + p.value.clone() * self.weight_decay;
            }
            *b = b.clone() * self.momentum + d.clone();
            let step = if self.nesterov { d + b.clone() * self.momentum } else { b.clone() };
            p.value = p.value.clone() - step * lr;
        }
    }
}

/// Cross-entropy against targets smoothed as PyTorch's `label_smoothing` does:
/// (1 − ε)·one-hot + ε/C, averaged over the batch.
pub fn smoothed_cross_entropy<D: Device<f32>, T: Tape<f32, D>>(
    logits: Tensor<(usize, usize), f32, D, T>,
    labels: &[usize],
    smoothing: f32,
) -> Tensor<Rank0, f32, D, T> {
    let (b, c) = *logits.shape();
    let mut target = vec![smoothing / c as f32; b * c];
    for (i, &l) in labels.iter().enumerate() {
        target[i * c + l] += 1.0 - smoothing;
    }
    let t = logits.device().tensor_from_vec(target, (b, c));
    (logits.log_softmax::<Axis<1>>() * t).sum::<Rank0, _>().negate() / b as f32
}

/// Where pretraining stands: the next batch is batch `batch` of epoch `epoch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PretrainState {
    pub epoch: usize,
    pub batch: usize,
    pub iteration: usize,
    pub best_top1: Option<f64>,
}

/// One `metrics.csv` row.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Row {
    pub epoch: usize,
    pub iteration: usize,
    pub loss: f64,
    pub lr: f64,
    pub temperature: f64,
    pub images_per_s: f64,
    pub val_top1: Option<f64>,
    pub val_top5: Option<f64>,
}

/// Top-1 and top-5 accuracy of `net` on the evaluation views of `loader`'s folder.
pub fn evaluate<D: ConvBackend>(net: &mut Network<D>, loader: &FolderLoader) -> Result<(f64, f64)> {
    let (mut top1, mut top5, mut n) = (0usize, 0usize, 0usize);
    let dev = net.device();
    let s = loader.input;
    for k in 0..loader.batches_per_epoch() {
        let ClassBatch { inputs, labels } = loader.batch(0, k)?;
        let x = dev.tensor_from_vec(inputs, (labels.len(), 3, s.height, s.width));
        let logits = net.logits(x, Ctx::INFERENCE).as_vec();
        let c = logits.len() / labels.len();
        for (row, &l) in logits.chunks_exact(c).zip(&labels) {
            let above = row.iter().filter(|&&v| v > row[l]).count();
            top1 += usize::from(above == 0);
            top5 += usize::from(above < 5);
        }
        n += labels.len();
    }
    ensure!(n > 0, "the validation folder is empty");
    Ok((top1 as f64 / n as f64, top5 as f64 / n as f64))
}

/// A pretraining run in its directory.
pub struct Pretrainer<D: ConvBackend> {
    pub net: Network<D>,
    pub state: PretrainState,
    cfg: PretrainConfig,
    model: ClassifierModel,
    sgd: Sgd<D>,
    dir: PathBuf,
    rows: Vec<Row>,
    per_epoch: usize,
}

fn momentum_params<D: ConvBackend>(net: &Network<D>, sgd: &Sgd<D>) -> Vec<Param<D>> {
    let trainable = net.params().into_iter().filter(|p| p.trainable);
    trainable
        .zip(&sgd.buffers)
        .map(|(p, b)| Param {
            name: format!("{OPTIMIZER_PREFIX}momentum.{}", p.name),
            shape: p.shape.clone(),
            value: b.clone(),
            trainable: false,
        })
        .collect()
}

impl<D: ConvBackend> Pretrainer<D> {
    /// Starts a run in `dir` (refused when one is there) or resumes it from `last.safetensors`
    /// (refused when the config differs other than in `epochs`).
    pub fn open(
        dev: &D,
        cfg: &PretrainConfig,
        model: ClassifierModel,
        per_epoch: usize,
        dir: &Path,
        resume: bool,
    ) -> Result<Self> {
        let last = dir.join(LAST);
        if resume {
            ensure!(last.exists(), "{}: nothing to resume (no {LAST})", dir.display());
        } else if last.exists() || dir.join("config.json").exists() {
            bail!("{}: a run is already there; pass --resume to continue it, or choose another --out", dir.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the run directory", dir.display()))?;
        crate::fsutil::remove_stale_temporaries(dir);
        let bp = Blueprint::classifier(&model)?;
        let mut net = Network::new(dev, &bp, cfg.seed);
        let mut sgd = Sgd::new(&net.params(), cfg.momentum as f32, cfg.nesterov, cfg.weight_decay as f32);
        let (mut state, mut rows) = (PretrainState::default(), Vec::new());
        if resume {
            let source = last.display().to_string();
            let bytes = std::fs::read(&last).with_context(|| format!("{source}: cannot read"))?;
            let mut moments = momentum_params(&net, &sgd);
            let mut all = net.params_mut();
            all.extend(moments.iter_mut());
            let meta = load_into(all, &bytes, &source)?;
            sgd.buffers = moments.into_iter().map(|m| m.value).collect();
            let field =
                |k: &str| meta.get(k).with_context(|| format!("{source}: not a pretraining checkpoint (no '{k}')"));
            state = serde_json::from_str(field("pretrain_state")?)?;
            let stored: PretrainConfig = serde_json::from_str(field("pretrain_config")?)?;
            ensure!(
                PretrainConfig { epochs: cfg.epochs, ..stored } == *cfg,
                "{source}: the run was started with a different config; resume with the same one (only epochs may change)"
            );
            rows = read_rows::<Row>(&dir.join("metrics.csv"))?;
            rows.retain(|r| r.iteration <= state.iteration);
        } else {
            crate::fsutil::write_new(&dir.join("config.json"), serde_json::to_string_pretty(cfg)?.as_bytes(), false)?;
        }
        Ok(Pretrainer { net, state, cfg: cfg.clone(), model, sgd, dir: dir.to_path_buf(), rows, per_epoch })
    }

    pub fn finished(&self) -> bool {
        self.state.epoch >= self.cfg.epochs
    }

    /// One SGD step on a batch; returns the loss (a non-finite one stops the run).
    pub fn step(&mut self, batch: ClassBatch) -> Result<f64> {
        let n = batch.labels.len();
        ensure!(n > 0, "an empty batch");
        let (it, per) = (self.state.iteration, self.per_epoch);
        let (lr, tau) = (self.cfg.learning_rate(it, per), self.cfg.temperature_at(it, per));
        let s = self.cfg.input_size;
        let x = self.net.device().tensor_from_vec(batch.inputs, (n, 3, s.height, s.width));
        let logits = self.net.logits(x.leaky_trace(), Ctx::train(tau));
        let loss = smoothed_cross_entropy(logits, &batch.labels, self.cfg.label_smoothing as f32);
        let value = loss.as_vec()[0] as f64;
        if !value.is_finite() {
            bail!(
                "the loss became {value} at iteration {it}: stopped; the last good checkpoint is {} (try a lower lr)",
                self.dir.join(LAST).display()
            );
        }
        let grads = loss.backward();
        self.sgd.update(self.net.params_mut(), &grads, lr);
        self.state.batch += 1;
        self.state.iteration += 1;
        Ok(value)
    }

    /// Whether the epoch in progress ends with a validation.
    pub fn validation_due(&self) -> bool {
        let (every, done) = (self.cfg.val_every, self.state.epoch + 1);
        done == self.cfg.epochs || (every > 0 && done % every == 0)
    }

    /// Closes an epoch: its metrics row, the curves, `best.safetensors` when top-1 improved,
    /// `last.safetensors` at the next epoch.
    pub fn end_epoch(&mut self, mut row: Row, accuracy: Option<(f64, f64)>) -> Result<Option<String>> {
        let mut line = None;
        if let Some((top1, top5)) = accuracy {
            (row.val_top1, row.val_top5) = (Some(top1), Some(top5));
            let mut text =
                format!("epoch {}: val top-1 {:.2}% top-5 {:.2}%", self.state.epoch + 1, 100.0 * top1, 100.0 * top5);
            if self.state.best_top1.is_none_or(|b| top1 > b) {
                self.state.best_top1 = Some(top1);
                let mut meta = self.metadata()?;
                meta.insert("epoch".into(), (self.state.epoch + 1).to_string());
                meta.insert("val_top1".into(), top1.to_string());
                crate::model::checkpoint::save(&self.net, &self.dir.join(BEST), meta, true)?;
                text += " (best so far)";
            }
            line = Some(text);
        }
        self.rows.push(row);
        self.state.epoch += 1;
        self.state.batch = 0;
        write_rows(&self.dir.join("metrics.csv"), &self.rows, HEADER)?;
        self.plot()?;
        self.save_last()?;
        Ok(line)
    }

    fn metadata(&self) -> Result<BTreeMap<String, String>> {
        Ok(BTreeMap::from([
            (crate::config::CLASSIFIER_KEY.to_string(), serde_json::to_string(&self.model)?),
            ("pretrain_config".to_string(), serde_json::to_string(&self.cfg)?),
        ]))
    }

    /// Model, momentum buffers and position, atomically.
    pub fn save_last(&self) -> Result<()> {
        let moments = momentum_params(&self.net, &self.sgd);
        let mut all = self.net.params();
        all.extend(moments.iter());
        let mut meta = self.metadata()?;
        meta.insert("pretrain_state".into(), serde_json::to_string(&self.state)?);
        crate::fsutil::write_atomic(&self.dir.join(LAST), &to_bytes(&all, meta)?)
    }

    fn plot(&self) -> Result<()> {
        let loss: Vec<(f64, f64)> = self.rows.iter().map(|r| (r.iteration as f64, r.loss)).collect();
        let acc = |f: fn(&Row) -> Option<f64>| -> Vec<(f64, f64)> {
            self.rows.iter().filter_map(|r| f(r).map(|v| (r.iteration as f64, v))).collect()
        };
        let (top1, top5) = (acc(|r| r.val_top1), acc(|r| r.val_top5));
        let img = crate::viz::plot::two_axis_chart(
            "pretraining",
            "iteration",
            ("loss", &loss),
            ("accuracy", &[("top-1", &top1), ("top-5", &top5)]),
        );
        crate::viz::save_image(&img, &self.dir.join("curves.png"), true)
    }
}

/// What a finished (or interrupted) run reports.
#[derive(Debug, Clone)]
pub struct PretrainOutcome {
    pub state: PretrainState,
    pub last_accuracy: Option<(f64, f64)>,
    pub interrupted: bool,
}

/// Pretrains `cfg` into `dir` (resuming with `resume`), `stop_after` steps at most in this call.
pub fn pretrain<D: ConvBackend>(
    dev: D,
    cfg: &PretrainConfig,
    dir: &Path,
    resume: bool,
    stop_after: Option<usize>,
) -> Result<PretrainOutcome> {
    let train = ImageFolder::open(&cfg.train_dir)?;
    let val = ImageFolder::open(&cfg.val_dir)?;
    ensure!(
        train.classes == val.classes,
        "{} and {} hold different classes",
        cfg.train_dir.display(),
        cfg.val_dir.display()
    );
    let model = ClassifierModel {
        arch: cfg.arch,
        width: cfg.width,
        kernels: cfg.kernels,
        dynamic_shortcut: cfg.dynamic_shortcut,
        classes: train.classes.len(),
        input_size: cfg.input_size,
        class_names: train.classes.clone(),
    };
    let loader =
        FolderLoader { folder: train, input: cfg.input_size, batch_size: cfg.batch_size, seed: cfg.seed, train: true };
    let val_loader =
        FolderLoader { folder: val, input: cfg.input_size, batch_size: cfg.batch_size, seed: cfg.seed, train: false };
    let per_epoch = loader.batches_per_epoch();
    ensure!(per_epoch > 0, "{}: fewer images than one batch of {}", cfg.train_dir.display(), cfg.batch_size);
    let mut t = Pretrainer::open(&dev, cfg, model, per_epoch, dir, resume)?;
    let mut log = Log::open(&dir.join("train.log"))?;
    let mut say = |line: &str| log.line(line);
    say(&format!(
        "pretraining {} on {} images of {} classes ({} batches an epoch), validating on {}",
        cfg.arch,
        loader.folder.len(),
        loader.folder.classes.len(),
        per_epoch,
        val_loader.folder.len()
    ));
    let stop = super::trainer::interrupt_flag();
    stop.store(false, std::sync::atomic::Ordering::SeqCst);
    let (mut steps, mut last_accuracy) = (0, None);
    while !t.finished() {
        let epoch = t.state.epoch;
        let bar = crate::progress::bar(per_epoch as u64, &format!("epoch {}/{}", epoch + 1, cfg.epochs), "batches");
        bar.set_position(t.state.batch as u64);
        let (started, mut images, mut loss_sum, mut n) = (Instant::now(), 0, 0.0, 0);
        while t.state.batch < per_epoch {
            let batch = loader.batch(epoch as u64, t.state.batch)?;
            images += batch.labels.len();
            let loss = t.step(batch)?;
            (loss_sum, n, steps) = (loss_sum + loss, n + 1, steps + 1);
            bar.inc(1);
            bar.set_message(format!("e{} loss {loss:.3}", epoch + 1));
            if stop.load(std::sync::atomic::Ordering::SeqCst) || stop_after.is_some_and(|s| steps >= s) {
                bar.finish_and_clear();
                t.save_last()?;
                say(&format!("interrupted at epoch {epoch}, iteration {}; continue with --resume", t.state.iteration));
                return Ok(PretrainOutcome { state: t.state, last_accuracy, interrupted: true });
            }
        }
        bar.finish_and_clear();
        let it = t.state.iteration.saturating_sub(1);
        let row = Row {
            epoch,
            iteration: t.state.iteration,
            loss: if n > 0 { loss_sum / n as f64 } else { f64::NAN },
            lr: cfg.learning_rate(it, per_epoch),
            temperature: cfg.temperature_at(it, per_epoch) as f64,
            images_per_s: images as f64 / started.elapsed().as_secs_f64(),
            ..Default::default()
        };
        let accuracy = if t.validation_due() { Some(evaluate(&mut t.net, &val_loader)?) } else { None };
        last_accuracy = accuracy.or(last_accuracy);
        let images_per_s = row.images_per_s;
        if let Some(line) = t.end_epoch(row, accuracy)? {
            say(&format!("{line}; {images_per_s:.1} images/s"));
        }
    }
    Ok(PretrainOutcome { state: t.state, last_accuracy, interrupted: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_matches_pytorch_by_hand() {
        // f(p) = Σ c·p²: g = 2cp. Nesterov, μ 0.9, λ 0.1, lr 0.5, two steps.
        let dev: Cpu = Default::default();
        let c = [1.0f32, -0.5];
        let mut p = Param::new(&dev, "w".into(), vec![2], vec![1.0, 2.0], true);
        let mut sgd = Sgd::new(&[&p], 0.9, true, 0.1);
        let (mut rp, mut rb) = ([1.0f64, 2.0], [0.0f64; 2]);
        for _ in 0..2 {
            let x: Tensor<(usize,), f32, Cpu, OwnedTape<f32, Cpu>> = p.t1();
            let grads = (x.square() * dev.tensor_from_vec(c.to_vec(), (2,))).sum().backward();
            sgd.update(vec![&mut p], &grads, 0.5);
            for i in 0..2 {
                let d = 2.0 * c[i] as f64 * rp[i] + 0.1 * rp[i];
                rb[i] = 0.9 * rb[i] + d;
                rp[i] -= 0.5 * (d + 0.9 * rb[i]);
            }
        }
        let got = p.value.as_vec();
        assert!((got[0] as f64 - rp[0]).abs() < 1e-5 && (got[1] as f64 - rp[1]).abs() < 1e-5, "{got:?} vs {rp:?}");
    }

    #[test]
    fn smoothed_cross_entropy_by_hand() {
        // Logits [0, ln 3] (p = 1/4, 3/4), label 1, ε = 0.2: targets 0.1, 0.9:
        // −(0.1·ln ¼ + 0.9·ln ¾).
        let dev: Cpu = Default::default();
        let logits = dev.tensor_from_vec(vec![0.0f32, 3f32.ln()], (1, 2));
        let got = smoothed_cross_entropy(logits, &[1], 0.2).array() as f64;
        let want = -(0.1 * 0.25f64.ln() + 0.9 * 0.75f64.ln());
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}
