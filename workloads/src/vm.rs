//! The simulated VM and its threads. (Being implemented.)

use crate::config::{Config, ConfigError};
use crate::metrics::{Counters, Live, RoleKind};
use hdrhistogram::Histogram;

use rmap_impls::LockKind;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// What a traced span covers (`lab run --trace`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// A dirty-log round (harvest, write-protect, flush, copy).
    Round,
    /// The write-protect walk of one gfn.
    WpGfn,
    /// Waiting for `mmu_lock`.
    LockWait,
    /// Holding `mmu_lock`.
    LockHold,
    /// A slow fault.
    FaultSlow,
    /// The remote TLB flush wait of a round.
    TlbFlush,
    /// A zap.
    Zap,
}

impl SpanKind {
    pub const ALL: [SpanKind; 7] = [
        SpanKind::Round,
        SpanKind::WpGfn,
        SpanKind::LockWait,
        SpanKind::LockHold,
        SpanKind::FaultSlow,
        SpanKind::TlbFlush,
        SpanKind::Zap,
    ];
    pub fn name(self) -> &'static str {
        match self {
            SpanKind::Round => "dirty-log round",
            SpanKind::WpGfn => "write-protect walk",
            SpanKind::LockWait => "mmu_lock wait",
            SpanKind::LockHold => "mmu_lock hold",
            SpanKind::FaultSlow => "slow fault",
            SpanKind::TlbFlush => "TLB flush wait",
            SpanKind::Zap => "zap",
        }
    }
}

/// Called on each worker thread as it starts and just before it ends (the
/// harness opens and reads per-thread perf counters here), and, when
/// tracing, for sampled spans. Timestamps are nanoseconds since the run
/// started (warmup included).
pub trait ThreadHook: Sync {
    fn thread_start(&self, _role: RoleKind, _index: u32) {}
    fn thread_stop(&self, _role: RoleKind, _index: u32) {}
    /// `Some(n)`: trace one operation in `n` of each kind (with everything
    /// inside it: a traced round traces its walks, waits and flush).
    /// `None`: no tracing (the default; costs one branch per operation).
    fn trace_sample(&self) -> Option<u32> {
        None
    }
    /// A traced span on the calling thread; `arg` is the gfn for walks and
    /// faults, pages for rounds, 0 otherwise.
    fn span(
        &self,
        _role: RoleKind,
        _index: u32,
        _kind: SpanKind,
        _start_ns: u64,
        _dur_ns: u64,
        _arg: u64,
    ) {
    }
    /// A restart inside a traced walk, with its reason name.
    fn restart(&self, _role: RoleKind, _index: u32, _at_ns: u64, _reason: &'static str, _gfn: u64) {
    }
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
    /// With `Config::sample_interval`: per interval, the histograms of that
    /// interval only, by metric name (index 0 is the first interval of the
    /// measured phase).
    pub intervals: Vec<IntervalSample>,
    /// Lock-holder preemption, sampled: `mmu_lock` holds whose thread's
    /// involuntary context-switch count moved across the held section, out
    /// of the holds sampled.
    pub lock_holds_sampled: u64,
    pub lock_holder_preempted: u64,
}

/// One interval of a sampled run (`lab profile`).
pub struct IntervalSample {
    /// Seconds since the measured phase began, at the end of the interval.
    pub t_s: f64,
    pub histograms: Vec<(&'static str, Histogram<u64>)>,
    /// Counters of the interval only.
    pub counters: Counters,
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
