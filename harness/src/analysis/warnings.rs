//! When the numbers of a comparison are suspect, say so (hyperfine's
//! `src/output/warnings.rs`), once per kind: a sweep of a hundred rows has
//! one line saying that forty of its ratios are within the noise, not forty
//! lines. Each [`Warning`] has a [`WarningKind`] and its detail;
//! [`summarize`] gives one line per kind with a count, and the renderers fold
//! the details (`--verbose` in the terminal, `<details>` in HTML).
//!
//! - **Within the noise** (a note, not a warning): for a row and a figure
//!   with a ratio, the 95% interval of the ratio (`interval`) holds 1; the
//!   table shows the ratio without colour. One detail per row, naming every
//!   such figure with its interval.
//! - **Offered load differed.** The zapper is open loop: each run records
//!   the zaps its schedule requested and the zaps it issued. Where a row and
//!   its baseline issued different shares of what was requested (medians
//!   over repeats more than [`OFFERED_LOAD_POINTS`] percentage points
//!   apart), the two designs ran under different zap loads, and every
//!   figure of the row compares that too.
//! - **No baseline at these parameters**: the row has no ratios.
//! - **No repeats**: every group ran once, so no ratio has an interval.
//! - **Interrupted runs**, **oversubscribed runs** (more worker threads than
//!   CPUs: spinning locks and remote TLB flushes then wait for descheduled
//!   threads), and **runs from different machines**.
//! - **Real-KVM runs whose write-protect was not an rmap walk**: a
//!   calibration records, from KVM's own statistics, what its rounds did
//!   (`write_protect.measured`); where that is not `rmap-walk` (a guest KVM
//!   emulated, so no spte was ever installed), its write-protect figure is
//!   bitmap handling and must not be set beside a simulated walk.

use super::figure::Figure;
use super::group::format_params;
use super::interval::Change;
use super::model::Comparison;
use crate::record::result::RunResult;
use crate::record::units::format_ratio;
use std::path::PathBuf;

/// The kinds, in the order they are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    Noise,
    OfferedLoad,
    NoBaseline,
    NoRepeats,
    Interrupted,
    Oversubscribed,
    NotRmapWalk,
    Machines,
}

impl WarningKind {
    /// A note informs; the other kinds warn.
    pub fn is_note(self) -> bool {
        self == WarningKind::Noise
    }
}

/// One warning: its kind, its text, and how many figures it covers (a
/// noise detail names several).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Warning {
    pub kind: WarningKind,
    pub text: String,
    #[serde(skip)]
    pub figures: usize,
}

impl Warning {
    fn new(kind: WarningKind, text: String) -> Warning {
        Warning {
            kind,
            text,
            figures: 1,
        }
    }
}

/// One kind's line: the summary, and the details it folds (empty when the
/// summary is the one detail).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Summary {
    pub kind: WarningKind,
    pub count: usize,
    pub text: String,
    pub details: Vec<String>,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One line per kind present, in kind order.
pub fn summarize(c: &Comparison) -> Vec<Summary> {
    let mut kinds: Vec<WarningKind> = c.warnings.iter().map(|w| w.kind).collect();
    kinds.sort();
    kinds.dedup();
    kinds
        .into_iter()
        .map(|kind| {
            let of: Vec<&Warning> = c.warnings.iter().filter(|w| w.kind == kind).collect();
            let details: Vec<String> = of.iter().map(|w| w.text.clone()).collect();
            let text = match kind {
                WarningKind::Noise => format!(
                    "{} in {} {} within the noise of the repeats (their 95% interval holds 1x): shown without colour",
                    plural(of.iter().map(|w| w.figures).sum(), "ratio", "ratios"),
                    plural(of.len(), "row", "rows"),
                    if of.iter().map(|w| w.figures).sum::<usize>() == 1 { "is" } else { "are" },
                ),
                WarningKind::OfferedLoad if of.len() > 1 => format!(
                    "{} ran under a different zap load than {} (a different share of the requested zaps issued): their ratios compare that too",
                    plural(of.len(), "row", "rows"),
                    c.baseline
                ),
                WarningKind::NoBaseline => format!(
                    "{} no {} run at {} parameters, so no ratios there",
                    plural(of.len(), "row has", "rows have"),
                    c.baseline,
                    if of.len() == 1 { "its" } else { "their" }
                ),
                _ if of.len() == 1 => {
                    return Summary {
                        kind,
                        count: 1,
                        text: details[0].clone(),
                        details: Vec::new(),
                    }
                }
                _ => format!("{} warnings of one kind", of.len()),
            };
            Summary {
                kind,
                count: of.len(),
                text,
                details,
            }
        })
        .collect()
}

/// Issued/requested zap shares further apart than this many percentage
/// points mean the runs were offered different loads.
pub const OFFERED_LOAD_POINTS: f64 = 5.0;

/// The offered-load warnings of `c`: one per row whose zapper issued a
/// share of its requested zaps more than [`OFFERED_LOAD_POINTS`] points
/// away from its baseline's.
pub fn offered_load(c: &Comparison, runs: &[(PathBuf, RunResult)]) -> Vec<Warning> {
    let mut out = Vec::new();
    for row in c.rows.iter().filter(|r| !r.is_baseline && r.has_baseline) {
        let Some(base) = c.row(&c.baseline, &row.params) else {
            continue;
        };
        let zaps = Figure::zaps_issued();
        let (Some(a), Some(b)) = (row.median(&zaps, runs), base.median(&zaps, runs)) else {
            continue;
        };
        if (100.0 * (a - b)).abs() > OFFERED_LOAD_POINTS {
            out.push(Warning::new(
                WarningKind::OfferedLoad,
                format!(
                    "offered load differs at {}: {} issued {:.0}% of its requested zaps, {} {:.0}%; the two ran under different zap loads, so every ratio of the row compares that too",
                    format_params(&row.params),
                    row.impl_name,
                    100.0 * a,
                    c.baseline,
                    100.0 * b
                ),
            ));
        }
    }
    out
}

/// The warnings of `c`, whose rows were built from `runs`.
pub fn warnings(c: &Comparison, runs: &[(PathBuf, RunResult)]) -> Vec<Warning> {
    let mut out = offered_load(c, runs);
    let several_impls = c.impls.len() > 1;

    for row in c.rows.iter().filter(|r| !r.is_baseline) {
        let where_ = format_params(&row.params);
        if !row.has_baseline {
            if several_impls {
                out.push(Warning::new(
                    WarningKind::NoBaseline,
                    format!(
                        "no {} run at {where_}: {} has no ratios there",
                        c.baseline, row.impl_name
                    ),
                ));
            }
            continue;
        }
        let noisy: Vec<String> = c
            .figures
            .iter()
            .zip(&row.cells)
            .filter(|(_, cell)| cell.change == Some(Change::Noise))
            .filter_map(|(f, cell)| {
                let (r, i) = (cell.ratio?, cell.ratio_ci?);
                Some(format!(
                    "{} {} (95% interval {}-{})",
                    f.label,
                    format_ratio(r),
                    format_ratio(i.lo),
                    format_ratio(i.hi)
                ))
            })
            .collect();
        if !noisy.is_empty() {
            out.push(Warning {
                kind: WarningKind::Noise,
                figures: noisy.len(),
                text: format!(
                    "{} at {where_}, against {}: {}",
                    row.impl_name,
                    c.baseline,
                    noisy.join(", ")
                ),
            });
        }
    }

    if several_impls && c.rows.iter().all(|r| r.runs.len() < 2) {
        out.push(Warning::new(
            WarningKind::NoRepeats,
            "every configuration ran once: the ratios carry no confidence interval (repeat the runs, --repeat, to get one)"
                .into(),
        ));
    }

    let names = |pred: &dyn Fn(&RunResult) -> bool| -> Vec<String> {
        runs.iter()
            .filter(|(_, r)| pred(r))
            .map(|(p, _)| p.display().to_string())
            .collect()
    };
    let some = |v: &[String]| {
        let mut s = v.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        if v.len() > 3 {
            s.push_str(&format!(" and {} more", v.len() - 3));
        }
        s
    };
    let interrupted = names(&|r| r.interrupted);
    if !interrupted.is_empty() {
        out.push(Warning::new(
            WarningKind::Interrupted,
            format!(
                "{} of {} runs were interrupted and measured a shorter phase: {}",
                interrupted.len(),
                runs.len(),
                some(&interrupted)
            ),
        ));
    }
    let over = names(&|r| r.machine.oversubscribed);
    if !over.is_empty() {
        out.push(Warning::new(
            WarningKind::Oversubscribed,
            format!(
                "{} of {} runs had more worker threads than CPUs: spinning locks and TLB flushes wait for descheduled threads there",
                over.len(),
                runs.len()
            ),
        ));
    }
    let not_walk: Vec<String> = runs
        .iter()
        .filter_map(|(p, r)| {
            let wp = r.detail.kvm()?.write_protect.as_ref()?;
            (wp.measured != "rmap-walk").then(|| format!("{} ({})", p.display(), wp.measured))
        })
        .collect();
    if !not_walk.is_empty() {
        out.push(Warning::new(
            WarningKind::NotRmapWalk,
            format!(
                "{} of {} runs are real-KVM runs whose write-protect step was not an rmap walk (KVM's statistics say so): their write-protect figures are not comparable to a simulated walk: {}",
                not_walk.len(),
                runs.len(),
                some(&not_walk)
            ),
        ));
    }
    let mut machines: Vec<String> = runs
        .iter()
        .map(|(_, r)| format!("{} ({})", r.machine.hostname, r.machine.cpu_model))
        .collect();
    machines.sort();
    machines.dedup();
    if machines.len() > 1 {
        out.push(Warning::new(
            WarningKind::Machines,
            format!(
                "the runs come from {} machines, so the ratios compare machines too: {}",
                machines.len(),
                some(&machines)
            ),
        ));
    }
    out
}
