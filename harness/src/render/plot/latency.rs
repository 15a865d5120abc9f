//! Latency percentile curves (HdrHistogram's percentile distribution plot):
//! for each main latency metric and each configuration, one curve per
//! implementation, from the full histogram kept in the result (`hdr`), the
//! repeats of a group merged into one histogram.
//!
//! The x axis is in "nines": a quantile q is drawn at log10(1/(1-q)), so
//! 0%, 90%, 99%, 99.9% are evenly spaced and the tail gets the room it
//! deserves; it ends where the data ends (log10 of the sample count, at
//! most six nines), past which a percentile is a single sample. The y axis
//! is latency on a log scale.

use super::line::{Axis, LineChart, Point, Series};
use super::style::{impl_colour, Scale, TickFormat};
use super::{param_sets, Planned, Section};
use crate::analysis::figure::{FAULT_SLOW, ROUND, TLB_FLUSH, WP_GFN};
use crate::analysis::group::format_params;
use crate::analysis::Comparison;
use crate::record::error::{LabError, LabResult};
use crate::record::result::RunResult;
use hdrhistogram::Histogram;
use std::path::PathBuf;

/// The metrics drawn, with their names for people.
pub const METRICS: [(&str, &str); 4] = [
    (FAULT_SLOW, "slow fault"),
    (WP_GFN, "write-protect walk per gfn"),
    (ROUND, "dirty-log round"),
    (TLB_FLUSH, "TLB flush wait"),
];

/// Points of the percentile curve of `h` on the nines axis.
pub fn curve(h: &Histogram<u64>) -> Vec<Point> {
    let n = h.len();
    if n == 0 {
        return Vec::new();
    }
    let end = (n as f64).log10().clamp(1.0, 6.0);
    // Twenty points per nine; i / 20 keeps whole nines exact.
    let steps = (end * 20.0).ceil() as usize;
    let mut pts: Vec<Point> = (0..=steps)
        .map(|i| {
            let x = (i as f64 / 20.0).min(end);
            let q = 1.0 - 10f64.powf(-x);
            Point::new(q, h.value_at_quantile(q).max(1) as f64)
        })
        .collect();
    // The curve ends at the largest sample.
    if let Some(last) = pts.last_mut() {
        last.y = h.max().max(1) as f64;
    }
    pts
}

/// The histograms of `metric` over `runs`, merged.
fn merged(
    runs: &[(PathBuf, RunResult)],
    indices: &[usize],
    metric: &str,
) -> LabResult<Option<Histogram<u64>>> {
    let mut out: Option<Histogram<u64>> = None;
    for &i in indices {
        let (path, r) = &runs[i];
        let Some(m) = r.metric(metric).filter(|m| m.count > 0) else {
            continue;
        };
        let h = m
            .histogram()
            .map_err(|e| LabError::usage(format!("{}: metric {metric}: {e}", path.display())))?;
        match &mut out {
            None => {
                let mut h = h;
                h.auto(true);
                out = Some(h);
            }
            Some(acc) => acc.add(&h).map_err(|e| {
                LabError::usage(format!(
                    "{}: metric {metric}: cannot merge with the other repeats ({e:?})",
                    path.display()
                ))
            })?,
        }
    }
    Ok(out)
}

pub fn plan(runs: &[(PathBuf, RunResult)], c: &Comparison) -> LabResult<Vec<Planned>> {
    let sets = param_sets(c);
    let mut out = Vec::new();
    for params in &sets {
        for (metric, what) in METRICS {
            let mut series = Vec::new();
            for row in c.rows.iter().filter(|r| &r.params == params) {
                if let Some(h) = merged(runs, &row.run_indices, metric)? {
                    let runs_note = if row.runs.len() > 1 {
                        format!(" ({} runs)", row.runs.len())
                    } else {
                        String::new()
                    };
                    series.push(Series {
                        name: format!("{}{runs_note}", row.impl_name),
                        colour: impl_colour(&row.impl_name),
                        points: curve(&h),
                        markers: false,
                        legend: true,
                    });
                }
            }
            if series.is_empty() {
                continue;
            }
            let title = format!("{what} latency by percentile ({})", format_params(params));
            let mut x = Axis::new("percentile", Scale::Nines, TickFormat::Ns);
            x.zero = false;
            let chart = LineChart {
                title,
                x,
                y: Axis::new("latency", Scale::Log10, TickFormat::Ns),
                series,
            };
            out.push(Planned::at(
                Section::Latency,
                params,
                sets.len(),
                &format!("latency-{}", metric.replace('.', "-")),
                chart,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_runs_from_the_minimum_to_the_maximum_in_nines() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v * 100).unwrap();
        }
        let c = curve(&h);
        let first = c.first().unwrap();
        let last = c.last().unwrap();
        assert_eq!(first.x, 0.0);
        assert!((first.y - 100.0).abs() < 1.0);
        // 10,000 samples: four nines, ending at the largest.
        assert!((Scale::Nines.forward(last.x).unwrap() - 4.0).abs() < 1e-9);
        assert!(h.equivalent(last.y as u64, 1_000_000));
        // The p99 point is the histogram's p99.
        let p99 = c
            .iter()
            .find(|p| (Scale::Nines.forward(p.x).unwrap() - 2.0).abs() < 1e-9)
            .unwrap();
        assert!((p99.y - 990_000.0).abs() / 990_000.0 < 0.002, "{}", p99.y);
        assert!(c.windows(2).all(|w| w[0].y <= w[1].y));
    }
}
