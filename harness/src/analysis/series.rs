//! One run's time series: the VM's per-interval histograms and operation
//! counts (`RunReport::intervals`) joined with the sampler's per-interval
//! perf counters ([`CounterSample`]), by interval index, and written as
//! `<impl>.timeseries.json` and `<impl>.timeseries.csv` by
//! `render::export::timeseries` (the columns are documented in the module
//! doc of `cmd::profile`).
//!
//! Two clocks, on purpose: operation rates divide by the interval's nominal
//! length (`dt_s`, from the coordinator's tick times; the VM attributes each
//! operation to the interval its thread saw when it began it), counter
//! rates by the wall time between the two counter readings (`perf_dt_s`),
//! since the counters count exactly between those two instants.

use crate::record::result::MetricSummary;
use crate::session::perf::{events, role_operation, role_operations};
use crate::session::sampler::CounterSample;
use rmap_workloads::{Config, Counters, RoleKind, RunReport};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub const SCHEMA: &str = "rmap-lab/timeseries/v1";

/// The operation counts of an interval, each produced by one role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    GuestWrites,
    FaultsFast,
    FaultsSlow,
    Walks,
    Restarts,
    Rounds,
    PagesHarvested,
    TlbFlushes,
    Zaps,
    SptesZapped,
    AgeWalks,
    AgeYoung,
}

impl Op {
    pub const ALL: [Op; 12] = [
        Op::GuestWrites,
        Op::FaultsFast,
        Op::FaultsSlow,
        Op::Walks,
        Op::Restarts,
        Op::Rounds,
        Op::PagesHarvested,
        Op::TlbFlushes,
        Op::Zaps,
        Op::SptesZapped,
        Op::AgeWalks,
        Op::AgeYoung,
    ];

    /// As in the result file's `counters`.
    pub fn name(self) -> &'static str {
        match self {
            Op::GuestWrites => "guest_writes",
            Op::FaultsFast => "faults_fast",
            Op::FaultsSlow => "faults_slow",
            Op::Walks => "walks",
            Op::Restarts => "restarts",
            Op::Rounds => "rounds",
            Op::PagesHarvested => "pages_harvested",
            Op::TlbFlushes => "tlb_flushes",
            Op::Zaps => "zaps",
            Op::SptesZapped => "sptes_zapped",
            Op::AgeWalks => "age_walks",
            Op::AgeYoung => "age_young",
        }
    }

    pub fn role(self) -> RoleKind {
        match self {
            Op::GuestWrites | Op::FaultsFast | Op::FaultsSlow => RoleKind::Vcpu,
            Op::Zaps | Op::SptesZapped => RoleKind::Zapper,
            Op::AgeWalks | Op::AgeYoung => RoleKind::Aging,
            _ => RoleKind::Walker,
        }
    }

    pub fn count(self, c: &Counters) -> u64 {
        match self {
            Op::GuestWrites => c.guest_writes,
            Op::FaultsFast => c.faults_fast,
            Op::FaultsSlow => c.faults_slow,
            Op::Walks => c.walk.walks,
            Op::Restarts => c.walk.total_restarts(),
            Op::Rounds => c.rounds,
            Op::PagesHarvested => c.pages_harvested,
            Op::TlbFlushes => c.tlb_flushes,
            Op::Zaps => c.zaps,
            Op::SptesZapped => c.sptes_zapped,
            Op::AgeWalks => c.aging.walk.walks,
            Op::AgeYoung => c.aging.young,
        }
    }
}

/// The role a latency metric belongs to, from its name: its first part
/// (`vcpu.fault_slow`), or a lock metric's last (`mmu_lock.wait.vcpu`);
/// `None` for `mmu_lock.wait` and `mmu_lock.hold`, which merge every role.
pub fn metric_role(metric: &str) -> Option<RoleKind> {
    let prefix = metric.split('.').next()?;
    let suffix = metric.rsplit('.').next()?;
    RoleKind::ALL
        .into_iter()
        .find(|r| r.name() == prefix)
        .or_else(|| RoleKind::ALL.into_iter().find(|r| r.name() == suffix))
}

/// The roles a configuration starts threads for.
pub fn roles(cfg: &Config) -> Vec<RoleKind> {
    let mut v = vec![RoleKind::Vcpu];
    if cfg.dirty_logging() {
        v.push(RoleKind::Walker);
    }
    if cfg.zapping() {
        v.push(RoleKind::Zapper);
    }
    if cfg.aging() {
        v.push(RoleKind::Aging);
    }
    v
}

/// One event of one role in one interval.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EventRate {
    /// Scaled for multiplexing (`None`: enabled but never running).
    pub value: Option<f64>,
    /// `value` per second of `perf_dt_s`.
    pub per_s: Option<f64>,
    /// `value` per operation of the role in the interval
    /// (`perf::role_operation`); `None` when the role did none.
    pub per_op: Option<f64>,
    pub time_enabled_ns: u64,
    pub time_running_ns: u64,
}

/// One interval.
#[derive(Clone, Debug, Serialize)]
pub struct Interval {
    pub index: u64,
    /// Seconds into the measured phase at the end of the interval.
    pub t_s: f64,
    /// Nominal length (the last interval may be shorter).
    pub dt_s: f64,
    /// Wall time between the counter readings around the interval.
    pub perf_dt_s: Option<f64>,
    /// Operations of the interval (`Op` names), and per second of `dt_s`.
    pub counts: BTreeMap<&'static str, u64>,
    pub rates: BTreeMap<&'static str, f64>,
    /// Latency histograms of the interval that saw samples.
    pub metrics: BTreeMap<&'static str, MetricSummary>,
    /// Role -> event -> counts (supported events only).
    pub perf: BTreeMap<&'static str, BTreeMap<&'static str, EventRate>>,
}

/// `<impl>.timeseries.json`.
#[derive(Clone, Debug, Serialize)]
pub struct TimeSeries {
    pub schema: &'static str,
    #[serde(rename = "impl")]
    pub impl_name: &'static str,
    pub workload: &'static str,
    pub vcpus: u32,
    pub interval_s: f64,
    pub interrupted: bool,
    /// Latency histograms were recorded (not `--no-latency`).
    pub latency: bool,
    /// The run's result file, in the session directory.
    pub result: String,
    /// Roles that ran, and the perf events that counted, in `lab list` order.
    pub roles: Vec<&'static str>,
    pub events: Vec<&'static str>,
    /// Role -> the operation `per_op` divides by (`perf::role_operation`).
    pub per_op: BTreeMap<&'static str, &'static str>,
    pub intervals: Vec<Interval>,
}

impl TimeSeries {
    /// Join the run's intervals with the counter samples by index.
    pub fn build(
        report: &RunReport,
        counters: &[CounterSample],
        interval: Duration,
        result_file: String,
    ) -> TimeSeries {
        let cfg = &report.config;
        let roles = roles(cfg);
        let n = report.intervals.len().max(
            counters
                .iter()
                .map(|c| c.index as usize + 1)
                .max()
                .unwrap_or(0),
        );
        let none = Counters::default();
        let mut prev_t = 0.0;
        let mut intervals = Vec::with_capacity(n);
        for i in 0..n {
            let sample = report.intervals.get(i);
            let cs = counters.iter().find(|c| c.index == i as u64);
            let t_s = cs
                .map(|c| c.t_s)
                .or(sample.map(|s| s.t_s))
                .unwrap_or(prev_t);
            // To the nanosecond: 0.3 - 0.2 is not 0.1 in binary.
            let dt_s = ((t_s - prev_t) * 1e9).round() / 1e9;
            prev_t = t_s;
            let c = sample.map_or(&none, |s| &s.counters);
            let mut counts = BTreeMap::new();
            let mut rates = BTreeMap::new();
            for op in Op::ALL.into_iter().filter(|o| roles.contains(&o.role())) {
                let v = op.count(c);
                counts.insert(op.name(), v);
                rates.insert(op.name(), if dt_s > 0.0 { v as f64 / dt_s } else { 0.0 });
            }
            let metrics = sample
                .map(|s| {
                    s.histograms
                        .iter()
                        .map(|(name, h)| (*name, MetricSummary::from_histogram(h)))
                        .collect()
                })
                .unwrap_or_default();
            let perf = cs
                .map(|cs| {
                    cs.delta
                        .roles
                        .iter()
                        .map(|(role, evs)| {
                            let ops = role_operations(*role, c);
                            let evs = evs
                                .iter()
                                .map(|(name, counts)| {
                                    let value = counts.scaled();
                                    let rate = EventRate {
                                        value,
                                        per_s: value
                                            .filter(|_| cs.wall_s > 0.0)
                                            .map(|v| v / cs.wall_s),
                                        per_op: value.filter(|_| ops > 0).map(|v| v / ops as f64),
                                        time_enabled_ns: counts.enabled_ns,
                                        time_running_ns: counts.running_ns,
                                    };
                                    (*name, rate)
                                })
                                .collect();
                            (role.name(), evs)
                        })
                        .collect()
                })
                .unwrap_or_default();
            intervals.push(Interval {
                index: i as u64,
                t_s,
                dt_s,
                perf_dt_s: cs.map(|c| c.wall_s),
                counts,
                rates,
                metrics,
                perf,
            });
        }
        let events = events::KNOWN
            .iter()
            .map(|d| d.name)
            .filter(|name| {
                counters
                    .iter()
                    .any(|c| c.delta.roles.values().any(|evs| evs.contains_key(name)))
            })
            .collect();
        TimeSeries {
            schema: SCHEMA,
            impl_name: cfg.impl_kind.name(),
            workload: cfg.workload.name(),
            vcpus: cfg.vcpus,
            interval_s: interval.as_secs_f64(),
            interrupted: report.interrupted,
            latency: cfg.record_latency,
            result: result_file,
            roles: roles.iter().map(|r| r.name()).collect(),
            events,
            per_op: roles
                .iter()
                .map(|r| (r.name(), role_operation(*r)))
                .collect(),
            intervals,
        }
    }

    /// The role's rate of `event` per second in each interval that has it:
    /// `(t_s, per_s)`.
    pub fn event_per_s(&self, role: RoleKind, event: &str) -> Vec<(f64, f64)> {
        self.intervals
            .iter()
            .filter_map(|i| {
                let r = i.perf.get(role.name())?.get(event)?;
                Some((i.t_s, r.per_s?))
            })
            .collect()
    }

    /// `(t_s, ops per second)` of `op` in each interval.
    pub fn op_per_s(&self, op: Op) -> Vec<(f64, f64)> {
        self.intervals
            .iter()
            .filter_map(|i| Some((i.t_s, *i.rates.get(op.name())?)))
            .collect()
    }

    /// `(t_s, p99 in ns)` of `metric` in each interval that saw it.
    pub fn p99(&self, metric: &str) -> Vec<(f64, f64)> {
        self.intervals
            .iter()
            .filter_map(|i| Some((i.t_s, i.metrics.get(metric)?.p99_ns as f64)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmap_workloads::METRIC_NAMES;

    /// Counters whose every field differs, so a mix-up shows.
    fn distinct() -> Counters {
        let mut c = Counters {
            guest_writes: 1,
            faults_fast: 2,
            faults_slow: 3,
            zaps: 5,
            sptes_zapped: 6,
            rounds: 7,
            pages_harvested: 8,
            tlb_flushes: 9,
            ..Counters::default()
        };
        c.walk.walks = 10;
        c.aging.walk.walks = 11;
        c.aging.young = 12;
        c
    }

    #[test]
    fn each_role_operation_is_one_of_its_ops() {
        let c = distinct();
        for role in RoleKind::ALL {
            let n = role_operations(role, &c);
            assert!(
                Op::ALL
                    .iter()
                    .any(|op| op.role() == role && op.count(&c) == n),
                "{}: per_op divides by {n}, which no {} column reports",
                role.name(),
                role.name()
            );
        }
        let names: std::collections::BTreeSet<&str> = Op::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names.len(), Op::ALL.len(), "two ops share a column name");
    }

    #[test]
    fn metrics_belong_to_the_role_they_are_named_after() {
        assert_eq!(metric_role("vcpu.fault_slow"), Some(RoleKind::Vcpu));
        assert_eq!(metric_role("walker.round"), Some(RoleKind::Walker));
        assert_eq!(metric_role("zapper.zap"), Some(RoleKind::Zapper));
        assert_eq!(metric_role("aging.pass"), Some(RoleKind::Aging));
        assert_eq!(metric_role("mmu_lock.wait"), None);
        assert_eq!(metric_role("mmu_lock.wait.zapper"), Some(RoleKind::Zapper));
        assert_eq!(metric_role("rmap_lock.hold.walker"), Some(RoleKind::Walker));
        // Every metric the VM records has a column.
        for m in METRIC_NAMES {
            let prefix = m.split('.').next().unwrap();
            assert!(metric_role(m).is_some() || prefix == "mmu_lock", "{m}");
        }
    }
}
