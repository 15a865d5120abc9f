//! Where a command writes, checked before it runs anything: a run that
//! measures for minutes must not fail at the end because its `--out` is a
//! file or its `--trace` directory does not exist.
//!
//! Two kinds of output path:
//!
//! - **A directory the command writes into** (`--out DIR` of every
//!   command): made now, with its missing parents, as `mkdir -p` would, and
//!   proven writable by creating and removing a file in it.
//! - **A file written at the end** (`--trace FILE`): its directory must
//!   already exist; nothing is created for it. The file itself is not made
//!   until the end; a probe file beside it proves the directory writable.
//!
//! Messages name the flag, the path and the real problem ("is a file, not
//! a directory", "does not exist", "permission denied"), never a bare errno.

use super::error::{LabError, LabResult};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// An I/O error in words, without the `(os error N)`.
fn why(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::ReadOnlyFilesystem => "read-only file system".into(),
        ErrorKind::NotADirectory => "not a directory".into(),
        ErrorKind::NotFound => "does not exist".into(),
        ErrorKind::StorageFull => "no space left on the device".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    }
}

/// The deepest ancestor of `p` that exists (`p` itself when it does).
fn existing_ancestor(p: &Path) -> Option<PathBuf> {
    let mut cur = Some(p);
    while let Some(c) = cur {
        let c = if c.as_os_str().is_empty() {
            Path::new(".")
        } else {
            c
        };
        if c.symlink_metadata().is_ok() {
            return Some(c.to_path_buf());
        }
        cur = c.parent();
    }
    None
}

/// Create and remove a file in `dir`.
fn probe_writable(flag: &str, shown: &Path, dir: &Path) -> LabResult<()> {
    let probe = dir.join(format!(".lab-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(LabError::usage(format!(
            "{flag} {}: cannot write in {}: {}",
            shown.display(),
            dir.display(),
            why(&e)
        ))),
    }
}

/// Make `dir` (and its missing parents) for `flag`, and check that files
/// can be written in it.
pub fn prepare_dir(flag: &str, dir: &Path) -> LabResult<()> {
    if let Some(a) = existing_ancestor(dir) {
        if !a.is_dir() {
            return Err(LabError::usage(if a == dir {
                format!("{flag} {}: is a file, not a directory", dir.display())
            } else {
                format!(
                    "{flag} {}: {} is a file, not a directory",
                    dir.display(),
                    a.display()
                )
            }));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        LabError::usage(format!(
            "{flag} {}: cannot create the directory: {}",
            dir.display(),
            why(&e)
        ))
    })?;
    probe_writable(flag, dir, dir)
}

/// Check that `file` can be written at the end of the run for `flag`: its
/// directory exists and is writable, and `file` is not a directory.
/// Creates nothing.
pub fn check_file(flag: &str, file: &Path) -> LabResult<()> {
    if file.is_dir() || file.as_os_str().to_string_lossy().ends_with('/') {
        return Err(LabError::usage(format!(
            "{flag} {}: is a directory ({flag} takes a file name)",
            file.display()
        )));
    }
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match existing_ancestor(parent) {
        Some(a) if a == parent && a.is_dir() => probe_writable(flag, file, parent),
        Some(a) if !a.is_dir() => Err(LabError::usage(format!(
            "{flag} {}: {} is a file, not a directory",
            file.display(),
            a.display()
        ))),
        _ => Err(LabError::usage(format!(
            "{flag} {}: the directory {} does not exist ({flag} does not create directories)",
            file.display(),
            parent.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_made_and_a_file_in_the_way_is_named() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("a/b/c");
        prepare_dir("--out", &deep).unwrap();
        assert!(deep.is_dir());
        let f = d.path().join("f.json");
        std::fs::write(&f, "{}").unwrap();
        let e = prepare_dir("--out", &f).unwrap_err().to_string();
        assert!(e.contains("is a file, not a directory"), "{e}");
        let e = prepare_dir("--out", &f.join("x")).unwrap_err().to_string();
        assert!(e.contains("f.json is a file, not a directory"), "{e}");
        assert!(!e.contains("File exists"), "{e}");
    }

    #[test]
    fn a_file_needs_an_existing_directory_and_nothing_is_created() {
        let d = tempfile::tempdir().unwrap();
        check_file("--trace", &d.path().join("t.json")).unwrap();
        let missing = d.path().join("nope/t.json");
        let e = check_file("--trace", &missing).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        assert!(!d.path().join("nope").exists());
        let e = check_file("--trace", d.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        // Nothing left behind by the writability probe.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
