//! The interference block below the terminal table and the markdown export,
//! and the cells the HTML report's table shows (`analysis::interference`
//! pairs the runs).

use super::format_ratio;
use crate::analysis::group::format_params;
use crate::analysis::interference::Interference;
use crate::record::units::{format_ns, format_si};
use crate::render::terminal::Table;

/// The columns of the interference table, in every form.
pub const HEAD: [&str; 8] = [
    "impl",
    "at",
    "vCPU pass p50 workload / idle",
    "ratio",
    "writes per vCPU CPU-s workload / idle",
    "ratio",
    "walker CPUs",
    "note",
];

/// What the table shows.
pub const TITLE: &str =
    "guest progress: the same vCPU traffic with dirty logging or aging (the row's workload), over idle (same mmu_lock kind)";

/// How to read its ratios.
pub const LEGEND: &str = "pass ratio above 1: the guest progresses more slowly under dirty logging or aging; where threads outnumber CPUs it also counts the CPU the walker takes, and parked vCPUs freeing CPUs can take it below 1. \
                          Writes per vCPU CPU-second leaves both out: below 1 is the design's interference.";

/// The table's cells, one row per pair, in [`HEAD`]'s order.
pub fn rows(list: &[Interference]) -> Vec<Vec<String>> {
    let ratio = |r: Option<f64>| r.map(format_ratio).unwrap_or("-".into());
    let pair = |v: Option<(f64, f64)>, f: fn(f64) -> String| {
        v.map(|(d, i)| format!("{} / {}", f(d), f(i)))
            .unwrap_or("-".into())
    };
    list.iter()
        .map(|x| {
            let mut note = x.note.clone().unwrap_or_default();
            if note.is_empty() && x.oversubscribed {
                note = "threads outnumber CPUs: pass time includes the walker's CPU".into();
            }
            vec![
                x.impl_name.clone(),
                format_params(&x.params),
                pair(x.pass_p50, format_ns),
                ratio(x.pass_ratio()),
                pair(x.writes_per_vcpu_cpu_s, format_si),
                ratio(x.cpu_rate_ratio()),
                x.walker_cpus
                    .map(|c| format!("{c:.2}"))
                    .unwrap_or("-".into()),
                note,
            ]
        })
        .collect()
}

/// The interference block of the terminal table and markdown exports.
pub fn render(list: &[Interference], markdown: bool) -> String {
    if list.is_empty() {
        return String::new();
    }
    let rows = rows(list);
    if markdown {
        let mut s = format!(
            "\n**{TITLE}**\n\n| {} |\n|{}\n",
            HEAD.join(" | "),
            " --- |".repeat(HEAD.len())
        );
        for r in rows {
            s.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        s.push_str(&format!("\n{LEGEND}\n"));
        s
    } else {
        let mut t = Table::new(&HEAD);
        rows.into_iter().for_each(|r| t.row(r));
        format!("\n{TITLE}\n{}{LEGEND}\n", t.render())
    }
}
