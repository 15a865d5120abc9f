//! `--format markdown`: for a README or an issue. The headline first, as a
//! list; then a GitHub table where each figure has a value column (median,
//! then the range of repeats in brackets) and a ratio column against the
//! baseline (`~`: within noise); the interference table; the warnings, one
//! per kind (`--verbose`: every detail).

use super::{
    cell_ratio, common_line, format_median, format_range, heading, headline_lines, marks_note,
    ratio_note, warning_lines,
};
use crate::analysis::group::format_param;
use crate::analysis::model::Comparison;

/// Escape the characters that would break a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

pub fn render(c: &Comparison, verbose: bool) -> String {
    let several = c.impls.len() > 1;
    let mut head = vec!["impl".to_string()];
    head.extend(c.keys.iter().cloned());
    let mut align = vec![":---".to_string()];
    align.extend(std::iter::repeat_n("---:".to_string(), c.keys.len()));
    // The kind an `auto` mmu_lock resolved to, where runs asked for `auto`.
    let lock_used = c.rows.iter().any(|r| r.mmu_lock_used.is_some());
    if lock_used {
        head.push("mmu_lock used".into());
        align.push(":---".into());
    }
    head.push("runs".into());
    align.push("---:".into());
    for j in 0..c.figures.len() {
        head.push(heading(c, j));
        align.push("---:".into());
        if several {
            head.push(format!("vs {}", c.baseline));
            align.push("---:".into());
        }
    }
    let mut out = String::new();
    let headline = headline_lines(c);
    for (indent, line) in &headline {
        match (indent, line.is_empty()) {
            (_, true) => out.push('\n'),
            (0, _) => out.push_str(&format!("**{line}**\n")),
            (i, _) => out.push_str(&format!("{}- {line}\n", "  ".repeat(i - 1))),
        }
    }
    if !headline.is_empty() {
        out.push('\n');
    }
    if let Some(common) = common_line(c) {
        out.push_str(&format!("Configuration: `{common}`\n\n"));
    }
    let line = |v: &[String]| {
        format!(
            "| {} |\n",
            v.iter().map(|s| cell(s)).collect::<Vec<_>>().join(" | ")
        )
    };
    out.push_str(&line(&head));
    out.push_str(&line(&align));
    for row in &c.rows {
        let mut v = vec![row.impl_name.clone()];
        v.extend(row.params.iter().map(|(k, x)| format_param(k, x)));
        if lock_used {
            v.push(row.mmu_lock_used.clone().unwrap_or_else(|| "-".into()));
        }
        v.push(row.runs.len().to_string());
        for (j, cl) in row.cells.iter().enumerate() {
            let mut s = format_median(c, j, cl);
            if let Some(r) = format_range(c, j, cl) {
                s.push_str(&format!(" [{r}]"));
            }
            v.push(s);
            if several {
                v.push(match (row.is_baseline, cell_ratio(cl)) {
                    (true, _) => "base".into(),
                    (false, Some(r)) => r,
                    (false, None) => "-".into(),
                });
            }
        }
        out.push_str(&line(&v));
    }
    if several {
        out.push_str(&format!("\n{}; [min-max over repeats].\n", ratio_note(c)));
    }
    for n in marks_note(c) {
        out.push_str(&format!("\n{n}\n"));
    }
    out.push_str(&super::interference::render(&c.interference, true));
    if !c.warnings.is_empty() {
        out.push('\n');
        for w in warning_lines(c, verbose) {
            match w.strip_prefix("  - ") {
                Some(d) => out.push_str(&format!("  - {d}\n")),
                None => out.push_str(&format!("- {w}\n")),
            }
        }
    }
    out
}
