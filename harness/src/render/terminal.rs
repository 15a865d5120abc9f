//! What a run prints on the terminal: the header before it starts (what
//! runs where, and the oversubscription warning up front) and the summary
//! after it (latency table, throughput, walks and restarts, the verdict,
//! warnings). Everything here writes to stdout; progress goes to stderr.

use crate::record::machine::online_cpus;
use crate::record::result::{Machine, RunResult};
use crate::record::units::{format_ns, format_si, format_size};
use crate::record::warnings;
use rmap_workloads::Config;

/// A plain text table: the first column left-aligned, the others right-
/// aligned (numbers) unless [`Table::left_aligned`].
pub struct Table {
    rows: Vec<Vec<String>>,
    left: bool,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
            left: false,
        }
    }

    /// Every column left-aligned (text tables).
    pub fn left_aligned(mut self) -> Table {
        self.left = true;
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let width: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for r in &self.rows {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c == 0 {
                    line.push_str(&format!("{cell:<w$}", w = width[0]));
                } else if self.left {
                    line.push_str(&format!("  {cell:<w$}", w = width[c]));
                } else {
                    line.push_str(&format!("  {cell:>w$}", w = width[c]));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Before the run: what, where, and whether the machine can run it fairly.
pub fn run_header(cfg: &Config) {
    let threads = cfg.worker_threads();
    let m = Machine::probe(threads, rmap_workloads::clock::source());
    let chain = cfg
        .chain_used()
        .map(|c| format!(", chain {c}"))
        .unwrap_or_default();
    println!(
        "lab run: {} on {}: {} vCPUs, {} ({} gfns), {} aliases, desc_ext {}{chain}, mmu_lock {}, {:.1}s (+{:.1}s warmup)",
        cfg.impl_kind,
        cfg.workload,
        cfg.vcpus,
        format_size(cfg.mem_bytes),
        cfg.gfns(),
        cfg.aliases,
        cfg.desc_ext,
        if cfg.mmu_lock_auto {
            format!("{} (auto)", cfg.mmu_lock)
        } else {
            cfg.mmu_lock.to_string()
        },
        cfg.duration.as_secs_f64(),
        cfg.warmup.as_secs_f64()
    );
    if cfg.aging() {
        println!(
            "aging: a pass over the {} gfns in ranges of {}, {}",
            cfg.gfns(),
            cfg.age_gfns.min(cfg.gfns()),
            if cfg.age_period.is_zero() {
                "back to back".to_string()
            } else {
                format!("one every {:?}", cfg.age_period)
            }
        );
    }
    println!(
        "machine: {} online CPUs ({}), kernel {}, clock {}",
        m.online_cpus, m.cpu_model, m.kernel, m.clock_source
    );
    if let Some(flaw) = cfg.impl_kind.flaw() {
        println!("  ! {}: {flaw}", cfg.impl_kind);
    }
    if let Some(p) = cfg.perturb {
        println!("  ! perturbed ({p}): a torture, not a measurement");
    }
    if let Some(s) = warnings::oversubscription(cfg.vcpus, threads, online_cpus(), cfg.mmu_lock) {
        println!("  ! {s}");
    }
    println!();
}

/// After the run.
pub fn run_summary(r: &RunResult) {
    let mut t = Table::new(&[
        "latency", "count", "min", "p50", "p90", "p99", "p99.9", "max", "mean",
    ]);
    let mut names: Vec<&String> = r.metrics.keys().collect();
    // The VM's own order (vCPU, walker, zapper, lock), then any other
    // producer's metrics by name.
    names.sort_by_key(|n| {
        rmap_workloads::METRIC_NAMES
            .iter()
            .position(|m| m == n)
            .unwrap_or(rmap_workloads::METRIC_NAMES.len())
    });
    for name in names {
        let m = &r.metrics[name];
        t.row(vec![
            name.clone(),
            m.count.to_string(),
            format_ns(m.min_ns as f64),
            format_ns(m.p50_ns as f64),
            format_ns(m.p90_ns as f64),
            format_ns(m.p99_ns as f64),
            format_ns(m.p999_ns as f64),
            format_ns(m.max_ns as f64),
            format_ns(m.mean_ns),
        ]);
    }
    print!("{}", t.render());
    println!();

    let tp = &r.throughput;
    let rate = |v: Option<f64>| format_si(v.unwrap_or(0.0));
    println!(
        "throughput: {}/s guest writes, {}/s fast faults, {}/s slow faults, {}/s walks, {}/s rounds, {}/s zaps",
        rate(tp.guest_writes),
        rate(tp.faults_fast),
        rate(tp.faults_slow),
        rate(tp.walks),
        rate(tp.rounds),
        rate(tp.zaps),
    );
    let c = &r.counters;
    // A result of another producer shows the counters every producer has.
    let vm = c.part.vm().cloned().unwrap_or_default();
    if c.walks > 0 {
        let reasons: Vec<String> = c
            .restarts_by_reason
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!(
            "walks: {} ({} sptes visited, {} write-protected), restarts: {} ({:.2} per 1,000 walks){}",
            c.walks,
            vm.sptes_visited,
            vm.sptes_protected,
            c.restarts,
            c.restarts as f64 * 1000.0 / c.walks as f64,
            if reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", reasons.join(", "))
            }
        );
    }
    for line in lock_lines(r) {
        println!("{line}");
    }
    if let (Some(req), Some(issued)) = (vm.zaps_requested, vm.zaps_issued) {
        println!(
            "zaps: {issued} issued of {req} requested ({:.1}%, open loop at --zap-rate), {} late (started more than one period after their intended start)",
            100.0 * issued as f64 / req.max(1) as f64,
            vm.zaps_late.unwrap_or(0)
        );
    }
    if let Some(d) = r.detail.vm() {
        if let Some(cpu) = &d.thread_cpu_s {
            let busy: Vec<String> = rmap_workloads::RoleKind::ALL
                .iter()
                .filter_map(|role| {
                    let s = cpu.get(role.name())?;
                    Some(format!("{} {:.2}", role.name(), s / r.duration_s.max(1e-9)))
                })
                .collect();
            println!(
                "CPUs busy per role (getrusage, measured phase): {} of {} online",
                busy.join(", "),
                r.machine.online_cpus
            );
        }
        if let Some(c) = &d.clock {
            println!(
                "clock: {}{}, resolution {}, {} a read",
                c.source,
                if c.fenced { " (fenced reads)" } else { "" },
                format_ns(c.resolution_ns),
                format_ns(c.read_ns)
            );
        }
    }
    if let (Some(passes), Some(due)) = (vm.age_passes, vm.age_passes_due) {
        if due > 0 {
            let walks = vm.age_walks.unwrap_or(0);
            println!(
                "aging: {passes} passes of {due} asked, {} rmaps walked, {} sptes visited, {} young; {} restarts; vCPUs set Accessed {} times",
                walks,
                vm.age_visited.unwrap_or(0),
                vm.age_young.unwrap_or(0),
                vm.age_restarts.unwrap_or(0),
                vm.accessed_set.unwrap_or(0),
            );
        }
    }
    let holds = vm.lock_holds_sampled;
    if holds > 0 {
        let pre = vm.lock_holder_preempted;
        println!(
            "mmu_lock descheduled between asking for it and releasing it: {pre} of {holds} sampled \
             acquisitions ({:.1} per 1,000; 1 in {} of the measured phase). The kernel's holder \
             cannot be preempted, the lab's can: this is a cost of userspace, not of the design",
            pre as f64 * 1000.0 / holds as f64,
            rmap_workloads::PREEMPT_SAMPLE,
        );
    }
    print_perf(r);
    if let Some(p) = r.config.part.vm().and_then(|c| c.perturb.as_ref()) {
        println!(
            "perturbed: {} delays ({}, up to {}, at {}% of walker and {}% of writer and fault perturbation points): a torture, not a measurement",
            p.delays.unwrap_or(0),
            p.delay,
            format_ns(p.max_s * 1e9),
            p.rate * 100.0,
            p.writer_rate * 100.0
        );
    }
    let v = &r.verdict;
    let rounds = vm.rounds_checked;
    let missed = match v.missed_sptes {
        Some(n) => format!(", {n} missed sptes"),
        None => String::new(),
    };
    if r.workload == "idle" || r.workload == "aging" {
        println!(
            "verdict: {} ({}: no dirty logging, so no migration oracle; {} rmaps inconsistent)",
            if v.ok { "OK" } else { "VIOLATION" },
            r.workload,
            v.rmap_inconsistencies
        );
    } else if v.ok {
        println!(
            "verdict: OK: 0 lost writes over {rounds} checked rounds and the final copy{}; every rmap matches its sptes",
            if v.missed_sptes.is_some() {
                ", no walk missed an spte"
            } else {
                ""
            }
        );
    } else {
        println!(
            "verdict: VIOLATION: {} lost writes (gfns {:?}){missed}, {} rmaps inconsistent, over {rounds} checked rounds",
            v.lost_writes, v.lost_write_gfns, v.rmap_inconsistencies
        );
    }
    for w in &r.warnings {
        println!("  ! {w}");
    }
}

/// What `mmu_lock` was and where the round's TLB flush ran, for the runs
/// of the simulated VM that record it.
pub fn lock_lines(r: &RunResult) -> Vec<String> {
    let Some(vm) = r.config.part.vm() else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    if r.impl_name != "concurrent-map" {
        let kind = match vm.mmu_lock.as_str() {
            "spin" => "spin: a fair FIFO ticket lock, as the kernel's",
            "park" => "park: a futex mutex that sleeps when contended, not FIFO",
            other => other,
        };
        let auto = if vm.mmu_lock_choice.as_deref() == Some("auto") {
            ", chosen by --mmu-lock auto"
        } else {
            ""
        };
        lines.push(format!("mmu_lock: {kind}{auto}"));
    }
    if r.workload != "idle" {
        let flush = match (r.impl_name.as_str(), vm.tlb_flush.as_deref()) {
            ("mmu-lock", Some("under-lock")) => "inside mmu_lock, at the end of the write-protect \
                batch, as Linux 3.10 (--tlb-flush after-unlock: after it, as since commit 198c74f43f0f)",
            ("mmu-lock", Some("after-unlock")) => "after mmu_lock is released, as since commit \
                198c74f43f0f (2014); the 2013 baseline flushes under it (--tlb-flush under-lock)",
            ("mmu-lock", _) => "after mmu_lock is released (a result from before --tlb-flush)",
            _ => "after the write-protect walk, outside any lock (this design write-protects \
                without mmu_lock)",
        };
        lines.push(format!("remote TLB flush: {flush}"));
    }
    lines
}

fn print_perf(r: &RunResult) {
    if r.perf.is_empty() {
        return;
    }
    let mut events: Vec<&String> = r
        .perf
        .values()
        .flat_map(|e| e.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    events.retain(|e| {
        r.perf
            .values()
            .any(|m| m.get(*e).is_some_and(|v| v.supported))
    });
    if events.is_empty() {
        return;
    }
    let mut header = vec!["perf (per op)"];
    header.extend(events.iter().map(|e| e.as_str()));
    let mut t = Table::new(&header);
    for (role, m) in &r.perf {
        let mut row = vec![role.clone()];
        for e in &events {
            row.push(match m.get(*e) {
                Some(v) if v.supported => match (v.value, v.per_op) {
                    (Some(val), Some(p)) => format!("{} ({})", format_si(val), fmt_per_op(p)),
                    (Some(val), None) => format_si(val),
                    _ => "-".into(),
                },
                _ => "n/s".into(),
            });
        }
        t.row(row);
    }
    println!();
    print!("{}", t.render());
    let per: Vec<String> = rmap_workloads::RoleKind::ALL
        .iter()
        .filter(|role| r.perf.contains_key(role.name()))
        .map(|role| {
            format!(
                "{} per {}",
                role.name(),
                crate::session::perf::role_operation(*role)
            )
        })
        .collect();
    println!("(per op: {})", per.join(", "));
    println!();
}

fn fmt_per_op(p: f64) -> String {
    if p == 0.0 || p >= 100.0 {
        format!("{p:.0}/op")
    } else if p >= 0.01 {
        format!("{p:.2}/op")
    } else {
        format!("{p:.1e}/op")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["name", "n"]);
        t.row(vec!["a".into(), "1000".into()]);
        t.row(vec!["longer".into(), "7".into()]);
        let s = t.render();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "name       n");
        assert_eq!(lines[1], "a       1000");
        assert_eq!(lines[2], "longer     7");
    }
}
