//! `metrics.csv` (one row per logged iteration, validation columns filled at epoch ends) and
//! the loss / AP curves as a PNG.

use anyhow::{Context, Result};
use std::path::Path;

pub const HEADER: &str = "epoch,iteration,loss,lr,temperature,images_per_s,val_ap,val_ap50,val_ap_dets";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub epoch: usize,
    pub iteration: usize,
    pub loss: f64,
    pub lr: f64,
    pub temperature: f64,
    pub images_per_s: f64,
    pub val_ap: Option<f64>,
    pub val_ap50: Option<f64>,
    /// AP with the configured detector boxes.
    pub val_ap_dets: Option<f64>,
}

impl Row {
    pub fn to_csv(&self) -> String {
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
        format!(
            "{},{},{:.6e},{:.6e},{:.4},{:.2},{},{},{}",
            self.epoch,
            self.iteration,
            self.loss,
            self.lr,
            self.temperature,
            self.images_per_s,
            opt(self.val_ap),
            opt(self.val_ap50),
            opt(self.val_ap_dets)
        )
    }

    pub fn from_csv(line: &str) -> Option<Row> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 9 {
            return None;
        }
        let opt = |s: &str| if s.is_empty() { Some(None) } else { s.parse().ok().map(Some) };
        Some(Row {
            epoch: f[0].parse().ok()?,
            iteration: f[1].parse().ok()?,
            loss: f[2].parse().ok()?,
            lr: f[3].parse().ok()?,
            temperature: f[4].parse().ok()?,
            images_per_s: f[5].parse().ok()?,
            val_ap: opt(f[6])?,
            val_ap50: opt(f[7])?,
            val_ap_dets: opt(f[8])?,
        })
    }
}

/// Reads the rows of a metrics file (a missing file has none).
pub fn read(path: &Path) -> Result<Vec<Row>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    text.lines()
        .enumerate()
        .skip(1)
        .map(|(i, l)| {
            Row::from_csv(l).with_context(|| format!("{}: line {}: not a metrics row", path.display(), i + 1))
        })
        .collect()
}

/// Rewrites the whole file atomically (rows are few: one per logged iteration).
pub fn write(path: &Path, rows: &[Row]) -> Result<()> {
    let mut text = String::from(HEADER);
    text.push('\n');
    for r in rows {
        text += &r.to_csv();
        text.push('\n');
    }
    crate::fsutil::write_atomic(path, text.as_bytes())
}

/// Draws the loss (log scale, left) and validation AP (right) against the iteration.
pub fn plot(path: &Path, rows: &[Row]) -> Result<()> {
    let loss: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.loss > 0.0 && r.loss.is_finite())
        .map(|r| (r.iteration as f64, r.loss.log10()))
        .collect();
    let ap: Vec<(f64, f64)> = rows.iter().filter_map(|r| r.val_ap.map(|a| (r.iteration as f64, a))).collect();
    let ap_dets: Vec<(f64, f64)> = rows.iter().filter_map(|r| r.val_ap_dets.map(|a| (r.iteration as f64, a))).collect();
    let img = crate::viz::plot::two_axis_chart(
        "training",
        "iteration",
        ("log10 loss", &loss),
        ("val AP", &[("GT boxes", &ap), ("detector boxes", &ap_dets)]),
    );
    crate::viz::save_image(&img, path, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_the_file() {
        let rows = vec![
            Row {
                epoch: 0,
                iteration: 10,
                loss: 1.5e-3,
                lr: 1e-4,
                temperature: 29.5,
                images_per_s: 80.0,
                ..Default::default()
            },
            Row {
                epoch: 1,
                iteration: 20,
                loss: 1e-3,
                lr: 1e-3,
                temperature: 28.0,
                images_per_s: 81.5,
                val_ap: Some(0.25),
                val_ap50: Some(0.5),
                val_ap_dets: None,
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.csv");
        write(&p, &rows).unwrap();
        assert_eq!(read(&p).unwrap(), rows);
        plot(&dir.path().join("curves.png"), &rows).unwrap();
        let img = image::open(dir.path().join("curves.png")).unwrap();
        assert!(img.width() > 100);
    }
}
