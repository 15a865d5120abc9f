//! The simulated VM and its threads (DESIGN §3, §5).
//!
//! [`run`] builds the VM (one memslot, `aliases` address spaces of sptes,
//! the rmap under test, guest memory and its migration destination, the
//! dirty log, the vCPUs' modes) and starts its threads:
//!
//! | thread | module | does |
//! |---|---|---|
//! | vCPU x N | `vcpu.rs` | guest accesses; fast and slow faults |
//! | migration | `migration.rs` | dirty-log rounds back to back (`dirty-log`, `churn`) |
//! | zapper | `zapper.rs` | mmu-notifier invalidations (when `--zap-rate` > 0, and in `churn`) |
//!
//! The calling thread is the coordinator: it runs warmup, switches the
//! shared control word to the measured phase, ticks intervals when asked
//! (`lab profile`), and at the end stops everybody, runs the final round
//! and the oracle (`oracle.rs`), and checks every rmap against the sptes.
//! Each thread measures into its own histograms and counters (`worker.rs`),
//! merged here at the end.

mod memory;
mod migration;
mod oracle;
mod tlb;
mod vcpu;
mod worker;
mod zapper;

use crate::clock;
use crate::config::{Config, ConfigError, WorkloadKind};
use crate::metrics::{Counters, Live, Recorder, RoleKind};
use hdrhistogram::Histogram;
use memory::{DirtyLog, GuestMemory};
use migration::Migration;
use oracle::{Oracle, Pages};
use rmap_impls::{BuildError, LockKind, Rmap, RmapConfig, SpteTable};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tlb::Vcpus;
use worker::{control_word, Phase, Worker, WorkerResult};

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
    probe: &dyn Probe,
) -> Result<RunReport, ConfigError> {
    let online_cpus = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let rmap = rmap_impls::build(
        cfg.impl_kind,
        &RmapConfig::new(cfg.gfns(), cfg.desc_ext, cfg.mmu_lock),
        cfg.bug,
    )
    .map_err(|e| match e {
        BuildError::DescExt(n) => ConfigError::DescExt(n),
        BuildError::NoGfns => ConfigError::NoMemory,
        BuildError::BugNotApplicable(b, k) => ConfigError::BugNotApplicable(b, k),
        BuildError::Unavailable(_) => ConfigError::NoVcpus,
    })?;
    let dirty_logging = cfg.dirty_logging();
    let zapping = cfg.zapping();
    let threads = cfg.worker_threads();
    let oracle_pages = match cfg.workload {
        WorkloadKind::Churn => Pages::Some(vcpu::hot_gfns(cfg)),
        _ => Pages::All(cfg.gfns()),
    };

    let ctx = Shared {
        cfg,
        rmap: &*rmap,
        sptes: SpteTable::new(cfg.gfns(), cfg.aliases),
        mem: GuestMemory::new(cfg.gfns()),
        dirty: DirtyLog::new(cfg.gfns()),
        vcpus: Vcpus::new(cfg.vcpus),
        control: AtomicU64::new(control_word(Phase::Warmup, 0)),
        t_start: clock::now(),
        t_measure: AtomicU64::new(0),
        intervals: IntervalTable::default(),
        live,
        probe,
    };
    let walk_all = (cfg.workload == WorkloadKind::Churn).then(|| vcpu::hot_gfns(cfg));
    let mut migration = Migration::new(Oracle::new(oracle_pages), walk_all);
    Migration::round_zero(&ctx.mem);
    let cores = if cfg.pin {
        core_affinity::get_core_ids().unwrap_or_default()
    } else {
        Vec::new()
    };

    // Release: pairs with nothing in particular; Relaxed would do, the
    // progress display only needs the value eventually.
    live.phase.store(0, Ordering::Relaxed);
    let mut interrupted = false;
    let mut measured = Duration::ZERO;
    let results: Vec<WorkerResult> = std::thread::scope(|s| {
        let mut jobs: Vec<Job<'_>> = (0..cfg.vcpus).map(Job::Vcpu).collect();
        if dirty_logging {
            jobs.push(Job::Migration(&mut migration));
        }
        if zapping {
            jobs.push(Job::Zapper);
        }
        let ctx = &ctx;
        let handles: Vec<_> = jobs
            .into_iter()
            .enumerate()
            .map(|(n, job)| {
                let core = (!cores.is_empty()).then(|| cores[n % cores.len()]);
                let (role, index) = job.role();
                let name = match role {
                    RoleKind::Vcpu => format!("vcpu{index}"),
                    r => r.name().to_string(),
                };
                std::thread::Builder::new()
                    .name(name)
                    .spawn_scoped(s, move || {
                        if let Some(c) = core {
                            core_affinity::set_for_current(c);
                        }
                        ctx.probe.thread_start(role, index);
                        let mut w = Worker::new(ctx, role, index);
                        match job {
                            Job::Vcpu(i) => vcpu::vcpu_main(&mut w, &ctx.vcpus, i),
                            Job::Migration(m) => m.main(&mut w),
                            Job::Zapper => zapper::zapper_main(&mut w),
                        }
                        ctx.probe.thread_stop(role, index);
                        w.finish()
                    })
                    .expect("spawning a worker thread")
            })
            .collect();

        // Warmup, then the measured phase, watching `stop`.
        let poll = Duration::from_millis(5);
        let warm_end = Instant::now() + cfg.warmup;
        while Instant::now() < warm_end && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(poll.min(warm_end.saturating_duration_since(Instant::now())));
        }
        let m0 = Instant::now();
        // Relaxed: the workers read the raw timestamp only after they saw
        // the measured phase, and a slightly stale 0 only shifts the first
        // round's `t_s`.
        ctx.t_measure.store(clock::now(), Ordering::Relaxed);
        ctx.probe.measure_start();
        // Relaxed: see `Worker::poll`.
        ctx.control
            .store(control_word(Phase::Measure, 0), Ordering::Relaxed);
        live.phase.store(1, Ordering::Relaxed);
        let end = m0 + cfg.duration;
        let mut interval = 0u64;
        let mut next_tick = cfg.sample_interval.map(|d| m0 + d);
        loop {
            // Relaxed: Ctrl-C flag, polled.
            if stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            let now = Instant::now();
            if now >= end {
                break;
            }
            if let (Some(tick), Some(d)) = (next_tick, cfg.sample_interval) {
                if now >= tick {
                    ctx.probe.interval(interval, (tick - m0).as_secs_f64());
                    interval += 1;
                    // Relaxed: see `Worker::poll`; a worker that sees the
                    // new interval late hands its data over one op later.
                    ctx.control
                        .store(control_word(Phase::Measure, interval), Ordering::Relaxed);
                    next_tick = Some(tick + d);
                }
            }
            let mut wake = end.min(now + poll);
            if let Some(t) = next_tick {
                wake = wake.min(t);
            }
            std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        }
        measured = m0.elapsed();
        if let Some(d) = cfg.sample_interval {
            // The last, possibly partial, interval.
            ctx.probe.interval(
                interval,
                (measured.as_secs_f64()).max(interval as f64 * d.as_secs_f64()),
            );
        }
        ctx.control
            .store(control_word(Phase::Stop, interval), Ordering::Relaxed);
        live.phase.store(2, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker thread panicked"))
            .collect()
    });

    // Quiescent: the final round, the oracle, the rmap check.
    if dirty_logging {
        let mut w = Worker::new(&ctx, RoleKind::Walker, u32::MAX);
        migration.finish(&mut w);
    }
    let rmap_inconsistencies = oracle::rmap_inconsistencies(&*rmap, &ctx.sptes);
    rmap.reclaim();
    live.phase.store(3, Ordering::Relaxed);

    let mut rec = Recorder::new(cfg.record_latency);
    let mut counters = Counters::default();
    let (mut holds_sampled, mut preempted) = (0, 0);
    for r in &results {
        rec.merge(&r.rec);
        counters.add(&r.counters);
        holds_sampled += r.lock_holds_sampled;
        preempted += r.lock_holder_preempted;
    }
    let o = &migration.oracle;
    Ok(RunReport {
        config: cfg.clone(),
        interrupted,
        measured,
        histograms: rec.into_named(),
        counters,
        verdict: Verdict {
            lost_writes: o.lost_writes,
            lost_write_gfns: o.lost_gfns.clone(),
            rmap_inconsistencies,
            rounds_checked: o.rounds_checked,
        },
        rounds: std::mem::take(&mut migration.rounds),
        online_cpus,
        threads,
        mmu_lock: cfg.mmu_lock,
        clock_source: clock::source(),
        intervals: ctx.intervals.into_samples(cfg.sample_interval, measured),
        lock_holds_sampled: holds_sampled,
        lock_holder_preempted: preempted,
    })
}

/// What a worker thread does.
enum Job<'m> {
    Vcpu(u32),
    Migration(&'m mut Migration),
    Zapper,
}

impl Job<'_> {
    fn role(&self) -> (RoleKind, u32) {
        match self {
            Job::Vcpu(i) => (RoleKind::Vcpu, *i),
            Job::Migration(_) => (RoleKind::Walker, 0),
            Job::Zapper => (RoleKind::Zapper, 0),
        }
    }
}

/// What every thread of a run shares.
pub(crate) struct Shared<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) rmap: &'a dyn Rmap,
    pub(crate) sptes: SpteTable,
    pub(crate) mem: GuestMemory,
    pub(crate) dirty: DirtyLog,
    pub(crate) vcpus: Vcpus,
    /// Phase and interval (`worker::control_word`).
    pub(crate) control: AtomicU64,
    /// Raw clock at the start of the run (trace timestamps count from here).
    pub(crate) t_start: u64,
    /// Raw clock at the start of the measured phase.
    t_measure: AtomicU64,
    pub(crate) intervals: IntervalTable,
    pub(crate) live: &'a Live,
    pub(crate) probe: &'a dyn Probe,
}

impl Shared<'_> {
    pub(crate) fn measure_start(&self) -> u64 {
        // Relaxed: see where the coordinator stores it.
        self.t_measure.load(Ordering::Relaxed)
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
            slots.push((Recorder::new(true), Counters::default()));
        }
        slots[i].0.merge(rec);
        slots[i].1.add(counters);
    }

    fn into_samples(self, every: Option<Duration>, measured: Duration) -> Vec<IntervalSample> {
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
