//! Dirty-log round time over a run (`rounds`: `[t_s, round_ns, pages]` per
//! round): one chart per configuration, a line per run in its
//! implementation's colour, so a slow start, a drift or a stall shows. All
//! repeats are drawn (in the same colour, one legend entry): averaging them
//! would hide exactly the stalls this plot is for.

use super::line::{Axis, LineChart, Point, Series};
use super::style::{impl_colour, Scale, TickFormat};
use super::{param_sets, Planned, Section};
use crate::analysis::group::format_params;
use crate::analysis::Comparison;
use crate::record::result::RunResult;
use std::path::PathBuf;

pub fn plan(runs: &[(PathBuf, RunResult)], c: &Comparison) -> Vec<Planned> {
    let sets = param_sets(c);
    let mut out = Vec::new();
    for params in &sets {
        let mut series = Vec::new();
        for row in c.rows.iter().filter(|r| &r.params == params) {
            for (k, &i) in row.run_indices.iter().enumerate() {
                let r = &runs[i].1;
                if r.rounds.is_empty() {
                    continue;
                }
                series.push(Series {
                    name: row.impl_name.clone(),
                    colour: impl_colour(&row.impl_name),
                    points: r
                        .rounds
                        .iter()
                        .map(|&[t, ns, _]| Point::new(t, ns))
                        .collect(),
                    markers: r.rounds.len() < 40,
                    legend: k == 0 || series.iter().all(|s: &Series| s.name != row.impl_name),
                });
            }
        }
        if series.is_empty() {
            continue;
        }
        let scale = Scale::for_values(
            series.iter().flat_map(|s| s.points.iter().map(|p| p.y)),
            30.0,
        );
        let title = format!(
            "dirty-log round time over the run ({})",
            format_params(params)
        );
        out.push(Planned::at(
            Section::Rounds,
            params,
            sets.len(),
            "rounds",
            LineChart {
                title,
                x: Axis::new("time in run (s)", Scale::Linear, TickFormat::Si),
                y: Axis::new("round time", scale, TickFormat::Ns),
                series,
            },
        ));
    }
    out
}
