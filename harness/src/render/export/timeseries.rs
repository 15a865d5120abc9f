//! A profile run's time series as files: `<impl>.timeseries.json` (schema
//! `rmap-lab/timeseries/v1`) and `<impl>.timeseries.csv`, one row per
//! interval per role.

use super::csv::field;
use crate::analysis::series::{metric_role, Op, TimeSeries};
use rmap_workloads::{RoleKind, METRIC_NAMES};

pub fn json(ts: &TimeSeries) -> Vec<u8> {
    serde_json::to_vec_pretty(ts).expect("a time series always serialises")
}

/// The CSV header (see the `cmd::profile` module doc).
pub fn csv_header(ts: &TimeSeries) -> Vec<String> {
    let mut h: Vec<String> = ["index", "t_s", "dt_s", "perf_dt_s", "impl", "role"]
        .map(String::from)
        .to_vec();
    for ev in &ts.events {
        h.push(format!("{ev}_per_s"));
        h.push(format!("{ev}_per_op"));
    }
    for op in Op::ALL {
        h.push(format!("{}_per_s", op.name()));
    }
    for m in METRIC_NAMES {
        h.push(format!("{m}_count"));
        h.push(format!("{m}_p50_ns"));
        h.push(format!("{m}_p99_ns"));
    }
    h
}

/// One row per interval per role.
pub fn csv(ts: &TimeSeries) -> String {
    let num = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
    let mut out = csv_header(ts)
        .iter()
        .map(|h| field(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for i in &ts.intervals {
        for role in ts
            .roles
            .iter()
            .filter_map(|r| RoleKind::ALL.into_iter().find(|k| k.name() == *r))
        {
            let mut row = vec![
                i.index.to_string(),
                format!("{}", i.t_s),
                format!("{}", i.dt_s),
                num(i.perf_dt_s),
                field(ts.impl_name),
                field(role.name()),
            ];
            let evs = i.perf.get(role.name());
            for ev in &ts.events {
                let r = evs.and_then(|e| e.get(ev));
                row.push(num(r.and_then(|r| r.per_s)));
                row.push(num(r.and_then(|r| r.per_op)));
            }
            for op in Op::ALL {
                let v = (op.role() == role)
                    .then(|| i.rates.get(op.name()).copied())
                    .flatten();
                row.push(num(v));
            }
            for m in METRIC_NAMES {
                let mine = ts.latency && metric_role(m).is_none_or(|r| r == role);
                match (mine, i.metrics.get(m)) {
                    (false, _) => row.extend([String::new(), String::new(), String::new()]),
                    (true, None) => row.extend(["0".to_string(), String::new(), String::new()]),
                    (true, Some(s)) => row.extend([
                        s.count.to_string(),
                        s.p50_ns.to_string(),
                        s.p99_ns.to_string(),
                    ]),
                }
            }
            out.push_str(&row.join(","));
            out.push('\n');
        }
    }
    out
}
