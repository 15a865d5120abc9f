//! When the numbers are suspect, say so (hyperfine's habit): every warning
//! a run earns is computed here, stored in the result file's `warnings`, and
//! printed under the summary.

use crate::record::result::RunResult;
use rmap_impls::LockKind;
use rmap_workloads::RunReport;

/// Below this many samples a metric's p99 is one of its largest few values.
const FEW_SAMPLES: u64 = 100;

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
        w.push("latency recording is off (--no-latency): no percentiles, counters only".into());
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
