//! The terminal table (the default `--format`).
//!
//! One row per group: the implementation, the grouping parameters, the
//! number of runs, then each figure's median followed by its ratio to the
//! baseline in parentheses; where a group has repeats, a second line gives
//! each figure's range (min-max). A blank line separates parameter sets, so
//! a sweep reads as one block per configuration with the baseline on top.
//! The shared configuration goes above the table, the ratio legend and the
//! warnings below it.

use super::{common_line, format_median, format_range, format_ratio, ratio_note};
use crate::analysis::group::format_param;
use crate::analysis::model::Comparison;

pub fn render(c: &Comparison) -> String {
    let mut lines: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["impl".to_string()];
    header.extend(c.keys.iter().cloned());
    // The kind an `auto` mmu_lock resolved to, where runs asked for `auto`.
    let lock_used = c.rows.iter().any(|r| r.mmu_lock_used.is_some());
    if lock_used {
        header.push("mmu_lock used".into());
    }
    header.push("runs".into());
    header.extend(c.figures.iter().map(|f| f.label.clone()));
    let nkeys = 2 + c.keys.len() + lock_used as usize;

    let mut blank_before = Vec::new();
    let mut prev_params = None;
    for row in &c.rows {
        if prev_params.is_some_and(|p| p != &row.params) {
            blank_before.push(lines.len());
        }
        prev_params = Some(&row.params);
        let mut l1 = vec![row.impl_name.clone()];
        l1.extend(row.params.iter().map(|(k, v)| format_param(k, v)));
        if lock_used {
            l1.push(row.mmu_lock_used.clone().unwrap_or_else(|| "-".into()));
        }
        l1.push(row.runs.len().to_string());
        let mut l2 = vec![String::new(); nkeys];
        let mut any_range = false;
        for (j, cell) in row.cells.iter().enumerate() {
            let mut s = format_median(c, j, cell);
            if let (false, Some(r)) = (row.is_baseline, cell.ratio) {
                s.push_str(&format!(" ({})", format_ratio(r)));
            }
            l1.push(s);
            let r = format_range(c, j, cell);
            any_range |= r.is_some();
            l2.push(r.unwrap_or_default());
        }
        lines.push(l1);
        if any_range {
            lines.push(l2);
        }
    }

    let ncols = header.len();
    let mut width = vec![0usize; ncols];
    for l in std::iter::once(&header).chain(&lines) {
        for (w, cell) in width.iter_mut().zip(l) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let fmt_line = |l: &[String]| {
        let mut s = String::new();
        for (i, cell) in l.iter().enumerate() {
            let pad = width[i] - cell.chars().count();
            // Parameters and run counts are numbers: right-aligned.
            if i > 0 && i < nkeys {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            }
            s.push_str("  ");
        }
        s.trim_end().to_string() + "\n"
    };

    let mut out = String::new();
    if let Some(common) = common_line(c) {
        out.push_str(&format!("configuration: {common}\n\n"));
    }
    out.push_str(&fmt_line(&header));
    for (i, l) in lines.iter().enumerate() {
        if blank_before.contains(&i) {
            out.push('\n');
        }
        out.push_str(&fmt_line(l));
    }
    if c.impls.len() > 1 {
        out.push_str(&format!("\n{}\n", ratio_note(c)));
    }
    out.push_str(&super::interference::render(&c.interference, false));
    for w in &c.warnings {
        out.push_str(&format!("Warning: {w}\n"));
    }
    out
}
