//! The simulated VM and its threads. (Being implemented.)

use crate::config::{Config, ConfigError};
use crate::metrics::{Counters, Live, RoleKind};
use hdrhistogram::Histogram;
use rmap_impls::LockKind;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Called on each worker thread as it starts and just before it ends (the
/// harness opens and reads per-thread perf counters here).
pub trait ThreadHook: Sync {
    fn thread_start(&self, _role: RoleKind, _index: u32) {}
    fn thread_stop(&self, _role: RoleKind, _index: u32) {}
}

/// A hook that does nothing.
pub struct NoThreadHook;
impl ThreadHook for NoThreadHook {}

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
    /// Rounds whose per-round check ran.
    pub rounds_checked: u64,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.lost_writes == 0 && self.rmap_inconsistencies == 0
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
    /// All threads' counters, merged (each counter is produced by one role).
    pub counters: Counters,
    pub verdict: Verdict,
    pub rounds: Vec<RoundSample>,
    pub online_cpus: u32,
    /// Worker threads started (vCPUs + migration + zapper).
    pub threads: u32,
    pub mmu_lock: LockKind,
    pub clock_source: &'static str,
}

/// Run one configuration to completion (or until `stop` is set, which makes
/// the run end early, still run the final round and the oracle, and come
/// back with `interrupted`).
pub fn run(
    cfg: &Config,
    stop: &AtomicBool,
    live: &Live,
    hook: &dyn ThreadHook,
) -> Result<RunReport, ConfigError> {
    let _ = (cfg, stop, live, hook);
    todo!("vm::run is being implemented")
}
