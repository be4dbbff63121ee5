//! `metrics.csv` (one row per logged iteration and per epoch end; a task's score columns filled
//! at validations) and the loss / score curves as a PNG. Every task writes the same six leading
//! columns; its score columns (`val_ap, val_ap50, val_ap_dets` for pose and detector,
//! `val_top1, val_top5` for classifiers) follow, so files of earlier releases read unchanged.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::Path;

/// The columns every task's file starts with.
pub const COMMON: [&str; 6] = ["epoch", "iteration", "loss", "lr", "temperature", "images_per_s"];

/// One row of `metrics.csv`: the common columns, then the task's scores in its column order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub epoch: usize,
    pub iteration: usize,
    pub loss: f64,
    pub lr: f64,
    pub temperature: f64,
    pub images_per_s: f64,
    pub scores: Vec<Option<f64>>,
}

impl Row {
    /// The score of column `k` (absent when not validated at this row).
    pub fn score(&self, k: usize) -> Option<f64> {
        self.scores.get(k).copied().flatten()
    }
}

/// The header of a file with `columns` as its score columns.
pub fn header(columns: &[&str]) -> String {
    COMMON.iter().chain(columns).copied().collect::<Vec<_>>().join(",")
}

/// Reads the rows of a metrics file whose score columns are `columns` (a missing file has none);
/// errors name the line.
pub fn read(path: &Path, columns: &[&str]) -> Result<Vec<Row>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    let mut reader = csv::Reader::from_reader(file);
    let names: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
    if names.iter().map(String::as_str).ne(COMMON.iter().chain(columns).copied()) {
        bail!("{}: the header is '{}', expected '{}'", path.display(), names.join(","), header(columns));
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let at = || format!("{}: line {}: not a metrics row", path.display(), i + 2);
        let record = record.with_context(at)?;
        let num = |k: usize| record.get(k).unwrap_or("").trim().parse::<f64>().with_context(at);
        let count = |k: usize| record.get(k).unwrap_or("").trim().parse::<usize>().with_context(at);
        let scores = (COMMON.len()..COMMON.len() + columns.len())
            .map(|k| match record.get(k).unwrap_or("").trim() {
                "" => Ok(None),
                v => v.parse::<f64>().map(Some).with_context(at),
            })
            .collect::<Result<_>>()?;
        rows.push(Row {
            epoch: count(0)?,
            iteration: count(1)?,
            loss: num(2)?,
            lr: num(3)?,
            temperature: num(4)?,
            images_per_s: num(5)?,
            scores,
        });
    }
    Ok(rows)
}

/// A field of a row as the CSV writer prints it (an empty field for an absent score).
#[derive(Serialize)]
#[serde(untagged)]
enum Field {
    Count(usize),
    Value(f64),
    Score(Option<f64>),
}

/// Rewrites the whole file atomically (rows are few: one per logged iteration and epoch).
pub fn write(path: &Path, rows: &[Row], columns: &[&str]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header(columns).split(','))?;
    for r in rows {
        let mut fields = vec![Field::Count(r.epoch), Field::Count(r.iteration)];
        fields.extend([r.loss, r.lr, r.temperature, r.images_per_s].map(Field::Value));
        fields.extend((0..columns.len()).map(|k| Field::Score(r.score(k))));
        w.serialize(fields)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    crate::fsutil::write_atomic(path, &bytes)
}

/// What a task's curves show on the right axis: its name and (label, score column) series.
pub struct Curves {
    pub title: &'static str,
    pub axis: &'static str,
    pub series: &'static [(&'static str, usize)],
}

/// Draws the loss (log scale, left) and the validation scores (right) against the iteration.
pub fn plot(path: &Path, rows: &[Row], curves: &Curves) -> Result<()> {
    let loss: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.loss > 0.0 && r.loss.is_finite())
        .map(|r| (r.iteration as f64, r.loss.log10()))
        .collect();
    let points: Vec<Vec<(f64, f64)>> = curves
        .series
        .iter()
        .map(|&(_, k)| rows.iter().filter_map(|r| r.score(k).map(|v| (r.iteration as f64, v))).collect())
        .collect();
    let series: Vec<(&str, &[(f64, f64)])> =
        curves.series.iter().zip(&points).map(|(&(label, _), p)| (label, p.as_slice())).collect();
    let img =
        crate::viz::plot::two_axis_chart(curves.title, "iteration", ("log10 loss", &loss), (curves.axis, &series));
    crate::viz::save_image(&img, path, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSE: [&str; 3] = ["val_ap", "val_ap50", "val_ap_dets"];

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
                scores: vec![],
            },
            Row {
                epoch: 1,
                iteration: 20,
                loss: 1e-3,
                lr: 1e-3,
                temperature: 28.0,
                images_per_s: 81.5,
                scores: vec![Some(0.25), Some(0.5), None],
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.csv");
        write(&p, &rows, &POSE).unwrap();
        let back = read(&p, &POSE).unwrap();
        assert_eq!(back[1], rows[1]);
        assert_eq!(back[0].scores, vec![None, None, None], "a row without scores reads with empty ones");
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "epoch,iteration,loss,lr,temperature,images_per_s,val_ap,val_ap50,val_ap_dets"
        );
        assert_eq!(text.lines().nth(1).unwrap(), "0,10,0.0015,0.0001,29.5,80.0,,,");
        assert_eq!(text.lines().nth(2).unwrap(), "1,20,0.001,0.001,28.0,81.5,0.25,0.5,");
        // Files of earlier releases (fixed-precision numbers) read as well.
        std::fs::write(&p, format!("{}\n3,30,1.500000e-3,1.000000e-4,29.5000,80.00,,,\n", header(&POSE))).unwrap();
        assert_eq!(read(&p, &POSE).unwrap()[0].loss, 1.5e-3);
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, format!("{}\n3,x,1,1,1,1,,,\n", header(&POSE))).unwrap();
        assert!(format!("{:#}", read(&bad, &POSE).unwrap_err()).contains("bad.csv: line 2"));
        // Another task's file is named, not misread.
        let e = read(&p, &["val_top1", "val_top5"]).unwrap_err().to_string();
        assert!(e.contains("expected 'epoch,iteration,loss,lr,temperature,images_per_s,val_top1,val_top5'"), "{e}");
        let curves = Curves { title: "training", axis: "val AP", series: &[("GT boxes", 0), ("detector boxes", 2)] };
        plot(&dir.path().join("curves.png"), &rows, &curves).unwrap();
        let img = image::open(dir.path().join("curves.png")).unwrap();
        assert!(img.width() > 100);
    }
}
