//! The file-system rules of every command, in one place: output files are written whole or not
//! at all (temp file + rename), never replace an existing file unless the user said so, never
//! replace an input even then; and a file named by a data file (a COCO `file_name`) is looked up
//! inside the folder given for it, never outside.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Component, Path, PathBuf};

// Names of the temporary files `write_atomic` renames into place.
const TEMP_PREFIX: &str = ".dypose-";
const TEMP_SUFFIX: &str = ".tmp";

/// Writes `bytes` to `path` atomically: a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| Ok(w.write_all(bytes)?))
}

/// Like [`write_atomic`], with the content streamed by `write` (through a buffer), for files
/// too large to build in memory first.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create directory", dir.display()))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX);
    // tempfile's default is owner-only (0600); outputs get the mode a plain File::create gives.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let tmp = builder.tempfile_in(dir).with_context(|| format!("{}: cannot create a temporary file", dir.display()))?;
    let mut buffered = std::io::BufWriter::new(tmp);
    write(&mut buffered)
        .and_then(|()| Ok(buffered.flush()?))
        .with_context(|| format!("{}: write failed", path.display()))?;
    let tmp = buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("{}: write failed", path.display()))?;
    tmp.as_file().sync_all().with_context(|| format!("{}: write failed", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("{}: cannot move the new file into place", path.display()))?;
    Ok(())
}

/// Like [`write_atomic`], but refuses to replace an existing file unless `overwrite`.
pub fn write_new(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    if !overwrite && path.exists() {
        bail!("{}: already exists (pass --force to overwrite it)", path.display());
    }
    write_atomic(path, bytes)
}

/// The file `name` (a `file_name` of a data file) inside `dir`: refused when it is absolute,
/// climbs out with `..`, or is empty, so a data file never makes a command read elsewhere.
pub fn inside(dir: &Path, name: &str) -> std::result::Result<PathBuf, String> {
    if name.is_empty() {
        return Err("the file name is empty".into());
    }
    for c in Path::new(name).components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(format!("'{name}' climbs out of {} with '..'", dir.display())),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("'{name}' is an absolute path, not a name inside {}", dir.display()))
            }
        }
    }
    Ok(dir.join(name))
}

/// The canonical form of a path that may not exist yet: its folder's canonical path and its name.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(c) = path.canonicalize() {
        return c;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => canonical(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }).join(name),
        _ => path.to_path_buf(),
    }
}

/// Refuses, before any work, outputs that would replace one of `inputs` (compared as canonical
/// paths, so `./a.jpg`, `a.jpg` and a symbolic link to it are the same file) — with `--force` too.
pub fn refuse_overwriting_inputs(outputs: &[PathBuf], inputs: &[PathBuf]) -> Result<()> {
    let inputs: std::collections::HashSet<PathBuf> = inputs.iter().map(|p| canonical(p)).collect();
    if let Some(out) = outputs.iter().find(|o| inputs.contains(&canonical(o))) {
        bail!("{}: the output would replace an input file; choose another output", out.display());
    }
    Ok(())
}

/// Refuses an output folder that is the folder of one of `inputs` (the next run over that folder
/// would take the outputs for inputs).
pub fn refuse_output_in_input_folder(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    refuse_outputs_in_input_folders(out, std::slice::from_ref(&out.to_path_buf()), inputs)
}

/// [`refuse_output_in_input_folder`] for outputs spread over several `folders` inside `out`
/// (drawings that keep their images' sub-folders); each input's folder is resolved once.
pub fn refuse_outputs_in_input_folders(out: &Path, folders: &[PathBuf], inputs: &[PathBuf]) -> Result<()> {
    let mut input_dirs: std::collections::HashMap<PathBuf, &PathBuf> = std::collections::HashMap::new();
    for p in inputs {
        if let Some(d) = p.parent() {
            input_dirs.entry(canonical(d)).or_insert(p);
        }
    }
    for folder in folders {
        if let Some(p) = input_dirs.get(&canonical(folder)) {
            let inside = if folder == out { String::new() } else { format!(" (in {})", out.display()) };
            bail!(
                "{}{inside}: the output folder holds the input {}; choose another --out",
                folder.display(),
                p.display()
            );
        }
    }
    Ok(())
}

/// Refuses, before any work, two inputs that would be written to the same output (`outputs[i]`
/// is that of `inputs[i]`), naming both.
pub fn refuse_shared_outputs(outputs: &[PathBuf], inputs: &[PathBuf]) -> Result<()> {
    let mut seen: std::collections::HashMap<&Path, usize> = std::collections::HashMap::with_capacity(outputs.len());
    for (i, out) in outputs.iter().enumerate() {
        if let Some(j) = seen.insert(out.as_path(), i) {
            bail!(
                "{} and {} would both be drawn to {}; draw them into separate folders",
                inputs[j].display(),
                inputs[i].display(),
                out.display()
            );
        }
    }
    Ok(())
}

/// Refuses, before any work, outputs that exist already unless `force`, naming the first.
pub fn refuse_existing(outputs: &[PathBuf], force: bool) -> Result<()> {
    let existing: Vec<&PathBuf> = outputs.iter().filter(|p| p.exists()).collect();
    match existing.first() {
        Some(first) if !force => bail!(
            "{}: already exists{} (pass --force to overwrite)",
            first.display(),
            if existing.len() > 1 { format!(", and {} more outputs", existing.len() - 1) } else { String::new() }
        ),
        _ => Ok(()),
    }
}

/// Removes the temporary files that killed `write_atomic` calls left in `dir`.
pub fn remove_stale_temporaries(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn outputs_get_the_mode_of_a_plain_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (ours, plain) = (dir.path().join("ours"), dir.path().join("plain"));
        write_atomic(&ours, b"x").unwrap();
        std::fs::File::create(&plain).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ours), mode(&plain));
    }

    #[test]
    fn data_files_name_files_inside_their_folder_only() {
        let dir = Path::new("imgs");
        assert_eq!(inside(dir, "a.jpg"), Ok(PathBuf::from("imgs/a.jpg")));
        assert_eq!(inside(dir, "sub/./b.png"), Ok(PathBuf::from("imgs/sub/./b.png")));
        assert!(inside(dir, "../secret.jpg").unwrap_err().contains("climbs out"));
        assert!(inside(dir, "sub/../../x.jpg").unwrap_err().contains("climbs out"));
        assert!(inside(dir, "/etc/passwd").unwrap_err().contains("absolute"));
        assert!(inside(dir, "").is_err());
        assert_eq!(inside(dir, "..x.jpg"), Ok(PathBuf::from("imgs/..x.jpg")), "a name that starts with dots");
    }

    #[test]
    fn outputs_never_replace_inputs_even_by_another_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("a.jpg");
        std::fs::write(&input, b"x").unwrap();
        let same = dir.path().join("sub/../a.jpg");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let inputs = std::slice::from_ref(&input);
        assert!(refuse_overwriting_inputs(&[same], inputs).is_err());
        assert!(refuse_overwriting_inputs(&[dir.path().join("b.jpg")], inputs).is_ok());
        assert!(refuse_output_in_input_folder(&dir.path().join("sub/.."), inputs).is_err());
        assert!(refuse_output_in_input_folder(&dir.path().join("sub"), inputs).is_ok());
        let e = refuse_existing(&[input.clone(), dir.path().join("new.png")], false).unwrap_err().to_string();
        assert!(e.contains("a.jpg: already exists") && e.contains("--force"), "{e}");
        assert!(refuse_existing(&[input], true).is_ok());
    }

    #[test]
    fn replaces_only_when_asked_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/out.json");
        write_new(&p, b"one", false).unwrap();
        let err = write_new(&p, b"two", false).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        write_new(&p, b"two", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.json")]);
    }
}
