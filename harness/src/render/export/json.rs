//! `--format json`: the comparison as one object, schema
//! `rmap-lab/compare/v1`, for programs. Numbers are in base units (see each
//! figure's `unit`); a figure a group lacks is `null`. Each figure of a
//! group has its `ratio`, the ratio's 95% interval `ratio_ci` and its
//! `change`; `headline` holds the headline's claims, `warnings` every
//! warning's text and `warning_summary` one line per kind.

use crate::analysis::model::{Cell, Comparison};
use serde::Serialize;
use std::collections::BTreeMap;

pub const SCHEMA: &str = "rmap-lab/compare/v1";

#[derive(Serialize)]
struct Out<'a> {
    schema: &'a str,
    baseline: &'a str,
    keys: &'a [String],
    common: BTreeMap<&'a str, &'a serde_json::Value>,
    figures: Vec<FigureOut<'a>>,
    groups: Vec<GroupOut<'a>>,
    interference: Vec<InterferenceOut<'a>>,
    headline: &'a crate::analysis::headline::Headline,
    warnings: Vec<&'a str>,
    warning_summary: Vec<crate::analysis::warnings::Summary>,
}

/// One dirty-logging group over its idle twin.
#[derive(Serialize)]
struct InterferenceOut<'a> {
    #[serde(flatten)]
    pair: &'a crate::analysis::interference::Interference,
    pass_ratio: Option<f64>,
    writes_per_vcpu_cpu_s_ratio: Option<f64>,
}

#[derive(Serialize)]
struct FigureOut<'a> {
    id: &'a str,
    label: &'a str,
    unit: crate::analysis::figure::Unit,
    better: crate::analysis::figure::Better,
    comparable: bool,
}

#[derive(Serialize)]
struct GroupOut<'a> {
    #[serde(rename = "impl")]
    impl_name: &'a str,
    params: BTreeMap<&'a str, &'a serde_json::Value>,
    baseline: bool,
    runs: Vec<String>,
    figures: BTreeMap<&'a str, &'a Cell>,
}

pub fn render(c: &Comparison) -> String {
    let out = Out {
        schema: SCHEMA,
        baseline: &c.baseline,
        keys: &c.keys,
        common: c.common.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        figures: c
            .figures
            .iter()
            .map(|f| FigureOut {
                id: &f.id,
                label: &f.label,
                unit: f.unit,
                better: f.better,
                comparable: f.comparable,
            })
            .collect(),
        groups: c
            .rows
            .iter()
            .map(|r| GroupOut {
                impl_name: &r.impl_name,
                params: r.params.iter().map(|(k, v)| (k.as_str(), v)).collect(),
                baseline: r.is_baseline,
                runs: r.runs.iter().map(|p| p.display().to_string()).collect(),
                figures: c
                    .figures
                    .iter()
                    .zip(&r.cells)
                    .map(|(f, cell)| (f.id.as_str(), cell))
                    .collect(),
            })
            .collect(),
        interference: c
            .interference
            .iter()
            .map(|pair| InterferenceOut {
                pair,
                pass_ratio: pair.pass_ratio(),
                writes_per_vcpu_cpu_s_ratio: pair.cpu_rate_ratio(),
            })
            .collect(),
        headline: &c.headline,
        warnings: c.warnings.iter().map(|w| w.text.as_str()).collect(),
        warning_summary: crate::analysis::warnings::summarize(c),
    };
    serde_json::to_string_pretty(&out).expect("a comparison always serialises") + "\n"
}
