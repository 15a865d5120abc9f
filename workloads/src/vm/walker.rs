//! The walker: the thread that runs dirty-log rounds back to back (see
//! [the dirty-log round](crate#the-dirty-log-round) in the crate docs).
//!
//! In KVM's terms it is the userspace migration thread (QEMU's) calling
//! `KVM_GET_DIRTY_LOG` and copying what it returns: in Linux 3.10 the ioctl
//! (`kvm_vm_ioctl_get_dirty_log`, `arch/x86/kvm/x86.c`) fetches and clears
//! the dirty bitmap a word at a time, write-protects every spte of every
//! harvested gfn through its rmap, and flushes remote TLBs when anything
//! was dirty; userspace then copies the pages. The lab names the thread
//! after the walks it makes: its role is [`RoleKind::Walker`] and its
//! metrics are `walker.round`, `walker.wp_gfn` and `walker.tlb_flush`.
//!
//! A [`Walker::round`] is those four steps, with the oracle's snapshot
//! before the harvest and its check after the copy, both outside the
//! round's timing, and, when walks are checked for missed sptes, the
//! [`SpteCheck`] around every write-protect call (outside the walks' own
//! timing, inside the round's). The `skip-flush` injected bug copies before
//! the flush. The first violation either check finds is reported to the
//! run ([`Shared::violation_found`]), which a torture may end on.
//!
//! [`Shared::violation_found`]: super::shared::Shared::violation_found
//!
//! [`RoleKind::Walker`]: crate::RoleKind::Walker

use super::memory::GuestMemory;
use super::oracle::Oracle;
use super::probe::SpanKind;
use super::report::RoundSample;
use super::spte_check::SpteCheck;
use super::worker::Worker;
use crate::clock;
use crate::config::WorkloadKind;
use crate::metrics::{LiveField, Metric};
use rmap_impls::{Bug, Gfn, WalkStats};

/// A round's record is kept for at most this many rounds.
const MAX_ROUND_SAMPLES: usize = 100_000;

/// `torture`: write-protect passes over the hot gfns per round (continuous
/// walks; a round's flush and copy are slow next to a walk).
const TORTURE_PASSES: usize = 8;

/// The walker's state across rounds: the oracle, the missed-spte check, the
/// harvest buffer, and the rounds it timed.
pub(crate) struct Walker {
    pub(crate) oracle: Oracle,
    /// When walks are checked for missed sptes.
    pub(crate) spte_check: Option<SpteCheck>,
    harvest: Vec<Gfn>,
    pub(crate) rounds: Vec<RoundSample>,
    /// `churn`, `torture`: the gfns every round write-protects (the hot set).
    walk_all: Option<Vec<Gfn>>,
    /// Rounds run, warmup included.
    round_no: u64,
}

impl Walker {
    pub(crate) fn new(oracle: Oracle, spte_check: bool, walk_all: Option<Vec<Gfn>>) -> Self {
        Walker {
            oracle,
            spte_check: spte_check.then(SpteCheck::default),
            harvest: Vec::new(),
            rounds: Vec::new(),
            walk_all,
            round_no: 0,
        }
    }

    /// Write-protect `gfns` in one call, checked for missed sptes when the
    /// run checks them.
    fn write_protect(
        spte_check: &mut Option<SpteCheck>,
        round: u64,
        gfns: &[Gfn],
        w: &mut Worker<'_>,
    ) -> WalkStats {
        let ctx = w.ctx;
        let check = spte_check.as_mut().zip(ctx.fault_gens.as_ref());
        let Some((check, gens)) = check else {
            return ctx.rmap.write_protect(&ctx.sptes, gfns, w);
        };
        check.before_walks(gfns, &ctx.sptes, gens);
        let st = ctx.rmap.write_protect(&ctx.sptes, gfns, w);
        if check.after_walks(gfns, round, &ctx.sptes, gens, &ctx.vcpus, &ctx.dirty) > 0 {
            ctx.violation_found();
        }
        st
    }

    /// Round 0: copy everything (before any vCPU runs).
    pub(crate) fn round_zero(mem: &GuestMemory) {
        for g in 0..mem.gfns() {
            mem.copy(g);
        }
    }

    /// One dirty-log round, checked by the oracle.
    pub(crate) fn round(&mut self, w: &mut Worker<'_>) {
        let ctx = w.ctx;
        let skip_flush = ctx.cfg.workload_bug() == Some(Bug::SkipFlush);
        self.oracle.before_harvest(&ctx.mem);

        let traced = w.trace_begin(SpanKind::Round);
        let t0 = w.now();
        self.harvest.clear();
        ctx.dirty.harvest(&mut self.harvest);
        let batch = ctx.cfg.wp_batch.unwrap_or(u64::MAX).max(1) as usize;
        // `churn` and `torture` write-protect every hot gfn every round
        // (`torture` several times), dirty or not: continuous walks of the
        // rmaps under churn. Protecting more than the harvest is always
        // safe; only harvested pages are copied.
        let walk = self.walk_all.as_deref().unwrap_or(&self.harvest);
        let passes = match ctx.cfg.workload {
            WorkloadKind::Torture => TORTURE_PASSES,
            _ => 1,
        };
        let mut protected = 0;
        for _ in 0..passes {
            for gfns in walk.chunks(batch) {
                w.walks_begin();
                let st = Self::write_protect(&mut self.spte_check, self.round_no, gfns, w);
                protected += st.protected;
                w.counters.walk.add(&st);
                w.live(LiveField::Walks, st.walks);
                w.live(LiveField::Restarts, st.total_restarts());
            }
        }
        let pages = self.harvest.len() as u64;
        // As Linux 3.10's `kvm_vm_ioctl_get_dirty_log`: flush only when
        // something was harvested (or, in churn, write-protected). An empty
        // round is the ioctl returning an empty bitmap: counted, not timed.
        let flush = pages > 0 || protected > 0;
        if skip_flush {
            for &g in &self.harvest {
                ctx.mem.copy(g);
            }
        }
        if flush {
            let tf = w.now();
            ctx.vcpus.flush();
            let tf_end = w.record_since(Metric::TlbFlush, tf);
            if traced {
                w.span(SpanKind::TlbFlush, tf, tf_end, 0);
            }
            w.counters.tlb_flushes += 1;
        }
        if !skip_flush {
            for &g in &self.harvest {
                ctx.mem.copy(g);
            }
        }
        let end = if flush {
            w.record_since(Metric::Round, t0)
        } else {
            w.now()
        };
        if traced {
            w.span(SpanKind::Round, t0, end, pages);
        }
        w.trace_end();

        w.counters.rounds += 1;
        w.counters.rounds_empty += (!flush) as u64;
        w.counters.pages_harvested += pages;
        w.counters.pages_copied += pages;
        w.live(LiveField::Rounds, 1);
        if flush && w.measuring() && w.timing && self.rounds.len() < MAX_ROUND_SAMPLES {
            self.rounds.push(RoundSample {
                t_s: clock::delta_ns(ctx.measure_start(), t0) as f64 / 1e9,
                round_ns: clock::delta_ns(t0, end),
                pages,
            });
        }

        self.after_copy(w);
        self.round_no += 1;
    }

    /// The oracle's check after a round's copy; a new lost write is a
    /// violation.
    fn after_copy(&mut self, w: &Worker<'_>) {
        let ctx = w.ctx;
        let lost = self.oracle.lost_writes;
        self.oracle.after_copy(&ctx.mem, &ctx.dirty, &ctx.vcpus);
        if self.oracle.lost_writes > lost {
            ctx.violation_found();
        }
    }

    /// The thread: rounds back to back until the run stops.
    pub(crate) fn main(&mut self, w: &mut Worker<'_>) {
        while w.poll() {
            self.round(w);
        }
    }

    /// The final round, with every vCPU stopped, then the final comparison.
    pub(crate) fn finish(&mut self, w: &mut Worker<'_>) {
        let ctx = w.ctx;
        self.oracle.before_harvest(&ctx.mem);
        self.harvest.clear();
        ctx.dirty.harvest(&mut self.harvest);
        Self::write_protect(&mut self.spte_check, self.round_no, &self.harvest, w);
        ctx.vcpus.flush();
        for &g in &self.harvest {
            ctx.mem.copy(g);
        }
        self.after_copy(w);
        let lost = self.oracle.lost_writes;
        self.oracle.final_check(&ctx.mem);
        if self.oracle.lost_writes > lost {
            ctx.violation_found();
        }
    }
}
