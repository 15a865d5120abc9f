//! What a run measures: one HdrHistogram per thread and metric (merged at the
//! end), plain counters per thread (merged), and a few shared atomics that
//! the harness polls for its progress bar.

use hdrhistogram::Histogram;
use rmap_impls::{AgeStats, RestartReason, WalkStats};
use std::sync::atomic::{AtomicU64, Ordering};

/// Latency metrics, in the order of [`METRIC_NAMES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Slow fault that installed the spte: the whole `Rmap::map` path
    /// including `mmu_lock` wait and the dirty mark.
    FaultSlow,
    /// Fast fault: one write access that found its spte write-protected but
    /// MMU-writable, from its first fast-fault attempt to its successful
    /// cmpxchg of W and the dirty mark, failed cmpxchgs and the
    /// re-translations between them included. One such access in
    /// [`FAULT_FAST_SAMPLE`] is timed, chosen when it first faults (a retry
    /// is never chosen anew, so contended faults are not favoured); there
    /// are millions a second, and two clock reads around each would slow the
    /// vCPUs down measurably. An access whose spte another vCPU made
    /// writable first, or a zap removed, ends without a sample.
    FaultFast,
    /// One guest-mode entry that wrote `Config::tlb_burst` times through its
    /// translation without a fault: enter, translate, the writes, exit
    /// (sampled: the entries whose index is a multiple of [`WRITE_SAMPLE`]).
    Write,
    /// Slow fault that lost the race: another vCPU installed the spte first
    /// (`MapOutcome::AlreadyPresent`). These are the contended faults, which
    /// waited for the same lock or rmap as the winner.
    FaultSlowRaced,
    /// Guest progress: the time one vCPU takes to complete as many accesses
    /// as its slice has pages (`Config::pass_accesses`), faults and
    /// stalls included; every pass of the measured phase, recorded even
    /// with latency recording off (one clock read per pass).
    Pass,
    /// Write-protect walk of one gfn.
    WpGfn,
    /// One dirty-log round that harvested something: harvest, write-protect,
    /// flush, copy.
    Round,
    /// Remote TLB flush wait within a round.
    TlbFlush,
    /// The migration oracle's work in one round: the version snapshot of
    /// every watched page before the harvest plus the check after the copy.
    /// The lab's own cost, outside `walker.round` and every other span.
    OracleScan,
    /// One zap (mmu-notifier invalidation of `zap_gfns` gfns, with its flush).
    Zap,
    /// Waiting for `mmu_lock`, every role merged: the key the result schema
    /// requires. Its percentiles mix a fault's short wait with the walker's,
    /// so read the per-role metrics below; no figure uses this one.
    LockWait,
    /// Holding `mmu_lock`, every role merged (as [`Metric::LockWait`]: its
    /// p50 is a fault's hold, its max the walker's hold of a whole harvest).
    LockHold,
    /// Waiting for `mmu_lock`, by the role that waited (vCPU, walker,
    /// zapper, aging thread, in [`RoleKind::ALL`] order).
    LockWaitVcpu,
    LockWaitWalker,
    LockWaitZapper,
    LockWaitAging,
    /// Holding `mmu_lock`, by the role that held it.
    LockHoldVcpu,
    LockHoldWalker,
    LockHoldZapper,
    LockHoldAging,
    /// Waiting for `rmap-lock`'s per-rmap bit lock, by role (sampled, 1 in
    /// [`RMAP_LOCK_SAMPLE`] of a thread's acquisitions).
    RmapLockWaitVcpu,
    RmapLockWaitWalker,
    RmapLockWaitZapper,
    RmapLockWaitAging,
    /// Holding `rmap-lock`'s bit lock, by role (the same sample).
    RmapLockHoldVcpu,
    RmapLockHoldWalker,
    RmapLockHoldZapper,
    RmapLockHoldAging,
    /// Time a write-protect walk of one gfn lost to failed optimistic passes
    /// (`seqlock` retries, `lockless` restarts): from the walk's start to the
    /// end of its last failed pass, one sample per walk that failed one.
    WpRetry,
    /// One aging pass: the whole memslot once, range by range (the figure
    /// Linux 6.15's "Age sptes locklessly" cover letter reports).
    AgePass,
    /// One `Rmap::age` call: one range of `Config::age_gfns` gfns.
    AgeRange,
}

pub const METRIC_COUNT: usize = 31;

impl Metric {
    /// Every metric, in the order of [`METRIC_NAMES`].
    pub const ALL: [Metric; METRIC_COUNT] = [
        Metric::FaultSlow,
        Metric::FaultFast,
        Metric::Write,
        Metric::FaultSlowRaced,
        Metric::Pass,
        Metric::WpGfn,
        Metric::Round,
        Metric::TlbFlush,
        Metric::OracleScan,
        Metric::Zap,
        Metric::LockWait,
        Metric::LockHold,
        Metric::LockWaitVcpu,
        Metric::LockWaitWalker,
        Metric::LockWaitZapper,
        Metric::LockWaitAging,
        Metric::LockHoldVcpu,
        Metric::LockHoldWalker,
        Metric::LockHoldZapper,
        Metric::LockHoldAging,
        Metric::RmapLockWaitVcpu,
        Metric::RmapLockWaitWalker,
        Metric::RmapLockWaitZapper,
        Metric::RmapLockWaitAging,
        Metric::RmapLockHoldVcpu,
        Metric::RmapLockHoldWalker,
        Metric::RmapLockHoldZapper,
        Metric::RmapLockHoldAging,
        Metric::WpRetry,
        Metric::AgePass,
        Metric::AgeRange,
    ];
}

/// Result-file names of the metrics: `<role>.<operation>`, the role being
/// the [`RoleKind`] that records it; a lock's metrics are
/// `<lock>.<wait|hold>.<role>`, and `mmu_lock.wait` and `mmu_lock.hold`
/// (no role) merge every role's.
pub const METRIC_NAMES: [&str; METRIC_COUNT] = [
    "vcpu.fault_slow",
    "vcpu.fault_fast",
    "vcpu.write",
    "vcpu.fault_slow_raced",
    "vcpu.pass",
    "walker.wp_gfn",
    "walker.round",
    "walker.tlb_flush",
    "walker.oracle_scan",
    "zapper.zap",
    "mmu_lock.wait",
    "mmu_lock.hold",
    "mmu_lock.wait.vcpu",
    "mmu_lock.wait.walker",
    "mmu_lock.wait.zapper",
    "mmu_lock.wait.aging",
    "mmu_lock.hold.vcpu",
    "mmu_lock.hold.walker",
    "mmu_lock.hold.zapper",
    "mmu_lock.hold.aging",
    "rmap_lock.wait.vcpu",
    "rmap_lock.wait.walker",
    "rmap_lock.wait.zapper",
    "rmap_lock.wait.aging",
    "rmap_lock.hold.vcpu",
    "rmap_lock.hold.walker",
    "rmap_lock.hold.zapper",
    "rmap_lock.hold.aging",
    "walker.wp_retry",
    "aging.pass",
    "aging.range",
];

/// One in this many fault-free guest writes is timed.
pub const WRITE_SAMPLE: u64 = 64;

/// One in this many fast faults is timed.
pub const FAULT_FAST_SAMPLE: u64 = 16;

/// One in this many of a thread's acquisitions of `rmap-lock`'s bit lock is
/// timed: the walker takes it for every gfn, and three clock reads around a
/// walk of a few sptes would slow the walk measurably.
pub const RMAP_LOCK_SAMPLE: u64 = 16;

/// One `mmu_lock` acquisition in this many of a thread's measured phase has
/// the thread's involuntary context switches read before it asks for the
/// lock and after it released it (the holder-preemption sample).
pub const PREEMPT_SAMPLE: u64 = 64;

/// Which lock a lock metric is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockName {
    /// The VM-wide `mmu_lock`.
    MmuLock,
    /// `rmap-lock`'s per-rmap bit lock.
    RmapLock,
}

impl Metric {
    pub fn name(self) -> &'static str {
        METRIC_NAMES[self as usize]
    }

    /// Waiting for `lock`, by `role`.
    pub fn lock_wait(lock: LockName, role: RoleKind) -> Metric {
        use Metric::*;
        match (lock, role) {
            (LockName::MmuLock, RoleKind::Vcpu) => LockWaitVcpu,
            (LockName::MmuLock, RoleKind::Walker) => LockWaitWalker,
            (LockName::MmuLock, RoleKind::Zapper) => LockWaitZapper,
            (LockName::MmuLock, RoleKind::Aging) => LockWaitAging,
            (LockName::RmapLock, RoleKind::Vcpu) => RmapLockWaitVcpu,
            (LockName::RmapLock, RoleKind::Walker) => RmapLockWaitWalker,
            (LockName::RmapLock, RoleKind::Zapper) => RmapLockWaitZapper,
            (LockName::RmapLock, RoleKind::Aging) => RmapLockWaitAging,
        }
    }

    /// Holding `lock`, by `role`.
    pub fn lock_hold(lock: LockName, role: RoleKind) -> Metric {
        use Metric::*;
        match (lock, role) {
            (LockName::MmuLock, RoleKind::Vcpu) => LockHoldVcpu,
            (LockName::MmuLock, RoleKind::Walker) => LockHoldWalker,
            (LockName::MmuLock, RoleKind::Zapper) => LockHoldZapper,
            (LockName::MmuLock, RoleKind::Aging) => LockHoldAging,
            (LockName::RmapLock, RoleKind::Vcpu) => RmapLockHoldVcpu,
            (LockName::RmapLock, RoleKind::Walker) => RmapLockHoldWalker,
            (LockName::RmapLock, RoleKind::Zapper) => RmapLockHoldZapper,
            (LockName::RmapLock, RoleKind::Aging) => RmapLockHoldAging,
        }
    }

    /// One operation in this many is recorded (1: every one).
    pub fn sample_every(self) -> u64 {
        match self {
            Metric::Write => WRITE_SAMPLE,
            Metric::FaultFast => FAULT_FAST_SAMPLE,
            Metric::RmapLockWaitVcpu
            | Metric::RmapLockWaitWalker
            | Metric::RmapLockWaitZapper
            | Metric::RmapLockWaitAging
            | Metric::RmapLockHoldVcpu
            | Metric::RmapLockHoldWalker
            | Metric::RmapLockHoldZapper
            | Metric::RmapLockHoldAging => RMAP_LOCK_SAMPLE,
            _ => 1,
        }
    }

    /// The metric named `name` (a [`METRIC_NAMES`] entry).
    pub fn from_name(name: &str) -> Option<Metric> {
        METRIC_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Metric::ALL[i])
    }
}

/// The role of a worker thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoleKind {
    Vcpu,
    Walker,
    Zapper,
    /// The aging thread (`aging` workload): the primary MMU's reclaim
    /// asking `clear_young`.
    Aging,
}

impl RoleKind {
    pub const ALL: [RoleKind; 4] = [
        RoleKind::Vcpu,
        RoleKind::Walker,
        RoleKind::Zapper,
        RoleKind::Aging,
    ];
    pub fn name(self) -> &'static str {
        match self {
            RoleKind::Vcpu => "vcpu",
            RoleKind::Walker => "walker",
            RoleKind::Zapper => "zapper",
            RoleKind::Aging => "aging",
        }
    }
}

fn new_hist() -> Histogram<u64> {
    // 1 ns .. 100 s at 2 significant digits: about 50 KiB per histogram.
    Histogram::new_with_bounds(1, 100_000_000_000, 2).expect("valid histogram bounds")
}

/// Per-thread histograms, one per metric. Always there: `vcpu.pass` is
/// recorded in every run; with latency recording off the workers read no
/// clock for the others, which stay empty and are left out of the report.
pub struct Recorder {
    hists: Vec<Histogram<u64>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            hists: (0..METRIC_COUNT).map(|_| new_hist()).collect(),
        }
    }
}

impl Recorder {
    #[inline]
    pub fn record(&mut self, m: Metric, ns: u64) {
        self.hists[m as usize].saturating_record(ns.max(1));
    }

    /// Samples of `m` so far.
    pub fn count(&self, m: Metric) -> u64 {
        self.hists[m as usize].len()
    }

    /// Forget everything recorded so far.
    pub fn reset(&mut self) {
        self.hists.iter_mut().for_each(|h| h.reset());
    }

    /// Merge another thread's histograms into this one.
    pub fn merge(&mut self, other: &Recorder) {
        for (x, y) in self.hists.iter_mut().zip(other.hists.iter()) {
            x.add(y).expect("same bounds");
        }
    }

    /// The merged histograms that saw at least one sample, by name.
    pub fn into_named(self) -> Vec<(&'static str, Histogram<u64>)> {
        self.hists
            .into_iter()
            .enumerate()
            .filter(|(_, h)| !h.is_empty())
            .map(|(i, h)| (METRIC_NAMES[i], h))
            .collect()
    }
}

/// Operation counts (per thread while running, merged at the end).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub guest_writes: u64,
    pub guest_reads: u64,
    pub faults_fast: u64,
    pub faults_slow: u64,
    /// Slow faults that found the spte already installed by another vCPU.
    pub faults_raced: u64,
    /// Fast-fault cmpxchgs that lost a race and refaulted.
    pub fast_fault_retries: u64,
    /// Zaps issued (each one started and completed).
    pub zaps: u64,
    /// Zaps that started more than one period after their intended start
    /// (the zapper was still busy with earlier ones, or woke late).
    pub zaps_late: u64,
    /// Zaps the open-loop schedule asked for: the intended starts from the
    /// zapper's first measured zap to the end of the measured phase (0 where
    /// the zapper is not paced: `churn`, or no zapper).
    pub zaps_requested: u64,
    pub sptes_zapped: u64,
    pub rounds: u64,
    /// Rounds that harvested nothing (and flushed nothing): not timed.
    pub rounds_empty: u64,
    pub pages_harvested: u64,
    pub pages_copied: u64,
    pub tlb_flushes: u64,
    /// Write-protect walk totals.
    pub walk: WalkStats,
    pub mmu_lock_holds: u64,
    /// vCPU passes completed (see [`Metric::Pass`]).
    pub passes: u64,
    /// vCPU accesses that set the Accessed bit of their spte.
    pub accessed_set: u64,
    /// Aging totals: its walks, and the sptes found accessed and cleared.
    pub aging: AgeStats,
    /// Aging passes done, and those the schedule asked for (`age_period`;
    /// equal when passes run back to back).
    pub age_passes: u64,
    pub age_passes_due: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        // Destructured without `..`: a new counter cannot be left out here.
        let Counters {
            guest_writes,
            guest_reads,
            faults_fast,
            faults_slow,
            faults_raced,
            fast_fault_retries,
            zaps,
            zaps_late,
            zaps_requested,
            sptes_zapped,
            rounds,
            rounds_empty,
            pages_harvested,
            pages_copied,
            tlb_flushes,
            walk,
            mmu_lock_holds,
            passes,
            accessed_set,
            aging,
            age_passes,
            age_passes_due,
        } = o;
        self.guest_writes += guest_writes;
        self.guest_reads += guest_reads;
        self.faults_fast += faults_fast;
        self.faults_slow += faults_slow;
        self.faults_raced += faults_raced;
        self.fast_fault_retries += fast_fault_retries;
        self.zaps += zaps;
        self.zaps_late += zaps_late;
        self.zaps_requested += zaps_requested;
        self.sptes_zapped += sptes_zapped;
        self.rounds += rounds;
        self.rounds_empty += rounds_empty;
        self.pages_harvested += pages_harvested;
        self.pages_copied += pages_copied;
        self.tlb_flushes += tlb_flushes;
        self.walk.add(walk);
        self.mmu_lock_holds += mmu_lock_holds;
        self.passes += passes;
        self.accessed_set += accessed_set;
        self.aging.add(aging);
        self.age_passes += age_passes;
        self.age_passes_due += age_passes_due;
    }

    /// Restarts (and seqlock retries) by reason name, zeros left out.
    pub fn restarts_by_reason(&self) -> Vec<(&'static str, u64)> {
        RestartReason::ALL
            .iter()
            .map(|r| (r.name(), self.walk.restarts[*r as usize]))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// Shared progress, polled by the harness while a run goes on. Threads add
/// to it in batches, so it lags by a few hundred operations.
#[derive(Default)]
pub struct Live {
    pub guest_writes: AtomicU64,
    pub faults: AtomicU64,
    pub rounds: AtomicU64,
    pub walks: AtomicU64,
    pub restarts: AtomicU64,
    pub zaps: AtomicU64,
    /// 0 warmup, 1 measuring, 2 final round and oracle, 3 done.
    pub phase: AtomicU64,
}

/// One of the progress counters of [`Live`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveField {
    GuestWrites,
    Faults,
    Rounds,
    Walks,
    Restarts,
    Zaps,
}

impl LiveField {
    pub const COUNT: usize = 6;
}

impl Live {
    pub fn field(&self, f: LiveField) -> &AtomicU64 {
        match f {
            LiveField::GuestWrites => &self.guest_writes,
            LiveField::Faults => &self.faults,
            LiveField::Rounds => &self.rounds,
            LiveField::Walks => &self.walks,
            LiveField::Restarts => &self.restarts,
            LiveField::Zaps => &self.zaps,
        }
    }

    #[inline]
    pub fn add(&self, c: &AtomicU64, n: u64) {
        // Relaxed: progress display only, no ordering with anything.
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        // Relaxed: progress display only.
        c.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_its_name_and_sampling_step() {
        for (i, m) in Metric::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i);
            assert_eq!(m.name(), METRIC_NAMES[i]);
            assert_eq!(Metric::from_name(m.name()), Some(*m));
        }
        assert_eq!(Metric::Write.sample_every(), WRITE_SAMPLE);
        assert_eq!(Metric::FaultFast.sample_every(), FAULT_FAST_SAMPLE);
        assert_eq!(Metric::Pass.sample_every(), 1);
        assert_eq!(Metric::from_name("vcpu.nothing"), None);
    }
}
