//! Hand-made result files for the tests of `lab compare` and `lab plot`,
//! and a runner for the built `lab` binary.
//!
//! A [`Run`] states the figures a comparison reads (throughput, the p50 and
//! p99 of each latency metric, walks, restarts, lost writes) exactly, so a
//! test knows every median and ratio in advance; the `hdr` histogram kept
//! with each metric is a real HdrHistogram V2 + DEFLATE encoding of samples
//! spread between that metric's p50 and p99, so plots have curves to draw.

#![allow(dead_code)]

use base64::Engine;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Output;

#[derive(Clone, Debug)]
pub struct Run {
    pub impl_name: String,
    pub vcpus: u32,
    pub aliases: u32,
    pub seed: u64,
    pub writes_per_s: f64,
    /// `(p50, p99)` in ns per metric; `None` leaves the metric out.
    pub fault_slow: Option<(u64, u64)>,
    pub wp_gfn: Option<(u64, u64)>,
    pub round: Option<(u64, u64)>,
    pub tlb_flush: Option<(u64, u64)>,
    pub walks: u64,
    pub restarts: u64,
    pub lost_writes: u64,
    /// Rounds over the run: `[t_s, round_ns, pages]`.
    pub rounds: Vec<[f64; 3]>,
    /// role -> event -> per_op (supported events).
    pub perf: Vec<(&'static str, &'static str, f64)>,
    pub hostname: String,
}

impl Run {
    pub fn new(impl_name: &str, vcpus: u32) -> Run {
        Run {
            impl_name: impl_name.into(),
            vcpus,
            aliases: 4,
            seed: 1,
            writes_per_s: 1_000_000.0,
            fault_slow: Some((2_000, 10_000)),
            wp_gfn: Some((500, 4_000)),
            round: Some((5_000_000, 9_000_000)),
            tlb_flush: Some((1_000, 8_000)),
            walks: 100_000,
            restarts: 0,
            lost_writes: 0,
            rounds: Vec::new(),
            perf: Vec::new(),
            hostname: "testhost".into(),
        }
    }

    pub fn json(&self) -> Value {
        let mut metrics = serde_json::Map::new();
        for (name, m) in [
            ("vcpu.fault_slow", self.fault_slow),
            ("walker.wp_gfn", self.wp_gfn),
            ("walker.round", self.round),
            ("walker.tlb_flush", self.tlb_flush),
        ] {
            if let Some((p50, p99)) = m {
                metrics.insert(name.into(), metric(p50, p99));
            }
        }
        let mut perf = serde_json::Map::new();
        for (role, event, per_op) in &self.perf {
            let r = perf
                .entry(role.to_string())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .unwrap();
            r.insert(
                event.to_string(),
                json!({"supported": true, "value": per_op * 1000.0, "time_enabled_ns": 1000,
                       "time_running_ns": 1000, "per_op": per_op}),
            );
        }
        // An event the machine lacks: never drawn.
        perf.entry("walker".to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .unwrap()
            .insert(
                "cycles".into(),
                json!({"supported": false, "value": null, "time_enabled_ns": 0,
                       "time_running_ns": 0, "reason": "ENOENT"}),
            );
        let duration = 10.0;
        json!({
            "schema": "rmap-lab/result/v1",
            "impl": self.impl_name,
            "workload": "dirty-log",
            "config": {
                "vcpus": self.vcpus, "seed": self.seed, "desc_ext": 3,
                "aliases": self.aliases, "mem_bytes": 268435456u64,
                "duration_s": duration, "pattern": "uniform"
            },
            "machine": {
                "online_cpus": 2, "cpu_model": "Test CPU", "kernel": "6.1.0",
                "hostname": self.hostname, "oversubscribed": false, "clock_source": "tsc"
            },
            "lab_version": "0.1.0",
            "started_at": "2025-01-01T00:00:00Z",
            "duration_s": duration,
            "interrupted": false,
            "verdict": {"lost_writes": self.lost_writes, "rmap_inconsistencies": 0,
                        "ok": self.lost_writes == 0},
            "metrics": metrics,
            "counters": {
                "walks": self.walks, "restarts": self.restarts, "restarts_by_reason": {},
                "guest_writes": (self.writes_per_s * duration) as u64,
                "faults_fast": 10, "faults_slow": 10, "zaps": 5, "rounds": 3
            },
            "throughput": {"vcpu.guest_writes": self.writes_per_s},
            "perf": perf,
            "warnings": [],
            "rounds": self.rounds,
        })
    }

    /// Write the result as `dir/NAME.json`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(format!("{name}.json"));
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(&p, serde_json::to_vec_pretty(&self.json()).unwrap()).unwrap();
        p
    }
}

/// A latency summary with the given p50 and p99 (exactly), and a histogram
/// of 1,000 samples between them.
fn metric(p50: u64, p99: u64) -> Value {
    let mut h = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3).unwrap();
    for i in 0..1000u64 {
        let v = if i < 500 {
            p50 / 2 + (p50 / 2) * i / 500
        } else if i < 990 {
            p50 + (p99 - p50) * (i - 500) / 490
        } else {
            p99 + p99 * (i - 990) / 10
        };
        h.record(v.max(1)).unwrap();
    }
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(&h, &mut bytes)
        .unwrap();
    json!({
        "count": h.len(), "min_ns": h.min(), "p50_ns": p50, "p90_ns": (p50 + p99) / 2,
        "p99_ns": p99, "p999_ns": h.value_at_quantile(0.999), "max_ns": h.max(),
        "mean_ns": h.mean(),
        "hdr": base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

/// Run the built `lab` with `args`.
pub fn lab(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .output()
        .expect("the lab binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
