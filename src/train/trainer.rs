//! The training loop: batches from the loader, forward in training mode at the scheduled
//! temperature, the heatmap loss, Adam at the scheduled rate; progress, metrics, validation AP,
//! and checkpoints that survive Ctrl-C and crashes.

use super::adam::Adam;
use super::loss::heatmap_loss;
use super::metrics::{self, Row};
use super::schedule::{learning_rate, temperature};
use super::state::{self, TrainState};
use crate::coco::CocoDataset;
use crate::config::Config;
use crate::data::instances::train_instances;
use crate::data::loader::{Loader, LoaderConfig};
use crate::infer::validate::{validate, ValSet, Validation};
use crate::model::backend::ConvBackend;
use crate::model::conv::T4;
use crate::model::layers::Ctx;
use crate::model::posenet::PoseNet;
use anyhow::{bail, ensure, Context, Result};
use dfdx::prelude::*;
use std::io::Write;
use std::path::PathBuf;
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
    pub last_val: Option<Validation>,
    /// Training images per second (loading included) over this process's steps.
    pub images_per_s: f64,
}

pub const LAST: &str = "last.safetensors";
pub const BEST: &str = "best.safetensors";

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

/// Appends to `train.log` and prints to stderr (between progress bars, never during one).
struct Log(std::fs::File);

impl Log {
    fn line(&mut self, text: &str) {
        let _ = writeln!(self.0, "{text}");
        eprintln!("{text}");
    }
}

/// Keys whose values differ between two configs (as JSON), `train.epochs` excepted.
fn config_differences(a: &Config, b: &Config) -> Result<Vec<String>> {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, at: String, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                for (k, v) in x {
                    let key = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                    walk(v, y.get(k).unwrap_or(&serde_json::Value::Null), key, out);
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

/// Trains `cfg` into `opts.run_dir` (refusing an existing run unless resuming).
pub fn train<D: ConvBackend>(dev: D, cfg: &Config, opts: &TrainOptions) -> Result<TrainOutcome> {
    let dir = &opts.run_dir;
    let last_path = dir.join(LAST);
    if opts.resume {
        ensure!(last_path.exists(), "{}: nothing to resume (no {LAST})", dir.display());
    } else if last_path.exists() || dir.join("config.json").exists() {
        bail!("{}: a run is already there; pass --resume to continue it, or choose another --out", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the run directory", dir.display()))?;
    crate::fsutil::remove_stale_temporaries(dir);
    let log_path = dir.join("train.log");
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("{}: cannot write", log_path.display()))?;
    let mut log = Log(log_file);
    if !opts.resume {
        crate::fsutil::write_new(&dir.join("config.json"), serde_json::to_string_pretty(cfg)?.as_bytes(), false)?;
    }

    Config::require(&cfg.data.train_annotations, "data.train_annotations")?;
    Config::require(&cfg.data.train_images, "data.train_images")?;
    let ds = CocoDataset::load(&cfg.data.train_annotations)?;
    let spec = ds.keypoint_spec(cfg.data.category_id, None)?;
    ensure!(
        spec.len() == cfg.model.joints,
        "{}: the category has {} keypoints but model.joints is {}",
        ds.source.display(),
        spec.len(),
        cfg.model.joints
    );
    let (instances, report) = train_instances(&ds, &cfg.data.train_images, cfg.data.category_id, spec.len());
    log.line(&format!("train set {}: {report}", ds.source.display()));
    let loader = Loader::new(
        instances,
        cfg.sample_spec(&spec, true),
        LoaderConfig {
            batch_size: cfg.loader.batch_size,
            seed: cfg.seed,
            shuffle: true,
            prefetch: cfg.loader.prefetch,
            workers: cfg.loader.workers,
            drop_last: true,
        },
    )?;
    let per_epoch = loader.batches_per_epoch();
    ensure!(
        per_epoch > 0,
        "the train set has {} persons, fewer than one batch of {}",
        loader.len(),
        cfg.loader.batch_size
    );
    let val = if cfg.train.val_every > 0 { Some(ValSet::load(cfg, &spec)?) } else { None };

    let mut net = PoseNet::new(&dev, &cfg.model.blueprint()?, cfg.seed);
    let mut adam = Adam::new(&net.params(), cfg.train.weight_decay as f32);
    let mut st = TrainState::default();
    let metrics_path = dir.join("metrics.csv");
    let mut rows = Vec::new();
    if opts.resume {
        let (s, stored) = state::load(&last_path, &mut net, &mut adam)?;
        let diff = config_differences(&stored, cfg)?;
        ensure!(
            diff.is_empty(),
            "{}: the run was started with a different config ({}); resume with the same config (only train.epochs may change)",
            last_path.display(),
            diff.join(", ")
        );
        st = s;
        rows = metrics::read(&metrics_path)?;
        rows.retain(|r| r.iteration <= st.iteration);
        log.line(&format!("resuming at epoch {} batch {} (iteration {})", st.epoch, st.batch, st.iteration));
    }

    let stop = interrupt_flag();
    stop.store(false, Ordering::SeqCst);
    let [w, h] = cfg.input_size;
    let [hw, hh] = cfg.heatmap_size;
    let j = cfg.model.joints;
    let started = Instant::now();
    let (mut steps, mut images) = (0usize, 0usize);
    let mut last_val = None;
    let mut interrupted = false;
    'epochs: while st.epoch < cfg.train.epochs {
        let epoch = st.epoch;
        let bar =
            crate::progress::bar(per_epoch as u64, &format!("epoch {}/{}", epoch + 1, cfg.train.epochs), "batches");
        bar.set_position(st.batch as u64);
        let mut batches = loader.epoch_from(epoch as u64, st.batch);
        let (mut loss_sum, mut loss_n, mut window_images, mut window_start) = (0.0f64, 0usize, 0usize, Instant::now());
        for batch in batches.by_ref() {
            let n = batch.len();
            if n == 0 {
                continue;
            }
            let step_start = Instant::now();
            let lr = learning_rate(&cfg.train, epoch, st.iteration);
            let tau = temperature(&cfg.train, st.iteration, per_epoch);
            let x: T4<D> = dev.tensor_from_vec(batch.inputs, (n, 3, h, w));
            let target: T4<D> = dev.tensor_from_vec(batch.targets, (n, j, hh, hw));
            let weights = dev.tensor_from_vec(batch.weights, (n, j));
            let pred = net.forward(x.leaky_trace(), Ctx::train(tau));
            let loss = heatmap_loss(pred, target, weights);
            let value = loss.as_vec()[0] as f64;
            if !value.is_finite() {
                bail!(
                    "the loss became {value} at epoch {epoch}, iteration {}: stopped; the last good checkpoint is {} (try a lower train.lr)",
                    st.iteration,
                    last_path.display()
                );
            }
            let grads = loss.backward();
            adam.update(net.params_mut(), &grads, lr);
            st.batch += 1;
            st.iteration += 1;
            st.train_seconds += step_start.elapsed().as_secs_f64();
            steps += 1;
            images += n;
            (loss_sum, loss_n, window_images) = (loss_sum + value, loss_n + 1, window_images + n);
            bar.inc(1);
            bar.set_message(format!("e{} loss {:.2e} lr {:.1e} τ {:.1}", epoch + 1, value, lr, tau));
            if st.iteration % cfg.train.log_every.max(1) == 0 {
                rows.push(Row {
                    epoch,
                    iteration: st.iteration,
                    loss: loss_sum / loss_n as f64,
                    lr,
                    temperature: tau as f64,
                    images_per_s: window_images as f64 / window_start.elapsed().as_secs_f64(),
                    ..Default::default()
                });
                (loss_sum, loss_n, window_images, window_start) = (0.0, 0, 0, Instant::now());
                metrics::write(&metrics_path, &rows)?;
            }
            if cfg.train.checkpoint_every > 0 && st.iteration % cfg.train.checkpoint_every == 0 {
                state::save(&last_path, &net, &adam, &st, cfg)?;
            }
            if stop.load(Ordering::SeqCst) || opts.stop_after.is_some_and(|s| steps >= s) {
                bar.finish_and_clear();
                state::save(&last_path, &net, &adam, &st, cfg)?;
                log.line(&format!(
                    "interrupted at epoch {epoch} iteration {}; {} written (continue with --resume)",
                    st.iteration,
                    last_path.display()
                ));
                interrupted = true;
                break 'epochs;
            }
        }
        bar.finish_and_clear();
        st.epoch += 1;
        st.batch = 0;
        let report = loader_report_line(&batches.report());
        if !report.is_empty() {
            log.line(&report);
        }
        let due = cfg.train.val_every > 0 && (st.epoch % cfg.train.val_every == 0 || st.epoch == cfg.train.epochs);
        let mut row = Row {
            epoch,
            iteration: st.iteration,
            loss: if loss_n > 0 { loss_sum / loss_n as f64 } else { rows.last().map_or(f64::NAN, |r| r.loss) },
            lr: learning_rate(&cfg.train, epoch, st.iteration.saturating_sub(1)),
            temperature: temperature(&cfg.train, st.iteration.saturating_sub(1), per_epoch) as f64,
            images_per_s: if loss_n > 0 {
                window_images as f64 / window_start.elapsed().as_secs_f64()
            } else {
                f64::NAN
            },
            ..Default::default()
        };
        if let (true, Some(v)) = (due, &val) {
            let result = validate(&mut net, cfg, &spec, v)?;
            let stats = &result.gt.0;
            row.val_ap = Some(stats.ap);
            row.val_ap50 = Some(stats.ap50);
            let mut line = format!("epoch {}: val AP {:.4} AP50 {:.4} (GT boxes)", epoch + 1, stats.ap, stats.ap50);
            if let Some((ds, _)) = &result.detections {
                row.val_ap_dets = Some(ds.ap);
                line += &format!(", AP {:.4} (detector boxes)", ds.ap);
            }
            if st.best_ap.is_none_or(|b| stats.ap > b) {
                st.best_ap = Some(stats.ap);
                let mut meta = std::collections::BTreeMap::new();
                meta.insert("config".into(), serde_json::to_string(cfg)?);
                meta.insert("epoch".into(), (epoch + 1).to_string());
                meta.insert("val_ap".into(), stats.ap.to_string());
                crate::model::checkpoint::save(&net, &dir.join(BEST), meta, true)?;
                line += " (best so far)";
            }
            log.line(&line);
            last_val = Some(result);
        }
        if loss_n > 0 || row.val_ap.is_some() {
            rows.push(row);
        }
        metrics::write(&metrics_path, &rows)?;
        metrics::plot(&dir.join("curves.png"), &rows)?;
        state::save(&last_path, &net, &adam, &st, cfg)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(TrainOutcome { state: st, interrupted, last_val, images_per_s: images as f64 / elapsed.max(1e-9) })
}

/// Images the loader could not read this epoch, named once.
fn loader_report_line(report: &crate::data::loader::LoadReport) -> String {
    match report.failed.iter().next() {
        Some((path, e)) => format!(
            "skipped {} samples: {} images could not be read, e.g. {}: {e}",
            report.skipped_samples,
            report.failed.len(),
            path.display()
        ),
        None => String::new(),
    }
}
