//! What a calibration shows: the `rmap-lab/result/v1` result file, the human
//! summary, and the same numbers in the form the kernel's
//! `dirty_log_perf_test` prints them, so the two can be laid side by side.
//!
//! Metric names follow the simulated runs where the work is the same:
//! `walker.round` is one dirty-log round of the lockstep iterations (get,
//! plus clear in clear mode: the host's write-protect of every dirty page,
//! TLB flush included, as the kernel does it), with `walker.get_dirty_log`
//! and `walker.clear_dirty_log` its parts. Rounds that ran while the vCPUs
//! wrote are `walker.round_live`. `vcpu.pass` and `vcpu.pass_nolog` are the
//! guest's passes over its share with and without dirty logging; `vm.*`
//! are one-off costs (populate, enable and disable dirty logging). Counters
//! and throughput use the simulated names (`rounds`, `guest_writes`,
//! `vcpu.guest_writes`), and the real VM's part of the record
//! (`record::result::KvmDetail`) keeps what only a real kernel has: the
//! dirty-log mode, the host's virtualisation (`kvm`), the interference
//! ratio, the checks, `per_iteration` (the kernel test's table plus the
//! pages written and missing, and KVM's statistics over the pass and over
//! the round), `per_vcpu` (share, passes, and the words read back from the
//! first and last page of the share), `kvm_stats` (where KVM's statistics
//! came from and their change over every phase) and `write_protect`: what
//! the rounds' write-protect step had to do, told from those statistics
//! (`rmap_workloads::kvm::figure`), with the sentence the summary prints.
//! When it says the rounds had no spte to protect, the per-page figure is
//! KVM's bitmap handling, and the summary and a warning say it is not to be
//! set beside a simulated rmap walk.

use crate::record::machine::{KvmHost, KvmMachine};
use crate::record::result::{
    Counters, KvmConfig, KvmCounters, KvmDetail, KvmIteration, KvmIterationStats, KvmLevel,
    KvmLive, KvmPhaseStats, KvmStats, KvmStatsChange, KvmStatsDelta, KvmStatsRead,
    KvmStatsUnavailable, KvmVcpu, KvmWriteProtect, Machine, MetricSummary, Part, RunConfig,
    RunResult, Throughput, Verdict, SCHEMA,
};
use crate::record::units::{format_ns, format_size};
use hdrhistogram::Histogram;
use rmap_workloads::kvm::figure::{Work, WriteProtect};
use rmap_workloads::kvm::measure::{Calibration, Live, Round};
use rmap_workloads::kvm::stats::{Change, Delta};
use rmap_workloads::kvm::vm::DirtyLogMode;
use rmap_workloads::kvm::{guest, measure, Environment};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// How the result's warnings start the note on a software-virtualised host
/// (the summary prints it as its "host KVM" line instead).
const HOST_NOTE: &str = "host KVM is ";

/// How the result's warning about the write-protect figure starts (the
/// summary prints the statement on a line of its own instead).
const WP_NOTE: &str = "the write-protect figure measured ";

/// KVM statistics in the summary's tables, in this order.
const TABLE_STATS: [&str; 7] = [
    "exits",
    "pf_taken",
    "pf_fixed",
    "pf_fast",
    "insn_emulation",
    "mmu_pte_write",
    "remote_tlb_flush",
];

/// One row of the summary's statistics table: the counts of
/// [`TABLE_STATS`], then `pages_4k` before -> after.
fn stats_row(o: &mut String, label: &str, d: &Delta) {
    let _ = write!(o, "  {label:<22}");
    for name in TABLE_STATS {
        let _ = write!(o, " {:>14}", d.count(name));
    }
    let _ = match d.level("pages_4k") {
        Some((b, a)) => writeln!(o, " {:>9} -> {a}", b),
        None => writeln!(o, " {:>14}", "-"),
    };
}

/// KVM's statistics per phase and per iteration, as tables.
fn stats_tables(o: &mut String, cal: &Calibration) {
    let src = match &cal.stats_source {
        Ok(src) => src,
        Err(why) => {
            let _ = writeln!(o, "KVM statistics: not read ({why})");
            return;
        }
    };
    let _ = writeln!(
        o,
        "KVM statistics (KVM_GET_STATS_FD of {} and its vCPUs, summed; {} VM and {} vCPU statistics; all in the result):",
        src.vm_id,
        src.vm_stats.len(),
        src.vcpu_stats.len()
    );
    let _ = write!(o, "  {:<22}", "");
    for name in TABLE_STATS {
        let _ = write!(o, " {name:>14}");
    }
    let _ = writeln!(o, " {:>14}", "pages_4k");
    for p in &cal.phase_stats {
        stats_row(o, p.phase, &p.delta);
    }
    for (k, it) in cal.iterations.iter().enumerate() {
        if let (Some(pass), Some(round)) = (&it.pass_stats, &it.round_stats) {
            stats_row(o, &format!("iteration {} pass", k + 1), pass);
            stats_row(o, &format!("iteration {} round", k + 1), round);
        }
    }
}

/// Live rounds kept in the result's `rounds` (all are in `walker.round_live`).
const LIVE_ROUNDS_KEPT: usize = 1000;

const GIB_PAGES: f64 = (1u64 << 30) as f64 / guest::PAGE_SIZE as f64;

fn histogram_of(values: impl Iterator<Item = u64>) -> Histogram<u64> {
    let mut h = measure::new_histogram();
    for v in values {
        h.saturating_record(v.max(1));
    }
    h
}

fn median(v: Vec<f64>) -> Option<f64> {
    crate::analysis::Stats::of(&v).map(|s| s.median)
}

/// Median over the lockstep rounds of round time per dirty page, in ns.
pub fn round_ns_per_dirty_page(cal: &Calibration) -> Option<f64> {
    median(
        cal.iterations
            .iter()
            .filter(|i| i.round.dirty_pages > 0)
            .map(|i| i.round.round_ns() as f64 / i.round.dirty_pages as f64)
            .collect(),
    )
}

/// Median over the lockstep iterations of dirty memory time per page
/// written, in ns (the kernel test's "dirty memory time" over its pages).
pub fn dirty_memory_ns_per_page(cal: &Calibration) -> Option<f64> {
    median(
        cal.iterations
            .iter()
            .filter(|i| i.written_pages > 0)
            .map(|i| i.dirty_memory_ns as f64 / i.written_pages as f64)
            .collect(),
    )
}

/// The sentence that says what the write-protect figure measured, on the
/// host kernel `kernel`.
pub fn write_protect_statement(w: &WriteProtect, cal: &Calibration, kernel: &str) -> String {
    let emulated = format!(
        "{:.1} emulated instructions (insn_emulation) and {:.1} emulated writes (mmu_pte_write) per page written",
        w.emulated_insns_per_page(),
        w.emulated_writes_per_page()
    );
    match w.work {
        Work::RmapWalk => format!(
            "rmap walks: each of the {} rounds began with {} 4 KiB sptes in the VM (pages_4k) \
             for at most {} dirty pages, and the passes after a round took {:.2} faults per page \
             (pf_fixed), so the round time includes walking each dirty gfn's rmap \
             (host kernel {kernel})",
            w.rounds,
            if w.sptes_4k_min == w.sptes_4k_max {
                w.sptes_4k_min.to_string()
            } else {
                format!("{} to {}", w.sptes_4k_min, w.sptes_4k_max)
            },
            w.dirty_pages_max,
            w.refaults_per_page()
        ),
        Work::Partial => format!(
            "partly rmap walks: some of the {} rounds began with fewer 4 KiB sptes (at least {}) \
             than dirty pages (up to {}), so the round time mixes rmap walks with bitmap handling \
             (host kernel {kernel})",
            w.rounds, w.sptes_4k_min, w.dirty_pages_max
        ),
        Work::BitmapOnly => format!(
            "bitmap handling, not rmap walks: KVM held no leaf spte when the {} rounds ran \
             (pages_4k 0) and the guest's writes reached it as {emulated}, so the round time is \
             KVM scanning and clearing the dirty bitmap, not comparable with a simulated rmap \
             walk (host kernel {kernel}{})",
            w.rounds,
            if cal.privilege.cpl() == 0 {
                "; --guest-cpl 3 may give the guest sptes"
            } else {
                ""
            }
        ),
        Work::Unknown => format!(
            "unknown: {}, so nothing says whether the rounds had sptes to write-protect",
            match &cal.stats_source {
                Err(why) => format!("no KVM statistics ({why})"),
                Ok(_) => "no round ran with KVM statistics".to_string(),
            }
        ),
    }
}

fn change_record(c: &Change) -> KvmStatsChange {
    KvmStatsChange {
        counts: c.counts.clone(),
        levels: c
            .levels
            .iter()
            .map(|(k, &(before, after))| (k.clone(), KvmLevel { before, after }))
            .collect(),
    }
}

/// KVM's statistics over one scope: the VM's, and its vCPUs' summed.
fn delta_record(d: &Delta) -> KvmStatsDelta {
    KvmStatsDelta {
        vm: change_record(&d.vm),
        vcpus: change_record(&d.vcpus),
    }
}

fn stats_record(cal: &Calibration) -> KvmStats {
    match &cal.stats_source {
        Ok(src) => KvmStats::Read(KvmStatsRead {
            source: "KVM_GET_STATS_FD".to_string(),
            vm_id: src.vm_id.clone(),
            vm_stats: src.vm_stats.clone(),
            vcpu_stats: src.vcpu_stats.clone(),
            phases: cal
                .phase_stats
                .iter()
                .map(|p| KvmPhaseStats {
                    phase: p.phase.to_string(),
                    vm: change_record(&p.delta.vm),
                    vcpus: change_record(&p.delta.vcpus),
                })
                .collect(),
        }),
        Err(why) => KvmStats::Unavailable(KvmStatsUnavailable {
            unavailable: why.clone(),
        }),
    }
}

fn write_protect_record(w: &WriteProtect, statement: String) -> KvmWriteProtect {
    KvmWriteProtect {
        measured: w.work.name().to_string(),
        rmap_walk: w.is_rmap_walk(),
        statement,
        rounds: w.rounds as u64,
        sptes_4k_min: w.sptes_4k_min,
        sptes_4k_max: w.sptes_4k_max,
        sptes_huge_max: w.sptes_huge_max,
        dirty_pages_max: w.dirty_pages_max,
        refaults: w.refaults,
        refault_pages: w.refault_pages,
        refaults_per_page: w.refaults_per_page(),
        emulated_insns_per_page: w.emulated_insns_per_page(),
        emulated_writes_per_page: w.emulated_writes_per_page(),
    }
}

/// What `lab calibrate` ran with (for the result's `config`).
pub struct Setup<'a> {
    pub vcpus: u32,
    pub mem_bytes: u64,
    pub iterations: u32,
    pub live: Duration,
    pub forced_mode: Option<DirtyLogMode>,
    pub round_interval: Duration,
    pub env: &'a Environment,
    pub warnings: &'a [String],
}

fn mode_words(cal: &Calibration) -> String {
    match cal.mode {
        DirtyLogMode::Clear => format!(
            "clear (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2{}: KVM_GET_DIRTY_LOG, then KVM_CLEAR_DIRTY_LOG write-protects)",
            if cal.initially_set { " + INITIALLY_SET" } else { "" }
        ),
        DirtyLogMode::Get => {
            "get (KVM_GET_DIRTY_LOG fetches, clears and write-protects)".to_string()
        }
    }
}

fn live_record(l: &Live) -> KvmLive {
    KvmLive {
        elapsed_ns: l.elapsed_ns,
        passes: l.passes,
        pages: l.pages,
        pages_per_s: l.pages_per_s(),
        passes_per_s: l.passes_per_s(),
        capped: l.capped,
    }
}

/// The host's KVM, as the result file's `machine.kvm`.
fn host_record(env: &Environment, max_vcpus: usize) -> KvmHost {
    KvmHost {
        tdp_mmu: env.tdp_mmu.clone(),
        modules: env.modules.clone(),
        kvm_pvm: env.software_virtualised(),
        software_virtualised: env.software_virtualised(),
        shadow_paging: env.shadow_paging(),
        max_vcpus,
        parameters: env.parameters.clone(),
    }
}

/// The result file for `cal`.
pub fn result(cal: &Calibration, setup: &Setup) -> RunResult {
    let (started_at, _) = crate::record::result::utc_stamps(cal.started);
    let mut metrics = BTreeMap::new();
    let mut put = |name: &str, h: Histogram<u64>| {
        if !h.is_empty() {
            metrics.insert(name.to_string(), MetricSummary::from_histogram(&h));
        }
    };
    let its = &cal.iterations;
    put(
        "walker.round",
        histogram_of(its.iter().map(|i| i.round.round_ns())),
    );
    put(
        "walker.get_dirty_log",
        histogram_of(its.iter().map(|i| i.round.get_ns)),
    );
    if cal.mode == DirtyLogMode::Clear {
        put(
            "walker.clear_dirty_log",
            histogram_of(its.iter().map(|i| i.round.clear_ns)),
        );
    }
    put(
        "walker.round_live",
        histogram_of(cal.live_rounds.iter().map(Round::round_ns)),
    );
    put(
        "vcpu.iteration",
        histogram_of(its.iter().map(|i| i.dirty_memory_ns)),
    );
    if let Some(l) = &cal.log {
        put("vcpu.pass", l.pass_ns.clone());
    }
    if let Some(l) = &cal.nolog {
        put("vcpu.pass_nolog", l.pass_ns.clone());
    }
    put("vcpu.pass_populate", cal.populate_pass_ns.clone());
    put(
        "vm.populate",
        histogram_of(std::iter::once(cal.populate_ns)),
    );
    put(
        "vm.enable_dirty_log",
        histogram_of(cal.enable_ns.into_iter()),
    );
    put(
        "vm.disable_dirty_log",
        histogram_of(cal.disable_ns.into_iter()),
    );

    let pages_harvested: u64 = its.iter().map(|i| i.round.dirty_pages).sum();
    let counters = Counters {
        guest_writes: cal.guest_writes,
        rounds: its.len() as u64,
        part: Part::Kvm(KvmCounters {
            pages_harvested,
            dirty_pages: pages_harvested,
            rounds_live: cal.live_rounds.len() as u64,
            pages_harvested_live: cal.live_rounds.iter().map(|r| r.dirty_pages).sum(),
            passes: cal.vcpus.iter().map(|v| v.passes).sum(),
            lost_pages: cal.lost_pages(),
            stale_pages: cal.stale_pages(),
        }),
        ..Default::default()
    };

    let mut throughput = Throughput::default();
    if let Some(l) = &cal.log {
        throughput.guest_writes = Some(l.pages_per_s());
        throughput.passes = Some(l.passes_per_s());
        if l.elapsed_ns > 0 {
            throughput.rounds = Some(cal.live_rounds.len() as f64 * 1e9 / l.elapsed_ns as f64);
        }
    }
    if let Some(l) = &cal.nolog {
        throughput.guest_writes_nolog = Some(l.pages_per_s());
        throughput.passes_nolog = Some(l.passes_per_s());
    }

    let mut machine = Machine::probe(setup.vcpus + 1, "monotonic");
    let wp = cal.write_protect();
    let statement = write_protect_statement(&wp, cal, &machine.kernel);
    machine.part = Part::Kvm(KvmMachine {
        kvm: host_record(setup.env, cal.max_vcpus),
    });

    let config = KvmConfig {
        iterations: setup.iterations,
        live_duration_s: setup.live.as_secs_f64(),
        round_interval_s: setup.round_interval.as_secs_f64(),
        dirty_log_mode: cal.mode.name().to_string(),
        dirty_log_mode_forced: setup.forced_mode.is_some(),
        initially_set: cal.initially_set,
        data_pages: cal.data_pages,
        guest: format!(
            "64-bit long mode at CPL {}, 4-level paging, 4 KiB guest PTEs; one word per page per pass",
            cal.privilege.cpl()
        ),
        guest_cpl: Some(cal.privilege.cpl()),
    };

    let per_page = round_ns_per_dirty_page(cal);
    // Back-to-back live rounds run by the ten thousand: keep every round of
    // the iterations and an even sample of at most LIVE_ROUNDS_KEPT live ones.
    let every = cal.live_rounds.len().div_ceil(LIVE_ROUNDS_KEPT).max(1);
    let mut rounds: Vec<[f64; 3]> = its
        .iter()
        .map(|i| &i.round)
        .chain(cal.live_rounds.iter().step_by(every))
        .map(|r| [r.t_s, r.round_ns() as f64, r.dirty_pages as f64])
        .collect();
    rounds.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let detail = KvmDetail {
        dirty_log_mode: cal.mode.name().to_string(),
        interference_ratio: cal.interference_ratio(),
        interference_ratio_means: "vCPU pages written per second without dirty logging / with dirty-log rounds running back to back; 1.0 = no interference".to_string(),
        round_ns_per_dirty_page: per_page,
        round_ms_per_dirty_gib: per_page.map(|p| p * GIB_PAGES / 1e6),
        per_iteration: its
            .iter()
            .map(|i| KvmIteration {
                dirty_memory_ns: i.dirty_memory_ns,
                get_ns: i.round.get_ns,
                clear_ns: i.round.clear_ns,
                dirty_pages: i.round.dirty_pages,
                written_pages: i.written_pages,
                lost_pages: i.lost_pages,
                stale_pages: i.stale_pages,
                kvm_stats: match (&i.pass_stats, &i.round_stats) {
                    (Some(pass), Some(round)) => Some(KvmIterationStats {
                        pass: delta_record(pass),
                        round: delta_record(round),
                    }),
                    _ => None,
                },
            })
            .collect(),
        quiescent_dirty_pages: cal.quiescent_dirty_pages,
        per_vcpu: cal
            .vcpus
            .iter()
            .map(|v| KvmVcpu {
                id: v.id,
                first_page: v.share.first,
                pages: v.share.pages,
                passes: v.passes,
                first_word: v.first_word,
                last_word: v.last_word,
                stale_pages: v.stale_pages,
            })
            .collect(),
        live_nolog: cal.nolog.as_ref().map(live_record),
        live_dirty_log: cal.log.as_ref().map(live_record),
        populate_ns: cal.populate_ns,
        enable_dirty_log_ns: cal.enable_ns,
        disable_dirty_log_ns: cal.disable_ns,
        live_rounds_sampled_every: every as u64,
        kvm_stats: Some(stats_record(cal)),
        write_protect: Some(write_protect_record(&wp, statement.clone())),
        dirty_memory_ns_per_page: dirty_memory_ns_per_page(cal),
    };

    let mut warnings = Vec::new();
    if setup.env.software_virtualised() {
        warnings.push(format!("{HOST_NOTE}{}", setup.env.describe()));
    }
    warnings.extend_from_slice(setup.warnings);
    if !wp.is_rmap_walk() {
        warnings.push(format!(
            "{WP_NOTE}{statement}; walker.round and round_ns_per_dirty_page are not a measure of \
             the rmap walk the simulated designs model"
        ));
    }
    for (name, l) in [("without", &cal.nolog), ("with", &cal.log)] {
        if l.as_ref().is_some_and(|l| l.capped) {
            warnings.push(format!(
                "the live phase {name} dirty logging hit its time cap before every vCPU finished {} passes",
                measure::MIN_LIVE_PASSES
            ));
        }
    }

    RunResult {
        schema: SCHEMA.to_string(),
        impl_name: "host-kvm".to_string(),
        workload: "dirty-log".to_string(),
        config: RunConfig {
            vcpus: setup.vcpus,
            seed: 0,
            // Linux's PTE_LIST_EXT since 6.4; this host's kernel is newer.
            desc_ext: 14,
            // One guest page table maps each data page: one spte per gfn.
            aliases: 1,
            mem_bytes: setup.mem_bytes,
            part: Part::Kvm(config),
        },
        machine,
        lab_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at,
        duration_s: cal.elapsed.as_secs_f64(),
        interrupted: cal.interrupted,
        verdict: Verdict {
            lost_writes: cal.lost_pages(),
            rmap_inconsistencies: 0,
            ok: cal.ok(),
            lost_write_gfns: Vec::new(),
        },
        metrics,
        counters,
        throughput,
        perf: BTreeMap::new(),
        warnings,
        rounds,
        detail: Part::Kvm(detail),
    }
}

/// `s.nnnnnnnnn` as the kernel's selftests print a timespec.
fn ts(ns: u64) -> String {
    format!("{}.{:09}s", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// The numbers in the form `dirty_log_perf_test` prints them.
pub fn perf_test_form(cal: &Calibration) -> String {
    let mut o = String::new();
    let n = cal.iterations.len() as u64;
    let _ = writeln!(o, "Test iterations: {n}");
    let _ = writeln!(o, "Testing guest mode: PA-bits:ANY, VA-bits:48,  4K pages");
    let start = guest::DATA_GPA;
    let end = start + cal.data_pages * guest::PAGE_SIZE;
    let _ = writeln!(o, "guest physical test memory: [{start:#x}, {end:#x})");
    let _ = writeln!(o, "Populate memory time: {}", ts(cal.populate_ns));
    if let Some(e) = cal.enable_ns {
        let _ = writeln!(o, "Enabling dirty logging time: {}\n", ts(e));
    }
    for (k, it) in cal.iterations.iter().enumerate() {
        let k = k + 1;
        let _ = writeln!(
            o,
            "Iteration {k} dirty memory time: {}",
            ts(it.dirty_memory_ns)
        );
        let _ = writeln!(
            o,
            "Iteration {k} get dirty log time: {}",
            ts(it.round.get_ns)
        );
        if cal.mode == DirtyLogMode::Clear {
            let _ = writeln!(
                o,
                "Iteration {k} clear dirty log time: {}",
                ts(it.round.clear_ns)
            );
        }
    }
    if let Some(d) = cal.disable_ns {
        let _ = writeln!(o, "Disabling dirty logging time: {}", ts(d));
    }
    if n > 0 {
        let mut total = |what: &str, f: &dyn Fn(&measure::Iteration) -> u64| {
            let t: u64 = cal.iterations.iter().map(f).sum();
            let _ = writeln!(
                o,
                "{what} over {n} iterations took {}. (Avg {}/iteration)",
                ts(t),
                ts(t / n)
            );
        };
        total("Dirty memory", &|i| i.dirty_memory_ns);
        total("Get dirty log", &|i| i.round.get_ns);
        if cal.mode == DirtyLogMode::Clear {
            total("Clear dirty log", &|i| i.round.clear_ns);
        }
    }
    o
}

fn p50(h: &Histogram<u64>) -> f64 {
    h.value_at_quantile(0.5) as f64
}

/// The human summary (stdout without `--json`).
pub fn summary(cal: &Calibration, setup: &Setup, r: &RunResult, path: Option<&str>) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "lab calibrate: host KVM, {} vCPU{}, {} data memslot ({} pages), {} iteration{}",
        setup.vcpus,
        if setup.vcpus == 1 { "" } else { "s" },
        format_size(setup.mem_bytes),
        cal.data_pages,
        cal.iterations.len(),
        if cal.iterations.len() == 1 { "" } else { "s" },
    );
    let _ = writeln!(o, "dirty-log mode: {}", mode_words(cal));
    let _ = writeln!(
        o,
        "guest: CPL {} ({})",
        cal.privilege.cpl(),
        if cal.privilege.cpl() == 0 {
            "kernel mode, as dirty_log_perf_test's guest"
        } else {
            "user mode"
        }
    );
    let _ = writeln!(o, "host KVM: {}", setup.env.describe());
    for w in r
        .warnings
        .iter()
        .filter(|w| !w.starts_with(HOST_NOTE) && !w.starts_with(WP_NOTE))
    {
        let _ = writeln!(o, "warning: {w}");
    }
    if cal.interrupted {
        let _ = writeln!(
            o,
            "warning: interrupted (Ctrl-C): the numbers cover what ran"
        );
    }
    let _ = writeln!(o);
    if let Some(m) = r.metric("walker.round") {
        let pages = median(
            cal.iterations
                .iter()
                .map(|i| i.round.dirty_pages as f64)
                .collect(),
        )
        .unwrap_or(0.0);
        let _ = writeln!(
            o,
            "dirty-log round (vCPUs stopped, {pages:.0} dirty pages): p50 {}  min {}  max {}",
            format_ns(m.p50_ns as f64),
            format_ns(m.min_ns as f64),
            format_ns(m.max_ns as f64)
        );
        for (name, label) in [
            ("walker.get_dirty_log", "KVM_GET_DIRTY_LOG"),
            ("walker.clear_dirty_log", "KVM_CLEAR_DIRTY_LOG"),
        ] {
            if let Some(m) = r.metric(name) {
                let _ = writeln!(o, "  {label:<20} p50 {}", format_ns(m.p50_ns as f64));
            }
        }
        let wp = cal.write_protect();
        if let Some(p) = round_ns_per_dirty_page(cal) {
            let _ = writeln!(
                o,
                "  per dirty page {:.1}ns, per dirty GiB {} (medians over the rounds){}",
                p,
                format_ns(p * GIB_PAGES),
                match wp.work {
                    Work::RmapWalk => ": rmap walks",
                    Work::Partial => ": partly rmap walks",
                    Work::BitmapOnly => ": bitmap handling, NOT rmap walks",
                    Work::Unknown => ": unknown work (no KVM statistics)",
                }
            );
        }
        let _ = writeln!(
            o,
            "  what it measured: {}",
            write_protect_statement(&wp, cal, &r.machine.kernel)
        );
    }
    if let Some(p) = dirty_memory_ns_per_page(cal) {
        // Where KVM emulated the guest, pass time follows the instructions
        // it emulated: per instruction is what compares with another guest.
        let insns = cal.write_protect().emulated_insns_per_page();
        let _ = writeln!(
            o,
            "dirty memory time per page written: {}{} (median over the iterations; the kernel test's dirty memory time / pages)",
            format_ns(p),
            if insns >= 0.5 {
                format!(", {} per emulated instruction ({insns:.1} a page)", format_ns(p / insns))
            } else {
                String::new()
            }
        );
    }
    if let Some(m) = r.metric("walker.round_live") {
        let pages = median(
            cal.live_rounds
                .iter()
                .map(|r| r.dirty_pages as f64)
                .collect(),
        )
        .unwrap_or(0.0);
        let _ = writeln!(
            o,
            "dirty-log round (vCPUs writing, {} rounds {}, median {pages:.0} dirty pages): p50 {}  p99 {}",
            m.count,
            if setup.round_interval.is_zero() {
                "back to back".to_string()
            } else {
                format!("{} apart", format_ns(setup.round_interval.as_nanos() as f64))
            },
            format_ns(m.p50_ns as f64),
            format_ns(m.p99_ns as f64)
        );
    }
    let _ = writeln!(
        o,
        "populate {}   enable dirty logging {}   disable {}",
        format_ns(cal.populate_ns as f64),
        cal.enable_ns.map_or("-".into(), |n| format_ns(n as f64)),
        cal.disable_ns.map_or("-".into(), |n| format_ns(n as f64)),
    );
    for (label, l) in [
        ("without dirty logging", &cal.nolog),
        ("with dirty logging   ", &cal.log),
    ] {
        if let Some(l) = l {
            let _ = writeln!(
                o,
                "vCPUs {label}: {:.0} pages/s, {:.2} passes/s, pass p50 {}",
                l.pages_per_s(),
                l.passes_per_s(),
                format_ns(p50(&l.pass_ns))
            );
        }
    }
    if let Some(x) = cal.interference_ratio() {
        let _ = writeln!(
            o,
            "interference ratio {x:.2}x (throughput without dirty logging / with; 1.00 = none)"
        );
    }
    let lost = cal.lost_pages();
    let stale = cal.stale_pages();
    let _ = writeln!(
        o,
        "check: {} of {} written pages missing from the next harvest, {} stale pages in guest memory, quiescent harvest {}: {}",
        lost,
        cal.iterations.iter().map(|i| i.written_pages).sum::<u64>(),
        stale,
        cal.quiescent_dirty_pages
            .map_or("not run".into(), |d| format!("{d} pages")),
        if cal.ok() { "ok" } else { "FAILED" }
    );
    let _ = writeln!(o);
    stats_tables(&mut o, cal);
    if let Some(p) = path {
        let _ = writeln!(o, "result: {p}");
    }
    let _ = writeln!(o, "\nAs dirty_log_perf_test prints it:");
    o.push_str(&perf_test_form(cal));
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmap_workloads::kvm::guest::{Privilege, Share};
    use rmap_workloads::kvm::measure::{Iteration, Live, VcpuReport};

    fn sample() -> Calibration {
        let round = |get_ns, clear_ns, dirty_pages| Round {
            t_s: 1.0,
            get_ns,
            clear_ns,
            dirty_pages,
        };
        let it = |d, r| Iteration {
            dirty_memory_ns: d,
            round: r,
            written_pages: 1024,
            lost_pages: 0,
            stale_pages: 0,
            pass_stats: None,
            round_stats: None,
        };
        let live = |pages| {
            let mut l = Live {
                elapsed_ns: 1_000_000_000,
                passes: pages / 1024,
                pages,
                pass_ns: rmap_workloads::kvm::measure::new_histogram(),
                capped: false,
            };
            l.pass_ns.record(3_000_000).unwrap();
            l
        };
        Calibration {
            mode: DirtyLogMode::Clear,
            privilege: Privilege::User,
            initially_set: true,
            max_vcpus: 1024,
            data_pages: 1024,
            started: std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            elapsed: Duration::from_secs(2),
            interrupted: false,
            populate_ns: 5_262_268,
            populate_pass_ns: rmap_workloads::kvm::measure::new_histogram(),
            enable_ns: Some(29_374),
            disable_ns: Some(40_000),
            iterations: vec![
                it(3_000_000, round(1_000, 10_000, 1024)),
                it(3_100_000, round(2_000, 12_000, 1024)),
            ],
            quiescent_dirty_pages: Some(0),
            nolog: Some(live(300 * 1024)),
            log: Some(live(200 * 1024)),
            live_rounds: vec![round(1_000, 5_000, 100)],
            vcpus: vec![VcpuReport {
                id: 0,
                share: Share {
                    first: 0,
                    pages: 1024,
                },
                passes: 9,
                first_word: 9 << 32,
                last_word: 9 << 32,
                stale_pages: 0,
            }],
            guest_writes: 9 * 1024,
            stats_source: Err("not read in this test".into()),
            phase_stats: vec![],
        }
    }

    /// KVM's statistics over a pass and a round as a host shows them: the
    /// VM held `sptes` 4 KiB sptes, the pass took `faults` fixed faults and
    /// `insns` emulated instructions.
    fn stats(sptes: u64, faults: u64, insns: u64) -> (Delta, Delta) {
        let mut pass = Delta::default();
        pass.vcpus
            .counts
            .insert("exits".into(), faults + insns / 1024);
        pass.vcpus.counts.insert("pf_fixed".into(), faults);
        pass.vcpus.counts.insert("pf_fast".into(), 0);
        pass.vcpus.counts.insert("insn_emulation".into(), insns);
        pass.vm.counts.insert("mmu_pte_write".into(), insns / 4);
        pass.vm.levels.insert("pages_4k".into(), (sptes, sptes));
        let mut round = Delta::default();
        round.vm.levels.insert("pages_4k".into(), (sptes, sptes));
        round.vm.counts.insert("remote_tlb_flush".into(), 0);
        (pass, round)
    }

    /// `sample()` with statistics on both iterations.
    fn with_stats(sptes: u64, faults: u64, insns: u64, privilege: Privilege) -> Calibration {
        let mut cal = sample();
        cal.privilege = privilege;
        cal.stats_source = Ok(rmap_workloads::kvm::measure::StatsSource {
            vm_id: "kvm-1".into(),
            vm_stats: vec!["pages_4k".into(), "mmu_pte_write".into()],
            vcpu_stats: vec!["exits".into(), "pf_fixed".into()],
        });
        for it in &mut cal.iterations {
            let (pass, round) = stats(sptes, faults, insns);
            it.pass_stats = Some(pass);
            it.round_stats = Some(round);
        }
        let (pass, _) = stats(sptes, faults, insns);
        cal.phase_stats = vec![rmap_workloads::kvm::measure::PhaseStats {
            phase: "iterations",
            delta: pass,
        }];
        cal
    }

    fn pvm() -> rmap_workloads::kvm::Environment {
        rmap_workloads::kvm::Environment {
            tdp_mmu: Some("N".into()),
            modules: vec!["kvm_pvm".into()],
            parameters: BTreeMap::from([(
                "kvm".to_string(),
                BTreeMap::from([("tdp_mmu".to_string(), "N".to_string())]),
            )]),
        }
    }

    fn setup(env: &rmap_workloads::kvm::Environment) -> Setup<'_> {
        Setup {
            vcpus: 1,
            mem_bytes: 4 << 20,
            iterations: 2,
            live: Duration::from_secs(1),
            forced_mode: None,
            round_interval: Duration::ZERO,
            env,
            warnings: &[],
        }
    }

    /// `r`'s real-VM fields, after a round trip through the JSON text: every
    /// field must be the record's, or it would come back as another
    /// producer's.
    fn kvm_detail(r: &RunResult) -> (KvmDetail, crate::record::machine::KvmHost) {
        let back = RunResult::parse(&serde_json::to_string(r).unwrap()).unwrap();
        let (Part::Kvm(d), Part::Kvm(m)) = (back.detail, back.machine.part) else {
            panic!("not read back as the real VM's: {r:?}")
        };
        (d, m.kvm)
    }

    #[test]
    fn without_sptes_the_figure_is_bitmap_handling_everywhere() {
        // A CPL 0 guest on kvm_pvm: no spte, 4 emulated instructions a page.
        let env = pvm();
        let cal = with_stats(0, 0, 4 * 1024, Privilege::Kernel);
        let r = result(&cal, &setup(&env));
        let (d, host) = kvm_detail(&r);
        let wp = d.write_protect.as_ref().unwrap();
        assert_eq!(wp.measured, "bitmap-only");
        assert!(!wp.rmap_walk);
        assert_eq!(wp.emulated_insns_per_page, 4.0);
        let statement = &wp.statement;
        assert!(
            statement.starts_with("bitmap handling, not rmap walks"),
            "{statement}"
        );
        assert!(
            statement.contains(&r.machine.kernel),
            "names the kernel: {statement}"
        );
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("not a measure of the rmap walk")),
            "{:?}",
            r.warnings
        );
        let s = summary(&cal, &setup(&env), &r, None);
        assert!(
            s.contains("(medians over the rounds): bitmap handling, NOT rmap walks"),
            "{s}"
        );
        assert!(s.contains("what it measured: bitmap handling"), "{s}");
        assert!(s.contains("--guest-cpl 3 may give the guest sptes"), "{s}");
        assert!(s.contains("guest: CPL 0"), "{s}");
        // 3.0 and 3.1ms per iteration over 1024 pages, 4 emulated instructions each.
        assert!(
            s.contains("dirty memory time per page written: 3.0us, 745ns per emulated instruction (4.0 a page)"),
            "{s}"
        );
        // The statistics travel per iteration and per phase.
        let it = d.per_iteration[0].kvm_stats.as_ref().unwrap();
        assert_eq!(it.pass.vcpus.counts["insn_emulation"], 4096);
        assert_eq!(it.round.vm.levels["pages_4k"].before, 0);
        let Some(KvmStats::Read(stats)) = &d.kvm_stats else {
            panic!("statistics were read: {:?}", d.kvm_stats)
        };
        assert_eq!(stats.phases[0].phase, "iterations");
        assert_eq!(stats.phases[0].vm.counts["mmu_pte_write"], 1024);
        assert_eq!(host.parameters["kvm"]["tdp_mmu"], "N");
        let Part::Kvm(config) = &r.config.part else {
            panic!("the real VM's config: {:?}", r.config.part)
        };
        assert_eq!(config.guest_cpl, Some(0));
    }

    #[test]
    fn sptes_for_every_dirty_page_make_it_an_rmap_walk() {
        // A CPL 3 guest on kvm_pvm: 1024 data sptes + 8 setup ones, one
        // fixed fault per page in the pass after a round.
        let env = pvm();
        let cal = with_stats(1032, 1024, 0, Privilege::User);
        let r = result(&cal, &setup(&env));
        let (d, _) = kvm_detail(&r);
        let wp = d.write_protect.as_ref().unwrap();
        assert_eq!(wp.measured, "rmap-walk");
        assert_eq!(wp.refaults_per_page, 1.0);
        assert!(wp
            .statement
            .starts_with("rmap walks: each of the 2 rounds began with 1032 4 KiB sptes"));
        assert!(
            !r.warnings.iter().any(|w| w.starts_with(WP_NOTE)),
            "{:?}",
            r.warnings
        );
        let s = summary(&cal, &setup(&env), &r, None);
        assert!(s.contains("(medians over the rounds): rmap walks\n"), "{s}");
        assert!(s.contains("iteration 2 pass"), "{s}");
    }

    #[test]
    fn without_statistics_the_figure_claims_nothing() {
        let env = pvm();
        let cal = sample();
        let r = result(&cal, &setup(&env));
        let (d, _) = kvm_detail(&r);
        assert_eq!(d.write_protect.unwrap().measured, "unknown");
        assert_eq!(
            d.kvm_stats,
            Some(KvmStats::Unavailable(KvmStatsUnavailable {
                unavailable: "not read in this test".into()
            }))
        );
        assert!(r.warnings.iter().any(|w| w.contains("no KVM statistics")));
        let s = summary(&cal, &setup(&env), &r, None);
        assert!(
            s.contains("KVM statistics: not read (not read in this test)"),
            "{s}"
        );
    }

    #[test]
    fn perf_test_form_totals_and_averages() {
        let s = perf_test_form(&sample());
        assert!(s.contains("Populate memory time: 0.005262268s\n"), "{s}");
        assert!(s.contains("Enabling dirty logging time: 0.000029374s\n\n"));
        assert!(s.contains("Iteration 2 clear dirty log time: 0.000012000s\n"));
        assert!(s.contains(
            "Get dirty log over 2 iterations took 0.000003000s. (Avg 0.000001500s/iteration)"
        ));
        assert!(s.contains("Clear dirty log over 2 iterations took 0.000022000s."));
        let mut get = sample();
        get.mode = DirtyLogMode::Get;
        assert!(!perf_test_form(&get).contains("clear"));
    }

    #[test]
    fn result_has_the_schema_and_the_kernel_numbers() {
        let env = pvm();
        let setup = setup(&env);
        let cal = sample();
        let r = result(&cal, &setup);
        let text = serde_json::to_string(&r).unwrap();
        let back = RunResult::parse(&text).unwrap();
        assert_eq!(back.impl_name, "host-kvm");
        assert_eq!(back.workload, "dirty-log");
        assert_eq!(back.counters.rounds, 2);
        let Part::Kvm(counters) = &back.counters.part else {
            panic!("the real VM's counters: {:?}", back.counters.part)
        };
        assert_eq!(counters.pages_harvested, 2048);
        let round = back.metric("walker.round").unwrap();
        assert_eq!(round.count, 2);
        assert!(
            (11_000..=11_100).contains(&round.min_ns),
            "{}",
            round.min_ns
        );
        assert!(back.metric("walker.clear_dirty_log").is_some());
        let Part::Kvm(detail) = &back.detail else {
            panic!("the real VM's fields: {:?}", back.detail)
        };
        assert_eq!(detail.interference_ratio, Some(1.5));
        // (11000/1024 + 14000/1024) / 2 ns per page.
        let per_page = detail.round_ns_per_dirty_page.unwrap();
        assert!((per_page - 12.207).abs() < 0.01, "{per_page}");
        let Part::Kvm(machine) = &back.machine.part else {
            panic!("the real VM's machine: {:?}", back.machine.part)
        };
        assert!(machine.kvm.software_virtualised);
        assert_eq!(back.rounds.len(), 3);
        assert!(back.verdict.ok);
        let s = summary(&cal, &setup, &back, None);
        assert!(s.contains("interference ratio 1.50x"), "{s}");
        assert!(s.contains("kvm_pvm"), "{s}");
    }
}
