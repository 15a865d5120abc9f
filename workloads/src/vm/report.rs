//! What a run hands back: the [`RunReport`], the oracle's [`Verdict`], and
//! the per-round and per-interval samples behind the harness's plots.

pub use super::spte_check::MissedSpte;
use crate::clock::ClockInfo;
use crate::config::Config;
use crate::metrics::{Counters, RoleKind};
use hdrhistogram::Histogram;
use rmap_impls::LockKind;
use std::time::Duration;

/// What the migration oracle and the consistency check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Pages whose destination fell behind the source: per round (a page
    /// behind its pre-harvest snapshot after the round's copy, not logged for
    /// a later round) plus the final comparison.
    pub lost_writes: u64,
    /// A few of the gfns concerned, for the report.
    pub lost_write_gfns: Vec<u64>,
    /// rmaps that differ from the set of present sptes mapping their gfn
    /// (missing, extra or duplicate entries), checked when quiescent.
    pub rmap_inconsistencies: u64,
    /// Rounds of the measured phase whose per-round check ran (every one;
    /// the warmup's rounds and the final round are checked too, and lost
    /// writes they find are counted, but they are not counted here).
    pub rounds_checked: u64,
    /// sptes a write-protect walk left writable although no fault made them
    /// writable since the walk began (checked only when
    /// `Config::checks_sptes`): the walk missed them.
    pub missed_sptes: u64,
    /// The first few of them.
    pub missed_spte_examples: Vec<MissedSpte>,
    /// Whether walks were checked for missed sptes.
    pub sptes_checked: bool,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.lost_writes == 0 && self.rmap_inconsistencies == 0 && self.missed_sptes == 0
    }
}

/// One dirty-log round, for "round time over a run" plots.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoundSample {
    /// Seconds since the measured phase began.
    pub t_s: f64,
    pub round_ns: u64,
    pub pages: u64,
}

/// Everything a run produced.
pub struct RunReport {
    pub config: Config,
    pub interrupted: bool,
    /// Length of the measured phase (after warmup).
    pub measured: Duration,
    /// Merged latency histograms that saw samples, by metric name.
    pub histograms: Vec<(&'static str, Histogram<u64>)>,
    /// For each histogram of `histograms`, by name: one operation in this
    /// many was recorded (1: every one).
    pub sample_every: Vec<(&'static str, u64)>,
    /// All threads' counters, merged (each counter is produced by one role).
    pub counters: Counters,
    pub verdict: Verdict,
    pub rounds: Vec<RoundSample>,
    pub online_cpus: u32,
    /// Worker threads started (vCPUs + walker + zapper).
    pub threads: u32,
    pub mmu_lock: LockKind,
    pub clock_source: &'static str,
    /// The clock every histogram was timed with: source, fencing,
    /// resolution and the cost of a read.
    pub clock: ClockInfo,
    /// CPU time each role's threads used in the measured phase, in seconds
    /// (`getrusage(RUSAGE_THREAD)`, summed over the role's threads), for the
    /// roles the run started.
    pub cpu_s: Vec<(RoleKind, f64)>,
    /// With `Config::sample_interval`: per interval, the histograms of that
    /// interval only, by metric name (index 0 is the first interval of the
    /// measured phase).
    pub intervals: Vec<IntervalSample>,
    /// Lock-holder preemption, sampled: `mmu_lock` holds whose thread's
    /// involuntary context-switch count moved across the held section, out
    /// of the holds sampled.
    pub lock_holds_sampled: u64,
    pub lock_holder_preempted: u64,
    /// Time from the start of the run (warmup included) to the first
    /// violation the walker found (a missed spte or a lost write), if any.
    pub first_violation: Option<Duration>,
    /// The run ended at its first violation (`Config::stop_on_violation`)
    /// before its duration was up.
    pub stopped_at_violation: bool,
    /// Delays a perturbed run took at its perturbation points.
    pub perturb_delays: u64,
}

/// One interval of a sampled run (`lab profile`).
pub struct IntervalSample {
    /// Seconds since the measured phase began, at the end of the interval.
    pub t_s: f64,
    pub histograms: Vec<(&'static str, Histogram<u64>)>,
    /// Counters of the interval only.
    pub counters: Counters,
}
