//! `--format markdown`: a GitHub table for a README or an issue. Each
//! figure has a value column (median, then the range of repeats in
//! brackets) and a ratio column against the baseline; the warnings follow
//! as a list.

use super::{common_line, format_median, format_range, format_ratio, ratio_note};
use crate::analysis::group::format_param;
use crate::analysis::model::Comparison;

/// Escape the characters that would break a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

pub fn render(c: &Comparison) -> String {
    let several = c.impls.len() > 1;
    let mut head = vec!["impl".to_string()];
    head.extend(c.keys.iter().cloned());
    head.push("runs".into());
    let mut align = vec![":---".to_string()];
    align.extend(std::iter::repeat_n("---:".to_string(), c.keys.len() + 1));
    for f in &c.figures {
        head.push(f.label.clone());
        align.push("---:".into());
        if several {
            head.push(format!("vs {}", c.baseline));
            align.push("---:".into());
        }
    }
    let mut out = String::new();
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
        v.push(row.runs.len().to_string());
        for (j, cl) in row.cells.iter().enumerate() {
            let mut s = format_median(c, j, cl);
            if let Some(r) = format_range(c, j, cl) {
                s.push_str(&format!(" [{r}]"));
            }
            v.push(s);
            if several {
                v.push(match (row.is_baseline, cl.ratio) {
                    (true, _) => "base".into(),
                    (false, Some(r)) => format_ratio(r),
                    (false, None) => "-".into(),
                });
            }
        }
        out.push_str(&line(&v));
    }
    if several {
        out.push_str(&format!("\n{}; [min-max over repeats].\n", ratio_note(c)));
    }
    out.push_str(&super::interference::render(&c.interference, true));
    if !c.warnings.is_empty() {
        out.push('\n');
        for w in &c.warnings {
            out.push_str(&format!("- **Warning:** {w}\n"));
        }
    }
    out
}
