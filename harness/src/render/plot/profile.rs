//! The session's charts: one line per implementation, x in seconds into
//! the measured phase, one file per chart and format in `<session>/plots/`.
//!
//! | file | y |
//! | --- | --- |
//! | `perf-<role>-task-clock` | CPUs busy (task-clock ns per second / 1e9) |
//! | `perf-<role>-<event>` | events per second: `context-switches` and, where the machine counts them, `cycles`, `instructions`, `cache-misses`, `LLC-load-misses` |
//! | `p99-<metric>` | the interval's p99 of `vcpu.fault_slow`, `walker.wp_gfn`, `walker.round`, `walker.tlb_flush` |
//! | `rate-<op>` | guest writes, write-protect walks, dirty-log rounds per second, and restarts per second when any walk restarted |
//!
//! A chart is drawn only when some implementation has its data. Latency
//! axes turn logarithmic when the lines span more than a factor of 30
//! (`mmu-lock`'s rounds against a lockless walker's).

use crate::analysis::series::{Op, TimeSeries};
use crate::record::error::LabResult;
use crate::render::plot::style::{impl_colour, Scale, TickFormat};
use crate::render::plot::{self, time_series, Axis, Format, LineChart, Plot};
use rayon::prelude::*;
use rmap_workloads::RoleKind;
use std::path::{Path, PathBuf};

/// Counter events drawn per role, in order (those no run counted are left
/// out).
const EVENTS: [&str; 6] = [
    "task-clock",
    "context-switches",
    "cycles",
    "instructions",
    "cache-misses",
    "LLC-load-misses",
];

/// Latency metrics whose p99 is drawn over time.
const P99: [&str; 4] = [
    "vcpu.fault_slow",
    "walker.wp_gfn",
    "walker.round",
    "walker.tlb_flush",
];

/// A chart with one line per implementation, coloured as in every other
/// plot of the lab; `None` when no line has a point.
fn chart(
    title: &str,
    y_label: &str,
    ticks: TickFormat,
    log_if_spread: bool,
    lines: Vec<(String, Vec<(f64, f64)>)>,
) -> Option<LineChart> {
    if lines.iter().all(|(_, pts)| pts.is_empty()) {
        return None;
    }
    let ys = lines.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y));
    let scale = if log_if_spread {
        Scale::for_values(ys, 30.0)
    } else {
        Scale::Linear
    };
    let mut c = time_series(
        title,
        "seconds into the measured phase",
        y_label,
        ticks,
        lines,
    );
    c.y = Axis::new(y_label, scale, ticks);
    for s in &mut c.series {
        s.colour = impl_colour(&s.name);
    }
    Some(c)
}

/// Every chart the series have data for: `(file name, chart)`.
pub fn plan(series: &[TimeSeries]) -> Vec<(String, LineChart)> {
    let mut v = Vec::new();
    let lines = |f: &dyn Fn(&TimeSeries) -> Vec<(f64, f64)>| -> Vec<(String, Vec<(f64, f64)>)> {
        series
            .iter()
            .map(|s| (s.impl_name.to_string(), f(s)))
            .collect()
    };
    for role in RoleKind::ALL {
        for ev in EVENTS {
            let c = if ev == "task-clock" {
                chart(
                    &format!("{} threads: CPUs busy", role.name()),
                    "CPUs (task-clock per second)",
                    TickFormat::Si,
                    false,
                    lines(&|s| {
                        s.event_per_s(role, ev)
                            .into_iter()
                            .map(|(t, ns)| (t, ns / 1e9))
                            .collect()
                    }),
                )
            } else {
                chart(
                    &format!("{} threads: {ev}", role.name()),
                    &format!("{ev} per second"),
                    TickFormat::Si,
                    false,
                    lines(&|s| s.event_per_s(role, ev)),
                )
            };
            if let Some(c) = c {
                v.push((format!("perf-{}-{ev}", role.name()), c));
            }
        }
    }
    for m in P99 {
        if let Some(c) = chart(
            &format!("{m} p99 per interval"),
            "p99 latency",
            TickFormat::Ns,
            true,
            lines(&|s| s.p99(m)),
        ) {
            v.push((format!("p99-{m}"), c));
        }
    }
    for (op, what) in [
        (Op::GuestWrites, "guest writes"),
        (Op::Walks, "write-protect walks"),
        (Op::Rounds, "dirty-log rounds"),
        (Op::Restarts, "walk restarts"),
    ] {
        let l = lines(&|s| s.op_per_s(op));
        if op == Op::Restarts && l.iter().all(|(_, p)| p.iter().all(|&(_, y)| y == 0.0)) {
            continue;
        }
        if let Some(c) = chart(
            &format!("{what} per second"),
            &format!("{what} per second"),
            TickFormat::Si,
            false,
            l,
        ) {
            v.push((format!("rate-{}", op.name()), c));
        }
    }
    v.into_iter()
        .map(|(name, c)| (plot::sanitize(&name), c))
        .collect()
}

/// Draw the charts into `dir` (in parallel); the files written.
pub fn render(series: &[TimeSeries], dir: &Path, formats: &[Format]) -> LabResult<Vec<PathBuf>> {
    let planned = plan(series);
    let files: LabResult<Vec<Vec<PathBuf>>> = planned
        .par_iter()
        .map(|(name, c)| plot::write_chart(&Plot::Line(c.clone()), dir, name, formats))
        .collect();
    Ok(files?.into_iter().flatten().collect())
}
