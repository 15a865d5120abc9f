//! Perf counters per operation, per role (`perf`: role -> event ->
//! `per_op`): one grouped bar chart per role and configuration, a group
//! per event and a bar per implementation (median over repeats, min-max
//! whiskers). Only events the machine supported and the run could divide
//! by an operation count are drawn; a role with none gets no chart. The y
//! axis is logarithmic when the events span more than a factor 100 (cycles
//! and context switches per operation side by side).

use super::bars::{Bar, BarChart, BarSeries};
use super::line::Axis;
use super::style::{impl_colour, Scale, TickFormat};
use super::{param_sets, Planned, Section};
use crate::analysis::group::format_params;
use crate::analysis::{Comparison, Stats};
use crate::record::result::RunResult;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn per_op(r: &RunResult, role: &str, event: &str) -> Option<f64> {
    let v = r.perf.get(role)?.get(event)?;
    v.per_op.filter(|x| v.supported && x.is_finite())
}

pub fn plan(runs: &[(PathBuf, RunResult)], c: &Comparison) -> Vec<Planned> {
    let sets = param_sets(c);
    let mut out = Vec::new();
    for params in &sets {
        let rows: Vec<_> = c.rows.iter().filter(|r| &r.params == params).collect();
        let roles: BTreeSet<&String> = rows
            .iter()
            .flat_map(|row| row.run_indices.iter())
            .flat_map(|&i| runs[i].1.perf.keys())
            .collect();
        for role in roles {
            let events: BTreeSet<&String> = rows
                .iter()
                .flat_map(|row| row.run_indices.iter())
                .flat_map(|&i| {
                    let r = &runs[i].1;
                    r.perf
                        .get(role)
                        .into_iter()
                        .flat_map(|m| m.keys())
                        .filter(|e| per_op(r, role, e).is_some())
                })
                .collect();
            if events.is_empty() {
                continue;
            }
            let events: Vec<&String> = events.into_iter().collect();
            let mut series = Vec::new();
            for row in &rows {
                let values: Vec<Option<Bar>> = events
                    .iter()
                    .map(|e| {
                        let v: Vec<f64> = row
                            .run_indices
                            .iter()
                            .filter_map(|&i| per_op(&runs[i].1, role, e))
                            .collect();
                        Stats::of(&v).map(|s| (s.median, (s.n > 1).then_some((s.min, s.max))))
                    })
                    .collect();
                if values.iter().any(|v| v.is_some()) {
                    series.push(BarSeries {
                        name: row.impl_name.clone(),
                        colour: impl_colour(&row.impl_name),
                        values,
                    });
                }
            }
            let scale = Scale::for_values(
                series
                    .iter()
                    .flat_map(|s| s.values.iter().flatten().map(|v| v.0)),
                100.0,
            );
            let title = format!(
                "perf events per {role} operation ({})",
                format_params(params)
            );
            let mut y = Axis::new(
                "count per operation (task-clock: ns)",
                scale,
                TickFormat::Si,
            );
            y.zero = true;
            out.push(Planned::at(
                Section::Perf,
                params,
                sets.len(),
                &format!("perf-{role}"),
                BarChart {
                    title,
                    categories: events.iter().map(|e| e.to_string()).collect(),
                    y,
                    series,
                },
            ));
        }
    }
    out
}
