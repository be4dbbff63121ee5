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
