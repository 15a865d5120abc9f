//! What `lab check` prints: a row per run and what the runs found.

use super::terminal::Table;
use crate::record::check::CheckRow;
use crate::record::units::{format_ns, format_size};
use rmap_impls::Bug;
use std::fmt::Write as _;
use std::time::Duration;

/// The table of `lab check` and the sentence under it.
pub fn table(
    rows: &[CheckRow],
    bug: Option<Bug>,
    workload: &str,
    duration: Duration,
    mem: u64,
    interrupted: bool,
) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "lab check: {workload} workload, {} per run, {}{}",
        format_ns(duration.as_nanos() as f64),
        format_size(mem),
        bug.map(|b| format!(", injected bug '{b}'"))
            .unwrap_or_default()
    );
    let mut t = Table::new(&[
        "impl",
        "vcpus",
        "seed",
        "rounds",
        "walks",
        "restarts",
        "lost writes",
        "bad rmaps",
        "verdict",
    ]);
    for r in rows {
        t.row(vec![
            r.impl_name.clone(),
            r.vcpus.to_string(),
            r.seed.to_string(),
            r.rounds_checked.to_string(),
            r.walks.to_string(),
            r.restarts.to_string(),
            r.lost_writes.to_string(),
            r.rmap_inconsistencies.to_string(),
            if r.ok {
                "ok".into()
            } else {
                "VIOLATION".into()
            },
        ]);
    }
    o.push_str(&t.render());
    let failed = rows.iter().filter(|r| !r.ok).count();
    let _ = match (failed, bug) {
        (0, None) => writeln!(o, "all {} runs kept every write", rows.len()),
        (0, Some(b)) => writeln!(
            o,
            "the oracle did not catch '{b}' in {} runs on this machine (try --duration, --repeat or more --vcpus)",
            rows.len()
        ),
        (n, Some(b)) => writeln!(o, "the oracle caught '{b}' in {n} of {} runs", rows.len()),
        (n, None) => writeln!(o, "{n} of {} runs lost writes", rows.len()),
    };
    if interrupted {
        o.push_str("(interrupted: the remaining runs were skipped)\n");
    }
    o
}
