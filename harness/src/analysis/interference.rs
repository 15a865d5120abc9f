//! The interference ratio: what dirty logging, or aging, costs the vCPUs.
//! For every `dirty-log` or `aging` group whose implementation also ran
//! `idle` (the same vCPU traffic without either) at otherwise the same
//! parameters,
//! the vCPU slow-fault p99 under dirty logging over the same under `idle`
//! (above 1: dirty logging makes faults slower), and the guest-write
//! throughput under dirty logging over `idle` (below 1: fewer writes get
//! through). Medians over repeats on both sides, as everywhere in compare.
//! The `mmu_lock` kind may differ between the two: `--mmu-lock auto` parks
//! when threads outnumber CPUs, and idle runs one thread fewer.
//!
//! The seed series' claim is that a lockless walk keeps dirty logging from
//! stalling vCPUs behind `mmu_lock`: its slow-fault ratio should be near 1
//! where `mmu-lock`'s is large.

use super::figure::Figure;
use super::group::Params;
use super::model::{Row, Stats};
use crate::record::result::RunResult;
use serde_json::Value;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Interference {
    #[serde(rename = "impl")]
    pub impl_name: String,
    /// The dirty-logging group's parameters.
    #[serde(serialize_with = "params_as_map")]
    pub params: Params,
    /// Slow-fault p99 (ns) under dirty logging and under idle, medians.
    pub fault_slow_p99: Option<(f64, f64)>,
    /// Guest writes/s under dirty logging and under idle, medians.
    pub guest_writes: Option<(f64, f64)>,
}

fn params_as_map<S: serde::Serializer>(p: &Params, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(p.len()))?;
    for (k, v) in p {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

impl Interference {
    /// Slow-fault p99 under dirty logging / under idle.
    pub fn fault_ratio(&self) -> Option<f64> {
        self.fault_slow_p99
            .and_then(|(d, i)| (i > 0.0).then(|| d / i))
    }
    /// Guest writes/s under dirty logging / under idle.
    pub fn writes_ratio(&self) -> Option<f64> {
        self.guest_writes
            .and_then(|(d, i)| (i > 0.0).then(|| d / i))
    }
}

fn median(fig: &Figure, row: &Row, runs: &[(PathBuf, RunResult)]) -> Option<f64> {
    let v: Vec<f64> = row
        .run_indices
        .iter()
        .filter_map(|&i| fig.value(&runs[i].1))
        .collect();
    Stats::of(&v).map(|s| s.median)
}

/// Every (dirty-logging row, idle row) pair of the same implementation and
/// parameters but the workload.
pub fn pairs(rows: &[Row], runs: &[(PathBuf, RunResult)]) -> Vec<Interference> {
    let workload = |p: &Params| -> Option<String> {
        p.iter()
            .find(|(k, _)| k == "workload")
            .and_then(|(_, v)| v.as_str().map(str::to_string))
    };
    // The idle twin's parameters: the workload differs, and so may the
    // mmu_lock kind that `--mmu-lock auto` derives from the thread count
    // (idle has no migration thread).
    let twin = |p: &Params, o: &Params| -> bool {
        p.len() == o.len()
            && p.iter().zip(o).all(|((k, v), (k2, v2))| {
                k == k2
                    && match k.as_str() {
                        "workload" => v2 == &Value::String("idle".into()),
                        "mmu_lock" => true,
                        _ => v == v2,
                    }
            })
    };
    let (fault, writes) = (Figure::fault_slow_p99(), Figure::guest_writes());
    let mut out = Vec::new();
    for r in rows {
        // churn drives other vCPU traffic (hot gfns only): no idle twin.
        if !matches!(workload(&r.params).as_deref(), Some("dirty-log" | "aging")) {
            continue;
        }
        let Some(idle) = rows
            .iter()
            .find(|o| o.impl_name == r.impl_name && twin(&r.params, &o.params))
        else {
            continue;
        };
        let both = |f: &Figure| Some((median(f, r, runs)?, median(f, idle, runs)?));
        out.push(Interference {
            impl_name: r.impl_name.clone(),
            params: r.params.clone(),
            fault_slow_p99: both(&fault),
            guest_writes: both(&writes),
        });
    }
    out
}
