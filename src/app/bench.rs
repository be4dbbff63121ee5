//! `dypose bench …`: measurements printed as a table, with a JSON line last for scripts.

use crate::coco::CocoDataset;
use crate::config::{Config, Device};
use crate::data::instances::train_instances;
use crate::data::loader::{Loader, LoaderConfig};
use crate::data::sample::SampleSpec;
use crate::model::backend::ConvBackend;
use crate::model::blueprint::Blueprint;
use anyhow::Result;
use std::path::Path;
use std::time::Instant;

/// Median of a non-empty list of timings.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Times loading (read + parse + validate + index) an annotation file `repeat` times.
pub fn bench_coco_load(ann: &Path, repeat: usize) -> Result<String> {
    let bytes = std::fs::metadata(ann)?.len() as f64;
    let mut times = Vec::with_capacity(repeat);
    let mut counts = (0, 0);
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        let ds = CocoDataset::load(ann)?;
        times.push(start.elapsed().as_secs_f64());
        counts = (ds.images.len(), ds.annotations.len());
    }
    let med = median(times.clone());
    let mb = bytes / 1e6;
    let mut out = String::new();
    out += &format!(
        "{:<40} {:>9} {:>8} {:>11} {:>5} {:>9} {:>9} {:>8}\n",
        "file", "MB", "images", "annotations", "runs", "median s", "min s", "MB/s"
    );
    out += &format!(
        "{:<40} {:>9.1} {:>8} {:>11} {:>5} {:>9.3} {:>9.3} {:>8.0}\n",
        ann.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        mb,
        counts.0,
        counts.1,
        times.len(),
        med,
        times.iter().cloned().fold(f64::INFINITY, f64::min),
        mb / med
    );
    out += &serde_json::json!({"file_mb": mb, "images": counts.0, "annotations": counts.1, "runs": times.len(), "median_seconds": med, "mb_per_s": mb / med}).to_string();
    Ok(out)
}

/// Times plain evaluation (read both files, the metric) against the analysis (read both files,
/// the metric, the joint taxonomy and every fix), alternating which goes first.
pub fn bench_eval(gt: &Path, results: &Path, spec: Option<&Path>, repeats: usize) -> Result<String> {
    let scored = super::eval::ResultsEval {
        gt,
        results,
        spec,
        keypoint_field: crate::coco::dataset::KEYPOINTS_FIELD,
        metric: crate::config::KeypointMetric::Coco,
    };
    let plain = || -> Result<f64> {
        let start = Instant::now();
        let (gt, results, spec) = scored.load()?;
        crate::eval::evaluate_keypoints(&gt, &results, spec.sigmas()?)?;
        Ok(start.elapsed().as_secs_f64())
    };
    let analysed = || -> Result<f64> {
        let start = Instant::now();
        let (gt, results, spec) = scored.load()?;
        crate::eval::analyze::analyze(&gt, &results, &spec)?;
        Ok(start.elapsed().as_secs_f64())
    };
    let (mut p, mut a) = (Vec::new(), Vec::new());
    for r in 0..repeats.max(1) {
        if r % 2 == 0 {
            p.push(plain()?);
            a.push(analysed()?);
        } else {
            a.push(analysed()?);
            p.push(plain()?);
        }
    }
    let (mp, ma) = (median(p.clone()), median(a.clone()));
    let mut out = format!("{:<22} {:>5} {:>9} {:>9}\n", "", "runs", "median s", "min s");
    for (name, t) in [("eval", &p), ("eval --analyze", &a)] {
        let min = t.iter().cloned().fold(f64::INFINITY, f64::min);
        out += &format!("{name:<22} {:>5} {:>9.3} {:>9.3}\n", t.len(), median(t.clone()), min);
    }
    out += &format!("the analysis adds {:.2} s ({:.1}× plain eval)\n", ma - mp, ma / mp);
    out += &serde_json::json!({"runs": p.len(), "eval_median_seconds": mp, "analyze_median_seconds": ma, "peak_rss_mb": peak_rss_mb()}).to_string();
    Ok(out)
}

/// Times a classifier's training data path (decode, random-resized crop, flip, normalise,
/// collate; the loader's threads) over an image folder for `samples` samples, cycling over its
/// images.
pub fn bench_folder(dir: &Path, input: crate::config::Size, samples: usize, batch: usize) -> Result<String> {
    let folder = crate::data::folder::ImageFolder::open(dir)?;
    let source = crate::data::folder::FolderSamples { folder, input, train: true };
    let cfg = crate::data::loader::LoaderConfig {
        batch_size: batch,
        seed: 0,
        shuffle: true,
        prefetch: 2,
        workers: 0,
        drop_last: true,
    };
    let loader = crate::data::loader::Loader::of(std::sync::Arc::new(source), cfg)?;
    anyhow::ensure!(loader.batches_per_epoch() > 0, "{}: fewer images than one batch", dir.display());
    let _ = loader.epoch(0).next(); // warm-up
    let start = Instant::now();
    let (mut n, mut k) = (0usize, 0usize);
    'epochs: for epoch in 1.. {
        let before = n;
        let mut batches = loader.epoch(epoch);
        for b in batches.by_ref() {
            n += b.labels.len();
            k += 1;
            if n >= samples.max(1) {
                break 'epochs;
            }
        }
        if n == before {
            let report = batches.report();
            let first = report.failed.iter().next().map(|(p, e)| format!(": {}: {e}", p.display()));
            anyhow::bail!("{}: no image could be read{}", dir.display(), first.unwrap_or_default());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let threads = rayon::current_num_threads();
    Ok(format!(
        "{:>8} {:>8} {:>8} {:>10} {:>12} {:>16}\n{n:>8} {k:>8} {threads:>8} {secs:>10.3} {:>12.1} {:>16.1}\n{}",
        "samples",
        "batches",
        "threads",
        "seconds",
        "samples/s",
        "samples/s/core",
        n as f64 / secs,
        n as f64 / secs / threads as f64,
        serde_json::json!({"samples": n, "seconds": secs, "samples_per_s": n as f64 / secs, "threads": threads})
    ))
}

/// Times the whole path from JPEG on disk to collated batches (decode, crop, augment, targets,
/// normalise) for `samples` samples, cycling over the instances of `ann` with `workers` threads.
pub fn bench_data(ann: &Path, images: &Path, samples: usize, workers: usize, batch: usize) -> Result<String> {
    let ds = CocoDataset::load(ann)?;
    // The reference recipe (192×256 input, 48×64 heatmaps, the default augmentation) for the
    // file's own keypoint set.
    let with_joints = ds.annotations.iter().find(|a| a.keypoints.as_ref().is_some_and(|k| !k.is_empty()));
    let cat = with_joints.map_or(1, |a| a.category_id);
    let kspec = super::announced(crate::coco::find_keypoint_set(&ds, Some(cat), None)?);
    let (base, report) = train_instances(&ds, images, cat, kspec.len());
    anyhow::ensure!(!base.is_empty(), "{}: no person instances to load ({report})", ann.display());
    let instances: Vec<_> = base.iter().cycle().take(samples.max(1)).cloned().collect();
    let spec = SampleSpec::from_config(&Config::default(), &kspec, true);
    let workers = if workers == 0 { rayon::current_num_threads() } else { workers };
    let cfg = LoaderConfig { batch_size: batch, seed: 0, shuffle: true, prefetch: 4, workers, drop_last: false };
    let loader = Loader::new(instances, spec, cfg)?;
    // One short warm-up pass (page cache, allocator) before the timed epoch.
    loader.epoch(0).take(1).for_each(drop);
    let start = Instant::now();
    let mut epoch = loader.epoch(1);
    let (mut n, mut batches) = (0usize, 0usize);
    for b in epoch.by_ref() {
        n += b.len();
        batches += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let load = epoch.report();
    let mut out = String::new();
    out += &format!("{report}\n");
    if !load.failed.is_empty() {
        out += &format!(
            "{} samples skipped: {} images could not be read, e.g. {}\n",
            load.skipped_samples,
            load.failed.len(),
            load.failed.values().next().unwrap()
        );
    }
    out += &format!(
        "{:>8} {:>8} {:>8} {:>10} {:>12} {:>16}\n",
        "samples", "batches", "workers", "seconds", "samples/s", "samples/s/core"
    );
    out += &format!(
        "{n:>8} {batches:>8} {workers:>8} {secs:>10.3} {:>12.1} {:>16.1}\n",
        n as f64 / secs,
        n as f64 / secs / workers as f64
    );
    out += &serde_json::json!({"samples": n, "seconds": secs, "samples_per_s": n as f64 / secs, "workers": workers})
        .to_string();
    Ok(out)
}

/// Single-thread GFLOP/s on a conv-shaped product (128 × 1152 weights · 1152 × 3072 columns):
/// (dfdx's matmul, our GEMM of the fast CPU path).
pub fn gemm_one_core_gflops() -> (f64, f64) {
    use crate::model::cpu::gemm::{gemm, View};
    use dfdx::prelude::*;
    let (m, k, n) = (128usize, 1152usize, 3072usize);
    let flops = 2.0 * (m * k * n) as f64;
    let time = |f: &mut dyn FnMut()| {
        f();
        median(
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64()
                })
                .collect(),
        )
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("thread pool");
    pool.install(|| {
        let dev = Cpu::default();
        let a: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(vec![0.5; m * k], (m, k));
        let b: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(vec![0.25; k * n], (k, n));
        let dfdx = time(&mut || {
            std::hint::black_box(a.clone().matmul(b.clone()));
        });
        let (av, bv) = (vec![0.5f32; m * k], vec![0.25f32; k * n]);
        let mut c = vec![0.0f32; m * n];
        let ours = time(&mut || gemm(View::new(&av, m, k), View::new(&bv, k, n), &mut c, 0.0));
        (flops / dfdx / 1e9, flops / ours / 1e9)
    })
}

/// Peak resident memory of this process in MB (Linux `VmHWM`), if known.
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// How to time a config's network: batch size, timed iterations, and whether to force the
/// device-generic ops (the path CUDA runs) on the CPU too.
pub struct ModelBench {
    pub batch: usize,
    pub iters: usize,
    pub generic: bool,
    /// Time inference only (training is what takes long on the CPU).
    pub inference_only: bool,
    /// Also print where the time goes: each kind of op of the fast CPU path, forward and
    /// backward, and the rest.
    pub profile: bool,
}

/// `dypose bench model`: inference and training images/s of the config's model on `device`,
/// for the config's keypoint set.
pub fn bench_model(device: Device, cfg: &Config, how: &ModelBench) -> Result<String> {
    let spec = super::spec_for_config(cfg)?;
    crate::with_device!(device, |dev: D| bench_model_on(dev, device, cfg, spec.len(), how))
}

fn bench_model_on<D: ConvBackend + dfdx::prelude::Synchronize>(
    dev: D,
    device: Device,
    cfg: &Config,
    joints: usize,
    how: &ModelBench,
) -> Result<String> {
    use crate::model::conv::T4;
    use crate::model::layers::{init_rng, random_values, Ctx};
    use crate::model::network::Network;
    use dfdx::prelude::*;
    let ModelBench { batch, iters, generic, inference_only, profile } = *how;
    use crate::model::cpu::profile::{record, recorded};
    anyhow::ensure!(batch >= 1 && iters >= 1, "--batch and --iters must be at least 1");
    let generic = generic || !D::FAST;
    let bp = Blueprint::for_config(cfg, joints)?;
    // The maps the head gives: one per joint, or a detector's five (timed with the same loss).
    let joints = cfg.outputs(joints);
    let (h, w) = (cfg.input_size.height, cfg.input_size.width);
    let (cost, out) = crate::model::cost::blueprint_cost(&bp, cfg.input_size);
    let mut net = Network::new(&dev, &bp, cfg.seed);
    let rng = &mut init_rng(cfg.seed + 1);
    let x: T4<D> = dev.tensor_from_vec(random_values(rng, batch * 3 * h * w), (batch, 3, h, w));
    let target: T4<D> =
        dev.tensor_from_vec(random_values(rng, batch * joints * out.area()), (batch, joints, out.height, out.width));
    let mut infer = || {
        let t = Instant::now();
        std::hint::black_box(net.forward(x.clone(), Ctx { generic_ops: generic, ..Ctx::INFERENCE }).as_vec());
        t.elapsed().as_secs_f64()
    };
    infer();
    record(profile);
    let inference: Vec<f64> = (0..iters).map(|_| infer()).collect();
    let inference_profile = recorded();
    let mut train = || {
        let t = Instant::now();
        let y = net.forward(x.leaky_trace(), Ctx { generic_ops: generic, ..Ctx::train(1.0) });
        let grads = (y - target.clone()).square().mean().backward();
        dev.synchronize();
        std::hint::black_box(grads);
        t.elapsed().as_secs_f64()
    };
    let training: Vec<f64> = match inference_only {
        true => vec![f64::NAN],
        false => {
            train();
            record(profile);
            (0..iters).map(|_| train()).collect()
        }
    };
    let training_profile = recorded();
    record(false);
    let (inference_total, training_total) = (inference.iter().sum::<f64>(), training.iter().sum::<f64>());
    let (ti, tt) = (median(inference), median(training));
    let (ips_i, ips_t) = (batch as f64 / ti, batch as f64 / tt);
    let flops = 2.0 * cost.madds as f64;
    let (gf_i, gf_t) = (flops * ips_i / 1e9, 3.0 * flops * ips_t / 1e9);
    let cores = rayon::current_num_threads();
    let rss = peak_rss_mb().unwrap_or(f64::NAN);
    let on_cpu = device == crate::config::Device::Cpu;
    let mut s = format!(
        "{} at {}×{} (h×w), batch {batch}, {}; {:.2} GMAdds and {:.1} M parameters per image; median of {iters}\n",
        cfg.model.arch,
        h,
        w,
        if !on_cpu {
            device.to_string()
        } else if generic {
            format!("CPU with {cores} threads (device-generic ops)")
        } else {
            format!("CPU with {cores} threads (fast CPU ops)")
        },
        cost.madds as f64 / 1e9,
        cost.params as f64 / 1e6
    );
    let (gemm, gemm_dfdx, bound) = if on_cpu {
        let (gemm_dfdx, gemm_ours) = gemm_one_core_gflops();
        let gemm = gemm_dfdx.max(gemm_ours);
        (gemm, gemm_dfdx, gemm * cores as f64)
    } else {
        (f64::NAN, f64::NAN, f64::NAN)
    };
    let share = |gf: f64| if on_cpu { format!("{:.0}%", 100.0 * gf / bound) } else { "-".to_string() };
    s += &format!("{:<22} {:>10} {:>10} {:>10} {:>16}\n", "", "s/batch", "img/s", "GFLOP/s", "of gemm bound");
    s += &format!("{:<22} {:>10.3} {:>10.2} {:>10.1} {:>16}\n", "inference", ti, ips_i, gf_i, share(gf_i));
    if !inference_only {
        s += &format!("{:<22} {:>10.3} {:>10.2} {:>10.1} {:>16}\n", "training (fwd+bwd)", tt, ips_t, gf_t, share(gf_t));
    }
    if on_cpu {
        s += &format!(
            "gemm bound: the faster one-core GEMM ({gemm:.1} GFLOP/s; dfdx's {gemm_dfdx:.1}) × {cores} = {bound:.1} GFLOP/s; "
        );
    }
    s += &format!("peak host memory {rss:.0} MB\n");
    if profile {
        s += &profile_table("inference", &inference_profile, inference_total, iters);
        if !inference_only {
            s += &profile_table("training (fwd+bwd)", &training_profile, training_total, iters);
        }
    }
    let nan_null = |v: f64| if v.is_finite() { serde_json::json!(v) } else { serde_json::Value::Null };
    s += &serde_json::json!({
        "device": device.to_string(), "batch": batch, "inference_img_per_s": ips_i, "training_img_per_s": nan_null(ips_t),
        "inference_gflops": gf_i, "training_gflops": nan_null(gf_t), "gemm_one_core_gflops": nan_null(gemm),
        "gemm_one_core_gflops_dfdx": nan_null(gemm_dfdx), "threads": cores, "peak_rss_mb": nan_null(rss), "generic_ops": generic,
    })
    .to_string();
    Ok(s)
}

/// Where `total` seconds of `iters` timed iterations went: each op kind of the fast CPU path
/// (time, share, GFLOP/s), slowest first, and the rest (dfdx's own ops: activations, attention
/// branches, the loss, reshapes and copies).
fn profile_table(
    title: &str,
    rows: &[(String, crate::model::cpu::profile::Pass, crate::model::cpu::profile::Totals)],
    total: f64,
    iters: usize,
) -> String {
    use crate::model::cpu::profile::Pass;
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| b.2.seconds.total_cmp(&a.2.seconds));
    let per = |v: f64| v / iters as f64;
    let mut s = format!("\nprofile, {title}: ms per iteration (of {:.1})\n", 1e3 * per(total));
    s += &format!("{:<24} {:>9} {:>7} {:>9} {:>7} {:>9}\n", "op", "pass", "calls", "ms", "share", "GFLOP/s");
    for (kind, pass, t) in &rows {
        let pass = if *pass == Pass::Forward { "forward" } else { "backward" };
        let gflops = if t.flops > 0.0 { format!("{:.1}", t.flops / t.seconds / 1e9) } else { "-".into() };
        s += &format!(
            "{kind:<24} {pass:>9} {:>7} {:>9.2} {:>6.1}% {gflops:>9}\n",
            t.calls / iters as u64,
            1e3 * per(t.seconds),
            100.0 * t.seconds / total
        );
    }
    let rest = total - rows.iter().map(|r| r.2.seconds).sum::<f64>();
    s += &format!(
        "{:<24} {:>9} {:>7} {:>9.2} {:>6.1}% {:>9}\n",
        "other (dfdx ops, copies)",
        "",
        "",
        1e3 * per(rest),
        100.0 * rest / total,
        "-"
    );
    s
}

/// What `dypose bench predict` runs: a checkpoint (its config and keypoint set), or a config
/// with fresh weights (speed does not depend on them), on the GT boxes of `ann` repeated to at
/// least `crops` crops, `repeats` timed passes.
pub struct PredictBench {
    pub model: ModelSource,
    pub ann: std::path::PathBuf,
    pub images: std::path::PathBuf,
    pub crops: usize,
    pub repeats: usize,
    /// Time the CPU side alone: fixed heatmaps stand in for the network's.
    pub no_network: bool,
    /// With `no_network`: milliseconds each network call takes without using the CPUs, as a
    /// GPU's time would, to see the CPU work overlap it.
    pub device_ms: f64,
}

/// The CPU side of prediction with the network taken out: every crop gets the same heatmaps,
/// one Gaussian peak per joint at a different place, made once.
struct FixedHeatmaps {
    one_crop: Vec<f32>,
    device_time: std::time::Duration,
}

impl FixedHeatmaps {
    fn new(joints: usize, size: crate::config::Size, device_ms: f64) -> Self {
        let (w, h) = (size.width, size.height);
        let mut one_crop = vec![0.0f32; joints * w * h];
        for (j, map) in one_crop.chunks_mut(w * h).enumerate() {
            let (cx, cy) = ((j * 7 % w) as f32 + 0.3, (j * 5 % h) as f32 + 0.6);
            for (i, v) in map.iter_mut().enumerate() {
                let (dx, dy) = ((i % w) as f32 - cx, (i / w) as f32 - cy);
                *v = (-(dx * dx + dy * dy) / 8.0).exp();
            }
        }
        FixedHeatmaps { one_crop, device_time: std::time::Duration::from_secs_f64(device_ms.max(0.0) / 1e3) }
    }
}

impl crate::infer::HeatmapModel for FixedHeatmaps {
    fn heatmaps(&mut self, _: &[f32], n: usize, _: crate::config::Size) -> Result<Vec<f32>> {
        std::thread::sleep(self.device_time);
        Ok(self.one_crop.repeat(n))
    }
    fn last_attention(&self) -> Vec<(String, Vec<f32>)> {
        Vec::new()
    }
}

/// A trained checkpoint, or a config's network with fresh weights.
pub enum ModelSource {
    Checkpoint(std::path::PathBuf),
    Fresh(Box<Config>),
}

/// `dypose bench predict`: end-to-end inference throughput (JPEG decode, crop warp, network,
/// decoding, inverse affine, rescoring, OKS-NMS) in person crops per second, with and without
/// the flip test.
pub fn bench_predict(device: Device, req: &PredictBench) -> Result<String> {
    use crate::infer::{validate::ValSet, Predictor};
    let (crops, repeats, ann, images) = (req.crops, req.repeats, &req.ann, &req.images);
    anyhow::ensure!(crops >= 1 && repeats >= 1, "--crops and --repeats must be at least 1");
    let trained = match &req.model {
        ModelSource::Checkpoint(path) => super::open_checkpoint(device, path, None)?,
        ModelSource::Fresh(cfg) => {
            let spec = super::spec_for_config(cfg)?;
            let model = super::build_model(device, cfg, &spec, None)?;
            super::Trained { cfg: (**cfg).clone(), spec, model }
        }
    };
    let (cfg, spec) = (&trained.cfg, &trained.spec);
    let val = ValSet::from_files(cfg, spec, ann, images, None)?;
    let per_pass: usize = val.gt_jobs.iter().map(|j| j.boxes.as_ref().map_or(1, Vec::len)).sum();
    anyhow::ensure!(per_pass > 0, "{}: no images", ann.display());
    let jobs: Vec<_> = val.gt_jobs.iter().cycle().take(val.gt_jobs.len() * crops.div_ceil(per_pass)).cloned().collect();
    let model: Box<dyn crate::infer::HeatmapModel> = match req.no_network {
        true => Box::new(FixedHeatmaps::new(spec.len(), cfg.heatmap_size, req.device_ms)),
        false => trained.model,
    };
    let mut predictor = Predictor::for_config(model, cfg, spec)?;
    let mut rates = Vec::new();
    let mut n = 0;
    for flip in [true, false] {
        predictor.options.flip = flip;
        let mut times = Vec::new();
        for _ in 0..=repeats {
            let t = Instant::now();
            let out = predictor.run(&jobs, |_, _, _| Ok(()))?;
            times.push(t.elapsed().as_secs_f64());
            n = out.crops;
        }
        times.remove(0); // warm-up
        rates.push(n as f64 / median(times));
    }
    let threads = rayon::current_num_threads();
    let mut s = format!(
        "{} at {} (h×w), batch {}, {} decoding, {}, {threads} threads; {n} crops of {} per pass, median of {repeats}\n",
        cfg.model.arch,
        cfg.input_size,
        cfg.val.batch_size,
        cfg.val.decoding,
        match (req.no_network, req.device_ms > 0.0) {
            (false, _) => device.to_string(),
            (true, false) => "no network (the CPU side alone)".to_string(),
            (true, true) => format!("no network, {} ms of idle 'device' time per call", req.device_ms),
        },
        images.display()
    );
    s += &format!("{:<28} {:>10} {:>14}\n", "", "crops/s", "crops/s/core");
    s += &format!("{:<28} {:>10.1} {:>14.1}\n", "with flip test (2 passes)", rates[0], rates[0] / threads as f64);
    s += &format!("{:<28} {:>10.1} {:>14.1}\n", "without flip test", rates[1], rates[1] / threads as f64);
    s += &serde_json::json!({
        "device": device.to_string(), "network": !req.no_network, "crops": n, "crops_per_s_flip": rates[0],
        "crops_per_s_no_flip": rates[1], "batch": cfg.val.batch_size, "threads": threads,
    })
    .to_string();
    Ok(s)
}
