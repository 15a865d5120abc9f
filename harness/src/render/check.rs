//! What `lab check` prints: a row per run and what the runs found.

use super::terminal::Table;
use crate::record::check::{median_detection, CheckRow};
use crate::record::units::{format_ns, format_size};
use rmap_impls::Bug;
use std::fmt::Write as _;
use std::time::Duration;

/// The table of `lab check` and the sentence under it. `perturb` is the
/// rate of `--perturb` (0: none).
pub fn table(
    rows: &[CheckRow],
    bug: Option<Bug>,
    duration: Duration,
    mem: u64,
    perturb: f64,
    interrupted: bool,
) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "lab check: {} per run (ending at the first violation), {}, {}{}",
        format_ns(duration.as_nanos() as f64),
        format_size(mem),
        if perturb > 0.0 {
            format!(
                "perturbed at {}% of walker perturbation points",
                perturb * 100.0
            )
        } else {
            "not perturbed".to_string()
        },
        bug.map(|b| format!(", injected bug '{b}'"))
            .unwrap_or_default()
    );
    let mut t = Table::new(&[
        "impl",
        "workload",
        "vcpus",
        "seed",
        "rounds",
        "walks",
        "restarts",
        "lost writes",
        "missed sptes",
        "bad rmaps",
        "caught at",
        "verdict",
    ]);
    for r in rows {
        t.row(vec![
            r.impl_name.clone(),
            r.workload.clone(),
            r.vcpus.to_string(),
            r.seed.to_string(),
            r.rounds_checked.to_string(),
            r.walks.to_string(),
            r.restarts.to_string(),
            r.lost_writes.to_string(),
            r.missed_sptes.map_or("-".into(), |n| n.to_string()),
            r.rmap_inconsistencies.to_string(),
            match (r.ok, r.first_violation_s) {
                (false, Some(s)) => format_ns(s * 1e9),
                _ => "-".into(),
            },
            r.verdict(),
        ]);
    }
    o.push_str(&t.render());
    let failed = rows.iter().filter(|r| !r.ok).count();
    let n = rows.len();
    let median = || {
        median_detection(rows).map_or("more than half the runs caught nothing".into(), |s| {
            format!("median time to the first detection {}", format_ns(s * 1e9))
        })
    };
    let _ = match (failed, bug) {
        (0, None) => writeln!(
            o,
            "all {n} runs kept every write, and no write-protect walk missed an spte"
        ),
        (0, Some(b)) => writeln!(
            o,
            "'{b}' was not caught in {n} runs on this machine (try --duration, --repeat or more --vcpus)"
        ),
        (f, Some(b)) => writeln!(o, "'{b}' caught in {f} of {n} runs; {}", median()),
        (f, None) => writeln!(o, "{f} of {n} runs found a violation; {}", median()),
    };
    let inconclusive = rows.iter().filter(|r| r.inconclusive).count();
    if inconclusive > 0 {
        let _ = writeln!(
            o,
            "{inconclusive} of {n} runs checked no round, even past their duration: they prove nothing (the machine is too loaded; try a longer --duration)"
        );
    }
    if interrupted {
        o.push_str("(interrupted: the remaining runs were skipped)\n");
    }
    o
}
