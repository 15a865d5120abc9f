//! The coordinator: [`run`] builds the VM, starts its threads, drives the
//! phases (warmup, the measured phase and its intervals), stops the threads,
//! and runs the final round, the oracle's final comparison and the rmap
//! check on the calling thread (see [threads and
//! phases](crate#threads-phases-and-what-they-measure) in the crate docs).

use super::oracle::{self, Oracle, Pages};
use super::picker::hot_gfns;
use super::probe::Probe;
use super::report::{RunReport, Verdict};
use super::shared::{Phase, Shared};
use super::walker::Walker;
use super::worker::{Worker, WorkerResult};
use super::{aging, vcpu, zapper};
use crate::clock;
use crate::config::{Config, ConfigError, WorkloadKind};
use crate::metrics::{Counters, Live, Recorder, RoleKind};
use rmap_impls::{BuildError, Rmap, RmapConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the coordinator looks at `stop` and the clock.
const POLL: Duration = Duration::from_millis(5);

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
    let rmap = build_rmap(cfg)?;
    let ctx = Shared::new(cfg, &*rmap, live, probe);
    // `churn` works on its hot gfns: the oracle watches them and every round
    // write-protects them all.
    let hot = (cfg.workload == WorkloadKind::Churn).then(|| hot_gfns(cfg));
    let oracle_pages = match &hot {
        Some(h) => Pages::Some(h.clone()),
        None => Pages::All(cfg.gfns()),
    };
    let mut walker = Walker::new(Oracle::new(oracle_pages), hot);
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
        let mut w = Worker::new(&ctx, RoleKind::Walker, u32::MAX);
        walker.finish(&mut w);
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
    let o = &walker.oracle;
    Ok(RunReport {
        config: cfg.clone(),
        interrupted: phases.interrupted,
        measured: phases.measured,
        histograms: rec.into_named(),
        counters,
        verdict: Verdict {
            lost_writes: o.lost_writes,
            lost_write_gfns: o.lost_gfns.clone(),
            rmap_inconsistencies,
            rounds_checked: o.rounds_checked,
        },
        rounds: std::mem::take(&mut walker.rounds),
        online_cpus,
        threads: cfg.worker_threads(),
        mmu_lock: cfg.mmu_lock,
        clock_source: clock::source(),
        intervals: ctx
            .intervals
            .into_samples(cfg.sample_interval, phases.measured),
        lock_holds_sampled: holds_sampled,
        lock_holder_preempted: preempted,
    })
}

/// The rmap under test, its build errors told as configuration errors.
fn build_rmap(cfg: &Config) -> Result<Box<dyn Rmap>, ConfigError> {
    rmap_impls::build(
        cfg.impl_kind,
        &RmapConfig {
            chain: cfg.chain,
            ..RmapConfig::new(cfg.gfns(), cfg.desc_ext, cfg.mmu_lock)
        },
        cfg.bug,
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
        ctx.probe.thread_start(role, index);
        let mut w = Worker::new(ctx, role, index);
        match self {
            Job::Vcpu(i) => vcpu::vcpu_main(&mut w, i),
            Job::Walker(walker) => walker.main(&mut w),
            Job::Zapper => zapper::zapper_main(&mut w),
            Job::Aging => aging::aging_main(&mut w),
        }
        ctx.probe.thread_stop(role, index);
        w.finish()
    }
}

/// How the measured phase went.
#[derive(Default)]
struct Phases {
    measured: Duration,
    interrupted: bool,
}

/// Warmup, then the measured phase and its intervals, watching `stop`;
/// ends by telling the workers to stop.
fn drive(ctx: &Shared<'_>, stop: &AtomicBool) -> Phases {
    let cfg = ctx.cfg;
    // Relaxed: `stop` is a Ctrl-C flag, polled; nothing is read under it.
    let stopped = || stop.load(Ordering::Relaxed);
    let warm_end = Instant::now() + cfg.warmup;
    while Instant::now() < warm_end && !stopped() {
        std::thread::sleep(POLL.min(warm_end.saturating_duration_since(Instant::now())));
    }
    let m0 = Instant::now();
    ctx.stamp_measure_start();
    ctx.probe.measure_start();
    ctx.set_phase(Phase::Measure, 0);
    ctx.live.phase.store(1, Ordering::Relaxed);
    let end = m0 + cfg.duration;
    let mut interval = 0u64;
    let mut next_tick = cfg.sample_interval.map(|d| m0 + d);
    let mut interrupted = false;
    loop {
        if stopped() {
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
                ctx.set_phase(Phase::Measure, interval);
                next_tick = Some(tick + d);
            }
        }
        let mut wake = end.min(now + POLL);
        if let Some(t) = next_tick {
            wake = wake.min(t);
        }
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
    let measured = m0.elapsed();
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
    }
}
