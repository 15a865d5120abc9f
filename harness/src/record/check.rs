//! What `lab check` records: one row per run, and in
//! `<out>/bugs-reached.json`, for each injected bug and for the flaw of
//! `lockless`, which checks caught it on this machine, in how many runs, and
//! the median time to the first detection, with the command that measured
//! it; `lab list` reports them.

use super::error::{LabError, LabResult};
use super::machine::Machine;
use super::result::{utc_now, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One run's outcome.
#[derive(Debug, Serialize)]
pub struct CheckRow {
    #[serde(rename = "impl")]
    pub impl_name: String,
    pub workload: String,
    pub vcpus: u32,
    pub seed: u64,
    pub rounds_checked: u64,
    pub lost_writes: u64,
    /// `None` where walks were not checked for missed sptes.
    pub missed_sptes: Option<u64>,
    pub rmap_inconsistencies: u64,
    pub restarts: u64,
    pub walks: u64,
    /// Seconds from the start of the run (warmup included) to the first
    /// violation; the run ends there.
    pub first_violation_s: Option<f64>,
    pub perturbed: bool,
    pub interrupted: bool,
    /// No violation found, and none could have been: a dirty-logging run
    /// that checked no round even after going on past its duration
    /// (`Config::min_rounds`), on a machine too loaded for it.
    pub inconclusive: bool,
    pub ok: bool,
}

impl CheckRow {
    /// The run's verdict in words, as the progress line and the table give
    /// it: `ok`, `INCONCLUSIVE (...)` or `VIOLATION (checks that caught it)`.
    pub fn verdict(&self) -> String {
        if self.inconclusive {
            "INCONCLUSIVE (no round checked)".into()
        } else if self.ok {
            "ok".into()
        } else {
            format!("VIOLATION ({})", self.caught_by().join(", "))
        }
    }

    /// The checks that found something in this run: `missed-spte`,
    /// `oracle` (lost writes), `rmap-check` (a quiescent rmap that differs
    /// from its sptes).
    pub fn caught_by(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.missed_sptes.unwrap_or(0) > 0 {
            v.push(CHECK_MISSED_SPTE);
        }
        if self.lost_writes > 0 {
            v.push(CHECK_ORACLE);
        }
        if self.rmap_inconsistencies > 0 {
            v.push(CHECK_RMAP);
        }
        v
    }
}

pub const CHECK_MISSED_SPTE: &str = "missed-spte";
pub const CHECK_ORACLE: &str = "oracle";
pub const CHECK_RMAP: &str = "rmap-check";

/// What `lab check --inject-bug NAME` (or `--impl lockless`, for the flaw)
/// found, kept for `lab list`. Fields after `machine` are newer than the
/// file format: absent in an older file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BugReached {
    /// Some run caught it.
    pub reached: bool,
    pub runs: u64,
    pub runs_caught: u64,
    pub lost_writes: u64,
    pub impls: Vec<String>,
    pub checked_at: String,
    pub machine: String,
    /// Per check, the runs it caught the bug in (`missed-spte`, `oracle`,
    /// `rmap-check`).
    #[serde(default)]
    pub caught_by: BTreeMap<String, u64>,
    #[serde(default)]
    pub missed_sptes: u64,
    /// Median over all runs of the time to the first detection (a run that
    /// caught nothing counts as never): `None` when half the runs or more
    /// caught nothing.
    #[serde(default)]
    pub median_detection_s: Option<f64>,
    /// Each run's cap (`--duration`, plus its warmup).
    #[serde(default)]
    pub run_cap_s: Option<f64>,
    #[serde(default)]
    pub workloads: Vec<String>,
    #[serde(default)]
    pub perturbed: bool,
    /// The command line that measured it.
    #[serde(default)]
    pub command: Option<String>,
}

pub const BUGS_FILE: &str = "bugs-reached.json";

/// The key of the flaw of `lockless` in `bugs-reached.json` (bugs are keyed
/// by their names).
pub const FLAW_KEY: &str = "lockless";

/// Read `<dir>/bugs-reached.json` (empty when absent or unreadable).
pub fn load_bugs_reached(dir: &Path) -> BTreeMap<String, BugReached> {
    std::fs::read_to_string(dir.join(BUGS_FILE))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

/// The median of the times to the first detection, a run that caught
/// nothing counting as never; `None` when that median is never.
pub fn median_detection(rows: &[CheckRow]) -> Option<f64> {
    let mut t: Vec<f64> = rows
        .iter()
        .map(|r| match (r.ok, r.first_violation_s) {
            (false, Some(s)) => s,
            _ => f64::INFINITY,
        })
        .collect();
    if t.is_empty() {
        return None;
    }
    t.sort_by(f64::total_cmp);
    let n = t.len();
    let m = if n % 2 == 1 {
        t[n / 2]
    } else {
        (t[n / 2 - 1] + t[n / 2]) / 2.0
    };
    m.is_finite().then_some(m)
}

/// Record under `key` (a bug's name, or [`FLAW_KEY`]) what `rows` found.
pub fn record_bug(
    dir: &Path,
    key: &str,
    rows: &[CheckRow],
    run_cap_s: f64,
    command: String,
) -> LabResult<()> {
    let mut all = load_bugs_reached(dir);
    let m = Machine::probe(0, rmap_workloads::clock::source());
    let mut caught_by = BTreeMap::new();
    for r in rows {
        for c in r.caught_by() {
            *caught_by.entry(c.to_string()).or_insert(0) += 1;
        }
    }
    let set = |f: fn(&CheckRow) -> &str| -> Vec<String> {
        rows.iter()
            .map(|r| f(r).to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    all.insert(
        key.to_string(),
        BugReached {
            reached: rows.iter().any(|r| !r.ok),
            runs: rows.len() as u64,
            runs_caught: rows.iter().filter(|r| !r.ok).count() as u64,
            lost_writes: rows.iter().map(|r| r.lost_writes).sum(),
            impls: set(|r| &r.impl_name),
            checked_at: utc_now(),
            machine: format!("{} CPUs, {}", m.online_cpus, m.cpu_model),
            caught_by,
            missed_sptes: rows.iter().filter_map(|r| r.missed_sptes).sum(),
            median_detection_s: median_detection(rows),
            run_cap_s: Some(run_cap_s),
            workloads: set(|r| &r.workload),
            perturbed: rows.iter().any(|r| r.perturbed),
            command: Some(command),
        },
    );
    let path = dir.join(BUGS_FILE);
    std::fs::create_dir_all(dir)
        .map_err(|e| LabError::failed(format!("{}: cannot create: {e}", dir.display())))?;
    write_atomic(
        &path,
        &serde_json::to_vec_pretty(&all).expect("serialisable"),
    )
    .map_err(|e| LabError::failed(format!("{}: cannot write: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ok: bool, first: Option<f64>) -> CheckRow {
        CheckRow {
            impl_name: "lockless".into(),
            workload: "torture".into(),
            vcpus: 2,
            seed: 1,
            rounds_checked: 1,
            lost_writes: 0,
            missed_sptes: Some(!ok as u64),
            rmap_inconsistencies: 0,
            restarts: 0,
            walks: 1,
            first_violation_s: first,
            perturbed: true,
            interrupted: false,
            inconclusive: false,
            ok,
        }
    }

    #[test]
    fn the_median_counts_a_run_that_caught_nothing_as_never() {
        let caught = |s| row(false, Some(s));
        assert_eq!(
            median_detection(&[caught(3.0), caught(1.0), caught(2.0)]),
            Some(2.0)
        );
        assert_eq!(
            median_detection(&[caught(1.0), caught(2.0), row(true, None), caught(5.0)]),
            Some(3.5)
        );
        assert_eq!(median_detection(&[caught(1.0), row(true, None)]), None);
        assert_eq!(median_detection(&[]), None);
        assert_eq!(caught(1.0).caught_by(), [CHECK_MISSED_SPTE]);
    }
}
