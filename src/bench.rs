//! `dypose bench …`: measurements printed as a table, with a JSON line last for scripts.

use crate::coco::CocoDataset;
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

/// Times the whole path from JPEG on disk to collated batches (decode, crop, augment, targets,
/// normalise) for `samples` samples, cycling over the instances of `ann` with `workers` threads.
pub fn bench_data(ann: &Path, images: &Path, samples: usize, workers: usize, batch: usize) -> Result<String> {
    use crate::coco::KeypointSpec;
    use crate::data::instances::train_instances;
    use crate::data::loader::{Loader, LoaderConfig};
    let ds = CocoDataset::load(ann)?;
    let (base, report) = train_instances(&ds, images, 1, 17);
    anyhow::ensure!(!base.is_empty(), "{}: no person instances to load ({report})", ann.display());
    let instances: Vec<_> = base.iter().cycle().take(samples.max(1)).cloned().collect();
    // The reference recipe: 192×256 input, 48×64 heatmaps, the default augmentation.
    let spec = crate::config::Config::default().sample_spec(&KeypointSpec::coco17(), true);
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
