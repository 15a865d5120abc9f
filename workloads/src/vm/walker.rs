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
//! round's timing and timed together as `walker.oracle_scan` (the lab's own
//! cost: it reads every watched page's line each round), and, when walks are
//! checked for missed sptes, the [`SpteCheck`] around every write-protect
//! call (outside the walks' own timing, inside the round's). The `skip-flush`
//! injected bug copies before the flush. The first violation either check
//! finds is reported to the run ([`Shared::violation_found`]), which a
//! torture may end on.
//!
//! **Where the flush runs** (`Config::tlb_flush`). In Linux 3.10 the flush
//! is inside `mmu_lock`: the ioctl write-protects and then, `if (is_dirty)`,
//! calls `kvm_flush_remote_tlbs` before `spin_unlock(&kvm->mmu_lock)`;
//! commit 198c74f43f0f ("KVM: MMU: flush tlb out of mmu lock when
//! write-protect the sptes", 2014) moved it after the unlock. By default
//! (`under-lock`) the round hands the flush to the last write-protect call
//! as the work it does at the end of its batch
//! ([`rmap_impls::Rmap::write_protect_then`]), which `mmu-lock` runs inside
//! `mmu_lock` and every other design after its walk; `after-unlock` flushes
//! after the last call returns.
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
use crate::config::{TlbFlush, WorkloadKind};
use crate::metrics::{LiveField, Metric};
use rmap_impls::{BatchEnd, Bug, Gfn, Observer, WalkStats};

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

    /// Write-protect `gfns` in one call, with `end` as the batch's end work
    /// when given ([`rmap_impls::Rmap::write_protect_then`]), checked for
    /// missed sptes when the run checks them (after the call: the end work
    /// is a flush, which changes no spte).
    fn write_protect(
        spte_check: &mut Option<SpteCheck>,
        round: u64,
        gfns: &[Gfn],
        w: &mut Worker<'_>,
        end: Option<&mut BatchEnd<'_>>,
    ) -> WalkStats {
        let ctx = w.ctx;
        let mut check = spte_check.as_mut().zip(ctx.fault_gens.as_ref());
        if let Some((check, gens)) = &mut check {
            check.before_walks(gfns, &ctx.sptes, gens);
        }
        let st = match end {
            Some(end) => ctx.rmap.write_protect_then(&ctx.sptes, gfns, w, end),
            None => ctx.rmap.write_protect(&ctx.sptes, gfns, w),
        };
        if let Some((check, gens)) = check {
            if check.after_walks(gfns, round, &ctx.sptes, gens, &ctx.vcpus, &ctx.dirty) > 0 {
                ctx.violation_found();
            }
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
        let s0 = w.now();
        self.oracle.before_harvest(&ctx.mem);
        let scan_ns = clock::delta_ns(s0, w.now());

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
        let pages = self.harvest.len() as u64;
        if traced {
            w.trace_counter("dirty pages", "per round", t0, pages as f64);
        }
        let mut protected = 0;
        // The flush step (with `skip-flush`'s early copy before it), run at
        // the end of the last batch or after it. It may run inside
        // `mmu_lock`, where the worker is the lock's observer, so it keeps
        // its timestamps here and the worker records them afterwards.
        let harvest = &self.harvest;
        let timing = w.timing;
        let mut flushed: Option<(u64, u64)> = None;
        let mut flush_step = |protected: u64| {
            // As Linux 3.10's `kvm_vm_ioctl_get_dirty_log`: flush only when
            // something was harvested (or, in churn, write-protected). An
            // empty round is the ioctl returning an empty bitmap: counted,
            // not timed.
            if skip_flush {
                for &g in harvest {
                    ctx.mem.copy(g);
                }
            }
            if pages > 0 || protected > 0 {
                let tf = if timing { clock::now() } else { 0 };
                ctx.vcpus.flush();
                let tf_end = if timing { clock::now() } else { 0 };
                flushed = Some((tf, tf_end));
            }
        };
        let under_lock = ctx.cfg.tlb_flush == TlbFlush::UnderLock;
        let passes = match ctx.cfg.workload {
            WorkloadKind::Torture => TORTURE_PASSES,
            _ => 1,
        };
        let calls = passes * walk.len().div_ceil(batch);
        let mut call = 0;
        for _ in 0..passes {
            for gfns in walk.chunks(batch) {
                call += 1;
                w.walks_begin();
                let before = protected;
                let mut end =
                    |st: &WalkStats, _: &mut dyn Observer| flush_step(before + st.protected);
                let end: Option<&mut BatchEnd<'_>> =
                    (under_lock && call == calls).then_some(&mut end);
                let st = Self::write_protect(&mut self.spte_check, self.round_no, gfns, w, end);
                protected += st.protected;
                w.counters.walk.add(&st);
                w.live(LiveField::Walks, st.walks);
                w.live(LiveField::Restarts, st.total_restarts());
            }
        }
        if !under_lock || calls == 0 {
            flush_step(protected);
        }
        let flush = flushed.is_some();
        if let Some((tf, tf_end)) = flushed {
            if timing {
                w.record_span(Metric::TlbFlush, tf, tf_end);
            }
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

        let s1 = w.now();
        self.after_copy(w);
        w.record_ns(Metric::OracleScan, scan_ns + clock::delta_ns(s1, w.now()));
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
        Self::write_protect(&mut self.spte_check, self.round_no, &self.harvest, w, None);
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
