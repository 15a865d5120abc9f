//! `--format csv`: one line per group, raw numbers in base units
//! (nanoseconds, operations per second) for spreadsheets and notebooks.
//! Columns: `impl`, the grouping keys, `runs`, then for each figure
//! `ID_UNIT_median`, `_min`, `_max`, `_n` and `_ratio` (empty where absent).

use crate::analysis::model::Comparison;

/// Quote a field when it needs it (RFC 4180).
pub(crate) fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

pub fn render(c: &Comparison) -> String {
    use crate::analysis::figure::Unit;
    let mut head = vec!["impl".to_string()];
    head.extend(c.keys.iter().cloned());
    head.push("runs".into());
    for f in &c.figures {
        let id = match f.unit {
            Unit::Ns => format!("{}_ns", f.id),
            Unit::PerSecond => format!("{}_per_s", f.id),
            Unit::PerKiloWalk => format!("{}_per_1k_walks", f.id),
            Unit::Count => f.id.clone(),
        };
        for s in ["median", "min", "max", "n", "ratio"] {
            head.push(format!("{id}_{s}"));
        }
    }
    let mut out = head.iter().map(|h| field(h)).collect::<Vec<_>>().join(",") + "\n";
    for row in &c.rows {
        let mut v = vec![field(&row.impl_name)];
        for (_, x) in &row.params {
            v.push(field(&match x {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            }));
        }
        v.push(row.runs.len().to_string());
        for cell in &row.cells {
            let s = cell.stats;
            v.push(num(s.map(|s| s.median)));
            v.push(num(s.map(|s| s.min)));
            v.push(num(s.map(|s| s.max)));
            v.push(s.map(|s| s.n.to_string()).unwrap_or_default());
            v.push(num(cell.ratio));
        }
        out.push_str(&v.join(","));
        out.push('\n');
    }
    out
}
