//! Writing the lab's files so that a reader never sees half of one and no
//! writer ever loses one to another.
//!
//! * [`write_atomic`] replaces the file at a given path (plots, the report,
//!   a sweep's planned result files, which `--resume` rewrites on purpose).
//! * [`write_new`] creates a file under a name nobody has used, for the
//!   result of a run (`lab run`, `lab profile`, `lab calibrate`): two runs
//!   started in the same second, by two processes or two threads, name
//!   their results after the same stamp, and each must keep its own.
//!
//! Both write a temporary file beside the target, created exclusively
//! (`O_EXCL`) under a name no other writer can pick (the process id and a
//! per-process counter), `fsync` it, and then make it the target in one
//! step: `write_atomic` renames it over the target; `write_new` hard-links
//! it to the first free name of `<base>.<ext>`, `<base>-2.<ext>`, ...
//! (`link` fails rather than replace, so two writers racing for one name
//! cannot both get it) and removes the temporary name. Either way the
//! directory is `fsync`ed afterwards, so that the new name survives a crash
//! as surely as the data does.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Write `bytes` to `path` atomically, replacing what is there.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = write_temporary(dir, &name, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    sync_dir(dir)
}

/// Write `bytes` to a new file in `dir` named `<base>.<ext>`, or
/// `<base>-<n>.<ext>` with the smallest `n` from 2 whose name is free;
/// never replaces a file. Returns the path written.
pub fn write_new(dir: &Path, base: &str, ext: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let tmp = write_temporary(dir, &format!("{base}.{ext}"), bytes)?;
    let linked = (1u64..)
        .map(|n| match n {
            1 => dir.join(format!("{base}.{ext}")),
            n => dir.join(format!("{base}-{n}.{ext}")),
        })
        .find_map(|path| match std::fs::hard_link(&tmp, &path) {
            Ok(()) => Some(Ok(path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => None,
            Err(e) => Some(Err(e)),
        })
        .expect("the names never run out");
    let _ = std::fs::remove_file(&tmp);
    let path = linked?;
    sync_dir(dir)?;
    Ok(path)
}

/// The directory a path is in (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// `bytes` in a new hidden file in `dir`, named after `name`, this process
/// and a counter, created exclusively and `fsync`ed. The directory must
/// exist: nothing here creates one (a `--trace` into a missing directory
/// fails instead of making it).
fn write_temporary(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        // Relaxed: only distinctness matters, which the RMW gives.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let mut f = match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => f,
            // Left behind by a crashed process that had our pid.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let written = f.write_all(bytes).and_then(|()| f.sync_all());
        return match written {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        };
    }
}

/// `fsync` a directory, so that the names created in it last.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_new_file_never_replaces_one_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("r.json"), "first").unwrap();
        let p = write_new(d.path(), "r", "json", b"second").unwrap();
        assert_eq!(p, d.path().join("r-2.json"));
        assert_eq!(
            std::fs::read_to_string(d.path().join("r.json")).unwrap(),
            "first"
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "second");
        assert_eq!(files(d.path()), ["r-2.json", "r.json"]);
    }

    /// Writers racing for one name each get their own file, with their own
    /// contents (the name check and the creation are one step).
    #[test]
    fn concurrent_writers_of_one_name_keep_every_file() {
        const WRITERS: usize = 8;
        let d = tempfile::tempdir().unwrap();
        let start = std::sync::Barrier::new(WRITERS);
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..WRITERS)
                .map(|i| {
                    let (d, start) = (d.path(), &start);
                    s.spawn(move || {
                        start.wait();
                        write_new(d, "same", "json", format!("writer {i}").as_bytes()).unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut contents: Vec<String> = paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        contents.sort();
        let expected: Vec<String> = (0..WRITERS).map(|i| format!("writer {i}")).collect();
        assert_eq!(contents, expected);
        assert_eq!(files(d.path()).len(), WRITERS, "{:?}", files(d.path()));
    }

    #[test]
    fn an_atomic_write_replaces_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("plot.svg");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(files(d.path()), ["plot.svg"]);
    }
}
