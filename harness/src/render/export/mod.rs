//! Printing a [`Comparison`]: one module per format, each a function from
//! the comparison to text, gathered in one table ([`EXPORTERS`]) that
//! `--format` looks names up in (hyperfine's `export/`).
//!
//! | format | for | warnings |
//! | --- | --- | --- |
//! | `table` | the terminal (default): median, `(ratio)`, and the range of repeats on a second line | below the table |
//! | `markdown` | a README or an issue: the same, one line per row | below the table |
//! | `csv` | spreadsheets and notebooks: raw numbers in base units | on stderr |
//! | `json` | programs: schema `rmap-lab/compare/v1` | in the object, and on stderr |
//!
//! The HTML fragment of the report (`html`) is not a `--format`: the report
//! embeds it in `index.html`.

pub mod csv;
pub mod html;
pub mod interference;
pub mod json;
pub mod markdown;
pub mod table;
pub mod timeseries;

use crate::analysis::model::{Cell, Comparison};

/// One output format.
pub struct Exporter {
    pub name: &'static str,
    pub render: fn(&Comparison) -> String,
    /// The rendered text contains the warnings; otherwise the caller prints
    /// them on stderr, so that stdout stays machine-readable.
    pub embeds_warnings: bool,
}

pub const EXPORTERS: [Exporter; 4] = [
    Exporter {
        name: "table",
        render: table::render,
        embeds_warnings: true,
    },
    Exporter {
        name: "markdown",
        render: markdown::render,
        embeds_warnings: true,
    },
    Exporter {
        name: "csv",
        render: csv::render,
        embeds_warnings: false,
    },
    Exporter {
        name: "json",
        render: json::render,
        embeds_warnings: false,
    },
];

/// The exporter named `name`, for `--format`.
pub fn by_name(name: &str) -> Result<&'static Exporter, String> {
    EXPORTERS.iter().find(|e| e.name == name).ok_or_else(|| {
        let all: Vec<&str> = EXPORTERS.iter().map(|e| e.name).collect();
        format!(
            "unknown format '{name}' (expected one of: {})",
            all.join(", ")
        )
    })
}

/// A ratio for people: `1.23x`.
pub fn format_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else {
        format!("{r:.2}x")
    }
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
