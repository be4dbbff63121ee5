//! The one training core, for every task (pose, detector, classifier), in small steps: open
//! (or resume) a run, one optimisation step, the end of an epoch (validation scores, metrics,
//! curves, checkpoints), and the loop that strings them together over the loader's batches.
//! What differs between tasks (network, loss, validation, score columns) comes through
//! [`Task`]; the run directory, resume, checkpoints with optimiser state, metrics, curves,
//! Ctrl-C, progress and logs are here once.

use super::metrics::{self, Row};
use super::optimizer::Optimizer;
use super::schedule::{learning_rate, temperature};
use super::state::{self, TrainState};
use super::tasks::{Scores, Task};
use crate::config::Config;
use crate::data::loader::{Batch, BatchPart, LoadReport, Loader};
use crate::dist::World;
use crate::model::backend::ConvBackend;
use crate::model::checkpoint::{BestScore, CheckpointMeta};
use crate::model::layers::Flat;
use crate::model::network::Network;
use anyhow::{bail, ensure, Context, Result};
use dfdx::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    pub run_dir: PathBuf,
    pub resume: bool,
    /// Stop (as Ctrl-C would) after this many optimisation steps in this process.
    pub stop_after: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub state: TrainState,
    pub interrupted: bool,
    /// The last validation (after the last epoch when `train.val_every` > 0).
    pub last_scores: Option<Scores>,
    /// Training images per second (loading included) over this process's steps.
    pub images_per_s: f64,
}

pub const LAST: &str = "last.safetensors";
pub const BEST: &str = "best.safetensors";
/// Every file a run writes in its directory.
pub const RUN_FILES: [&str; 6] = ["config.json", "train.log", "metrics.csv", "curves.png", LAST, BEST];

/// Set by Ctrl-C; the loop finishes its step, writes a checkpoint and returns.
fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        // Fails only if another handler is installed; then Ctrl-C keeps its default meaning.
        let _ = ctrlc::set_handler(move || f.store(true, Ordering::SeqCst));
        flag
    })
    .clone()
}

/// Appends to `train.log` and prints to stderr (between progress bars, never during one); in a
/// job of several ranks, rank 0 alone keeps the log.
struct Log(Option<std::fs::File>);

impl Log {
    fn open(path: &Path, world: World) -> Result<Log> {
        if !world.is_root() {
            return Ok(Log(None));
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(Log(Some(file)))
    }

    fn line(&mut self, text: &str) {
        if let Some(file) = &mut self.0 {
            let _ = writeln!(file, "{text}");
            eprintln!("{text}");
        }
    }
}

/// Loss and throughput since the last metrics row.
struct Window {
    loss_sum: f64,
    steps: usize,
    images: usize,
    start: Instant,
}

impl Window {
    fn new() -> Window {
        Window { loss_sum: 0.0, steps: 0, images: 0, start: Instant::now() }
    }

    fn mean_loss(&self) -> Option<f64> {
        (self.steps > 0).then(|| self.loss_sum / self.steps as f64)
    }

    fn images_per_s(&self) -> f64 {
        self.images as f64 / self.start.elapsed().as_secs_f64()
    }
}

/// Keys whose values differ between two configs (as JSON), `train.epochs` excepted.
fn config_differences(a: &Config, b: &Config) -> Result<Vec<String>> {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, at: String, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let key = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                    let null = serde_json::Value::Null;
                    walk(x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), key, out);
                }
            }
            _ if a != b && at != "train.epochs" => out.push(at),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&serde_json::to_value(a)?, &serde_json::to_value(b)?, String::new(), &mut out);
    Ok(out)
}

/// A training run in its directory: the task, its network, the optimiser, the position, and the
/// metrics so far.
pub struct Trainer<D: ConvBackend, T: Task<D>> {
    pub net: Network<D>,
    pub state: TrainState,
    pub task: T,
    cfg: Config,
    optimizer: Optimizer<D>,
    dir: PathBuf,
    log: Log,
    rows: Vec<Row>,
    window: Window,
    per_epoch: usize,
    /// The ranks training together (one outside an MPI job); rank 0 writes the run's files.
    world: World,
    /// Samples stepped on by the whole job in this process's lifetime.
    pub job_images: usize,
}

impl<D: ConvBackend, T: Task<D>> Trainer<D, T> {
    /// Starts a run in `opts.run_dir` (refused when one is there) or, with `opts.resume`,
    /// continues it from its `last.safetensors` (refused when the config differs other than in
    /// `train.epochs`). `per_epoch` is the number of batches in an epoch.
    ///
    /// In a job of several ranks every rank opens the run: all check it before rank 0 creates
    /// it, a resume reads `last.safetensors` in every rank (the run directory must be on a file
    /// system they share), and the ranks must then hold the same weights and state.
    pub fn open(dev: &D, cfg: &Config, task: T, per_epoch: usize, opts: &TrainOptions) -> Result<Self> {
        let (dir, world) = (&opts.run_dir, crate::dist::world());
        let last = dir.join(LAST);
        if opts.resume {
            ensure!(last.exists(), "{}: nothing to resume (no {LAST})", dir.display());
        } else if last.exists() || dir.join("config.json").exists() {
            bail!("{}: a run is already there; pass --resume to continue it, or choose another --out", dir.display());
        }
        world.barrier();
        let mut net = task.network(dev, cfg)?;
        if world.is_root() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create the run directory", dir.display()))?;
            crate::fsutil::remove_stale_temporaries(dir);
        }
        let log = Log::open(&dir.join("train.log"), world)?;
        let mut optimizer = Optimizer::new(&net, &cfg.train);
        let (mut state, mut rows) = (TrainState::default(), Vec::new());
        if opts.resume {
            let (s, stored) = state::load(&last, &mut net, &mut optimizer)?;
            let diff = config_differences(&stored, cfg)?;
            ensure!(
                diff.is_empty(),
                "{}: the run was started with a different config ({}); resume with the same config (only train.epochs may change)",
                last.display(),
                diff.join(", ")
            );
            state = s;
            rows = metrics::read(&dir.join("metrics.csv"), task.score_columns())?;
            rows.retain(|r| r.iteration <= state.iteration);
        } else if world.is_root() {
            let text = serde_json::to_string_pretty(cfg)?;
            crate::fsutil::write_new(&dir.join("config.json"), text.as_bytes(), false)?;
        }
        let mut started_from = None;
        if let (false, Some(ck)) = (opts.resume, &cfg.model.backbone_checkpoint) {
            let report = crate::model::backbone_init::load_backbone(&mut net, ck, cfg.seed)?;
            started_from = Some(report.summary(&ck.display().to_string()));
        }
        let mut trainer = Trainer {
            net,
            state,
            task,
            cfg: cfg.clone(),
            optimizer,
            dir: dir.clone(),
            log,
            rows,
            window: Window::new(),
            per_epoch,
            world,
            job_images: 0,
        };
        if opts.resume {
            let s = &trainer.state;
            let line = format!("resuming at epoch {} batch {} (iteration {})", s.epoch, s.batch, s.iteration);
            trainer.log(&line);
            let before = trainer.state.ranks.max(1);
            if let Some(line) = trainer.state.continue_with_ranks(world.size, per_epoch) {
                trainer.log(&line);
                // The metrics so far, in the same units (an epoch's steps scale with 1 / ranks).
                for row in &mut trainer.rows {
                    row.iteration = row.iteration * before / world.size;
                }
            }
        }
        trainer.state.ranks = world.size;
        if let Some(line) = started_from {
            trainer.log(&line);
        }
        trainer.refuse_diverged_ranks()?;
        Ok(trainer)
    }

    /// In a job of several ranks: refuses to start unless every rank holds rank 0's weights,
    /// optimiser state and position (a resume that read different files would train apart).
    fn refuse_diverged_ranks(&self) -> Result<()> {
        if self.world.size == 1 {
            return Ok(());
        }
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for p in self.net.params().into_iter().chain(self.optimizer.state_tensors(&self.net).iter()) {
            hasher.update(p.value.as_vec().iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
        }
        hasher.update(serde_json::to_vec(&self.state)?);
        let mine = hasher.finalize().to_vec();
        let roots = self.world.broadcast(mine.clone());
        ensure!(
            roots == mine,
            "rank {}: its weights, optimiser state or position differ from rank 0's at the start (with --resume: is {} the same file on every machine?)",
            self.world.rank,
            self.dir.join(LAST).display()
        );
        Ok(())
    }

    pub fn log(&mut self, line: &str) {
        self.log.line(line);
    }

    /// Whether the run has done all its epochs.
    pub fn finished(&self) -> bool {
        self.state.epoch >= self.cfg.train.epochs
    }

    /// One optimisation step on `batch` at the scheduled learning rate and temperature; returns
    /// the loss. A non-finite loss stops the run (the last checkpoint stays as it was). In a job
    /// of several ranks, `batch` is this rank's part of the step (possibly empty) and the loss
    /// and gradients are the whole step's; a step no rank had a sample for is skipped (NaN).
    pub fn step(&mut self, batch: Batch) -> Result<f64> {
        ensure!(!batch.is_empty() || self.world.size > 1, "an empty batch");
        let started = Instant::now();
        let (cfg, st) = (&self.cfg, &self.state);
        let lr = learning_rate(&cfg.train, st.epoch, st.iteration, self.per_epoch);
        let tau = temperature(&cfg.train, st.iteration, self.per_epoch);
        let Some((grads, value, n)) = self.gradients(batch, tau)? else {
            // No rank had a readable sample: every rank skips the step, as one process skips
            // an empty batch (the position moves on).
            self.state.batch += 1;
            return Ok(f64::NAN);
        };
        if !value.is_finite() {
            let st = &self.state;
            bail!(
                "the loss became {value} at epoch {}, iteration {}: stopped; the last good checkpoint is {} (try a lower train.lr)",
                st.epoch,
                st.iteration,
                self.dir.join(LAST).display()
            );
        }
        self.optimizer.update(self.net.params_mut(), &grads, lr);
        let st = &mut self.state;
        st.batch += 1;
        st.iteration += 1;
        st.train_seconds += started.elapsed().as_secs_f64();
        let iteration = st.iteration;
        self.job_images += n;
        let w = &mut self.window;
        (w.loss_sum, w.steps, w.images) = (w.loss_sum + value, w.steps + 1, w.images + n);
        let every = self.cfg.train.log_every;
        if every > 0 && iteration % every == 0 {
            self.log_row(lr, tau as f64)?;
        }
        if self.cfg.train.checkpoint_every > 0 && iteration % self.cfg.train.checkpoint_every == 0 {
            self.save_last()?;
        }
        Ok(value)
    }

    /// The trainable parameters' gradients (registry order), the loss and the number of samples
    /// of the step. Across ranks, each rank's mean is weighted by its sample count, so that they
    /// are the means over the whole step's samples, as one process with the whole batch would
    /// have them (batch norm apart: its statistics stay per rank).
    #[allow(clippy::type_complexity)]
    fn gradients(&mut self, batch: Batch, tau: f32) -> Result<Option<(Vec<Flat<D>>, f64, usize)>> {
        let n = batch.len();
        let (grads, value): (Vec<Flat<D>>, f64) = if n > 0 {
            let (loss, value) = self.task.loss(&mut self.net, &self.cfg, batch, tau)?;
            let g = loss.backward();
            (self.net.params().into_iter().filter(|p| p.trainable).map(|p| g.get(&p.value)).collect(), value)
        } else {
            let dev = self.net.device();
            (
                self.net.params().into_iter().filter(|p| p.trainable).map(|p| dev.zeros_like(&(p.numel(),))).collect(),
                0.0,
            )
        };
        if !self.world.launched {
            return Ok(Some((grads, value, n)));
        }
        let mut totals = [value * n as f64, n as f64];
        self.world.sum_f64(&mut totals);
        let (total, dev) = (totals[1], self.net.device().clone());
        if total == 0.0 {
            return Ok(None);
        }
        let mut weighted: Vec<Flat<D>> = grads.into_iter().map(|g| g * n as f32).collect();
        if !dev.sum_across_ranks(&mut weighted)? {
            let mut flat: Vec<f32> = Vec::with_capacity(weighted.iter().map(|g| g.shape().0).sum());
            for g in &weighted {
                flat.extend(g.as_vec());
            }
            self.world.sum_f32(&mut flat);
            let mut at = 0;
            for g in &mut weighted {
                let len = g.shape().0;
                at += len;
                *g = dev.tensor_from_vec(flat[at - len..at].to_vec(), (len,));
            }
        }
        let mean = weighted.into_iter().map(|g| g / total as f32).collect();
        Ok(Some((mean, totals[0] / total, total as usize)))
    }

    /// Gives every rank rank 0's buffers (batch norm's running statistics), which each rank
    /// updates from its own batches: validation and the next epoch then run, in every rank, on
    /// the statistics the checkpoints hold.
    pub fn share_buffers(&mut self) -> Result<()> {
        if self.world.size == 1 {
            return Ok(());
        }
        let mine: Vec<u8> = match self.world.is_root() {
            true => self
                .net
                .params()
                .iter()
                .filter(|p| !p.trainable)
                .flat_map(|p| p.value.as_vec())
                .flat_map(f32::to_le_bytes)
                .collect(),
            false => Vec::new(),
        };
        let shared = self.world.broadcast(mine);
        let values: Vec<f32> =
            shared.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        let dev = self.net.device().clone();
        let mut at = 0;
        for p in self.net.params_mut().into_iter().filter(|p| !p.trainable) {
            let len = p.numel();
            ensure!(
                at + len <= values.len(),
                "rank 0 sent {} buffer values, fewer than this network holds",
                values.len()
            );
            p.value = dev.tensor_from_vec(values[at..at + len].to_vec(), (len,));
            at += len;
        }
        ensure!(at == values.len(), "rank 0 sent {} buffer values, this network holds {at}", values.len());
        Ok(())
    }

    /// A metrics row for the window since the last one.
    fn log_row(&mut self, lr: f64, temperature: f64) -> Result<()> {
        let w = &self.window;
        self.rows.push(Row {
            epoch: self.state.epoch,
            iteration: self.state.iteration,
            loss: w.mean_loss().unwrap_or(f64::NAN),
            lr,
            temperature,
            images_per_s: w.images_per_s(),
            scores: Vec::new(),
        });
        self.window = Window::new();
        self.write_metrics(false)
    }

    /// `metrics.csv` (and with `curves` the plot), from rank 0.
    fn write_metrics(&self, curves: bool) -> Result<()> {
        if !self.world.is_root() {
            return Ok(());
        }
        metrics::write(&self.dir.join("metrics.csv"), &self.rows, self.task.score_columns())?;
        if curves {
            metrics::plot(&self.dir.join("curves.png"), &self.rows, &self.task.curves())?;
        }
        Ok(())
    }

    /// The learning rate and temperature of the last step taken.
    fn last_schedule(&self) -> (f64, f64) {
        let (t, i) = (&self.cfg.train, self.state.iteration.saturating_sub(1));
        (learning_rate(t, self.state.epoch, i, self.per_epoch), temperature(t, i, self.per_epoch) as f64)
    }

    /// Whether the epoch in progress ends with a validation: every `train.val_every` epochs and
    /// after the last.
    pub fn validation_due(&self) -> bool {
        let (every, done) = (self.cfg.train.val_every, self.state.epoch + 1);
        every > 0 && (done % every == 0 || done == self.cfg.train.epochs)
    }

    /// Closes the epoch in progress: its metrics row (with `scores` when it was validated), a
    /// new `best.safetensors` when the task's first score improved, the curves, and
    /// `last.safetensors` pointing at the next epoch.
    pub fn end_epoch(&mut self, scores: Option<Scores>) -> Result<()> {
        let epoch = self.state.epoch;
        let (lr, temperature) = self.last_schedule();
        let mut row = Row {
            epoch,
            iteration: self.state.iteration,
            loss: self.window.mean_loss().or(self.rows.last().map(|r| r.loss)).unwrap_or(f64::NAN),
            lr,
            temperature,
            images_per_s: if self.window.steps > 0 { self.window.images_per_s() } else { f64::NAN },
            scores: Vec::new(),
        };
        if let Some(s) = &scores {
            row.scores = s.0.clone();
            let mut line = format!("epoch {}: {}", epoch + 1, self.task.summary(s));
            if let Some(key) = s.key().filter(|&k| self.state.best.is_none_or(|b| k > b)) {
                self.state.best = Some(key);
                self.save_best(epoch + 1, key)?;
                line += " (best so far)";
            }
            self.log(&line);
        }
        if self.window.steps > 0 || scores.is_some() {
            self.rows.push(row);
        }
        self.window = Window::new();
        self.state.epoch += 1;
        self.state.batch = 0;
        self.write_metrics(true)?;
        self.save_last()
    }

    /// Metadata every checkpoint of the run carries: the config and what the task stores (the
    /// keypoint set, the classifier's description), so that using it needs nothing else.
    fn metadata(&self) -> Result<CheckpointMeta> {
        let mut meta = CheckpointMeta { config: Some(self.cfg.clone()), ..Default::default() };
        self.task.describe(&mut meta)?;
        Ok(meta)
    }

    fn save_best(&self, epochs_done: usize, score: f64) -> Result<()> {
        if !self.world.is_root() {
            return Ok(());
        }
        let mut meta = self.metadata()?;
        let column = self.task.score_columns()[0].to_string();
        meta.best = Some(BestScore { epoch: epochs_done, column, value: score });
        crate::model::checkpoint::save(&self.net, &self.dir.join(BEST), &meta, true)
    }

    /// Writes model, optimiser and position to `last.safetensors` (atomically), from rank 0.
    pub fn save_last(&self) -> Result<()> {
        if !self.world.is_root() {
            return Ok(());
        }
        state::save(&self.dir.join(LAST), &self.net, &self.optimizer, &self.state, self.metadata()?)
    }
}

/// Trains `task` with `cfg` on `loader`'s batches into `opts.run_dir`, validating at the epochs
/// `train.val_every` asks for; `report` (what the data is) opens the log. Ctrl-C (or
/// `opts.stop_after` steps) finishes the step, writes `last.safetensors` and returns.
pub fn train<D: ConvBackend, T: Task<D>>(
    dev: D,
    cfg: &Config,
    task: T,
    loader: &Loader,
    report: &str,
    opts: &TrainOptions,
) -> Result<TrainOutcome> {
    let world = crate::dist::world();
    let part = BatchPart { index: world.rank, count: world.size };
    let per_epoch = loader.steps_per_epoch(world.size);
    ensure!(
        per_epoch > 0,
        "the train set has {} samples, fewer than one batch of {}{}",
        loader.len(),
        cfg.loader.batch_size * world.size,
        if world.size > 1 { format!(" ({} ranks × {})", world.size, cfg.loader.batch_size) } else { String::new() }
    );
    let mut trainer = Trainer::open(&dev, cfg, task, per_epoch, opts)?;
    trainer.log(report);
    let stop = interrupt_flag();
    stop.store(false, Ordering::SeqCst);
    let started = Instant::now();
    let mut steps = 0usize;
    let (mut last_scores, mut interrupted) = (None, false);
    'epochs: while !trainer.finished() {
        let epoch = trainer.state.epoch;
        let label = format!("epoch {}/{}", epoch + 1, cfg.train.epochs);
        let bar = crate::progress::bar(per_epoch as u64, &label, "batches");
        bar.set_position(trainer.state.batch as u64);
        let mut batches = loader.epoch_part(epoch as u64, trainer.state.batch, part);
        // One rank alone skips a batch that lost every sample; ranks all step, or one waits forever.
        for batch in batches.by_ref().filter(|b| world.size > 1 || !b.is_empty()) {
            let loss = trainer.step(batch)?;
            steps += 1;
            bar.inc(1);
            let (lr, tau) = trainer.last_schedule();
            bar.set_message(format!("e{} loss {loss:.2e} lr {lr:.1e} τ {tau:.1}", epoch + 1));
            if any_rank(world, stop.load(Ordering::SeqCst) || opts.stop_after.is_some_and(|s| steps >= s)) {
                bar.finish_and_clear();
                trainer.save_last()?;
                let (iteration, last) = (trainer.state.iteration, opts.run_dir.join(LAST));
                trainer.log(&format!(
                    "interrupted at epoch {epoch} iteration {iteration}; {} written (continue with --resume)",
                    last.display()
                ));
                interrupted = true;
                break 'epochs;
            }
        }
        bar.finish_and_clear();
        if let Some(line) = loader_report_line(&job_report(world, batches.report())?) {
            trainer.log(&line);
        }
        trainer.share_buffers()?;
        let scores = if trainer.validation_due() { Some(trainer.task.validate(&mut trainer.net)?) } else { None };
        last_scores = scores.clone().or(last_scores);
        trainer.end_epoch(scores)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let images_per_s = trainer.job_images as f64 / elapsed.max(1e-9);
    Ok(TrainOutcome { state: trainer.state, interrupted, last_scores, images_per_s })
}

/// Whether `flag` is set in any rank (every rank must stop at the same step).
fn any_rank(world: World, flag: bool) -> bool {
    let mut v = [f64::from(u8::from(flag))];
    world.sum_f64(&mut v);
    v[0] > 0.0
}

/// The loader reports of every rank, joined at rank 0 (each rank reads its own samples).
fn job_report(world: World, mine: LoadReport) -> Result<LoadReport> {
    if world.size == 1 {
        return Ok(mine);
    }
    let failed: Vec<(String, &String)> =
        mine.failed.iter().map(|(p, e)| (p.to_string_lossy().into_owned(), e)).collect();
    let parts = world.gather(&serde_json::to_vec(&(mine.skipped_samples, failed))?)?;
    let mut joined = LoadReport::default();
    for part in parts {
        let (skipped, failed): (usize, Vec<(String, String)>) = serde_json::from_slice(&part)?;
        joined.skipped_samples += skipped;
        joined.failed.extend(failed.into_iter().map(|(p, e)| (PathBuf::from(p), e)));
    }
    Ok(joined)
}

/// Images the loader could not read this epoch, named once.
fn loader_report_line(report: &LoadReport) -> Option<String> {
    let (path, e) = report.failed.iter().next()?;
    Some(format!(
        "skipped {} samples: {} images could not be read, e.g. {}: {e}",
        report.skipped_samples,
        report.failed.len(),
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coco::KeypointSpec;
    use crate::config::{Arch, Size};
    use crate::model::layers::{init_rng, random_values};
    use crate::train::tasks::Pose;
    use std::collections::BTreeMap;

    type Validator = fn(&mut Network<Cpu>) -> Result<Scores>;
    const POSE: [&str; 3] = ["val_ap", "val_ap50", "val_ap_dets"];

    fn scores(ap: f64, ap50: f64, dets: Option<f64>) -> Scores {
        Scores(vec![Some(ap), Some(ap50), dets])
    }

    /// A tiny dynamic model at 64×64 for COCO's 17 joints, 3 batches an epoch, 2 epochs.
    fn config() -> Config {
        let mut cfg = Config { input_size: Size::new(64, 64), heatmap_size: Size::new(16, 16), ..Default::default() };
        (cfg.model.arch, cfg.model.width, cfg.model.head_channels) = (Arch::DyResnet10, 0.125, 8);
        (cfg.train.epochs, cfg.train.warmup_iters, cfg.train.val_every, cfg.train.log_every) = (2, 2, 1, 2);
        cfg
    }

    fn batch(seed: u64, n: usize) -> Batch {
        let rng = &mut init_rng(seed);
        Batch {
            indices: (0..n).collect(),
            inputs: random_values(rng, n * 3 * 64 * 64),
            targets: random_values(rng, n * 17 * 16 * 16).iter().map(|v| v.abs()).collect(),
            weights: vec![1.0; n * 17],
            labels: vec![],
        }
    }

    fn open(dir: &Path, cfg: &Config, resume: bool) -> Result<Trainer<Cpu, Pose<Validator>>> {
        let opts = TrainOptions { run_dir: dir.to_path_buf(), resume, stop_after: None };
        let task =
            Pose { spec: KeypointSpec::coco17(), validator: (|_| unreachable!("not validated here")) as Validator };
        Trainer::open(&Cpu::default(), cfg, task, 3, &opts)
    }

    fn metadata(path: &Path) -> BTreeMap<String, String> {
        let bytes = std::fs::read(path).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        meta.metadata().clone().unwrap().into_iter().collect()
    }

    #[test]
    fn steps_follow_the_schedules_and_fit_a_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = open(dir.path(), &config(), false).unwrap();
        let before = t.net.params()[0].value.as_vec();
        let losses: Vec<f64> = (0..4).map(|_| t.step(batch(1, 2)).unwrap()).collect();
        assert!(losses[3] < losses[0], "the same batch four times: {losses:?}");
        assert_eq!((t.state.epoch, t.state.batch, t.state.iteration), (0, 4, 4));
        assert_ne!(t.net.params()[0].value.as_vec(), before, "the weights moved");
        // Warm-up over 2 iterations from 0.001·lr: the last step (iteration 3) is past it.
        assert_eq!(t.last_schedule().0, 1e-3);
        // τ: 30 → 1 over 10 epochs of 3 batches; the 4th step ran at iteration 3.
        assert!((t.last_schedule().1 - (30.0 - 29.0 * 3.0 / 30.0)).abs() < 1e-5);
        // log_every 2: rows after iterations 2 and 4, each the mean of its two losses.
        let rows = metrics::read(&dir.path().join("metrics.csv"), &POSE).unwrap();
        assert_eq!(rows.iter().map(|r| r.iteration).collect::<Vec<_>>(), vec![2, 4]);
        assert!((rows[1].loss - (losses[2] + losses[3]) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn epoch_ends_write_metrics_curves_and_the_best_checkpoint_only_when_ap_improves() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = open(dir.path(), &config(), false).unwrap();
        t.step(batch(1, 2)).unwrap();
        assert!(t.validation_due());
        t.end_epoch(Some(scores(0.5, 0.7, Some(0.4)))).unwrap();
        let best = dir.path().join(BEST);
        assert_eq!(metadata(&best)["epoch"], "1");
        t.step(batch(2, 2)).unwrap();
        t.end_epoch(Some(scores(0.25, 0.5, None))).unwrap();
        assert_eq!(metadata(&best)["epoch"], "1", "a lower AP keeps the best checkpoint");
        assert!(t.finished());
        let meta = metadata(&best);
        assert_eq!(serde_json::from_str::<KeypointSpec>(&meta["keypoints"]).unwrap(), KeypointSpec::coco17());
        assert_eq!(serde_json::from_str::<Config>(&meta["config"]).unwrap(), config());
        let rows = metrics::read(&dir.path().join("metrics.csv"), &POSE).unwrap();
        // Epoch 1's row, the log_every row after iteration 2, epoch 2's row.
        let aps: Vec<(usize, Option<f64>)> = rows.iter().map(|r| (r.iteration, r.score(0))).collect();
        assert_eq!(aps, vec![(1, Some(0.5)), (2, None), (2, Some(0.25))]);
        assert_eq!(rows[0].score(2), Some(0.4));
        assert!(dir.path().join("curves.png").exists());
        // The last checkpoint points at the start of the next epoch.
        let stored: TrainState = serde_json::from_str(&metadata(&dir.path().join(LAST))["trainer"]).unwrap();
        assert_eq!((stored.epoch, stored.batch, stored.iteration, stored.best), (2, 0, 2, Some(0.5)));
    }

    #[test]
    fn validation_runs_every_val_every_epochs_and_after_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config();
        (cfg.train.epochs, cfg.train.val_every) = (5, 2);
        let mut t = open(dir.path(), &cfg, false).unwrap();
        let mut due = Vec::new();
        while !t.finished() {
            due.push(t.validation_due());
            t.state.epoch += 1;
        }
        assert_eq!(due, vec![false, true, false, true, true]);
    }

    #[test]
    fn runs_are_never_overwritten_and_resume_needs_the_same_config() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        assert!(format!("{}", open(&run, &config(), true).err().unwrap()).contains("nothing to resume"));
        let mut t = open(&run, &config(), false).unwrap();
        t.step(batch(1, 2)).unwrap();
        t.save_last().unwrap();
        let e = open(&run, &config(), false).err().unwrap().to_string();
        assert!(e.contains("a run is already there") && e.contains("--resume"), "{e}");
        let mut other = config();
        (other.train.lr, other.train.epochs, other.seed) = (5e-4, 9, 3);
        let e = open(&run, &other, true).err().unwrap().to_string();
        assert!(e.contains("different config (seed, train.lr)"), "{e}");
        let mut longer = config();
        longer.train.epochs = 9;
        let resumed = open(&run, &longer, true).unwrap();
        assert_eq!(resumed.state.iteration, 1);
        assert_eq!(resumed.net.params()[0].value.as_vec(), t.net.params()[0].value.as_vec());
    }
}
