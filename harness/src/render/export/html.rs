//! The comparison as an HTML fragment, for the report (`plot::report`):
//! a `<table class="cmp">` with the median, the range of repeats and the
//! ratio to the baseline in each cell, ratios classed `better` or `worse`
//! by the figure's direction, and the warnings as a list. The report's
//! inline CSS styles these classes.

use super::{format_median, format_range, format_ratio, ratio_note};
use crate::analysis::figure::Better;
use crate::analysis::group::format_param;
use crate::analysis::model::Comparison;

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

pub fn render(c: &Comparison) -> String {
    let mut o = String::from("<table class=\"cmp\">\n<thead><tr><th>impl</th>");
    for k in &c.keys {
        o.push_str(&format!("<th>{}</th>", escape(k)));
    }
    o.push_str("<th>runs</th>");
    for f in &c.figures {
        o.push_str(&format!("<th>{}</th>", escape(&f.label)));
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
        o.push_str(&format!("<td class=\"num\">{}</td>", row.runs.len()));
        for (j, cell) in row.cells.iter().enumerate() {
            o.push_str(&format!(
                "<td class=\"num\">{}",
                escape(&format_median(c, j, cell))
            ));
            if let (false, Some(r)) = (row.is_baseline, cell.ratio) {
                let good = match c.figures[j].better {
                    Better::Higher => r > 1.0,
                    Better::Lower => r < 1.0,
                };
                let class = if r == 1.0 {
                    "ratio"
                } else if good {
                    "ratio better"
                } else {
                    "ratio worse"
                };
                o.push_str(&format!(
                    " <span class=\"{class}\">{}</span>",
                    format_ratio(r)
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
            "<p class=\"note\">{}; ranges are min-max over repeats.</p>\n",
            escape(&ratio_note(c))
        ));
    }
    if !c.warnings.is_empty() {
        o.push_str("<ul class=\"warnings\">\n");
        for w in &c.warnings {
            o.push_str(&format!("<li>Warning: {}</li>\n", escape(w)));
        }
        o.push_str("</ul>\n");
    }
    o
}
