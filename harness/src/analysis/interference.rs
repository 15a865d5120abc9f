//! Guest progress under dirty logging, or aging: what either costs the vCPUs.
//!
//! For every `dirty-log` or `aging` group whose implementation also ran
//! `idle` (the same vCPU traffic without either) at otherwise the same
//! parameters **and the same `mmu_lock` kind**, two ratios, medians over
//! repeats on both sides as everywhere in compare (read "dirty logging"
//! below as "aging" for an `aging` group):
//!
//! - **pass time**, `vcpu.pass` p50 under dirty logging over under idle
//!   (above 1: the guest makes progress more slowly). A pass is a vCPU's
//!   slice worth of accesses, as `dirty_log_perf_test` times an iteration,
//!   so a vCPU stalled behind `mmu_lock` counts against it, unlike a
//!   per-operation latency, which records one long sample for the stall
//!   and nothing for the writes it did not make. It is not the design
//!   alone: where worker threads outnumber CPUs, the walker's CPU is taken
//!   from the vCPUs (slower passes), and vCPUs parked behind a lock free
//!   their CPUs for the others (faster passes, a ratio that can fall below
//!   1). The walker's CPUs busy is printed beside it for that reason.
//! - **guest writes per vCPU CPU-second**, under dirty logging over under
//!   idle (below 1: each CPU-second a vCPU runs does fewer writes, through
//!   faults, lock spinning and cache misses that dirty logging causes). The
//!   CPU the walker takes, and the CPU parked vCPUs give up, are not vCPU
//!   CPU time, so this one is about the design; it is the figure called
//!   interference.
//!
//! The pair is left out (with a note) when the two sides ran different lock
//! kinds: `--mmu-lock auto` parks when threads outnumber CPUs, and idle runs
//! one thread fewer, so at the boundary the two differ in more than dirty
//! logging. The seed series' claim is that a lockless walk keeps dirty
//! logging from stalling vCPUs behind `mmu_lock`: its ratios should stay
//! near 1 where `mmu-lock`'s do not.

use super::figure::Figure;
use super::group::{config_map, Params};
use super::model::Row;
use crate::record::result::RunResult;
use serde_json::Value;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Interference {
    #[serde(rename = "impl")]
    pub impl_name: String,
    /// The dirty-logging group's parameters.
    #[serde(serialize_with = "super::group::params_as_map")]
    pub params: Params,
    /// The `mmu_lock` kind both sides ran (absent in results without one).
    pub mmu_lock: Option<String>,
    /// `vcpu.pass` p50 (ns) under dirty logging and under idle, medians.
    pub pass_p50: Option<(f64, f64)>,
    /// Guest writes per vCPU CPU-second under dirty logging and idle.
    pub writes_per_vcpu_cpu_s: Option<(f64, f64)>,
    /// The walker thread's CPUs busy under dirty logging, median.
    pub walker_cpus: Option<f64>,
    /// The dirty-logging runs had more worker threads than CPUs.
    pub oversubscribed: bool,
    /// Why the pair has no ratios, when it has none.
    pub note: Option<String>,
}

impl Interference {
    /// Pass time p50 under dirty logging / under idle.
    pub fn pass_ratio(&self) -> Option<f64> {
        self.pass_p50.and_then(|(d, i)| (i > 0.0).then(|| d / i))
    }
    /// Guest writes per vCPU CPU-second under dirty logging / under idle.
    pub fn cpu_rate_ratio(&self) -> Option<f64> {
        self.writes_per_vcpu_cpu_s
            .and_then(|(d, i)| (i > 0.0).then(|| d / i))
    }
}

/// The `mmu_lock` kinds a row's runs used, in order, without repeats.
fn lock_kinds(row: &Row, runs: &[(PathBuf, RunResult)]) -> Vec<Value> {
    let mut v: Vec<Value> = row
        .run_indices
        .iter()
        .map(|&i| {
            config_map(&runs[i].1)
                .remove("mmu_lock")
                .unwrap_or(Value::Null)
        })
        .collect();
    v.dedup();
    v
}

/// Every (dirty-logging row, idle row) pair of the same implementation and
/// parameters but the workload (and the lock kind, checked on the runs).
pub fn pairs(rows: &[Row], runs: &[(PathBuf, RunResult)]) -> Vec<Interference> {
    let workload = |p: &Params| -> Option<String> {
        p.iter()
            .find(|(k, _)| k == "workload")
            .and_then(|(_, v)| v.as_str().map(str::to_string))
    };
    // The idle twin's parameters: the workload differs; the mmu_lock kind,
    // if it is a parameter, is compared on the runs below.
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
    let (pass, rate, walker) = (
        Figure::pass_p50(),
        Figure::writes_per_vcpu_cpu_s(),
        Figure::walker_cpus(),
    );
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
        let (dk, ik) = (lock_kinds(r, runs), lock_kinds(idle, runs));
        let oversubscribed = r
            .run_indices
            .iter()
            .any(|&i| runs[i].1.machine.oversubscribed);
        let lock_name = |k: &[Value]| -> String {
            k.iter()
                .map(|v| v.as_str().unwrap_or("?").to_string())
                .collect::<Vec<_>>()
                .join("+")
        };
        let mut pair = Interference {
            impl_name: r.impl_name.clone(),
            params: r.params.clone(),
            mmu_lock: (dk.len() == 1)
                .then(|| dk[0].as_str().map(str::to_string))
                .flatten(),
            pass_p50: None,
            writes_per_vcpu_cpu_s: None,
            walker_cpus: r.median(&walker, runs),
            oversubscribed,
            note: None,
        };
        if dk.len() != 1 || dk != ik {
            pair.note = Some(format!(
                "not compared: dirty-log ran mmu_lock {}, idle {}",
                lock_name(&dk),
                lock_name(&ik)
            ));
        } else {
            let both = |f: &Figure| Some((r.median(f, runs)?, idle.median(f, runs)?));
            pair.pass_p50 = both(&pass);
            pair.writes_per_vcpu_cpu_s = both(&rate);
            if pair.pass_p50.is_none() && pair.writes_per_vcpu_cpu_s.is_none() {
                pair.note =
                    Some("no vcpu.pass or vCPU CPU time in these results (made before either was recorded)".into());
            }
        }
        out.push(pair);
    }
    out
}
