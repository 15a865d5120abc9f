//! Finding and reading result files: every `*.json` under the paths a
//! command was given that is not one of the lab's side files.

use super::error::{LabError, LabResult};
use super::result::{ResultError, RunResult};
use std::path::{Path, PathBuf};

/// Every `*.json` result under `path` (a file, or a directory searched
/// recursively), sorted by path. Files that are not rmap-lab results are an
/// error, named.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<(PathBuf, RunResult)>, ResultError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            collect_json(p, &mut files)
                .map_err(|e| ResultError(format!("{}: cannot read directory: {e}", p.display())))?;
        } else if p.exists() {
            files.push(p.clone());
        } else {
            return Err(ResultError(format!(
                "{}: no such file or directory",
                p.display()
            )));
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let r = RunResult::load(&f)?;
        out.push((f, r));
    }
    Ok(out)
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            collect_json(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "json") && is_result_file_name(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Result files are `*.json` that are not the lab's own side files
/// (`sweep.json`, `*.timeseries.json`, `*.trace.json`, hidden temporaries).
fn is_result_file_name(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    !(name.starts_with('.')
        || name == "sweep.json"
        || name == "session.json"
        || name.ends_with(".timeseries.json")
        || name.ends_with(".trace.json")
        || name.ends_with(".compare.json"))
}

/// The runs in `paths` (files, or directories searched recursively); none
/// at all is a usage error. What `lab compare` and `lab plot` read.
pub fn load_inputs(paths: &[PathBuf]) -> LabResult<Vec<(PathBuf, RunResult)>> {
    let runs = load_all(paths)?;
    if runs.is_empty() {
        return Err(LabError::usage(format!(
            "no result files in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(runs)
}
