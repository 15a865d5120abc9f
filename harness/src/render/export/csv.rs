//! `--format csv`: one line per group, raw numbers in base units
//! (nanoseconds, operations per second) for spreadsheets and notebooks,
//! written with the `csv` crate. Columns: `impl`, the grouping keys,
//! `runs`, then for each figure `ID_UNIT_median`, `_min`, `_max`, `_n`,
//! `_ratio`, the ratio's 95% interval `_ratio_lo` and `_ratio_hi`, and
//! `_change` (`better`, `worse`, `noise`, `unknown`, `not_comparable`);
//! empty where absent.

use crate::analysis::model::Comparison;

/// `records` as CSV text (RFC 4180 quoting).
pub fn write(records: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut w = csv::WriterBuilder::new()
        .flexible(false)
        .from_writer(Vec::new());
    for r in records {
        w.write_record(&r)
            .expect("records of one length written to memory");
    }
    String::from_utf8(w.into_inner().expect("a Vec never fails to flush"))
        .expect("the fields are UTF-8")
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
        for s in [
            "median", "min", "max", "n", "ratio", "ratio_lo", "ratio_hi", "change",
        ] {
            head.push(format!("{id}_{s}"));
        }
    }
    let mut records = vec![head];
    for row in &c.rows {
        let mut v = vec![row.impl_name.clone()];
        for (_, x) in &row.params {
            v.push(match x {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            });
        }
        v.push(row.runs.len().to_string());
        for cell in &row.cells {
            let s = cell.stats;
            v.push(num(s.map(|s| s.median)));
            v.push(num(s.map(|s| s.min)));
            v.push(num(s.map(|s| s.max)));
            v.push(s.map(|s| s.n.to_string()).unwrap_or_default());
            v.push(num(cell.ratio));
            v.push(num(cell.ratio_ci.map(|i| i.lo)));
            v.push(num(cell.ratio_ci.map(|i| i.hi)));
            v.push(
                cell.change
                    .and_then(|ch| serde_json::to_value(ch).ok())
                    .and_then(|x| x.as_str().map(str::to_string))
                    .unwrap_or_default(),
            );
        }
        records.push(v);
    }
    write(records)
}
