//! What `lab check` records: one row per run, and in
//! `<out>/bugs-reached.json` whether the oracle caught each injected bug on
//! this machine, which `lab list` reports.

use super::error::{LabError, LabResult};
use super::machine::Machine;
use super::result::{utc_now, write_atomic};
use rmap_impls::Bug;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One run's outcome.
#[derive(Debug, Serialize)]
pub struct CheckRow {
    #[serde(rename = "impl")]
    pub impl_name: String,
    pub vcpus: u32,
    pub seed: u64,
    pub rounds_checked: u64,
    pub lost_writes: u64,
    pub rmap_inconsistencies: u64,
    pub restarts: u64,
    pub walks: u64,
    pub interrupted: bool,
    pub ok: bool,
}

/// What `lab check --inject-bug` found, kept for `lab list`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BugReached {
    pub reached: bool,
    pub runs: u64,
    pub runs_caught: u64,
    pub lost_writes: u64,
    pub impls: Vec<String>,
    pub checked_at: String,
    pub machine: String,
}

pub const BUGS_FILE: &str = "bugs-reached.json";

/// Read `<dir>/bugs-reached.json` (empty when absent or unreadable).
pub fn load_bugs_reached(dir: &Path) -> BTreeMap<String, BugReached> {
    std::fs::read_to_string(dir.join(BUGS_FILE))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

pub fn record_bug(dir: &Path, bug: Bug, rows: &[CheckRow]) -> LabResult<()> {
    let mut all = load_bugs_reached(dir);
    let m = Machine::probe(0, rmap_workloads::clock::source());
    all.insert(
        bug.name().to_string(),
        BugReached {
            reached: rows.iter().any(|r| !r.ok),
            runs: rows.len() as u64,
            runs_caught: rows.iter().filter(|r| !r.ok).count() as u64,
            lost_writes: rows.iter().map(|r| r.lost_writes).sum(),
            impls: rows
                .iter()
                .map(|r| r.impl_name.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            checked_at: utc_now(),
            machine: format!("{} CPUs, {}", m.online_cpus, m.cpu_model),
        },
    );
    let path = dir.join(BUGS_FILE);
    write_atomic(
        &path,
        &serde_json::to_vec_pretty(&all).expect("serialisable"),
    )
    .map_err(|e| LabError::failed(format!("{}: cannot write: {e}", path.display())))
}
