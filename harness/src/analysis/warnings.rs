//! When the numbers of a comparison are suspect, say so (hyperfine's
//! `src/output/warnings.rs`): one line per problem, printed below the table.
//!
//! - **Spread larger than the difference.** For a row and a figure with a
//!   ratio, the difference claimed is `|median - baseline median|`; the
//!   spread is the larger range (max - min) of the two groups' repeats. When
//!   the spread exceeds the difference *and* the two ranges overlap, the
//!   ratio is within the noise of the repeats, and the row's line names every
//!   such figure. (Ranges that do not overlap separate the two however wide
//!   one of them is: a narrow range far below a wide one is a difference, not
//!   noise.)
//! - **No repeats.** Every group ran once: the ratios have no measure of
//!   spread at all.
//! - **Offered load differed.** The zapper is open loop: each run records
//!   the zaps its schedule requested and the zaps it issued. Where a row and
//!   its baseline issued different shares of what was requested (medians
//!   over repeats more than [`OFFERED_LOAD_POINTS`] percentage points
//!   apart), the two designs ran under different zap loads, and every
//!   figure of the row compares that too.
//! - **No baseline at these parameters**, **interrupted runs**,
//!   **oversubscribed runs** (more worker threads than CPUs: spinning locks
//!   and remote TLB flushes then wait for descheduled threads), and **runs
//!   from different machines**.

use super::figure::Figure;
use super::group::format_params;
use super::model::Comparison;
use crate::record::result::RunResult;
use std::path::PathBuf;

/// Issued/requested zap shares further apart than this many percentage
/// points mean the runs were offered different loads.
pub const OFFERED_LOAD_POINTS: f64 = 5.0;

/// The offered-load warnings of `c`: one per row whose zapper issued a
/// share of its requested zaps more than [`OFFERED_LOAD_POINTS`] points
/// away from its baseline's.
pub fn offered_load(c: &Comparison, runs: &[(PathBuf, RunResult)]) -> Vec<String> {
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
            out.push(format!(
                "offered load differs at {}: {} issued {:.0}% of its requested zaps, {} {:.0}%; the two ran under different zap loads, so every ratio of the row compares that too",
                format_params(&row.params),
                row.impl_name,
                100.0 * a,
                c.baseline,
                100.0 * b
            ));
        }
    }
    out
}

/// The warnings of `c`, whose rows were built from `runs`.
pub fn warnings(c: &Comparison, runs: &[(PathBuf, RunResult)]) -> Vec<String> {
    let mut out = offered_load(c, runs);
    let several_impls = c.impls.len() > 1;

    for row in c.rows.iter().filter(|r| !r.is_baseline) {
        let where_ = format_params(&row.params);
        if !row.has_baseline {
            if several_impls {
                out.push(format!(
                    "no {} run at {where_}: {} has no ratios there",
                    c.baseline, row.impl_name
                ));
            }
            continue;
        }
        let Some(base) = c.row(&c.baseline, &row.params) else {
            continue;
        };
        let mut noisy = Vec::new();
        for (j, f) in c.figures.iter().enumerate() {
            let (Some(s), Some(b)) = (row.cells[j].stats, base.cells[j].stats) else {
                continue;
            };
            if s.n < 2 && b.n < 2 {
                continue;
            }
            let diff = (s.median - b.median).abs();
            let spread = s.spread().max(b.spread());
            let overlap = s.min <= b.max && b.min <= s.max;
            if spread > diff && overlap {
                let pct = |x: f64| {
                    if b.median != 0.0 {
                        format!("{:.0}%", 100.0 * x / b.median.abs())
                    } else {
                        f.unit.format(x)
                    }
                };
                noisy.push(format!(
                    "{} (difference {}, spread {})",
                    f.label,
                    pct(diff),
                    pct(spread)
                ));
            }
        }
        if !noisy.is_empty() {
            out.push(format!(
                "{} at {where_}: the spread over repeats is larger than the difference from {} for {}",
                row.impl_name,
                c.baseline,
                noisy.join(", ")
            ));
        }
    }

    if several_impls && c.rows.iter().all(|r| r.runs.len() < 2) {
        out.push(
            "every configuration ran once: the ratios carry no measure of spread (repeat the runs to see it)"
                .into(),
        );
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
        out.push(format!(
            "{} of {} runs were interrupted and measured a shorter phase: {}",
            interrupted.len(),
            runs.len(),
            some(&interrupted)
        ));
    }
    let over = names(&|r| r.machine.oversubscribed);
    if !over.is_empty() {
        out.push(format!(
            "{} of {} runs had more worker threads than CPUs: spinning locks and TLB flushes wait for descheduled threads there",
            over.len(),
            runs.len()
        ));
    }
    let mut machines: Vec<String> = runs
        .iter()
        .map(|(_, r)| format!("{} ({})", r.machine.hostname, r.machine.cpu_model))
        .collect();
    machines.sort();
    machines.dedup();
    if machines.len() > 1 {
        out.push(format!(
            "the runs come from {} machines, so the ratios compare machines too: {}",
            machines.len(),
            some(&machines)
        ));
    }
    out
}
