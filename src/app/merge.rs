//! `dypose merge`: the shards of a `predict --shard` run joined into the results file that one
//! `predict` over all the images writes, byte for byte. Nothing is written unless every shard
//! of one run is there exactly once and complete.

use super::images::fail_on_unreadable;
use super::shard::ShardFolder;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct MergeRequest {
    /// Shard folders (`…/shards/shard-K-of-N`), or predict `--out` folders holding `shards/`.
    pub inputs: Vec<PathBuf>,
    /// Default: `results.json` in the one predict `--out` folder given.
    pub out: Option<PathBuf>,
    pub force: bool,
}

pub struct MergeReport {
    pub shards: usize,
    pub images: usize,
    pub results: usize,
    pub unreadable: Vec<(PathBuf, String)>,
    pub out: PathBuf,
}

impl std::fmt::Display for MergeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{} results of {} images from {} shards → {}",
            self.results,
            self.images - self.unreadable.len(),
            self.shards,
            self.out.display()
        )
    }
}

pub fn merge(req: &MergeRequest) -> Result<MergeReport> {
    let shards = one_complete_run(found_shards(&req.inputs)?)?;
    let out = match (&req.out, req.inputs.as_slice()) {
        (Some(out), _) => out.clone(),
        (None, [dir]) if dir.join("shards").is_dir() => dir.join("results.json"),
        _ => bail!("give --out: the results file to write (the default, results.json in the predict --out folder, needs that one folder as the input)"),
    };
    let inputs: Vec<PathBuf> = shards
        .iter()
        .flat_map(|s| (0..s.run.chunk_count()).map(|i| s.chunk_path(i)).chain([s.dir.join("run.json")]))
        .collect();
    crate::fsutil::refuse_overwriting_inputs(std::slice::from_ref(&out), &inputs)?;
    crate::fsutil::refuse_existing(std::slice::from_ref(&out), req.force)?;
    let (mut results, mut unreadable) = (0, Vec::new());
    // The results file's text as `serde_json::to_string` writes the whole list (what predict
    // writes): `[`, the records separated by commas, `]`; streamed, chunk after chunk.
    crate::fsutil::write_atomic_with(&out, |w| {
        w.write_all(b"[")?;
        for shard in &shards {
            for i in 0..shard.run.chunk_count() {
                let chunk = shard.read_chunk(i)?.with_context(|| format!("{}: gone", shard.chunk_path(i).display()))?;
                for record in &chunk.results {
                    if results > 0 {
                        w.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut *w, record)?;
                    results += 1;
                }
                unreadable.extend(chunk.unreadable.into_iter().map(|u| (PathBuf::from(u.path), u.error)));
            }
        }
        Ok(w.write_all(b"]")?)
    })?;
    let report = MergeReport { shards: shards.len(), images: shards[0].run.key.images, results, unreadable, out };
    fail_on_unreadable(&report.unreadable, report.images, &report)?;
    Ok(report)
}

/// The shard folders the inputs name: each a shard folder (with `run.json`) or a predict
/// `--out` folder, whose `shards/*` are taken.
fn found_shards(inputs: &[PathBuf]) -> Result<Vec<ShardFolder>> {
    let mut found = Vec::new();
    for input in inputs {
        if input.join("run.json").is_file() {
            found.push(ShardFolder::read(input)?);
            continue;
        }
        let shards = input.join("shards");
        let Ok(entries) = std::fs::read_dir(&shards) else {
            bail!(
                "{}: neither a shard folder (with run.json) nor a predict --out folder (with shards/)",
                input.display()
            )
        };
        let mut dirs: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.join("run.json").is_file()).collect();
        dirs.sort();
        if dirs.is_empty() {
            bail!("{}: no shard folders (shard-K-of-N with a run.json)", shards.display());
        }
        for dir in dirs {
            found.push(ShardFolder::read(&dir)?);
        }
    }
    Ok(found)
}

/// The shards in order, when they are every shard of one run, each once and complete.
fn one_complete_run(found: Vec<ShardFolder>) -> Result<Vec<ShardFolder>> {
    let first = found.first().context("no shards given")?;
    let (count, key, first_dir) = (first.run.shard.count, first.run.key.clone(), first.dir.clone());
    let mut by_index: BTreeMap<usize, ShardFolder> = BTreeMap::new();
    for shard in found {
        let differences = key.differences(&shard.run.key);
        if shard.run.shard.count != count || !differences.is_empty() {
            bail!(
                "{} and {} are shards of different runs ({}): merge the shards of one run",
                first_dir.display(),
                shard.dir.display(),
                if shard.run.shard.count != count {
                    format!("{} shards vs {}", count, shard.run.shard.count)
                } else {
                    differences.join("; ")
                }
            );
        }
        if let Some(twin) = by_index.get(&shard.run.shard.index) {
            bail!(
                "{} and {} are both {}: give each shard once",
                twin.dir.display(),
                shard.dir.display(),
                shard.run.shard
            );
        }
        by_index.insert(shard.run.shard.index, shard);
    }
    let missing: Vec<String> =
        (0..count).filter(|k| !by_index.contains_key(k)).map(|k| format!("{k}/{count}")).collect();
    match missing.as_slice() {
        [] => {}
        [one] => {
            bail!("shard {one} of this run is missing: run `dypose predict … --shard {one}` with the same arguments")
        }
        _ => bail!(
            "shards {} of this run are missing: run `dypose predict … --shard K/N` for each, with the same arguments",
            missing.join(", ")
        ),
    }
    let shards: Vec<ShardFolder> = by_index.into_values().collect();
    for shard in &shards {
        refuse_unfinished(shard)?;
    }
    Ok(shards)
}

/// Refuses a shard with chunks not yet written, naming them and how to finish it.
fn refuse_unfinished(shard: &ShardFolder) -> Result<()> {
    let count = shard.run.chunk_count();
    let missing: Vec<usize> = (0..count).filter(|&i| !shard.chunk_path(i).is_file()).collect();
    let Some(&first) = missing.first() else { return Ok(()) };
    bail!(
        "{}: {} is not finished: {} of its {} chunks are not written (the first: chunk {first}, images {}..{}); \
         run its `predict --shard {}/{}` again with the same arguments: it continues where it stopped",
        shard.dir.display(),
        shard.run.shard,
        missing.len(),
        count,
        shard.run.chunk(first).start,
        shard.run.chunk(first).end,
        shard.run.shard.index,
        shard.run.shard.count
    )
}
