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
//!
//! [`write_index`] writes `plots/index.html` beside them: the session's
//! table of medians, then the charts grouped as in the table above (rates,
//! latency, counters per role), each linking its files.

use crate::analysis::series::{Op, TimeSeries};
use crate::record::error::{LabError, LabResult};
use crate::record::result::write_atomic;
use crate::render::export::html::escape;
use crate::render::plot::report::{relative, url_path};
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

/// Draw the charts into `dir` (in parallel; made if missing); the files
/// written.
pub fn render(series: &[TimeSeries], dir: &Path, formats: &[Format]) -> LabResult<Vec<PathBuf>> {
    let planned = plan(series);
    std::fs::create_dir_all(dir)
        .map_err(|e| LabError::failed(format!("{}: cannot create: {e}", dir.display())))?;
    let files: LabResult<Vec<Vec<PathBuf>>> = planned
        .par_iter()
        .map(|(name, c)| plot::write_chart(&Plot::Line(c.clone()), dir, name, formats))
        .collect();
    Ok(files?.into_iter().flatten().collect())
}

/// The groups of the session's page, by file-name prefix, in page order.
const GROUPS: [(&str, &str); 3] = [
    ("rate-", "Operations per second"),
    ("p99-", "Latency p99 per interval"),
    ("perf-", "CPU and perf counters per role"),
];

/// `index.html` in `dir`: `summary` (the medians table) and every chart in
/// `files`, grouped; its path.
pub fn write_index(
    series: &[TimeSeries],
    files: &[PathBuf],
    summary: &str,
    dir: &Path,
) -> LabResult<PathBuf> {
    let names: Vec<&str> = series.iter().map(|s| s.impl_name).collect();
    let mut o = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>rmap-lab profile</title>\n<style>\nbody { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }\nh2 { border-bottom: 1px solid #ccc; margin-top: 2em; }\nfigure img { max-width: 100%; border: 1px solid #eee; }\npre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }\n</style>\n</head>\n<body>\n",
    );
    o.push_str(&format!(
        "<h1>rmap-lab profile: {}</h1>\n",
        escape(&names.join(", "))
    ));
    if let Some(s) = series.first() {
        o.push_str(&format!(
            "<p>{} on {}, {} vCPUs, sampled every {} s. Medians over the intervals of each run:</p>\n",
            escape(&names.join(", ")),
            escape(s.workload),
            s.vcpus,
            s.interval_s
        ));
    }
    o.push_str(&format!("<pre>{}</pre>\n", escape(summary)));
    let shown = |f: &&PathBuf| {
        f.extension().is_some_and(|e| e == "svg")
            || !files.iter().any(|g| {
                g.file_stem() == f.file_stem() && g.extension().is_some_and(|e| e == "svg")
            })
    };
    for (prefix, title) in GROUPS {
        let charts: Vec<&PathBuf> = files
            .iter()
            .filter(shown)
            .filter(|f| {
                f.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
            })
            .collect();
        if charts.is_empty() {
            continue;
        }
        o.push_str(&format!("<h2>{title}</h2>\n"));
        for f in charts {
            let href = escape(&url_path(&relative(f, dir)));
            let stem = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let links: Vec<String> = files
                .iter()
                .filter(|g| g.file_stem() == f.file_stem())
                .map(|g| {
                    format!(
                        "<a href=\"{}\">{}</a>",
                        escape(&url_path(&relative(g, dir))),
                        g.extension()
                            .map(|e| e.to_string_lossy().to_uppercase())
                            .unwrap_or_default()
                    )
                })
                .collect();
            o.push_str(&format!(
                "<figure><a href=\"{href}\"><img src=\"{href}\" alt=\"{}\" width=\"800\" height=\"500\" loading=\"lazy\"></a><figcaption>{} &middot; {}</figcaption></figure>\n",
                escape(&stem),
                escape(&stem),
                links.join(" ")
            ));
        }
    }
    o.push_str("</body>\n</html>\n");
    let path = dir.join("index.html");
    write_atomic(&path, o.as_bytes())
        .map_err(|e| LabError::failed(format!("{}: cannot write: {e}", path.display())))?;
    Ok(path)
}
