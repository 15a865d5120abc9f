//! The coordinator: [`run`] builds the VM, starts its threads, drives the
//! phases (warmup, the measured phase and its intervals), stops the threads,
//! and runs the final round, the oracle's final comparison and the rmap
//! check on the calling thread (see [threads and
//! phases](crate#threads-phases-and-what-they-measure) in the crate docs).

use super::oracle::{self, Oracle, Pages};
use super::perturb::{self, Perturber};
use super::picker::hot_gfns;
use super::probe::Probe;
use super::report::{RunReport, Verdict};
use super::shared::{Phase, Shared};
use super::walker::Walker;
use super::worker::{Worker, WorkerResult};
use super::{aging, vcpu, zapper};
use crate::clock;
use crate::config::{Config, ConfigError};
use crate::metrics::{Counters, Live, Metric, Recorder, RoleKind};
use rmap_impls::{BuildError, Perturb, Rmap, RmapConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the coordinator looks at `stop` and the clock.
const POLL: Duration = Duration::from_millis(5);

/// When tracing, how often the coordinator samples the trace's counter
/// tracks.
const TRACE_TICK: Duration = Duration::from_millis(10);

/// The counter tracks the coordinator samples when tracing: guest writes
/// per second (from the live progress counters, which lag by a few hundred
/// writes) and `mmu_lock` waiters queued. `None` when not tracing.
struct TraceTicks {
    next: Instant,
    last: (Instant, u64),
}

impl TraceTicks {
    fn new(ctx: &Shared<'_>) -> Option<TraceTicks> {
        let now = Instant::now();
        ctx.probe.trace_sample().map(|_| TraceTicks {
            next: now + TRACE_TICK,
            last: (now, Live::get(&ctx.live.guest_writes)),
        })
    }

    fn tick(&mut self, ctx: &Shared<'_>) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        let writes = Live::get(&ctx.live.guest_writes);
        let dt = now.duration_since(self.last.0).as_secs_f64().max(1e-9);
        let at = clock::delta_ns(ctx.t_start, clock::now());
        let rate = writes.saturating_sub(self.last.1) as f64 / dt;
        ctx.probe.counter("guest writes", "per second", at, rate);
        // Relaxed: a count for the trace.
        let waiters = ctx.lock_trace.waiters.load(Ordering::Relaxed);
        ctx.probe
            .counter("mmu_lock waiters", "queued", at, waiters as f64);
        self.last = (now, writes);
        self.next = now + TRACE_TICK;
    }
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
    let perturber = cfg.perturb.map(|p| Arc::new(Perturber::new(&p)));
    let rmap = build_rmap(cfg, perturber.clone())?;
    // Measure the clock before any thread runs (the first call takes about
    // a millisecond).
    clock::info();
    let ctx = Shared::new(cfg, &*rmap, perturber, live, probe);
    // `churn` and `torture` work on their hot gfns: the oracle watches them
    // and every round write-protects them all.
    let hot = cfg.workload.hot().then(|| hot_gfns(cfg));
    let oracle_pages = match &hot {
        Some(h) => Pages::Some(h.clone()),
        None => Pages::All(cfg.gfns()),
    };
    let mut walker = Walker::new(Oracle::new(oracle_pages), cfg.checks_sptes(), hot);
    Walker::round_zero(&ctx.mem);

    live.phase.store(0, Ordering::Relaxed);
    let mut phases = Phases::default();
    let results: Vec<WorkerResult> = std::thread::scope(|s| {
        let mut jobs: Vec<Job<'_>> = (0..cfg.vcpus).map(Job::Vcpu).collect();
        if cfg.dirty_logging() {
            jobs.push(Job::Walker(&mut walker));
        }
        if cfg.zapping() {
            jobs.push(Job::Zapper);
        }
        if cfg.aging() {
            jobs.push(Job::Aging);
        }
        let cores = if cfg.pin {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let ctx = &ctx;
        let handles: Vec<_> = jobs
            .into_iter()
            .enumerate()
            .map(|(n, job)| {
                let core = (!cores.is_empty()).then(|| cores[n % cores.len()]);
                std::thread::Builder::new()
                    .name(job.thread_name())
                    .spawn_scoped(s, move || {
                        if let Some(c) = core {
                            core_affinity::set_for_current(c);
                        }
                        job.main(ctx)
                    })
                    .expect("spawning a worker thread")
            })
            .collect();
        phases = drive(ctx, stop);
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker thread panicked"))
            .collect()
    });

    // Quiescent: the final round, the oracle, the rmap check.
    if cfg.dirty_logging() {
        perturb::seed_thread(cfg.seed, RoleKind::Walker, u32::MAX);
        let mut w = Worker::new(&ctx, RoleKind::Walker, u32::MAX);
        walker.finish(&mut w);
    }
    let rmap_inconsistencies = oracle::rmap_inconsistencies(&*rmap, &ctx.sptes);
    rmap.reclaim();
    live.phase.store(3, Ordering::Relaxed);

    let mut rec = Recorder::default();
    let mut counters = Counters::default();
    let (mut holds_sampled, mut preempted) = (0, 0);
    let mut cpu_ns = [0u64; RoleKind::ALL.len()];
    let mut zap_origin = None;
    for r in &results {
        rec.merge(&r.rec);
        counters.add(&r.counters);
        holds_sampled += r.lock_holds_sampled;
        preempted += r.lock_holder_preempted;
        cpu_ns[r.role as usize] += r.cpu_ns;
        zap_origin = zap_origin.or(r.zap_schedule_origin);
    }
    counters.zaps_requested = zapper::requested(cfg, zap_origin, phases.start, phases.end);
    let histograms = rec.into_named();
    let sample_every = histograms
        .iter()
        .map(|(name, _)| {
            let m = Metric::from_name(name).expect("a recorder names its metrics");
            (*name, m.sample_every())
        })
        .collect();
    // The walker's rounds of the measured phase: the oracle checks every
    // round.
    let rounds_checked = counters.rounds;
    let o = &walker.oracle;
    let first_violation = ctx.first_violation();
    let perturb_delays = ctx.perturb.as_ref().map_or(0, |p| p.delays());
    let (missed_sptes, missed_spte_examples) = walker
        .spte_check
        .as_ref()
        .map_or((0, Vec::new()), |c| (c.missed, c.examples.clone()));
    Ok(RunReport {
        config: cfg.clone(),
        interrupted: phases.interrupted,
        measured: phases.measured,
        histograms,
        sample_every,
        counters,
        verdict: Verdict {
            lost_writes: o.lost_writes,
            lost_write_gfns: o.lost_gfns.clone(),
            rmap_inconsistencies,
            rounds_checked,
            missed_sptes,
            missed_spte_examples,
            sptes_checked: walker.spte_check.is_some(),
        },
        rounds: std::mem::take(&mut walker.rounds),
        online_cpus,
        threads: cfg.worker_threads(),
        mmu_lock: cfg.mmu_lock,
        clock_source: clock::source(),
        clock: clock::info(),
        cpu_s: RoleKind::ALL
            .iter()
            .filter(|r| match r {
                RoleKind::Vcpu => true,
                RoleKind::Walker => cfg.dirty_logging(),
                RoleKind::Zapper => cfg.zapping(),
                RoleKind::Aging => cfg.aging(),
            })
            .map(|&r| (r, cpu_ns[r as usize] as f64 / 1e9))
            .collect(),
        intervals: ctx
            .intervals
            .into_samples(cfg.sample_interval, phases.measured),
        lock_holds_sampled: holds_sampled,
        lock_holder_preempted: preempted,
        first_violation,
        stopped_at_violation: phases.stopped_at_violation,
        perturb_delays,
    })
}

/// The rmap under test (its perturbed build when the run is perturbed),
/// its build errors told as configuration errors.
fn build_rmap(
    cfg: &Config,
    perturber: Option<Arc<Perturber>>,
) -> Result<Box<dyn Rmap>, ConfigError> {
    rmap_impls::build_with(
        cfg.impl_kind,
        &RmapConfig {
            chain: cfg.chain,
            ..RmapConfig::new(cfg.gfns(), cfg.desc_ext, cfg.mmu_lock)
        },
        cfg.bug,
        perturber.map(|p| p as Arc<dyn Perturb>),
    )
    .map_err(|e| match e {
        BuildError::DescExt(n) => ConfigError::DescExt(n),
        BuildError::NoGfns => ConfigError::NoMemory,
        BuildError::BugNotApplicable(b, k) => ConfigError::BugNotApplicable(b, k),
        BuildError::Unavailable(_) => ConfigError::NoVcpus,
        e => ConfigError::Build(e),
    })
}

/// What a worker thread does.
enum Job<'m> {
    Vcpu(u32),
    Walker(&'m mut Walker),
    Zapper,
    Aging,
}

impl Job<'_> {
    fn role(&self) -> (RoleKind, u32) {
        match self {
            Job::Vcpu(i) => (RoleKind::Vcpu, *i),
            Job::Walker(_) => (RoleKind::Walker, 0),
            Job::Zapper => (RoleKind::Zapper, 0),
            Job::Aging => (RoleKind::Aging, 0),
        }
    }

    /// The OS thread's name: `vcpu<i>`, `walker`, `zapper`, `aging`.
    fn thread_name(&self) -> String {
        match self.role() {
            (RoleKind::Vcpu, i) => format!("vcpu{i}"),
            (r, _) => r.name().to_string(),
        }
    }

    /// The thread's body: its role's loop between the probe's start and
    /// stop, then everything it measured.
    fn main<'a>(self, ctx: &'a Shared<'a>) -> WorkerResult {
        let (role, index) = self.role();
        perturb::seed_thread(ctx.cfg.seed, role, index);
        ctx.probe.thread_start(role, index);
        let mut w = Worker::new(ctx, role, index);
        let zap_schedule_origin = match self {
            Job::Vcpu(i) => {
                vcpu::vcpu_main(&mut w, i);
                None
            }
            Job::Walker(walker) => {
                walker.main(&mut w);
                None
            }
            Job::Zapper => zapper::zapper_main(&mut w),
            Job::Aging => {
                aging::aging_main(&mut w);
                None
            }
        };
        ctx.probe.thread_stop(role, index);
        w.finish(zap_schedule_origin)
    }
}

/// How the measured phase went.
#[derive(Default)]
pub(crate) struct Phases {
    pub(crate) measured: Duration,
    pub(crate) interrupted: bool,
    /// Raw clock at the start and the end of the measured phase.
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Ended early at the first violation (`Config::stop_on_violation`).
    pub(crate) stopped_at_violation: bool,
}

/// Warmup, then the measured phase and its intervals, watching `stop`;
/// ends by telling the workers to stop.
fn drive(ctx: &Shared<'_>, stop: &AtomicBool) -> Phases {
    let cfg = ctx.cfg;
    // Relaxed: `stop` is a Ctrl-C flag, polled; nothing is read under it.
    let stopped = || stop.load(Ordering::Relaxed);
    let mut ticks = TraceTicks::new(ctx);
    // A torture that stops at its first violation ends its warmup there too.
    let violated = || cfg.stop_on_violation && ctx.first_violation().is_some();
    let warm_end = Instant::now() + cfg.warmup;
    while Instant::now() < warm_end && !stopped() && !violated() {
        if let Some(t) = &mut ticks {
            t.tick(ctx);
        }
        std::thread::sleep(POLL.min(warm_end.saturating_duration_since(Instant::now())));
    }
    let m0 = Instant::now();
    ctx.stamp_measure_start();
    ctx.probe.measure_start();
    ctx.set_phase(Phase::Measure, 0);
    ctx.live.phase.store(1, Ordering::Relaxed);
    let end = m0 + cfg.duration;
    // `min_rounds`: the rounds published so far (Relaxed: a progress count,
    // polled; what the rounds found is read after the join); a round that straddles
    // `m0` is published but not measured, hence the one more awaited.
    let rounds_at_m0 = ctx.live.rounds.load(Ordering::Relaxed);
    let rounds_short = || {
        cfg.min_rounds > 0
            && cfg.dirty_logging()
            && ctx.live.rounds.load(Ordering::Relaxed) - rounds_at_m0 < cfg.min_rounds + 1
    };
    let last_end = end + cfg.min_rounds_cap();
    let mut interval = 0u64;
    let mut next_tick = cfg.sample_interval.map(|d| m0 + d);
    let mut interrupted = false;
    let mut stopped_at_violation = false;
    loop {
        if stopped() {
            interrupted = true;
            break;
        }
        if violated() {
            stopped_at_violation = true;
            break;
        }
        let now = Instant::now();
        if now >= end && (now >= last_end || !rounds_short()) {
            break;
        }
        if let Some(t) = &mut ticks {
            t.tick(ctx);
        }
        if let (Some(tick), Some(d)) = (next_tick, cfg.sample_interval) {
            if now >= tick {
                ctx.probe.interval(interval, (tick - m0).as_secs_f64());
                interval += 1;
                ctx.set_phase(Phase::Measure, interval);
                next_tick = Some(tick + d);
            }
        }
        let mut wake = if now >= end {
            now + POLL
        } else {
            end.min(now + POLL)
        };
        if let Some(t) = next_tick {
            wake = wake.min(t);
        }
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
    let measured = m0.elapsed();
    let end_raw = clock::now();
    if let Some(d) = cfg.sample_interval {
        // The last, possibly partial, interval.
        ctx.probe.interval(
            interval,
            measured
                .as_secs_f64()
                .max(interval as f64 * d.as_secs_f64()),
        );
    }
    ctx.set_phase(Phase::Stop, interval);
    ctx.live.phase.store(2, Ordering::Relaxed);
    Phases {
        measured,
        interrupted,
        start: ctx.measure_start(),
        end: end_raw,
        stopped_at_violation,
    }
}
