//! The interference block below the terminal table and the markdown export
//! (`analysis::interference` pairs the runs).

use super::format_ratio;
use crate::analysis::group::format_params;
use crate::analysis::interference::Interference;
use crate::record::units::format_ns;
use crate::render::terminal::Table;

/// The interference block of the terminal table and markdown exports.
pub fn render(list: &[Interference], markdown: bool) -> String {
    if list.is_empty() {
        return String::new();
    }
    let ratio = |r: Option<f64>| r.map(format_ratio).unwrap_or("-".into());
    let pair = |v: Option<(f64, f64)>| {
        v.map(|(d, i)| format!("{} / {}", format_ns(d), format_ns(i)))
            .unwrap_or("-".into())
    };
    const HEAD: [&str; 5] = [
        "impl",
        "at",
        "slow fault p99 workload / idle",
        "ratio",
        "guest writes/s ratio",
    ];
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|x| {
            vec![
                x.impl_name.clone(),
                format_params(&x.params),
                pair(x.fault_slow_p99),
                ratio(x.fault_ratio()),
                ratio(x.writes_ratio()),
            ]
        })
        .collect();
    let title =
        "interference: the same vCPU traffic with dirty logging or aging (the row's workload), over idle";
    if markdown {
        let mut s = format!(
            "\n**{title}**\n\n| {} |\n|{}\n",
            HEAD.join(" | "),
            " --- |".repeat(HEAD.len())
        );
        for r in rows {
            s.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        s
    } else {
        let mut t = Table::new(&HEAD);
        rows.into_iter().for_each(|r| t.row(r));
        format!("\n{title}\n{}", t.render())
    }
}
