//! One run of the simulated VM, as every command that runs it (`run`,
//! `check`, `sweep`, `profile`) needs it: Ctrl-C handling, the probes
//! attached to the run (perf counters, a trace, the caller's own), the
//! progress bar, `rmap_workloads::run`, and its report turned into a result
//! record and written.

use crate::record::error::{LabError, LabResult};
use crate::record::machine::VmMachine;
use crate::record::result::{
    self as results, ClockRecord, Counters, Machine, MetricSummary, Part, RunConfig, RunResult,
    Throughput, VmConfig, VmCounters, VmDetail, SCHEMA,
};
use crate::record::warnings;
use crate::session::perf::{PerfSession, PerfSpec};
use crate::session::progress::Progress;
use crate::session::trace::TraceWriter;
use rmap_workloads::{Config, Live, Probe, RunReport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Set by the Ctrl-C (SIGINT/SIGTERM) handler: the run stops early, still
/// runs the final round and the oracle, and writes a result marked
/// `interrupted`.
pub fn stop_flag() -> &'static AtomicBool {
    static STOP: OnceLock<&'static AtomicBool> = OnceLock::new();
    STOP.get_or_init(|| {
        let flag: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                // A second Ctrl-C: the user means it.
                eprintln!("lab: interrupted twice, exiting without a result");
                std::process::exit(130);
            }
        });
        flag
    })
}

/// Whether Ctrl-C was pressed.
pub fn stopped() -> bool {
    stop_flag().load(Ordering::SeqCst)
}

/// Several probes as one (the VM takes one `&dyn Probe`): perf
/// counters, tracing, profile sampling. Starts go in order and stops in
/// reverse, so the first probe brackets the others; `trace_sample` is the
/// first `Some`; everything else goes to every probe.
pub struct Probes<'a>(pub Vec<&'a dyn Probe>);

impl Probe for Probes<'_> {
    fn thread_start(&self, role: rmap_workloads::RoleKind, index: u32) {
        self.0.iter().for_each(|h| h.thread_start(role, index));
    }
    fn thread_stop(&self, role: rmap_workloads::RoleKind, index: u32) {
        self.0.iter().rev().for_each(|h| h.thread_stop(role, index));
    }
    fn measure_start(&self) {
        self.0.iter().for_each(|h| h.measure_start());
    }
    fn trace_sample(&self) -> Option<u32> {
        self.0.iter().find_map(|h| h.trace_sample())
    }
    fn span(
        &self,
        role: rmap_workloads::RoleKind,
        index: u32,
        kind: rmap_workloads::SpanKind,
        start_ns: u64,
        dur_ns: u64,
        arg: u64,
    ) {
        self.0
            .iter()
            .for_each(|h| h.span(role, index, kind, start_ns, dur_ns, arg));
    }
    fn restart(
        &self,
        role: rmap_workloads::RoleKind,
        index: u32,
        at_ns: u64,
        reason: &'static str,
        gfn: u64,
    ) {
        self.0
            .iter()
            .for_each(|h| h.restart(role, index, at_ns, reason, gfn));
    }
    fn interval(&self, index: u64, t_s: f64) {
        self.0.iter().for_each(|h| h.interval(index, t_s));
    }
    fn counter(&self, name: &'static str, key: &'static str, at_ns: u64, value: f64) {
        self.0
            .iter()
            .for_each(|h| h.counter(name, key, at_ns, value));
    }
    fn lock_handoff(
        &self,
        role: rmap_workloads::RoleKind,
        index: u32,
        handoff: rmap_workloads::LockHandoff,
    ) {
        self.0
            .iter()
            .for_each(|h| h.lock_handoff(role, index, handoff));
    }
}

/// One run of the simulated VM, from a validated configuration to a result
/// (not yet written). `extra_probes` see every worker thread (profile's
/// sampler); `label` names the run on the progress bar.
pub fn execute(
    cfg: &Config,
    perf: &PerfSpec,
    trace: Option<&TraceWriter>,
    extra_probes: &[&dyn Probe],
    progress: &Progress,
    label: &str,
) -> LabResult<(RunReport, RunResult)> {
    let session = PerfSession::new(perf).map_err(LabError::usage)?;
    execute_with(cfg, &session, trace, extra_probes, progress, label)
}

/// [`execute`] with a perf session the caller made, so that a probe in
/// `extra_probes` can read the counters while the run goes on
/// (`lab profile` snapshots them at each interval).
pub fn execute_with(
    cfg: &Config,
    session: &PerfSession,
    trace: Option<&TraceWriter>,
    extra_probes: &[&dyn Probe],
    progress: &Progress,
    label: &str,
) -> LabResult<(RunReport, RunResult)> {
    let mut probes: Vec<&dyn Probe> = vec![session];
    if let Some(t) = trace {
        probes.push(t);
    }
    probes.extend_from_slice(extra_probes);
    let probes = Probes(probes);
    let live = Live::default();
    let started_at = results::utc_now();
    let report = std::thread::scope(|s| {
        let bar = s.spawn(|| progress.follow(cfg, &live, label));
        let r = rmap_workloads::run(cfg, stop_flag(), &live, &probes);
        // The bar thread ends when it sees the run's last phase.
        live.phase.store(3, Ordering::Relaxed);
        let _ = bar.join();
        r
    })
    .map_err(|e| LabError::usage(e.to_string()))?;
    let mut result = to_result(
        &report,
        started_at,
        session.results(&report),
        session.hardware_layout(),
    );
    result.warnings.extend(session.warnings());
    Ok((report, result))
}

/// The result record of a run.
pub fn to_result(
    report: &RunReport,
    started_at: String,
    perf: BTreeMap<String, BTreeMap<String, results::PerfValue>>,
    perf_hardware_layout: &str,
) -> RunResult {
    let cfg = &report.config;
    let secs = report.measured.as_secs_f64().max(1e-9);
    let c = &report.counters;
    let per_s = |v: u64| Some(v as f64 / secs);
    let mut machine = Machine::probe(report.threads, report.clock_source);
    machine.part = Part::Vm(VmMachine {
        worker_threads: report.threads,
    });
    let metrics = report
        .histograms
        .iter()
        .map(|(name, h)| {
            let mut m = MetricSummary::from_histogram(h);
            m.sample_every = report
                .sample_every
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, every)| *every)
                .filter(|&every| every > 1);
            m.resolution_ns = Some(report.clock.resolution_ns);
            (name.to_string(), m)
        })
        .collect();
    let paced = c.zaps_requested > 0;
    let counters = Counters {
        walks: c.walk.walks,
        restarts: c.walk.total_restarts(),
        restarts_by_reason: c
            .restarts_by_reason()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        guest_writes: c.guest_writes,
        faults_fast: c.faults_fast,
        faults_slow: c.faults_slow,
        zaps: c.zaps,
        rounds: c.rounds,
        part: Part::Vm(VmCounters {
            guest_reads: c.guest_reads,
            faults_raced: c.faults_raced,
            fast_fault_retries: c.fast_fault_retries,
            sptes_zapped: c.sptes_zapped,
            rounds_empty: c.rounds_empty,
            pages_harvested: c.pages_harvested,
            pages_copied: c.pages_copied,
            tlb_flushes: c.tlb_flushes,
            sptes_visited: c.walk.visited,
            sptes_protected: c.walk.protected,
            mmu_lock_holds: c.mmu_lock_holds,
            lock_holds_sampled: report.lock_holds_sampled,
            lock_holder_preempted: report.lock_holder_preempted,
            rounds_checked: report.verdict.rounds_checked,
            zaps_requested: paced.then_some(c.zaps_requested),
            zaps_issued: paced.then_some(c.zaps),
            zaps_late: paced.then_some(c.zaps_late),
            passes: Some(c.passes),
            accessed_set: Some(c.accessed_set),
            age_walks: Some(c.aging.walk.walks),
            age_visited: Some(c.aging.walk.visited),
            age_young: Some(c.aging.young),
            age_restarts: Some(c.aging.walk.total_restarts()),
            age_passes: Some(c.age_passes),
            age_passes_due: Some(c.age_passes_due),
        }),
    };
    let throughput = Throughput {
        guest_writes: per_s(c.guest_writes),
        faults_fast: per_s(c.faults_fast),
        faults_slow: per_s(c.faults_slow),
        walks: per_s(c.walk.walks),
        rounds: per_s(c.rounds),
        pages: per_s(c.pages_harvested),
        zaps: per_s(c.zaps),
        age_passes: cfg.aging().then(|| c.age_passes as f64 / secs),
        ..Throughput::default()
    };
    // Every round is in the `walker.round` histogram; the series keeps an
    // even sample so a result file stays small.
    let step = round_step(report.rounds.len());
    let mut config = config_json(cfg);
    if let Part::Vm(vm) = &mut config.part {
        if let Some(p) = &mut vm.perturb {
            p.delays = Some(report.perturb_delays);
        }
    }
    let mut result = RunResult {
        schema: SCHEMA.into(),
        impl_name: cfg.impl_kind.name().into(),
        workload: cfg.workload.name().into(),
        config,
        machine,
        lab_version: env!("CARGO_PKG_VERSION").into(),
        started_at,
        duration_s: report.measured.as_secs_f64(),
        interrupted: report.interrupted,
        verdict: results::Verdict {
            lost_writes: report.verdict.lost_writes,
            rmap_inconsistencies: report.verdict.rmap_inconsistencies,
            ok: report.verdict.ok(),
            lost_write_gfns: report.verdict.lost_write_gfns.clone(),
            missed_sptes: report
                .verdict
                .sptes_checked
                .then_some(report.verdict.missed_sptes),
            first_violation_s: report.first_violation.map(|d| d.as_secs_f64()),
        },
        metrics,
        counters,
        throughput,
        perf,
        warnings: Vec::new(),
        rounds: report
            .rounds
            .iter()
            .step_by(step)
            .map(|r| [r.t_s, r.round_ns as f64, r.pages as f64])
            .collect(),
        detail: Part::Vm(VmDetail {
            perf_hardware_layout: perf_hardware_layout.to_string(),
            rounds_sample_every: (step > 1).then_some(step as u64),
            sample_interval_s: None,
            thread_cpu_s: Some(
                report
                    .cpu_s
                    .iter()
                    .map(|(role, s)| (role.name().to_string(), *s))
                    .collect(),
            ),
            clock: Some(ClockRecord {
                source: report.clock.source.into(),
                fenced: report.clock.fenced,
                resolution_ns: report.clock.resolution_ns,
                read_ns: report.clock.read_ns,
            }),
        }),
    };
    result.warnings = warnings::for_run(report, &result);
    result
}

/// A result keeps at most this many rounds of its round-over-time series.
const MAX_ROUNDS_KEPT: usize = 1000;

/// Keep one round in this many.
fn round_step(n: usize) -> usize {
    n.div_ceil(MAX_ROUNDS_KEPT).max(1)
}

/// Every parameter of the run, as the result file's `config`.
pub fn config_json(cfg: &Config) -> RunConfig {
    RunConfig {
        vcpus: cfg.vcpus,
        seed: cfg.seed,
        desc_ext: cfg.desc_ext as u32,
        aliases: cfg.aliases,
        mem_bytes: cfg.mem_bytes,
        part: Part::Vm(VmConfig {
            duration_s: cfg.duration.as_secs_f64(),
            warmup_s: cfg.warmup.as_secs_f64(),
            zap_rate: cfg.zap_rate,
            zap_gfns: cfg.zap_gfns,
            write_pct: cfg.write_pct,
            pattern: cfg.pattern.name().into(),
            regions: cfg.regions.name().into(),
            pin: cfg.pin,
            wp_batch: cfg.wp_batch,
            mmu_lock: cfg.mmu_lock.name().into(),
            mmu_lock_choice: Some(if cfg.mmu_lock_auto {
                "auto".into()
            } else {
                cfg.mmu_lock.name().into()
            }),
            tlb_flush: Some(cfg.tlb_flush.name().into()),
            inject_bug: cfg.bug.map(|b| b.name().into()),
            record_latency: cfg.record_latency,
            tlb_burst: cfg.tlb_burst,
            hot_gfns: cfg.hot_gfns,
            gfns: cfg.gfns(),
            perturb: cfg.perturb.map(|p| results::PerturbConfig {
                rate: p.rate,
                writer_rate: p.writer_rate,
                delay: p.delay.name().into(),
                max_s: p.max.as_secs_f64(),
                delays: None,
            }),
            spte_check: cfg.checks_sptes().then_some(true),
            chain: cfg.chain_used().map(|c| c.name().into()),
            age_gfns: Some(cfg.age_gfns),
            age_period_s: Some(cfg.age_period.as_secs_f64()),
        }),
    }
}

/// `<impl>-<workload>-<N>v-<stamp>`: a result's file name, before the
/// suffix that keeps it unique, with the lab's file-name stamp of the run's
/// start (`record::result::utc_stamps`).
pub fn result_base(r: &RunResult) -> String {
    let stamp = results::file_stamp_of(&r.started_at)
        .unwrap_or_else(|| results::utc_stamps(std::time::SystemTime::now()).1);
    format!(
        "{}-{}-{}v-{}",
        r.impl_name, r.workload, r.config.vcpus, stamp
    )
}

/// Write a result into `dir` as `<result_base>.json`, or `-2.json`, ...
/// when a run started in the same millisecond took that name (never replacing
/// a file); returns the path.
pub fn save(dir: &Path, r: &RunResult) -> LabResult<PathBuf> {
    let base = result_base(r);
    r.save_new(dir, &base).map_err(|e| {
        LabError::failed(format!(
            "{}: cannot write result: {e}",
            dir.join(format!("{base}.json")).display()
        ))
    })
}
