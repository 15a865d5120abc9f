//! The aging thread (`aging` workload): the primary MMU's page reclaim
//! asking KVM which pages the guest used, through the mmu notifier's
//! `clear_young` (see [aging](crate#aging) in the crate docs).
//!
//! A *pass* covers the whole memslot once, in ranges of `Config::age_gfns`
//! gfns, one [`Rmap::age`](rmap_impls::Rmap::age) call per range: each call
//! test-and-clears the Accessed bit of every spte in the range, holding
//! whatever the design holds (`mmu_lock` for the whole range for `mmu-lock`,
//! as KVM did until Linux 6.14; each rmap's lock for `rmap-lock`, as 6.15
//! does). The pass time is the figure Linux 6.15's "KVM: x86/mmu: Age sptes
//! locklessly" cover letter reports (`aging.pass`), each call is
//! `aging.range`.
//!
//! With `Config::age_period` zero the passes run back to back, as the
//! kernel's `access_tracking_perf_test` runs them; otherwise a pass starts
//! every period (open loop, paced by a deadline like the zapper): a pass
//! that overran its period makes the next start at once, slots it overran
//! entirely are skipped, and `age_passes_due` counts every slot beside
//! `age_passes`, the passes done.

use super::worker::Worker;
use crate::metrics::Metric;
use std::time::{Duration, Instant};

pub(crate) fn aging_main(w: &mut Worker<'_>) {
    let ctx = w.ctx;
    let cfg = ctx.cfg;
    let gfns = cfg.gfns();
    let step = cfg.age_gfns.clamp(1, gfns);
    let period = (!cfg.age_period.is_zero()).then_some(cfg.age_period);
    let mut next = Instant::now();

    while w.poll() {
        if let Some(p) = period {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
                if !w.poll() {
                    break;
                }
            } else {
                // Late: start at once; slots that passed entirely are due
                // but skipped.
                let skipped = slots_between(next, now, p);
                w.counters.age_passes_due += skipped;
                next += p * skipped as u32;
            }
            next += p;
        }
        let t0 = w.now();
        let mut start = 0;
        while start < gfns {
            if !w.poll() {
                // A pass cut short by the end of the run is not a pass.
                return;
            }
            let end = (start + step).min(gfns);
            let tr = w.now();
            let st = ctx.rmap.age(&ctx.sptes, start..end, w);
            w.record_since(Metric::AgeRange, tr);
            w.counters.aging.add(&st);
            start = end;
        }
        w.record_since(Metric::AgePass, t0);
        // The slot this pass filled is counted with it, so that a pass
        // begun in warmup counts on both sides or neither.
        w.counters.age_passes += 1;
        w.counters.age_passes_due += 1;
    }
}

/// Whole periods `p` from `from` to `to`.
fn slots_between(from: Instant, to: Instant, p: Duration) -> u64 {
    (to.saturating_duration_since(from).as_nanos() / p.as_nanos().max(1)) as u64
}
