//! What every thread of a run shares ([`Shared`]): the VM itself (the
//! memslot's sptes, guest memory, the dirty log, the vCPUs' modes, the rmap
//! under test), the torture's state (the perturbation, the faults' counts
//! for the missed-spte check, the first violation), the run's control word
//! (phase and interval), the clock origins, the per-interval table the
//! workers hand their measurements to, and the caller's progress counters
//! and probe.

use super::dirty_log::DirtyLog;
use super::memory::GuestMemory;
use super::perturb::Perturber;
use super::probe::Probe;
use super::report::IntervalSample;
use super::spte_check::FaultGens;
use super::tlb::Vcpus;
use crate::clock;
use crate::config::Config;
use crate::metrics::{Counters, Live, Recorder, RoleKind};
use rmap_impls::{Rmap, SpteTable};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The run's phase, as workers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Warmup,
    Measure,
    Stop,
}

/// Encoding of the shared control word: phase in bits 0..2, interval above.
fn control_word(phase: Phase, interval: u64) -> u64 {
    let p = match phase {
        Phase::Warmup => 0,
        Phase::Measure => 1,
        Phase::Stop => 2,
    };
    p | (interval << 2)
}

fn decode_control(w: u64) -> (Phase, u64) {
    let p = match w & 3 {
        0 => Phase::Warmup,
        1 => Phase::Measure,
        _ => Phase::Stop,
    };
    (p, w >> 2)
}

/// What every thread of a run shares.
pub(crate) struct Shared<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) rmap: &'a dyn Rmap,
    pub(crate) sptes: SpteTable,
    pub(crate) mem: GuestMemory,
    pub(crate) dirty: DirtyLog,
    pub(crate) vcpus: Vcpus,
    /// The run's delays, when it is perturbed (the rmap holds them too).
    pub(crate) perturb: Option<Arc<Perturber>>,
    /// Per spte slot, faults in flight and done, when walks are checked for
    /// missed sptes (`Config::checks_sptes`).
    pub(crate) fault_gens: Option<FaultGens>,
    /// Nanoseconds from `t_start` to the first violation found, plus one;
    /// 0 while none was.
    first_violation: AtomicU64,
    /// Phase and interval ([`control_word`]).
    control: AtomicU64,
    /// Raw clock at the start of the run (trace timestamps count from here).
    pub(crate) t_start: u64,
    /// Raw clock at the start of the measured phase.
    t_measure: AtomicU64,
    pub(crate) intervals: IntervalTable,
    pub(crate) live: &'a Live,
    pub(crate) probe: &'a dyn Probe,
    /// `mmu_lock` as a trace shows it; written only when tracing.
    pub(crate) lock_trace: LockTrace,
}

/// Who holds `mmu_lock` and who waits for it, kept only when tracing (a
/// worker's `trace.every` says so), for the trace's handoff arrows and its
/// waiters counter track. A run without a trace never writes these.
#[derive(Default)]
pub(crate) struct LockTrace {
    /// The last hold, as [`LockTrace::hold_word`]: the holding thread and
    /// when its hold began. Written and read under `mmu_lock`, by each
    /// holder as its hold begins.
    pub(crate) last: AtomicU64,
    /// The hold in progress, or 0: `last` until that hold ends. Read
    /// without the lock by a thread about to wait.
    pub(crate) current: AtomicU64,
    /// Threads between `lock_wait` and `lock_acquired`.
    pub(crate) waiters: AtomicU64,
    /// Threads whose traced wait has not yet ended its hold: while there is
    /// one, every hold is put in the trace, so a handoff arrow has the hold
    /// it waited for to start from.
    pub(crate) traced_waiters: AtomicU64,
}

/// Bits of [`LockTrace::hold_word`] for the hold's start (ns since the run
/// started: 78 hours), below 14 bits of thread index and 2 of role.
const HOLD_START_BITS: u32 = 48;
const HOLD_INDEX_BITS: u32 = 14;

impl LockTrace {
    /// A hold as one word, so a thread about to wait reads holder and start
    /// together: 0 for none, else `role + 1`, the index (mod 2^14: a trace
    /// annotation) and the start (mod 2^48 ns).
    pub(crate) fn hold_word(role: RoleKind, index: u32, start_ns: u64) -> u64 {
        let index = index as u64 & ((1 << HOLD_INDEX_BITS) - 1);
        ((role as u64 + 1) << (HOLD_START_BITS + HOLD_INDEX_BITS))
            | (index << HOLD_START_BITS)
            | (start_ns & ((1 << HOLD_START_BITS) - 1))
    }

    /// The thread and start of a [`LockTrace::hold_word`], if any.
    pub(crate) fn hold_of(word: u64) -> Option<(RoleKind, u32, u64)> {
        let role = (word >> (HOLD_START_BITS + HOLD_INDEX_BITS)) as usize;
        let role = *RoleKind::ALL.get(role.checked_sub(1)?)?;
        let index = (word >> HOLD_START_BITS) & ((1 << HOLD_INDEX_BITS) - 1);
        Some((role, index as u32, word & ((1 << HOLD_START_BITS) - 1)))
    }
}

impl<'a> Shared<'a> {
    /// A fresh VM for `cfg` around `rmap`: every spte absent, every page at
    /// version 0, the dirty log clean, no vCPU in guest mode, in warmup.
    pub(crate) fn new(
        cfg: &'a Config,
        rmap: &'a dyn Rmap,
        perturb: Option<Arc<Perturber>>,
        live: &'a Live,
        probe: &'a dyn Probe,
    ) -> Self {
        Shared {
            cfg,
            rmap,
            sptes: SpteTable::new(cfg.gfns(), cfg.aliases),
            mem: GuestMemory::new(cfg.gfns(), cfg.pages_have_one_writer()),
            dirty: DirtyLog::new(cfg.gfns()),
            vcpus: Vcpus::new(cfg.vcpus),
            perturb,
            fault_gens: cfg
                .checks_sptes()
                .then(|| FaultGens::new(cfg.gfns() as usize * cfg.aliases as usize)),
            first_violation: AtomicU64::new(0),
            control: AtomicU64::new(control_word(Phase::Warmup, 0)),
            t_start: clock::now(),
            t_measure: AtomicU64::new(0),
            intervals: IntervalTable::default(),
            live,
            probe,
            lock_trace: LockTrace::default(),
        }
    }

    /// The phase and interval now (each worker, before each operation).
    #[inline]
    pub(crate) fn phase(&self) -> (Phase, u64) {
        // Relaxed: a flag; what it guards (each worker's recorder) is
        // thread-local, and the phase boundary is fuzzy by one operation.
        // A worker that sees a new interval late hands its data over one
        // operation later.
        decode_control(self.control.load(Ordering::Relaxed))
    }

    /// Move the run to `phase` and `interval` (the coordinator).
    pub(crate) fn set_phase(&self, phase: Phase, interval: u64) {
        // Relaxed: see `phase`.
        self.control
            .store(control_word(phase, interval), Ordering::Relaxed);
    }

    /// The measured phase starts now: round samples count their `t_s` from
    /// here (the coordinator, before it switches the phase).
    pub(crate) fn stamp_measure_start(&self) {
        // Relaxed: the workers read the raw timestamp only after they saw
        // the measured phase, and a slightly stale 0 only shifts the first
        // round's `t_s`.
        self.t_measure.store(clock::now(), Ordering::Relaxed);
    }

    /// Raw clock at the start of the measured phase.
    pub(crate) fn measure_start(&self) -> u64 {
        // Relaxed: see `stamp_measure_start`.
        self.t_measure.load(Ordering::Relaxed)
    }

    /// The walker found a violation (a missed spte or a lost write) now;
    /// only the first is kept.
    pub(crate) fn violation_found(&self) {
        let ns = clock::delta_ns(self.t_start, clock::now()) + 1;
        // Relaxed: a timestamp, read by the coordinator's poll (which ends
        // the run a poll later) and after the join.
        let _ = self
            .first_violation
            .compare_exchange(0, ns, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Time from the start of the run to the first violation, if any.
    pub(crate) fn first_violation(&self) -> Option<Duration> {
        // Relaxed: see `violation_found`.
        match self.first_violation.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns - 1)),
        }
    }
}

/// Per-interval histograms and counters, merged as workers hand them over.
#[derive(Default)]
pub(crate) struct IntervalTable {
    slots: Mutex<Vec<(Recorder, Counters)>>,
}

impl IntervalTable {
    pub(crate) fn add(&self, interval: u64, rec: &Recorder, counters: &Counters) {
        let mut slots = self.slots.lock().unwrap();
        let i = interval as usize;
        while slots.len() <= i {
            slots.push((Recorder::default(), Counters::default()));
        }
        slots[i].0.merge(rec);
        slots[i].1.add(counters);
    }

    pub(crate) fn into_samples(
        self,
        every: Option<Duration>,
        measured: Duration,
    ) -> Vec<IntervalSample> {
        let Some(d) = every else {
            return Vec::new();
        };
        let slots = self.slots.into_inner().unwrap();
        slots
            .into_iter()
            .enumerate()
            .map(|(i, (rec, counters))| IntervalSample {
                t_s: ((i + 1) as f64 * d.as_secs_f64()).min(measured.as_secs_f64()),
                histograms: rec.into_named(),
                counters,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_word_round_trips() {
        use super::LockTrace;
        assert_eq!(LockTrace::hold_of(0), None);
        let w = LockTrace::hold_word(RoleKind::Walker, 3, 123_456_789);
        assert_eq!(
            LockTrace::hold_of(w),
            Some((RoleKind::Walker, 3, 123_456_789))
        );
        let w = LockTrace::hold_word(RoleKind::Vcpu, 0, 0);
        assert_ne!(w, 0);
        assert_eq!(LockTrace::hold_of(w), Some((RoleKind::Vcpu, 0, 0)));
    }

    #[test]
    fn control_word_round_trips() {
        for p in [Phase::Warmup, Phase::Measure, Phase::Stop] {
            for i in [0, 1, 12345] {
                assert_eq!(decode_control(control_word(p, i)), (p, i));
            }
        }
    }
}
