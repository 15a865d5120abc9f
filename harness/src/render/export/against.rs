//! `lab compare NEW --against OLD` printed: a summary line (how many
//! configurations matched, how many figures regressed, improved or stayed
//! within noise), then one line per figure that changed, each with the old
//! and new medians, the ratio and its 95% interval, and the verdict
//! (`--verbose`: every figure). The formats are those of a comparison:
//! `table`, `markdown`, `csv` (every figure), `json` (schema
//! `rmap-lab/compare-against/v1`, every figure).

use super::TextFormat;
use crate::analysis::against::{Against, FigureChange, Verdict};
use crate::record::units::format_ratio;
use crate::render::terminal::{Align, Table};

pub const SCHEMA: &str = "rmap-lab/compare-against/v1";

/// The summary sentence.
pub fn summary(a: &Against) -> String {
    let mut s = format!(
        "{} new runs against {} old: {} configurations matched",
        a.new_runs, a.old_runs, a.matched
    );
    if a.only_new + a.only_old > 0 {
        s.push_str(&format!(
            " ({} only in the new runs, {} only in the old, not compared)",
            a.only_new, a.only_old
        ));
    }
    s.push_str(&format!(
        "; {} regressed, {} improved, {} within noise (noise threshold {}%, 95% intervals over repeats)",
        a.count(Verdict::Regressed),
        a.count(Verdict::Improved),
        a.count(Verdict::WithinNoise),
        a.threshold * 100.0
    ));
    s
}

fn ratio_text(c: &FigureChange) -> String {
    match (c.ratio, c.ratio_ci) {
        (Some(r), Some(i)) => format!(
            "{} ({}-{})",
            format_ratio(r),
            format_ratio(i.lo),
            format_ratio(i.hi)
        ),
        (Some(r), None) => format_ratio(r),
        (None, _) => "-".into(),
    }
}

fn shown(a: &Against, verbose: bool) -> Vec<&FigureChange> {
    let mut v: Vec<&FigureChange> = a
        .changes
        .iter()
        .filter(|c| verbose || c.verdict != Verdict::WithinNoise)
        .collect();
    v.sort_by_key(|c| c.verdict);
    v
}

fn cells(a: &Against, c: &FigureChange) -> Vec<String> {
    vec![
        c.verdict.word().to_string(),
        c.impl_name.clone(),
        a.place(c),
        c.label.clone(),
        c.unit.format(c.old.median),
        c.unit.format(c.new.median),
        ratio_text(c),
        c.note.clone().unwrap_or_default(),
    ]
}

const HEAD: [&str; 8] = [
    "verdict",
    "impl",
    "at",
    "figure",
    "old",
    "new",
    "new/old (95% interval)",
    "note",
];

pub fn render(a: &Against, format: TextFormat, verbose: bool) -> String {
    match format {
        TextFormat::Table => {
            let mut o = format!("{}\n", summary(a));
            let rows = shown(a, verbose);
            if !rows.is_empty() {
                let mut t = Table::new(&HEAD).aligned(&[
                    Align::Left,
                    Align::Left,
                    Align::Left,
                    Align::Left,
                    Align::Right,
                    Align::Right,
                    Align::Left,
                    Align::Left,
                ]);
                for c in rows {
                    t.row(cells(a, c));
                }
                o.push('\n');
                o.push_str(&t.render());
            }
            if !verbose && a.count(Verdict::WithinNoise) > 0 {
                o.push_str("(--verbose lists the figures within noise too)\n");
            }
            for w in &a.warnings {
                o.push_str(&format!("Warning: {w}\n"));
            }
            o
        }
        TextFormat::Markdown => {
            let mut o = format!("{}\n\n", summary(a));
            o.push_str(&format!(
                "| {} |\n|{}\n",
                HEAD.join(" | "),
                " --- |".repeat(HEAD.len())
            ));
            for c in shown(a, verbose) {
                o.push_str(&format!(
                    "| {} |\n",
                    cells(a, c)
                        .iter()
                        .map(|s| s.replace('|', "\\|"))
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
            }
            for w in &a.warnings {
                o.push_str(&format!("\n- Warning: {w}\n"));
            }
            o
        }
        TextFormat::Csv => {
            let mut head = vec!["impl".to_string()];
            head.extend(a.keys.iter().cloned());
            head.extend(
                [
                    "figure",
                    "old_median",
                    "old_n",
                    "new_median",
                    "new_n",
                    "ratio",
                    "ratio_lo",
                    "ratio_hi",
                    "verdict",
                ]
                .map(String::from),
            );
            let num = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
            let mut records = vec![head];
            for c in &a.changes {
                let mut r = vec![c.impl_name.clone()];
                for k in &a.keys {
                    r.push(
                        c.params
                            .iter()
                            .find(|(kk, _)| kk == k)
                            .map(|(_, v)| match v {
                                serde_json::Value::String(s) => s.clone(),
                                serde_json::Value::Null => String::new(),
                                o => o.to_string(),
                            })
                            .unwrap_or_default(),
                    );
                }
                r.extend([
                    c.figure.clone(),
                    num(Some(c.old.median)),
                    c.old.n.to_string(),
                    num(Some(c.new.median)),
                    c.new.n.to_string(),
                    num(c.ratio),
                    num(c.ratio_ci.map(|i| i.lo)),
                    num(c.ratio_ci.map(|i| i.hi)),
                    c.verdict.word().to_string(),
                ]);
                records.push(r);
            }
            super::csv::write(records)
        }
        TextFormat::Json => {
            #[derive(serde::Serialize)]
            struct Change<'a> {
                #[serde(flatten)]
                change: &'a FigureChange,
                params: serde_json::Map<String, serde_json::Value>,
            }
            let v = serde_json::json!({
                "schema": SCHEMA,
                "new_runs": a.new_runs,
                "old_runs": a.old_runs,
                "matched": a.matched,
                "only_new": a.only_new,
                "only_old": a.only_old,
                "keys": a.keys,
                "ignored_keys": a.ignored_keys,
                "noise_threshold": a.threshold,
                "regressed": a.count(Verdict::Regressed),
                "improved": a.count(Verdict::Improved),
                "within_noise": a.count(Verdict::WithinNoise),
                "changes": a.changes.iter().map(|c| Change {
                    change: c,
                    params: c.params.iter().cloned().collect(),
                }).collect::<Vec<_>>(),
                "warnings": a.warnings,
            });
            serde_json::to_string_pretty(&v).expect("a comparison always serialises") + "\n"
        }
    }
}
