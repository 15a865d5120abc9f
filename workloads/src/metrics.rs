//! What a run measures: one HdrHistogram per thread and metric (merged at the
//! end), plain counters per thread (merged), and a few shared atomics that
//! the harness polls for its progress bar.

use hdrhistogram::Histogram;
use rmap_impls::{AgeStats, RestartReason, WalkStats};
use std::sync::atomic::{AtomicU64, Ordering};

/// Latency metrics, in the order of [`METRIC_NAMES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Slow fault: the whole `Rmap::map` path including `mmu_lock` wait.
    FaultSlow,
    /// Fast fault: cmpxchg W back on plus marking the gfn dirty (sampled, 1
    /// in [`FAULT_FAST_SAMPLE`]: there are millions a second, and two clock
    /// reads around each would slow the vCPUs down measurably).
    FaultFast,
    /// A guest write that needed no fault (sampled, 1 in [`WRITE_SAMPLE`]).
    Write,
    /// Write-protect walk of one gfn.
    WpGfn,
    /// One dirty-log round that harvested something: harvest, write-protect,
    /// flush, copy.
    Round,
    /// Remote TLB flush wait within a round.
    TlbFlush,
    /// One zap (mmu-notifier invalidation of `zap_gfns` gfns, with its flush).
    Zap,
    /// Waiting for `mmu_lock`.
    LockWait,
    /// Holding `mmu_lock`.
    LockHold,
    /// One aging pass: the whole memslot once, range by range (the figure
    /// Linux 6.15's "Age sptes locklessly" cover letter reports).
    AgePass,
    /// One `Rmap::age` call: one range of `Config::age_gfns` gfns.
    AgeRange,
}

pub const METRIC_COUNT: usize = 11;

/// Result-file names of the metrics: `<role>.<operation>`, the role being
/// the [`RoleKind`] that records it (`mmu_lock.*`: whichever takes the lock).
pub const METRIC_NAMES: [&str; METRIC_COUNT] = [
    "vcpu.fault_slow",
    "vcpu.fault_fast",
    "vcpu.write",
    "walker.wp_gfn",
    "walker.round",
    "walker.tlb_flush",
    "zapper.zap",
    "mmu_lock.wait",
    "mmu_lock.hold",
    "aging.pass",
    "aging.range",
];

/// One in this many fault-free guest writes is timed.
pub const WRITE_SAMPLE: u64 = 64;

/// One in this many fast faults is timed.
pub const FAULT_FAST_SAMPLE: u64 = 16;

impl Metric {
    pub fn name(self) -> &'static str {
        METRIC_NAMES[self as usize]
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

/// Per-thread histograms; `None` where latency recording is off.
pub struct Recorder {
    hists: Option<Vec<Histogram<u64>>>,
}

impl Recorder {
    pub fn new(enabled: bool) -> Self {
        Recorder {
            hists: enabled.then(|| (0..METRIC_COUNT).map(|_| new_hist()).collect()),
        }
    }

    #[inline]
    pub fn enabled(&self) -> bool {
        self.hists.is_some()
    }

    #[inline]
    pub fn record(&mut self, m: Metric, ns: u64) {
        if let Some(h) = &mut self.hists {
            h[m as usize].saturating_record(ns.max(1));
        }
    }

    /// Forget everything recorded so far.
    pub fn reset(&mut self) {
        if let Some(hs) = &mut self.hists {
            hs.iter_mut().for_each(|h| h.reset());
        }
    }

    /// Merge another thread's histograms into this one.
    pub fn merge(&mut self, other: &Recorder) {
        if let (Some(a), Some(b)) = (&mut self.hists, &other.hists) {
            for (x, y) in a.iter_mut().zip(b.iter()) {
                x.add(y).expect("same bounds");
            }
        }
    }

    /// The merged histograms that saw at least one sample, by name.
    pub fn into_named(self) -> Vec<(&'static str, Histogram<u64>)> {
        self.hists
            .map(|hs| {
                hs.into_iter()
                    .enumerate()
                    .filter(|(_, h)| !h.is_empty())
                    .map(|(i, h)| (METRIC_NAMES[i], h))
                    .collect()
            })
            .unwrap_or_default()
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
    pub zaps: u64,
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
            sptes_zapped,
            rounds,
            rounds_empty,
            pages_harvested,
            pages_copied,
            tlb_flushes,
            walk,
            mmu_lock_holds,
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
        self.sptes_zapped += sptes_zapped;
        self.rounds += rounds;
        self.rounds_empty += rounds_empty;
        self.pages_harvested += pages_harvested;
        self.pages_copied += pages_copied;
        self.tlb_flushes += tlb_flushes;
        self.walk.add(walk);
        self.mmu_lock_holds += mmu_lock_holds;
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
