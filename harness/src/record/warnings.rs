//! When the numbers are suspect, say so (hyperfine's habit): every warning
//! a run earns is computed here, stored in the result file's `warnings`, and
//! printed under the summary.

use crate::record::result::RunResult;
use rmap_impls::LockKind;
use rmap_workloads::RunReport;

/// Below this many samples a metric's p99 is one of its largest few values.
const FEW_SAMPLES: u64 = 100;

/// A run whose zapper issued less than this share of the zaps its schedule
/// requested ran under a lighter load than it was asked to.
pub const MIN_ZAPS_ISSUED: f64 = 0.95;

/// Spans shorter than this need a fenced TSC read to be resolved.
const SHORT_SPAN_NS: u64 = 100;

/// The oversubscription sentence, shared by the run header and the result.
pub fn oversubscription(vcpus: u32, threads: u32, online: u32, lock: LockKind) -> Option<String> {
    if threads <= online {
        return None;
    }
    let lock_note = match lock {
        LockKind::Spin => "mmu_lock spins in FIFO order (--mmu-lock spin): a waiter burns its whole time slice while the holder, or any waiter queued ahead of it, is descheduled, so lock waits measure the scheduler",
        LockKind::Park => "mmu_lock parks (auto-chosen because threads outnumber CPUs; --mmu-lock spin forces the kernel's spinning behaviour)",
    };
    Some(format!(
        "{vcpus} vCPUs ({threads} worker threads) on {online} online CPUs: {}-fold oversubscription. \
         A descheduled mmu_lock holder stalls every waiter, and a remote TLB flush waits for each \
         vCPU descheduled in guest mode; {lock_note}. The kernel's mmu_lock holder runs with \
         preemption disabled and cannot be descheduled, the lab's can: lock tails and holder \
         preemption here are a property of userspace, not of the design. On a host with a CPU per \
         vCPU these latencies are far lower.",
        fold(threads as f64 / online as f64)
    ))
}

/// `17` for whole factors, `1.5` otherwise.
fn fold(x: f64) -> String {
    if (x - x.round()).abs() < 0.05 {
        format!("{:.0}", x)
    } else {
        format!("{x:.1}")
    }
}

pub fn for_run(report: &RunReport, r: &RunResult) -> Vec<String> {
    let cfg = &report.config;
    let mut w = Vec::new();
    if let Some(s) = oversubscription(cfg.vcpus, report.threads, report.online_cpus, cfg.mmu_lock) {
        w.push(s);
    }
    if cfg!(debug_assertions) {
        w.push("lab was built without optimisations (debug build): timings are not representative; use cargo run --release".into());
    }
    if report.interrupted {
        w.push(format!(
            "the run was interrupted after {:.2}s of {:.2}s: figures cover the shorter time",
            report.measured.as_secs_f64(),
            cfg.duration.as_secs_f64()
        ));
    }
    if let Some(flaw) = cfg.impl_kind.flaw() {
        w.push(format!("{}: {flaw}", cfg.impl_kind));
    }
    if let Some(b) = cfg.bug {
        w.push(format!(
            "injected bug '{b}': {} (numbers are not those of the correct design)",
            b.description()
        ));
    }
    if !cfg.record_latency {
        w.push(
            "latency recording is off (--no-latency): no percentiles but vcpu.pass, counters only"
                .into(),
        );
    }
    if let Some(s) = zaps_short(r) {
        w.push(s);
    }
    if !report.clock.fenced {
        let short: Vec<&str> = r
            .metrics
            .iter()
            .filter(|(_, m)| m.p50_ns < SHORT_SPAN_NS)
            .map(|(n, _)| n.as_str())
            .collect();
        if !short.is_empty() {
            w.push(format!(
                "{}: p50 below {SHORT_SPAN_NS} ns on the {} clock ({:.0} ns a read, no fenced TSC): spans that short cannot be resolved",
                short.join(", "),
                report.clock.source,
                report.clock.read_ns
            ));
        }
    }
    for (name, m) in &r.metrics {
        // Lock metrics and walker.wp_retry count events, not operations: few
        // samples there is a finding, not a weak estimate.
        let event = name.starts_with("mmu_lock")
            || name.starts_with("rmap_lock")
            || name == "walker.wp_retry";
        if m.count < FEW_SAMPLES && !event {
            w.push(format!(
                "{name}: only {} samples, so its p99 and p99.9 are among its largest few values",
                m.count
            ));
        }
    }
    w
}

/// The zapper issued fewer than [`MIN_ZAPS_ISSUED`] of the zaps its
/// schedule requested: the sentence, or `None`.
pub fn zaps_short(r: &RunResult) -> Option<String> {
    let share = r.zaps_issued_share()?;
    (share < MIN_ZAPS_ISSUED).then(|| {
        format!(
            "the zapper issued {} of the {} zaps requested ({:.0}%): this run had a lighter zap load than --zap-rate asked for, and zapper.zap counts the backlog",
            r.counters.zaps,
            r.counters.get("zaps_requested").unwrap_or(0),
            100.0 * share
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversubscription_is_named_only_when_true() {
        assert!(oversubscription(2, 2, 2, LockKind::Spin).is_none());
        let s = oversubscription(32, 34, 2, LockKind::Park).unwrap();
        assert!(s.contains("17-fold") && s.contains("TLB flush"), "{s}");
    }
}
