//! `metrics.csv` (one row per logged iteration, validation columns filled at epoch ends) and
//! the loss / AP curves as a PNG.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const HEADER: &str = "epoch,iteration,loss,lr,temperature,images_per_s,val_ap,val_ap50,val_ap_dets";

/// One row of `metrics.csv`; the column names are the field names.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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

/// Reads the rows of a metrics file (a missing file has none).
pub fn read(path: &Path) -> Result<Vec<Row>> {
    read_rows(path)
}

/// Rewrites the whole file atomically (rows are few: one per logged iteration).
pub fn write(path: &Path, rows: &[Row]) -> Result<()> {
    write_rows(path, rows, HEADER)
}

/// The rows of a CSV file of any row type (a missing file has none); errors name the line.
pub fn read_rows<R: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<R>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    csv::Reader::from_reader(file)
        .deserialize()
        .enumerate()
        .map(|(i, r)| r.with_context(|| format!("{}: line {}: not a metrics row", path.display(), i + 2)))
        .collect()
}

/// Writes `rows` as CSV atomically; a file without rows still gets `header`.
pub fn write_rows<R: Serialize>(path: &Path, rows: &[R], header: &str) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    if rows.is_empty() {
        w.write_record(header.split(','))?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    crate::fsutil::write_atomic(path, &bytes)
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
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().next().unwrap(), HEADER);
        assert_eq!(text.lines().nth(2).unwrap(), "1,20,0.001,0.001,28.0,81.5,0.25,0.5,");
        // Files of earlier releases (fixed-precision numbers) read as well.
        std::fs::write(&p, format!("{HEADER}\n3,30,1.500000e-3,1.000000e-4,29.5000,80.00,,,\n")).unwrap();
        assert_eq!(read(&p).unwrap()[0].loss, 1.5e-3);
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, format!("{HEADER}\n3,x,1,1,1,1,,,\n")).unwrap();
        assert!(format!("{:#}", read(&bad).unwrap_err()).contains("bad.csv: line 2"));
        plot(&dir.path().join("curves.png"), &rows).unwrap();
        let img = image::open(dir.path().join("curves.png")).unwrap();
        assert!(img.width() > 100);
    }
}
