//! What a caller can watch while a run goes on: the [`Probe`] trait and the
//! [`SpanKind`]s of a trace. The harness attaches its perf counters, traces
//! and interval sampler here; a run without them takes [`NoProbe`].

use crate::metrics::RoleKind;

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
pub trait Probe: Sync {
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
    /// Warmup is over: the measured phase starts now (the workers switch at
    /// their next operation). Called on the coordinator thread.
    fn measure_start(&self) {}
    /// The coordinator closed measured interval `index` (0-based), which
    /// ended `t_s` seconds into the measured phase (`Config::sample_interval`).
    /// Called on the coordinator thread, while the workers run.
    fn interval(&self, _index: u64, _t_s: f64) {}
    /// A restart inside a traced walk, with its reason name.
    fn restart(&self, _role: RoleKind, _index: u32, _at_ns: u64, _reason: &'static str, _gfn: u64) {
    }
}

/// A probe that does nothing.
pub struct NoProbe;
impl Probe for NoProbe {}
