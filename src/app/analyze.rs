//! `dypose eval --analyze OUT`: the stats of a results file as `eval` prints them, and in OUT why
//! they are what they are (`analysis.json`, `summary.txt` and three charts).

use super::eval::{ResultsEval, StatsFile};
use crate::eval::analyze::joints::JointError;
use crate::eval::analyze::{analyze, Analysis};
use crate::eval::Stats;
use crate::viz::charts::{grouped_bars, stacked_shares, unit_curves};
use crate::viz::save_image;
use anyhow::{ensure, Result};
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The files `--analyze` writes into its folder.
pub const OUTPUTS: [&str; 5] = ["analysis.json", "summary.txt", "keypoint_errors.png", "ap_gains.png", "pr_curves.png"];

pub struct AnalyzeRequest<'a> {
    /// The files and keypoint set, as `eval` reads them (COCO's metric only).
    pub scored: ResultsEval<'a>,
    pub out: &'a Path,
    /// Replace outputs that exist.
    pub force: bool,
}

/// Evaluates and analyses; returns the stats and the analysis, with every file written.
pub fn analyze_results(req: &AnalyzeRequest, stats_file: &StatsFile) -> Result<(Stats, Analysis)> {
    let outputs: Vec<PathBuf> = OUTPUTS.iter().map(|n| req.out.join(n)).collect();
    ensure!(
        req.scored.metric == crate::config::KeypointMetric::Coco,
        "--analyze explains COCO's metric; it does not take --metric crowdpose"
    );
    let inputs: Vec<PathBuf> = req.scored.inputs().into_iter().map(Path::to_path_buf).collect();
    stats_file.check(&req.scored.inputs())?;
    crate::fsutil::refuse_overwriting_inputs(&outputs, &inputs)?;
    crate::fsutil::refuse_existing(&outputs, req.force)?;

    let start = Instant::now();
    let (gt, results, spec) = req.scored.load()?;
    let loaded = start.elapsed().as_secs_f64();
    let analysis = analyze(&gt, &results, &spec)?;
    let analysed = start.elapsed().as_secs_f64() - loaded;

    std::fs::create_dir_all(req.out)?;
    let json = serde_json::to_string_pretty(&analysis)? + "\n";
    crate::fsutil::write_new(&outputs[0], json.as_bytes(), req.force)?;
    crate::fsutil::write_new(&outputs[1], analysis.summary().as_bytes(), req.force)?;
    for (image, path) in charts(&analysis).iter().zip(&outputs[2..]) {
        save_image(image, path, req.force)?;
    }
    stats_file.write(&analysis.original)?;
    eprintln!(
        "evaluated and analysed {} results on {} regular GTs: files read in {loaded:.2}s, analysis (the metric and {} re-evaluations) in {analysed:.2}s; wrote {} files to {}",
        results.len(),
        analysis.regular_gts,
        analysis.fixes.len(),
        outputs.len(),
        req.out.display()
    );
    Ok((analysis.original, analysis))
}

/// The three charts: per-keypoint error shares, AP gains per fix, PR curves.
pub fn charts(a: &Analysis) -> [RgbImage; 3] {
    let parts: Vec<&str> = JointError::ALL.iter().map(|e| e.name()).collect();
    let rows: Vec<(String, Vec<f64>)> = a
        .keypoints
        .iter()
        .chain(std::iter::once(&a.total))
        .map(|k| {
            let name: String = k.name.chars().take(17).collect();
            (format!("{name} ({})", k.joints), JointError::ALL.iter().map(|&e| k.errors.share(e)).collect())
        })
        .collect();
    let errors =
        stacked_shares(&format!("Joints of matched detections by error type ({})", a.keypoint_set), &parts, &rows);

    let o = &a.original;
    let gains: Vec<(String, Vec<f64>)> = a
        .fixes
        .iter()
        .map(|f| {
            let s = &f.stats;
            // In AP points; APm or APl is −1 when a range has no GT: no bar.
            let gain = |after: f64, before: f64| if before < 0.0 { f64::NAN } else { 100.0 * (after - before) };
            (f.name.to_string(), vec![gain(s.ap, o.ap), gain(s.apm, o.apm), gain(s.apl, o.apl)])
        })
        .collect();
    let bars = grouped_bars(
        &format!("AP gained by fixing each error (AP {:.3}, APm {:.3}, APl {:.3})", o.ap, o.apm, o.apl),
        "ΔAP (points)",
        &["AP", "APm", "APl"],
        &gains,
    );

    let names: Vec<String> = a.pr_curves.iter().map(|c| format!("OKS {:.2}", c.oks)).collect();
    let points: Vec<Vec<(f64, f64)>> =
        a.pr_curves.iter().map(|c| c.recall.iter().copied().zip(c.precision.iter().copied()).collect()).collect();
    let series: Vec<(&str, &[(f64, f64)])> =
        names.iter().map(String::as_str).zip(points.iter().map(Vec::as_slice)).collect();
    let curves = unit_curves("Precision-recall, all areas", "recall", "precision", &series);
    [errors, bars, curves]
}
