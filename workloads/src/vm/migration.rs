//! The migration thread: dirty-log rounds back to back (DESIGN §3).
//!
//! One round is `KVM_GET_DIRTY_LOG` followed by the copy:
//!
//! 1. fetch and clear the dirty bitmap (the harvest);
//! 2. write-protect every spte of every harvested gfn through the rmap, in
//!    calls of `--wp-batch` gfns (`mmu-lock` holds `mmu_lock` for a whole
//!    call; by default one call takes the whole harvest, as in 2013);
//! 3. flush remote TLBs: wait until no vCPU can still write through a W it
//!    read before step 2;
//! 4. copy the harvested pages to the destination.
//!
//! `skip-flush` (an injected bug) copies before the flush: a vCPU still in
//! guest mode writes after its page was copied, and the write is never
//! logged. The oracle snapshots the source before step 1 and checks the
//! destination after step 4 (`oracle.rs`); neither is inside the round's
//! timing.

use super::memory::GuestMemory;
use super::oracle::Oracle;
use super::worker::Worker;
use super::{RoundSample, SpanKind};
use crate::clock;
use crate::metrics::{LiveField, Metric};
use rmap_impls::{Bug, Gfn};

/// A round's record is kept for at most this many rounds.
const MAX_ROUND_SAMPLES: usize = 100_000;

pub(crate) struct Migration {
    pub(crate) oracle: Oracle,
    harvest: Vec<Gfn>,
    pub(crate) rounds: Vec<RoundSample>,
    /// `churn`: the gfns every round write-protects (the hot set).
    walk_all: Option<Vec<Gfn>>,
}

impl Migration {
    pub(crate) fn new(oracle: Oracle, walk_all: Option<Vec<Gfn>>) -> Self {
        Migration {
            oracle,
            harvest: Vec::new(),
            rounds: Vec::new(),
            walk_all,
        }
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
        // `churn` write-protects every hot gfn every round, dirty or not:
        // continuous walks of the rmaps under churn. Protecting more than
        // the harvest is always safe; only harvested pages are copied.
        let walk = self.walk_all.as_deref().unwrap_or(&self.harvest);
        let mut protected = 0;
        for gfns in walk.chunks(batch) {
            w.walks_begin();
            let st = ctx.rmap.write_protect(&ctx.sptes, gfns, w);
            protected += st.protected;
            w.counters.walk.add(&st);
            w.live(LiveField::Walks, st.walks);
            w.live(LiveField::Restarts, st.total_restarts());
        }
        let pages = self.harvest.len() as u64;
        // As `kvm_get_dirty_log_protect`: flush only when something was
        // harvested (or, in churn, write-protected). An empty round is the
        // ioctl returning an empty bitmap: it is counted, not timed.
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

        self.oracle.after_copy(&ctx.mem, &ctx.dirty, &ctx.vcpus);
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
        ctx.rmap
            .write_protect(&ctx.sptes, &self.harvest, &mut rmap_impls::NoObserver);
        ctx.vcpus.flush();
        for &g in &self.harvest {
            ctx.mem.copy(g);
        }
        self.oracle.after_copy(&ctx.mem, &ctx.dirty, &ctx.vcpus);
        self.oracle.final_check(&ctx.mem);
    }
}
