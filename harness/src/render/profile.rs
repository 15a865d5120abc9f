//! What `lab profile` prints when its session ends: per implementation, the
//! medians over the intervals of its rates, CPU use and p99s.

use super::terminal::Table;
use crate::analysis::series::{Op, TimeSeries};
use crate::analysis::Stats;
use crate::record::units::{format_ns, format_si};
use rmap_workloads::RoleKind;

/// The medians over the intervals that stdout shows, per implementation.
pub fn summary(series: &[TimeSeries]) -> String {
    let median = |v: Vec<(f64, f64)>| -> String {
        let ys: Vec<f64> = v.into_iter().map(|(_, y)| y).collect();
        Stats::of(&ys).map_or("-".into(), |s| format_si(s.median))
    };
    let median_ns = |v: Vec<(f64, f64)>| -> String {
        let ys: Vec<f64> = v.into_iter().map(|(_, y)| y).collect();
        Stats::of(&ys).map_or("-".into(), |s| format_ns(s.median))
    };
    let cpus = |s: &TimeSeries, role| {
        let v: Vec<f64> = s
            .event_per_s(role, "task-clock")
            .into_iter()
            .map(|(_, ns)| ns / 1e9)
            .collect();
        Stats::of(&v).map_or("-".into(), |s| format!("{:.2}", s.median))
    };
    let mut t = Table::new(&[
        "impl",
        "intervals",
        "writes/s",
        "walks/s",
        "rounds/s",
        "restarts/s",
        "vcpu CPUs",
        "vcpu cs/s",
        "walker CPUs",
        "walker cs/s",
        "fault_slow p99",
        "wp_gfn p99",
        "round p99",
        "tlb_flush p99",
    ]);
    for s in series {
        t.row(vec![
            s.impl_name.to_string(),
            s.intervals.len().to_string(),
            median(s.op_per_s(Op::GuestWrites)),
            median(s.op_per_s(Op::Walks)),
            median(s.op_per_s(Op::Rounds)),
            median(s.op_per_s(Op::Restarts)),
            cpus(s, RoleKind::Vcpu),
            median(s.event_per_s(RoleKind::Vcpu, "context-switches")),
            cpus(s, RoleKind::Walker),
            median(s.event_per_s(RoleKind::Walker, "context-switches")),
            median_ns(s.p99("vcpu.fault_slow")),
            median_ns(s.p99("walker.wp_gfn")),
            median_ns(s.p99("walker.round")),
            median_ns(s.p99("walker.tlb_flush")),
        ]);
    }
    t.render()
}
