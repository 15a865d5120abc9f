//! Printing a [`Comparison`]: one module per format, each a function from
//! the comparison to text, chosen by `--format` ([`TextFormat`], hyperfine's
//! `export/`). `lab compare --against` prints an `analysis::against` result
//! in the same four formats (`against`).
//!
//! | format | for | headline | warnings |
//! | --- | --- | --- | --- |
//! | `table` | the terminal (default): median, `(ratio)`, and the range of repeats on a second line | first | one line per kind below the table (`--verbose`: each) |
//! | `markdown` | a README or an issue: the same, one line per row | first | as the table |
//! | `csv` | spreadsheets and notebooks: raw numbers in base units, with each ratio's interval and verdict | no | on stderr |
//! | `json` | programs: schema `rmap-lab/compare/v1` | yes | in the object, and on stderr |
//!
//! The HTML fragments of the report (`html`: headline, table, interference,
//! warnings) are not a `--format`: the report embeds them in `index.html`.
//!
//! A ratio is printed with [`format_ratio`] (`1/12000x`, never `0.00x`); a
//! ratio within the noise of the repeats is marked `~` (and never coloured
//! in HTML); a figure not comparable across designs is marked `†` in its
//! heading and explained under the table.

pub mod against;
pub mod csv;
pub mod html;
pub mod interference;
pub mod json;
pub mod markdown;
pub mod table;
pub mod timeseries;

use crate::analysis::headline::design_lines;
use crate::analysis::interval::Change;
use crate::analysis::model::{Cell, Comparison};
use crate::analysis::warnings::{summarize, Summary};
pub use crate::record::units::format_ratio;

/// `--format` of `lab compare`: how a comparison is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TextFormat {
    /// An aligned table for the terminal, after the headline.
    Table,
    /// GitHub markdown, for a README or an issue.
    Markdown,
    /// One line per group, raw numbers in base units.
    Csv,
    /// One object, schema rmap-lab/compare/v1.
    Json,
}

impl TextFormat {
    /// The comparison in this format; `verbose` lists every warning's
    /// details, not one line per kind.
    pub fn render(self, c: &Comparison, verbose: bool) -> String {
        match self {
            TextFormat::Table => table::render(c, verbose),
            TextFormat::Markdown => markdown::render(c, verbose),
            TextFormat::Csv => csv::render(c),
            TextFormat::Json => json::render(c),
        }
    }

    /// Whether the text holds the warnings; otherwise the caller prints
    /// them on stderr, so that stdout stays machine-readable.
    pub fn embeds_warnings(self) -> bool {
        matches!(self, TextFormat::Table | TextFormat::Markdown)
    }
}

/// A figure's heading: its label, `†` when it is not comparable across
/// designs.
pub fn heading(c: &Comparison, j: usize) -> String {
    let f = &c.figures[j];
    if f.comparable {
        f.label.clone()
    } else {
        format!("{}†", f.label)
    }
}

/// A cell's ratio: `2.00x`, with `~` when it is within the noise.
pub fn cell_ratio(cell: &Cell) -> Option<String> {
    let r = cell.ratio?;
    Some(match cell.change {
        Some(Change::Noise) => format!("{}~", format_ratio(r)),
        _ => format_ratio(r),
    })
}

/// The notes under a table: what `†` and `~` mean, when present.
pub fn marks_note(c: &Comparison) -> Vec<String> {
    let mut v = Vec::new();
    if c.figures.iter().any(|f| !f.comparable) {
        let names: Vec<&str> = c
            .figures
            .iter()
            .filter(|f| !f.comparable)
            .map(|f| f.label.as_str())
            .collect();
        v.push(format!(
            "† {}: not comparable across designs (a design that lets vCPUs dirty more pages harvests more per round); shown, never judged",
            names.join(", ")
        ));
    }
    let noise = c
        .rows
        .iter()
        .flat_map(|r| &r.cells)
        .any(|cell| cell.change == Some(Change::Noise));
    if noise {
        v.push(
            "~ the ratio's 95% confidence interval holds 1: within the noise of the repeats".into(),
        );
    }
    v
}

/// The warnings as lines: one per kind (`Note:` or `Warning:`), and with
/// `verbose` each detail under it.
pub fn warning_lines(c: &Comparison, verbose: bool) -> Vec<String> {
    let mut out = Vec::new();
    let sums: Vec<Summary> = summarize(c);
    for s in &sums {
        let head = if s.kind.is_note() { "Note" } else { "Warning" };
        let more = if !verbose && !s.details.is_empty() {
            " (--verbose lists them)"
        } else {
            ""
        };
        out.push(format!("{head}: {}{more}", s.text));
        if verbose {
            out.extend(s.details.iter().map(|d| format!("  - {d}")));
        }
    }
    out
}

/// The warnings as the lab's stderr lines: `lab: warning: ...`, `lab:
/// note: ...` (for the formats that keep stdout machine-readable, and for
/// `lab plot`).
pub fn stderr_lines(c: &Comparison, verbose: bool) -> Vec<String> {
    warning_lines(c, verbose)
        .into_iter()
        .map(|w| {
            let w = w
                .replacen("Warning:", "warning:", 1)
                .replacen("Note:", "note:", 1);
            format!("lab: {w}")
        })
        .collect()
}

/// The headline as `(indent, line)` pairs (table and markdown).
pub fn headline_lines(c: &Comparison) -> Vec<(usize, String)> {
    let h = &c.headline;
    let mut out = Vec::new();
    if c.impls.len() < 2 {
        return out;
    }
    out.push((
        0,
        format!(
            "Headline: each design against {}; ± and (a-b) are 95% confidence intervals over repeats",
            h.baseline
        ),
    ));
    for s in &h.scopes {
        out.push((0, String::new()));
        out.push((0, s.title()));
        out.push((1, s.lost_sentence()));
        for (name, claims) in s.designs() {
            let lines = design_lines(&claims, &h.baseline);
            match lines.as_slice() {
                [(_, only)] => out.push((1, format!("{name}: {only}"))),
                _ => {
                    out.push((1, format!("{name}:")));
                    out.extend(lines.into_iter().map(|(_, l)| (2, l)));
                }
            }
        }
    }
    out
}

/// The median of a cell with its unit, `-` for no data.
pub fn format_median(c: &Comparison, j: usize, cell: &Cell) -> String {
    cell.stats
        .map(|s| c.figures[j].unit.format(s.median))
        .unwrap_or_else(|| "-".into())
}

/// The range of a cell's repeats, `11.9us-13.0us`; `None` for one run or
/// repeats that agree exactly.
pub fn format_range(c: &Comparison, j: usize, cell: &Cell) -> Option<String> {
    let s = cell.stats?;
    (s.n > 1 && s.max > s.min).then(|| {
        let u = c.figures[j].unit;
        format!("{}-{}", u.format(s.min), u.format(s.max))
    })
}

/// What the ratios mean, one sentence.
pub fn ratio_note(c: &Comparison) -> String {
    use crate::analysis::figure::Better;
    let higher: Vec<&str> = c
        .figures
        .iter()
        .filter(|f| f.better == Better::Higher)
        .map(|f| f.label.as_str())
        .collect();
    let better = match higher.len() {
        0 => "lower is better".to_string(),
        n if n == c.figures.len() => "higher is better".to_string(),
        _ => format!(
            "higher is better for {}, lower for the rest",
            higher.join(", ")
        ),
    };
    format!(
        "ratios: median / {}'s median at the same parameters; {better}",
        c.baseline
    )
}

/// The configuration every input shares, `workload=dirty-log aliases=4 ...`.
pub fn common_line(c: &Comparison) -> Option<String> {
    let shown: Vec<(String, serde_json::Value)> = c
        .common
        .iter()
        .filter(|(k, _)| !c.keys.contains(k))
        .cloned()
        .collect();
    (!shown.is_empty()).then(|| crate::analysis::group::format_params(&shown))
}
