//! The terminal form (the default `--format`): the headline first, then the
//! table, then what its marks mean, the interference block, and one line
//! per kind of warning (`--verbose`: every detail).
//!
//! One table row per group: the implementation, the grouping parameters,
//! the number of runs, then each figure's median followed by its ratio to
//! the baseline in parentheses (`~` when within the noise); where a group
//! has repeats, the cell's second line gives the range (min-max). A blank
//! line separates parameter sets, so a sweep reads as one block per
//! configuration with the baseline on top. The shared configuration goes
//! above the table.

use super::{
    cell_ratio, common_line, format_median, format_range, heading, headline_lines, marks_note,
    ratio_note, warning_lines,
};
use crate::analysis::group::format_param;
use crate::analysis::model::Comparison;
use crate::render::terminal::{Align, Table};

pub fn render(c: &Comparison, verbose: bool) -> String {
    let mut out = String::new();
    let headline = headline_lines(c);
    if !headline.is_empty() {
        for (indent, line) in &headline {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("{}{line}\n", "  ".repeat(*indent)));
            }
        }
        out.push('\n');
    }

    let mut header = vec!["impl".to_string()];
    header.extend(c.keys.iter().cloned());
    // The kind an `auto` mmu_lock resolved to, where runs asked for `auto`.
    let lock_used = c.rows.iter().any(|r| r.mmu_lock_used.is_some());
    if lock_used {
        header.push("mmu_lock used".into());
    }
    header.push("runs".into());
    header.extend((0..c.figures.len()).map(|j| heading(c, j)));
    let nkeys = 2 + c.keys.len() + lock_used as usize;
    let mut align = vec![Align::Left];
    align.extend(std::iter::repeat_n(Align::Right, nkeys - 1));
    align.extend(std::iter::repeat_n(Align::Left, c.figures.len()));
    let head: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&head).aligned(&align);

    let mut prev_params = None;
    for row in &c.rows {
        if prev_params.is_some_and(|p| p != &row.params) {
            t.row(vec![String::new()]);
        }
        prev_params = Some(&row.params);
        let mut cells = vec![row.impl_name.clone()];
        cells.extend(row.params.iter().map(|(k, v)| format_param(k, v)));
        if lock_used {
            cells.push(row.mmu_lock_used.clone().unwrap_or_else(|| "-".into()));
        }
        cells.push(row.runs.len().to_string());
        for (j, cell) in row.cells.iter().enumerate() {
            let mut s = format_median(c, j, cell);
            if !row.is_baseline {
                if let Some(r) = cell_ratio(cell) {
                    s.push_str(&format!(" ({r})"));
                }
            }
            if let Some(r) = format_range(c, j, cell) {
                s.push('\n');
                s.push_str(&r);
            }
            cells.push(s);
        }
        t.row(cells);
    }

    if let Some(common) = common_line(c) {
        out.push_str(&format!("configuration: {common}\n\n"));
    }
    out.push_str(&t.render());
    if c.impls.len() > 1 {
        out.push_str(&format!("\n{}\n", ratio_note(c)));
    }
    for n in marks_note(c) {
        out.push_str(&format!("{n}\n"));
    }
    out.push_str(&super::interference::render(&c.interference, false));
    if !c.warnings.is_empty() {
        out.push('\n');
    }
    for w in warning_lines(c, verbose) {
        out.push_str(&w);
        out.push('\n');
    }
    out
}
