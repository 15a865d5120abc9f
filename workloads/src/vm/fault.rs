//! The fault paths: what a vCPU does when its spte refused an access (see
//! [the access paths](crate#the-three-access-paths) in the crate docs).
//!
//! * [`Faults::fast`]: present, W clear, MMU_WRITABLE set, a write: one
//!   cmpxchg sets W back, without a lock, then the gfn is marked dirty;
//! * [`Faults::slow`]: not present: [`Rmap::map`](rmap_impls::Rmap::map)
//!   adds the spte to the rmap and installs it (taking whatever the design
//!   takes), and only then is the gfn marked dirty, when W was granted.
//!
//! Each path that can make an spte writable (the fast fault, a slow fault
//! for a write) announces the gfn to the oracle ([`Vcpus::fault_begin`])
//! before and withdraws it after the mark, so that a write through the new
//! spte before the mark counts as logged; when walks are checked for missed
//! sptes, it bumps the spte's fault count ([`FaultGens`]) inside that
//! window, for the same reason. A slow fault for a read announces nothing:
//! it installs W clear and marks nothing, and an excuse in its name would
//! cover a W that another vCPU's fast fault set meanwhile (the fast fault
//! announces itself; a walk that missed its spte must not be excused). Those stores
//! are the oracle's bookkeeping, not KVM's: they stay outside the timed
//! spans (a fast fault retried after a failed cmpxchg is the exception: its
//! sample spans the attempts, bookkeeping of the failed one included). A
//! perturbed run may delay each path between making the spte writable and
//! the mark.
//!
//! [`Vcpus::fault_begin`]: super::tlb::Vcpus::fault_begin
//! [`FaultGens`]: super::spte_check::FaultGens

use super::probe::SpanKind;
use super::worker::Worker;
use crate::config::Config;
use crate::metrics::{LiveField, Metric, FAULT_FAST_SAMPLE};
use rmap_impls::spte::make_spte;
use rmap_impls::{Bug, Gfn, MapOutcome, SlotId};

/// Whether a write access's fast fault is timed (see `Metric::FaultFast`):
/// decided when the access first faults, kept across its retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FastSample {
    /// The access has not taken a fast fault yet.
    NotYet,
    /// Timed, from this raw timestamp (its first attempt).
    Timed(u64),
    /// Not timed.
    Untimed,
}

/// One vCPU's fault paths, with what the run decided about them.
pub(crate) struct Faults {
    /// The vCPU's index.
    vcpu: usize,
    /// Faults that grant W mark the gfn dirty (every workload but `idle`).
    dirty_logging: bool,
    /// The `dirty-before-rmap` injected bug: the slow fault marks the gfn
    /// dirty before the rmap add, so a round can harvest the mark and walk
    /// the rmap before the spte is in it; the writes through it are lost.
    dirty_before_rmap: bool,
    /// Accesses that took a fast fault so far (each counted once, at its
    /// first attempt): the sampling counter of `vcpu.fault_fast`.
    fast_faulted: u64,
}

impl Faults {
    pub(crate) fn new(cfg: &Config, vcpu: usize) -> Self {
        Faults {
            vcpu,
            dirty_logging: cfg.dirty_logging(),
            dirty_before_rmap: cfg.workload_bug() == Some(Bug::DirtyBeforeRmap),
            fast_faulted: 0,
        }
    }

    /// The slow fault on `slot` (of `gfn`), which was not present: map it,
    /// writable when the access is a `write`. Timed into `vcpu.fault_slow`
    /// when it installed the spte, into `vcpu.fault_slow_raced` when another
    /// vCPU had installed it first.
    pub(crate) fn slow(&self, w: &mut Worker<'_>, gfn: Gfn, slot: SlotId, write: bool) {
        let ctx = w.ctx;
        let traced = w.trace_begin(SpanKind::FaultSlow);
        let mark = write && self.dirty_logging;
        // Only a fault that can grant W announces itself (module doc): a
        // read's would excuse a W another vCPU's fast fault set meanwhile.
        if mark {
            ctx.vcpus.fault_begin(self.vcpu, gfn);
            if let Some(g) = &ctx.fault_gens {
                g.begin(slot);
            }
        }
        let t = w.now();
        if mark && self.dirty_before_rmap {
            ctx.dirty.mark(gfn);
        }
        let out = ctx
            .rmap
            .map(&ctx.sptes, gfn, slot, make_spte(gfn, write), w);
        if let Some(p) = &ctx.perturb {
            p.fault_before_mark();
        }
        if mark && !self.dirty_before_rmap && out == MapOutcome::Mapped {
            ctx.dirty.mark(gfn);
        }
        let end = w.now();
        if mark {
            if let Some(g) = &ctx.fault_gens {
                g.end(slot);
            }
            ctx.vcpus.fault_end(self.vcpu);
        }
        match out {
            MapOutcome::Mapped => {
                w.record_span(Metric::FaultSlow, t, end);
                w.counters.faults_slow += 1;
            }
            MapOutcome::AlreadyPresent => {
                w.record_span(Metric::FaultSlowRaced, t, end);
                w.counters.faults_raced += 1;
            }
        }
        if traced {
            w.span(SpanKind::FaultSlow, t, end, gfn);
        }
        w.trace_end();
        w.live(LiveField::Faults, 1);
    }

    /// The fast fault on `slot` (of `gfn`), whose spte was `spte`: present,
    /// write-protected, MMU-writable. `sample` is the access's: one access
    /// in [`FAULT_FAST_SAMPLE`] is timed from its first attempt to its
    /// successful cmpxchg and mark.
    #[inline]
    pub(crate) fn fast(
        &mut self,
        w: &mut Worker<'_>,
        gfn: Gfn,
        slot: SlotId,
        spte: u64,
        sample: &mut FastSample,
    ) {
        let ctx = w.ctx;
        ctx.vcpus.fault_begin(self.vcpu, gfn);
        if let Some(g) = &ctx.fault_gens {
            g.begin(slot);
        }
        if *sample == FastSample::NotYet {
            self.fast_faulted += 1;
            *sample = if self.fast_faulted.is_multiple_of(FAULT_FAST_SAMPLE) && w.timing {
                FastSample::Timed(w.now())
            } else {
                FastSample::Untimed
            };
        }
        let fixed = ctx.sptes.fast_fault_fix(slot, spte);
        if fixed {
            if let Some(p) = &ctx.perturb {
                p.fault_before_mark();
            }
            if self.dirty_logging {
                ctx.dirty.mark(gfn);
            }
        }
        let end = match *sample {
            FastSample::Timed(_) if fixed => w.now(),
            _ => 0,
        };
        if let Some(g) = &ctx.fault_gens {
            g.end(slot);
        }
        ctx.vcpus.fault_end(self.vcpu);
        if fixed {
            if let FastSample::Timed(t) = *sample {
                w.record_span(Metric::FaultFast, t, end);
            }
            w.counters.faults_fast += 1;
            w.live(LiveField::Faults, 1);
        } else {
            w.counters.fast_fault_retries += 1;
        }
    }
}
