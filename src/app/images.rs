//! The images a command runs on (files or a folder), their COCO image ids, and the one way a
//! run reports images it could not read: shared by `predict` and `detect`.

use crate::coco::CocoDataset;
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The images to run on.
pub enum Images {
    Files(Vec<PathBuf>),
    /// The image files of a folder (jpg, jpeg, png, bmp, webp); other files are skipped and counted.
    Folder(PathBuf),
}

impl Images {
    /// The image files; a folder's other files are counted on stderr. None at all is an error.
    pub fn list(&self) -> Result<Vec<PathBuf>> {
        let images = match self {
            Images::Files(files) => files.clone(),
            Images::Folder(dir) => {
                let (images, others) = files_in(dir)?;
                if let Some(first) = others.first().filter(|_| crate::dist::world().is_root()) {
                    eprintln!(
                        "skipped {} files that are not images by their extension ({}), e.g. {}",
                        others.len(),
                        IMAGE_EXTENSIONS.join(", "),
                        first.display()
                    );
                }
                images
            }
        };
        ensure!(!images.is_empty(), "no images given");
        Ok(images)
    }
}

/// Extensions `predict --image-dir` takes (any case).
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "bmp", "webp"];

/// The image files of a folder by extension (sorted), and the other files (hidden files and
/// sub-folders are left out of both).
pub fn files_in(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut images, mut others) = (Vec::new(), Vec::new());
    for e in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list the folder", dir.display()))? {
        let e = e.with_context(|| format!("{}: cannot list the folder", dir.display()))?;
        if !e.file_type().map(|t| t.is_file()).unwrap_or(false) || e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = e.path();
        let ext = path.extension().map(|x| x.to_string_lossy().to_lowercase()).unwrap_or_default();
        match IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            true => images.push(path),
            false => others.push(path),
        }
    }
    images.sort();
    others.sort();
    Ok((images, others))
}

/// An image id for a file: from the GT (the record whose `file_name` the path ends with), else
/// the digits of a COCO-style name, else its position (1-based).
pub fn image_ids(images: &[PathBuf], gt: Option<&CocoDataset>) -> Result<Vec<i64>> {
    // Records by their last path component; several share it when images sit in per-video
    // folders (PoseTrack18: `images/val/<video>/000000.jpg`).
    let mut by_name: BTreeMap<&std::ffi::OsStr, Vec<(&Path, i64)>> = BTreeMap::new();
    for rec in gt.map_or(&[][..], |g| g.images.as_slice()) {
        let path = Path::new(&rec.file_name);
        by_name.entry(path.file_name().unwrap_or_default()).or_default().push((path, rec.id));
    }
    images
        .iter()
        .enumerate()
        .map(|(k, p)| {
            if let Some(g) = gt {
                return image_id_in(p, &by_name)
                    .with_context(|| format!("{}: not an image of {}", p.display(), g.source.display()));
            }
            let stem = p.file_stem().unwrap_or_default().to_string_lossy();
            Ok(stem.parse::<i64>().unwrap_or(k as i64 + 1))
        })
        .collect()
}

/// The id of the one record whose `file_name` is `path`'s last components; with several that
/// end the same way the one matching the most components, and none when that is still a tie.
fn image_id_in(path: &Path, by_name: &BTreeMap<&std::ffi::OsStr, Vec<(&Path, i64)>>) -> Option<i64> {
    let candidates = by_name.get(path.file_name()?)?;
    let depth = |name: &Path| {
        let matched = name.components().rev().zip(path.components().rev()).take_while(|(a, b)| a == b).count();
        if matched == name.components().count() {
            matched
        } else {
            0
        }
    };
    let best = candidates.iter().map(|(name, _)| depth(name)).max()?;
    let mut top = candidates.iter().filter(|(name, _)| depth(name) == best);
    match (top.next(), top.next()) {
        (Some(&(_, id)), None) => Some(id),
        // Same last component only: the name alone decides, when it is unique.
        _ if best == 0 && candidates.len() == 1 => Some(candidates[0].1),
        _ => None,
    }
}

/// After everything else is written: names each image that could not be read, prints `report`,
/// and fails (exit status 1) when there was one.
pub fn fail_on_unreadable(failed: &[(PathBuf, String)], images: usize, report: &impl std::fmt::Display) -> Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    for (p, e) in failed {
        eprintln!("skipped {}: {e}", p.display());
    }
    eprintln!("{report}");
    bail!("{} of {images} images could not be read (the others were written)", failed.len())
}
