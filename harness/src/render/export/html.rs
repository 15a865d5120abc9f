//! The comparison as HTML fragments, for the report (`plot::report`):
//!
//! - [`headline`]: per scope, the lost-writes sentence and each design's
//!   claims, classed `better`, `worse` or `noise`, with their intervals;
//! - [`table`]: a `<table class="cmp">` with the median, the range of
//!   repeats and the ratio to the baseline in each cell; a ratio is classed
//!   `better` or `worse` (coloured) only when its 95% interval excludes 1,
//!   `noise` (grey, `~`) when it holds 1, and never for a figure that is
//!   not comparable across designs (`†`); the interval is the cell's
//!   tooltip;
//! - [`interference`]: the dirty-logging over idle table;
//! - [`warnings`]: one line per kind, its details folded in `<details>`.
//!
//! The report's inline CSS styles these classes.

use super::{cell_ratio, format_median, format_range, heading, marks_note, ratio_note};
use crate::analysis::group::format_param;
use crate::analysis::headline::{design_lines, is_good};
use crate::analysis::interval::Change;
use crate::analysis::model::Comparison;
use crate::analysis::warnings::summarize;
use crate::record::units::format_ratio;

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn class_of(change: Option<Change>) -> &'static str {
    match change.and_then(is_good) {
        Some(true) => "ratio better",
        Some(false) => "ratio worse",
        None if change == Some(Change::Noise) => "ratio noise",
        None => "ratio",
    }
}

/// The headline: a list per scope.
pub fn headline(c: &Comparison) -> String {
    let h = &c.headline;
    if c.impls.len() < 2 {
        return String::new();
    }
    let mut o = format!(
        "<p class=\"note\">Each design against <code>{}</code>; &plusmn; and (a-b) are 95% confidence intervals over repeats (bootstrap); \"per configuration\" gives the smallest and largest ratio behind a geometric mean.</p>\n",
        escape(&h.baseline)
    );
    for s in &h.scopes {
        o.push_str(&format!(
            "<h3>{}</h3>\n<ul class=\"headline\">\n<li class=\"lost\">{}</li>\n",
            escape(&s.title()),
            escape(&s.lost_sentence())
        ));
        for (name, claims) in s.designs() {
            o.push_str(&format!("<li><strong>{}</strong><ul>\n", escape(name)));
            for (change, line) in design_lines(&claims, &h.baseline) {
                o.push_str(&format!(
                    "<li class=\"{}\">{}</li>\n",
                    class_of(change).replace("ratio", "claim"),
                    escape(&line)
                ));
            }
            o.push_str("</ul></li>\n");
        }
        o.push_str("</ul>\n");
    }
    o
}

/// The full table, with the notes on its marks.
pub fn table(c: &Comparison) -> String {
    // The kind an `auto` mmu_lock resolved to, where runs asked for `auto`.
    let lock_used = c.rows.iter().any(|r| r.mmu_lock_used.is_some());
    let mut o = String::from("<table class=\"cmp\">\n<thead><tr><th>impl</th>");
    for k in &c.keys {
        o.push_str(&format!("<th>{}</th>", escape(k)));
    }
    if lock_used {
        o.push_str("<th>mmu_lock used</th>");
    }
    o.push_str("<th>runs</th>");
    for j in 0..c.figures.len() {
        o.push_str(&format!("<th>{}</th>", escape(&heading(c, j))));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    for row in &c.rows {
        o.push_str(if row.is_baseline {
            "<tr class=\"base\">"
        } else {
            "<tr>"
        });
        o.push_str(&format!("<td>{}</td>", escape(&row.impl_name)));
        for (k, v) in &row.params {
            o.push_str(&format!(
                "<td class=\"num\">{}</td>",
                escape(&format_param(k, v))
            ));
        }
        if lock_used {
            o.push_str(&format!(
                "<td>{}</td>",
                escape(row.mmu_lock_used.as_deref().unwrap_or("-"))
            ));
        }
        o.push_str(&format!("<td class=\"num\">{}</td>", row.runs.len()));
        for (j, cell) in row.cells.iter().enumerate() {
            o.push_str(&format!(
                "<td class=\"num\">{}",
                escape(&format_median(c, j, cell))
            ));
            if let (false, Some(r)) = (row.is_baseline, cell_ratio(cell)) {
                let title = match cell.ratio_ci {
                    Some(i) => format!(
                        " title=\"95% interval {}-{}\"",
                        format_ratio(i.lo),
                        format_ratio(i.hi)
                    ),
                    None => " title=\"one run on a side: no interval\"".to_string(),
                };
                o.push_str(&format!(
                    " <span class=\"{}\"{title}>{}</span>",
                    class_of(cell.change),
                    escape(&r)
                ));
            }
            if let Some(range) = format_range(c, j, cell) {
                o.push_str(&format!(
                    "<br><span class=\"range\">{}</span>",
                    escape(&range)
                ));
            }
            o.push_str("</td>");
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
    if c.impls.len() > 1 {
        o.push_str(&format!(
            "<p class=\"note\">{}; ranges are min-max over repeats; a ratio is coloured only when its 95% interval excludes 1.</p>\n",
            escape(&ratio_note(c))
        ));
    }
    for n in marks_note(c) {
        o.push_str(&format!("<p class=\"note\">{}</p>\n", escape(&n)));
    }
    o
}

/// The interference table (empty when no run has an idle twin), with the
/// cells of the terminal's (`interference::rows`).
pub fn interference(c: &Comparison) -> String {
    use super::interference::{rows, HEAD, LEGEND, TITLE};
    if c.interference.is_empty() {
        return String::new();
    }
    let mut o = format!(
        "<p>{}: medians over repeats.</p>\n<table class=\"interference\">\n<thead><tr>",
        escape(TITLE)
    );
    for h in HEAD {
        o.push_str(&format!("<th>{}</th>", escape(h)));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    for r in rows(&c.interference) {
        o.push_str("<tr>");
        for (i, cell) in r.iter().enumerate() {
            // impl, at and the note are text; the rest numbers.
            let class = if i < 2 || i + 1 == r.len() {
                ""
            } else {
                " class=\"num\""
            };
            o.push_str(&format!("<td{class}>{}</td>", escape(cell)));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
    o.push_str(&format!("<p class=\"note\">{}</p>\n", escape(LEGEND)));
    o
}

/// One line per kind of warning, its details folded.
pub fn warnings(c: &Comparison) -> String {
    let sums = summarize(c);
    if sums.is_empty() {
        return String::new();
    }
    let mut o = String::from("<ul class=\"warnings\">\n");
    for s in sums {
        let class = if s.kind.is_note() { "note" } else { "warning" };
        let head = if s.kind.is_note() { "Note" } else { "Warning" };
        if s.details.is_empty() {
            o.push_str(&format!(
                "<li class=\"{class}\">{head}: {}</li>\n",
                escape(&s.text)
            ));
        } else {
            o.push_str(&format!(
                "<li class=\"{class}\"><details><summary>{head}: {}</summary>\n<ul>\n",
                escape(&s.text)
            ));
            for d in &s.details {
                o.push_str(&format!("<li>{}</li>\n", escape(d)));
            }
            o.push_str("</ul></details></li>\n");
        }
    }
    o.push_str("</ul>\n");
    o
}
