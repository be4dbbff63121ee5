//! Sharded, resumable prediction over large collections. `predict --shard K/N` runs one of N
//! disjoint, contiguous parts of the image list and writes its results in chunks, each written
//! whole or not at all, so that a restarted shard redoes at most one chunk; `dypose merge`
//! joins the shards into the results file that one `predict` over every image writes, byte for
//! byte.
//!
//! Layout under predict's `--out`: `shards/shard-K-of-N/run.json` (the shard's place in the
//! split, the chunk size and the fingerprint of the request) and `chunk-000000.json`, … beside
//! it (each chunk's results, in image order, and the images it could not read).

use crate::coco::schema::ResultRecord;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Shard `index` (from 0) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Shard> {
        ensure!(count >= 1, "a run of {count} shards: there must be at least one");
        ensure!(index < count, "shard {index} of {count}: shards are numbered from 0 to {}", count - 1);
        Ok(Shard { index, count })
    }

    /// This shard's part of `n` images: contiguous, the parts' sizes differing by one at most
    /// (as a rank's part of a job's work: [`crate::dist::part`]).
    pub fn range(self, n: usize) -> Range<usize> {
        crate::dist::part(n, self.index, self.count)
    }

    pub fn folder_name(self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "shard {}/{}", self.index, self.count)
    }
}

/// `--shard`: given as `K/N`, or `auto` (`auto/N`): read from a Slurm job array or a Kubernetes
/// Indexed Job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSpec {
    Given(Shard),
    FromEnvironment { count: Option<usize> },
}

impl std::str::FromStr for ShardSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let number = |v: &str| v.trim().parse::<usize>().map_err(|_| format!("'{s}': expected K/N, auto or auto/N"));
        match s.split_once('/') {
            None if s == "auto" => Ok(ShardSpec::FromEnvironment { count: None }),
            Some(("auto", n)) => Ok(ShardSpec::FromEnvironment { count: Some(number(n)?) }),
            Some((k, n)) => Shard::new(number(k)?, number(n)?).map(ShardSpec::Given).map_err(|e| e.to_string()),
            None => Err(format!("'{s}': expected K/N (shard K of N, K from 0), auto or auto/N")),
        }
    }
}

impl ShardSpec {
    /// The shard, reading `auto` from the environment through `var`: a Slurm array task's
    /// position, `(SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP`, of
    /// `SLURM_ARRAY_TASK_COUNT`; or Kubernetes' `JOB_COMPLETION_INDEX` of the N that `auto/N`
    /// gives (Kubernetes does not tell a pod the number of completions).
    pub fn resolve(self, var: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let count = match self {
            ShardSpec::Given(shard) => return Ok(shard),
            ShardSpec::FromEnvironment { count } => count,
        };
        let number = |name: &str| -> Result<Option<usize>> {
            var(name)
                .map(|v| v.trim().parse::<usize>().with_context(|| format!("{name}={v}: not a whole number")))
                .transpose()
        };
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            let count = match (count, number("SLURM_ARRAY_TASK_COUNT")?) {
                (Some(n), Some(m)) if n != m => {
                    bail!("--shard auto/{n}, but the Slurm job array has {m} tasks (SLURM_ARRAY_TASK_COUNT)")
                }
                (Some(n), _) | (None, Some(n)) => n,
                (None, None) => bail!("SLURM_ARRAY_TASK_COUNT is not set: give the number of shards as --shard auto/N"),
            };
            let index = id.checked_sub(min).filter(|d| d % step == 0).map(|d| d / step);
            return match index {
                Some(index) if index < count => Shard::new(index, count),
                _ => bail!(
                    "Slurm array task {id} (first {min}, step {step}) is not one of {count} consecutive tasks: \
                     use an array like --array=0-{} or give --shard K/N",
                    count.saturating_sub(1)
                ),
            };
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = count.context(
                "JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) is set, but not the number of shards: \
                 give it as --shard auto/N, N being the Job's spec.completions",
            )?;
            return Shard::new(index, count).context("JOB_COMPLETION_INDEX");
        }
        bail!("--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) is set; give --shard K/N")
    }
}

/// What must be equal for shards to be parts of one run: the image list and everything that
/// changes a result. Files are named by their SHA-256, so that copies on other machines agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey {
    /// How many images all the shards share out.
    pub images: usize,
    /// SHA-256 of the image paths as given, in order.
    pub image_list: String,
    pub checkpoint: String,
    pub config: Option<String>,
    /// Where the person boxes come from, with the files' digests.
    pub boxes: String,
    pub flip: bool,
    pub decoding: String,
    /// `cpu` or `cuda`: results are equal to the last bit only on one kind of device.
    pub device: String,
}

impl RunKey {
    /// The fields in which `other` differs, as `name: ours vs theirs`.
    pub fn differences(&self, other: &RunKey) -> Vec<String> {
        let (a, b) =
            (serde_json::to_value(self).expect("plain data"), serde_json::to_value(other).expect("plain data"));
        let (a, b) = (a.as_object().expect("a struct"), b.as_object().expect("a struct"));
        a.iter().filter(|(k, v)| b.get(*k) != Some(v)).map(|(k, v)| format!("{k}: {v} vs {}", b[k])).collect()
    }
}

/// SHA-256 of a file's bytes, as hex.
pub fn file_digest(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 of a list of paths (each followed by a NUL, which no path holds), as hex.
pub fn list_digest(paths: &[PathBuf]) -> String {
    let mut hasher = Sha256::new();
    for p in paths {
        hasher.update(p.as_os_str().as_encoded_bytes());
        hasher.update([0]);
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `run.json`: what a shard folder holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRun {
    pub format: String,
    pub shard: Shard,
    /// Images per chunk file.
    pub chunk_images: usize,
    pub key: RunKey,
}

const FORMAT: &str = "dypose predict shard 1";

impl ShardRun {
    pub fn new(shard: Shard, chunk_images: usize, key: RunKey) -> Result<ShardRun> {
        ensure!(chunk_images >= 1, "--chunk {chunk_images}: a chunk holds at least one image");
        Ok(ShardRun { format: FORMAT.into(), shard, chunk_images, key })
    }

    /// How many chunks this shard's images make.
    pub fn chunk_count(&self) -> usize {
        self.shard.range(self.key.images).len().div_ceil(self.chunk_images)
    }

    /// The image indexes (in the whole list) of chunk `i`.
    pub fn chunk(&self, i: usize) -> Range<usize> {
        let all = self.shard.range(self.key.images);
        let start = all.start + i * self.chunk_images;
        start..(start + self.chunk_images).min(all.end)
    }
}

/// An image a chunk could not read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unreadable {
    pub path: String,
    pub error: String,
}

/// One chunk's file: the results of images `first .. first + images` in order, and the images
/// among them that could not be read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkFile {
    pub first: usize,
    pub images: usize,
    pub unreadable: Vec<Unreadable>,
    pub results: Vec<ResultRecord>,
}

/// A shard's folder and its `run.json`.
pub struct ShardFolder {
    pub dir: PathBuf,
    pub run: ShardRun,
}

/// Whether a shard starts afresh or continues an earlier run of the same request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Fresh,
    Resume,
}

impl ShardFolder {
    /// The shard's folder under predict's `out`, and whether it continues an earlier run: it
    /// does when `run.json` there describes the same run, unless `force` starts it over. A
    /// `run.json` of another request is refused. Writes nothing.
    pub fn prepare(out: &Path, run: ShardRun, force: bool) -> Result<(ShardFolder, Start)> {
        let folder = ShardFolder { dir: out.join("shards").join(run.shard.folder_name()), run };
        let manifest = folder.dir.join("run.json");
        if force || !manifest.exists() {
            if !force {
                if let Some(stray) = folder.chunk_files()?.first() {
                    bail!(
                        "{}: a chunk without the run.json that says what it is; pass --force to start this shard over",
                        stray.display()
                    );
                }
            }
            return Ok((folder, Start::Fresh));
        }
        let earlier = ShardFolder::read(&folder.dir)?;
        if earlier.run != folder.run {
            let mut why = earlier.run.key.differences(&folder.run.key);
            if earlier.run.chunk_images != folder.run.chunk_images {
                why.push(format!("chunk: {} vs {}", earlier.run.chunk_images, folder.run.chunk_images));
            }
            bail!(
                "{}: this shard was started by another request ({}, the earlier first); pass --force to start it over, or use another --out",
                manifest.display(),
                why.join("; ")
            );
        }
        Ok((folder, Start::Resume))
    }

    /// Reads a shard folder's `run.json`.
    pub fn read(dir: &Path) -> Result<ShardFolder> {
        let manifest = dir.join("run.json");
        let text = std::fs::read(&manifest).with_context(|| format!("{}: cannot read", manifest.display()))?;
        let run: ShardRun = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not the run.json of a `predict --shard` folder", manifest.display()))?;
        ensure!(run.format == FORMAT, "{}: format '{}', this build reads '{FORMAT}'", manifest.display(), run.format);
        Ok(ShardFolder { dir: dir.to_path_buf(), run })
    }

    /// Makes the folder ready: a fresh start removes earlier chunks and writes `run.json`; a
    /// resumed one drops the temporaries of writes that were cut short. Returns, per chunk, the
    /// images it could not read when it is already written (`None`: still to do).
    pub fn begin(&self, start: Start) -> Result<Vec<Option<Vec<Unreadable>>>> {
        if start == Start::Fresh {
            for stale in self.chunk_files()? {
                std::fs::remove_file(&stale).with_context(|| format!("{}: cannot remove", stale.display()))?;
            }
            let text = serde_json::to_string_pretty(&self.run).expect("plain data");
            crate::fsutil::write_atomic(&self.dir.join("run.json"), text.as_bytes())?;
        }
        crate::fsutil::remove_stale_temporaries(&self.dir);
        (0..self.run.chunk_count()).map(|i| Ok(self.read_chunk(i)?.map(|c| c.unreadable))).collect()
    }

    pub fn chunk_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("chunk-{i:06}.json"))
    }

    /// Chunk `i`, or `None` when it is not written yet; one that does not hold the images its
    /// place says is an error.
    pub fn read_chunk(&self, i: usize) -> Result<Option<ChunkFile>> {
        let path = self.chunk_path(i);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
        };
        let chunk: ChunkFile = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not a chunk of predict --shard", path.display()))?;
        let want = self.run.chunk(i);
        ensure!(
            chunk.first == want.start && chunk.images == want.len(),
            "{}: holds images {}..{}, but chunk {i} of {} is images {}..{}",
            path.display(),
            chunk.first,
            chunk.first + chunk.images,
            self.run.shard,
            want.start,
            want.end
        );
        Ok(Some(chunk))
    }

    pub fn write_chunk(&self, i: usize, chunk: &ChunkFile) -> Result<()> {
        let text = serde_json::to_vec(chunk).expect("results hold finite numbers only");
        crate::fsutil::write_atomic(&self.chunk_path(i), &text)
    }

    /// The `chunk-*.json` files in the folder, whatever their number.
    fn chunk_files(&self) -> Result<Vec<PathBuf>> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Ok(Vec::new()) };
        let mut found = Vec::new();
        for e in entries {
            let e = e.with_context(|| format!("{}: cannot list the folder", self.dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("chunk-") && name.ends_with(".json") {
                found.push(e.path());
            }
        }
        found.sort();
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn spec(s: &str) -> ShardSpec {
        s.parse().unwrap()
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn shards_split_the_list_into_contiguous_parts_that_cover_it_once() {
        for n in [0, 1, 2, 7, 10, 1001] {
            for count in [1, 2, 3, 7, 16] {
                let parts: Vec<Range<usize>> = (0..count).map(|k| Shard::new(k, count).unwrap().range(n)).collect();
                assert_eq!(parts[0].start, 0);
                assert_eq!(parts[count - 1].end, n);
                assert!(parts.windows(2).all(|w| w[0].end == w[1].start), "{n} in {count}: {parts:?}");
                let (min, max) = (parts.iter().map(|r| r.len()).min(), parts.iter().map(|r| r.len()).max());
                assert!(max.unwrap() - min.unwrap() <= 1, "{n} in {count}: {parts:?}");
            }
        }
        // 10 images in 3: 3, 3, 4 (by hand: 10·k/3 rounded down is 0, 3, 6, 10).
        let parts: Vec<_> = (0..3).map(|k| Shard::new(k, 3).unwrap().range(10)).collect();
        assert_eq!(parts, vec![0..3, 3..6, 6..10]);
    }

    #[test]
    fn shard_arguments_parse_and_bad_ones_say_why() {
        assert_eq!(spec("2/5"), ShardSpec::Given(Shard { index: 2, count: 5 }));
        assert_eq!(spec("auto"), ShardSpec::FromEnvironment { count: None });
        assert_eq!(spec("auto/4"), ShardSpec::FromEnvironment { count: Some(4) });
        for (bad, says) in
            [("3/3", "numbered from 0 to 2"), ("1/0", "at least one"), ("x/3", "expected K/N"), ("2", "expected K/N")]
        {
            let e = bad.parse::<ShardSpec>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn auto_reads_slurm_arrays_and_kubernetes_indexed_jobs() {
        let auto = spec("auto");
        // --array=1-4: ids 1..=4 are shards 0..=3.
        let slurm = [("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "4")];
        assert_eq!(auto.resolve(env(&slurm)).unwrap(), Shard { index: 2, count: 4 });
        // --array=10-16:3 (10, 13, 16): id 16 is the third.
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "16"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_STEP", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ];
        assert_eq!(auto.resolve(env(&stepped)).unwrap(), Shard { index: 2, count: 3 });
        // --array=0,5,9 (a list): id 5 is not the second of three consecutive tasks.
        let list = [("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_COUNT", "3")];
        assert!(auto.resolve(env(&list)).unwrap_err().to_string().contains("not one of 3 consecutive"));
        let mismatch = spec("auto/5").resolve(env(&slurm)).unwrap_err().to_string();
        assert!(mismatch.contains("has 4 tasks"), "{mismatch}");
        let k8s = [("JOB_COMPLETION_INDEX", "1")];
        assert_eq!(spec("auto/3").resolve(env(&k8s)).unwrap(), Shard { index: 1, count: 3 });
        assert!(auto.resolve(env(&k8s)).unwrap_err().to_string().contains("spec.completions"));
        assert!(spec("auto/1").resolve(env(&k8s)).is_err());
        assert!(auto.resolve(env(&[])).unwrap_err().to_string().contains("give --shard K/N"));
        assert!(auto
            .resolve(env(&[("SLURM_ARRAY_TASK_ID", "x")]))
            .unwrap_err()
            .to_string()
            .contains("SLURM_ARRAY_TASK_ID=x"));
        assert_eq!(spec("1/2").resolve(env(&slurm)).unwrap(), Shard { index: 1, count: 2 }, "given wins");
    }

    #[test]
    fn digests_are_sha256() {
        // The SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "abc").unwrap();
        assert_eq!(
            file_digest(&dir.path().join("f")).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Paths are separated, so that ["ab", "c"] and ["a", "bc"] differ.
        assert_ne!(list_digest(&["ab".into(), "c".into()]), list_digest(&["a".into(), "bc".into()]));
    }

    fn key(images: usize) -> RunKey {
        RunKey {
            images,
            image_list: "l".into(),
            checkpoint: "c".into(),
            config: None,
            boxes: "whole image".into(),
            flip: true,
            decoding: "dark".into(),
            device: "cpu".into(),
        }
    }

    fn chunk(run: &ShardRun, i: usize) -> ChunkFile {
        let r = run.chunk(i);
        ChunkFile { first: r.start, images: r.len(), unreadable: vec![], results: vec![] }
    }

    #[test]
    fn a_shard_folder_resumes_the_same_run_refuses_another_and_starts_over_with_force() {
        let out = tempfile::tempdir().unwrap();
        // Shard 1 of 2 of 11 images is 5..11; chunks of 4: 5..9 and 9..11.
        let run = ShardRun::new(Shard::new(1, 2).unwrap(), 4, key(11)).unwrap();
        assert_eq!((run.chunk_count(), run.chunk(0), run.chunk(1)), (2, 5..9, 9..11));
        let (folder, how) = ShardFolder::prepare(out.path(), run.clone(), false).unwrap();
        assert_eq!((how, folder.begin(how).unwrap()), (Start::Fresh, vec![None, None]));
        folder.write_chunk(0, &chunk(&run, 0)).unwrap();
        // A write cut short leaves a temporary behind; resuming removes it.
        let stale = folder.dir.join(".dypose-x.tmp");
        std::fs::write(&stale, "half").unwrap();
        let (folder, how) = ShardFolder::prepare(out.path(), run.clone(), false).unwrap();
        assert_eq!((how, folder.begin(how).unwrap()), (Start::Resume, vec![Some(vec![]), None]));
        assert!(!stale.exists());
        // Another request (here: the decoding, and the chunk size) is refused, naming both.
        let mut other = run.clone();
        other.key.decoding = "quarter".into();
        other.chunk_images = 3;
        let e = ShardFolder::prepare(out.path(), other.clone(), false).err().unwrap().to_string();
        assert!(e.contains("decoding: \"dark\" vs \"quarter\"") && e.contains("chunk: 4 vs 3"), "{e}");
        // --force starts over: the earlier chunks go, run.json is the new one.
        let (folder, how) = ShardFolder::prepare(out.path(), other.clone(), true).unwrap();
        assert_eq!((how, folder.begin(how).unwrap()), (Start::Fresh, vec![None, None]));
        assert_eq!(ShardFolder::read(&folder.dir).unwrap().run, other);
        // A chunk that does not hold its images is an error, not a done chunk.
        folder.write_chunk(1, &chunk(&run, 1)).unwrap();
        let e = folder.read_chunk(1).err().unwrap().to_string();
        assert!(e.contains("holds images 9..11, but chunk 1 of shard 1/2 is images 8..11"), "{e}");
    }
}
