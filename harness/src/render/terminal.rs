//! What a run prints on the terminal: the header before it starts (what
//! runs where, and the oversubscription warning up front) and the summary
//! after it (latency table, throughput, walks and restarts, perf counters as
//! `perf stat` prints them, the verdict, and the warnings the header did not
//! already give). Everything here writes to stdout; progress goes to
//! stderr. [`Table`] is every terminal table of the lab.

use crate::record::machine::online_cpus;
use crate::record::result::{Machine, MetricSummary, RunResult};
use crate::record::units::{format_ns, format_si, format_size};
use crate::record::warnings;
use rmap_workloads::Config;

/// How a column of a [`Table`] is aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A plain text table (comfy-table, no borders): the first column
/// left-aligned, the others right-aligned (numbers) unless
/// [`Table::left_aligned`] or [`Table::aligned`] says otherwise; two spaces
/// between columns, none before the first or after the last. A cell may
/// hold several lines; an empty row is a blank line.
pub struct Table {
    header: Option<Vec<String>>,
    rows: Vec<Vec<String>>,
    align: Option<Vec<Align>>,
    left: bool,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: Some(header.iter().map(|s| s.to_string()).collect()),
            rows: Vec::new(),
            align: None,
            left: false,
        }
    }

    /// A table without a header line.
    pub fn bare() -> Table {
        Table {
            header: None,
            rows: Vec::new(),
            align: None,
            left: false,
        }
    }

    /// Every column left-aligned (text tables).
    pub fn left_aligned(mut self) -> Table {
        self.left = true;
        self
    }

    /// One alignment per column (columns past the list: right).
    pub fn aligned(mut self, align: &[Align]) -> Table {
        self.align = Some(align.to_vec());
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn align_of(&self, c: usize) -> Align {
        match &self.align {
            Some(a) => a.get(c).copied().unwrap_or(Align::Right),
            None if c == 0 || self.left => Align::Left,
            None => Align::Right,
        }
    }

    pub fn render(&self) -> String {
        use comfy_table::{CellAlignment, ContentArrangement};
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled);
        if let Some(h) = &self.header {
            t.set_header(h.clone());
        }
        for r in &self.rows {
            t.add_row(r.clone());
        }
        let n = t.column_count();
        for c in 0..n {
            let align = match self.align_of(c) {
                Align::Left => CellAlignment::Left,
                Align::Right => CellAlignment::Right,
            };
            let col = t.column_mut(c).expect("a column below the count");
            col.set_cell_alignment(align);
            col.set_padding((if c == 0 { 0 } else { 1 }, if c + 1 == n { 0 } else { 1 }));
        }
        let mut out = String::new();
        for line in t.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The warnings [`run_header`] prints for `cfg`, in the words the result
/// file's `warnings` uses, so the summary does not say them twice.
pub fn header_warnings(cfg: &Config) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(flaw) = cfg.impl_kind.flaw() {
        w.push(format!("{}: {flaw}", cfg.impl_kind));
    }
    if let Some(p) = cfg.perturb {
        w.push(format!("perturbed ({p}): a torture, not a measurement"));
    }
    if let Some(s) =
        warnings::oversubscription(cfg.vcpus, cfg.worker_threads(), online_cpus(), cfg.mmu_lock)
    {
        w.push(s);
    }
    w
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
    for w in header_warnings(cfg) {
        println!("  ! {w}");
    }
    println!();
}

/// How a metric was sampled, for the summary's `timed` column.
pub fn sampling(m: &MetricSummary) -> String {
    match m.sample_every {
        Some(n) if n > 1 => format!("1 in {n}"),
        _ => "every".into(),
    }
}

/// After the run; `already_said` are warnings the header printed.
pub fn run_summary(r: &RunResult, already_said: &[String]) {
    let mut t = Table::new(&[
        "latency", "count", "timed", "min", "p50", "p90", "p99", "p99.9", "max", "mean",
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
            sampling(m),
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
    if r.metrics
        .values()
        .any(|m| m.sample_every.is_some_and(|n| n > 1))
    {
        println!("(count: the samples timed; \"1 in N\": one operation in N was timed)");
    }
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
            "walks: {} ({} sptes visited, {} write-protected), restarts: {} ({} per 1,000 walks){}",
            c.walks,
            vm.sptes_visited,
            vm.sptes_protected,
            c.restarts,
            format_si(c.restarts as f64 * 1000.0 / c.walks as f64),
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
    print!("{}", perf_stat(r));
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
    for w in r.warnings.iter().filter(|w| !already_said.contains(w)) {
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

/// A count with thousands separators, as `perf stat` prints it:
/// `12,345`, `5,501.23` with `decimals`.
pub fn grouped(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v.abs());
    let (int, frac) = s.split_once('.').map_or((s.as_str(), ""), |(i, f)| (i, f));
    let mut out = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if v < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A rate per second as `perf stat` prints it: `2.245 K/sec`.
fn per_sec(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.3} G/sec", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.3} M/sec", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.3} K/sec", v / 1e3)
    } else {
        format!("{v:.3} /sec")
    }
}

/// Software events first, as `perf stat` lists them, then the hardware
/// ones in `lab list` order.
const PERF_ORDER: [&str; 10] = [
    "task-clock",
    "context-switches",
    "cpu-migrations",
    "page-faults",
    "cycles",
    "instructions",
    "cache-references",
    "cache-misses",
    "L1-dcache-load-misses",
    "LLC-load-misses",
];

/// The perf counters per role, in `perf stat`'s words: task-clock in msec
/// with the CPUs it kept busy, software events with their rate per second,
/// cycles as GHz, instructions per cycle, cache misses as a share of
/// references; then per operation of the role. Empty when the run counted
/// nothing.
pub fn perf_stat(r: &RunResult) -> String {
    use std::fmt::Write as _;
    let secs = r.duration_s.max(1e-9);
    let mut o = String::new();
    let mut unsupported: Vec<String> = Vec::new();
    let roles: Vec<&String> = rmap_workloads::RoleKind::ALL
        .iter()
        .filter_map(|role| r.perf.keys().find(|k| *k == role.name()))
        .chain(
            r.perf
                .keys()
                .filter(|k| rmap_workloads::RoleKind::ALL.iter().all(|x| x.name() != *k)),
        )
        .collect();
    for role in roles {
        let evs = &r.perf[role];
        if !evs.values().any(|v| v.supported) {
            continue;
        }
        let op = rmap_workloads::RoleKind::ALL
            .iter()
            .find(|x| x.name() == role)
            .map(|x| crate::session::perf::role_operation(*x))
            .unwrap_or("operation");
        let _ = writeln!(
            o,
            "\n perf counters of the {role} threads ({:.2} s measured):\n",
            r.duration_s
        );
        let mut names: Vec<&String> = evs.keys().collect();
        names.sort_by_key(|n| PERF_ORDER.iter().position(|p| p == n).unwrap_or(99));
        let value = |name: &str| evs.get(name).filter(|v| v.supported).and_then(|v| v.value);
        let mut t = Table::bare().aligned(&[
            Align::Right,
            Align::Left,
            Align::Left,
            Align::Right,
            Align::Left,
            Align::Left,
        ]);
        for name in names {
            let v = &evs[name];
            if !v.supported {
                if !unsupported.contains(name) {
                    unsupported.push(name.clone());
                }
                continue;
            }
            let Some(val) = v.value else {
                t.row(vec!["<not counted>".into(), name.clone()]);
                continue;
            };
            let (shown, unit) = if name == "task-clock" {
                (grouped(val / 1e6, 2), "msec ")
            } else {
                (grouped(val, 0), "")
            };
            let derived = match name.as_str() {
                "task-clock" => format!("{:.3} CPUs utilized", val / 1e9 / secs),
                "cycles" => value("task-clock")
                    .filter(|ns| *ns > 0.0)
                    .map(|ns| format!("{:.3} GHz", val / ns))
                    .unwrap_or_default(),
                "instructions" => value("cycles")
                    .filter(|c| *c > 0.0)
                    .map(|c| format!("{:.2} insn per cycle", val / c))
                    .unwrap_or_default(),
                "cache-misses" => value("cache-references")
                    .filter(|c| *c > 0.0)
                    .map(|c| format!("{:.3} % of all cache refs", 100.0 * val / c))
                    .unwrap_or_default(),
                _ => per_sec(val / secs),
            };
            let multiplexed = if v.time_running_ns < v.time_enabled_ns && v.time_enabled_ns > 0 {
                format!(
                    "({:.2}%)",
                    100.0 * v.time_running_ns as f64 / v.time_enabled_ns as f64
                )
            } else {
                String::new()
            };
            let per_op = v
                .per_op
                .map(|p| {
                    if name == "task-clock" {
                        format!("{} per {op}", format_ns(p))
                    } else {
                        format!("{} per {op}", format_si(p))
                    }
                })
                .unwrap_or_default();
            t.row(vec![
                shown,
                format!("{unit}{name}"),
                "#".into(),
                derived,
                multiplexed,
                per_op,
            ]);
        }
        for line in t.render().lines() {
            let _ = writeln!(o, "  {line}");
        }
    }
    if !unsupported.is_empty() && !o.is_empty() {
        let _ = writeln!(
            o,
            "\n  <not supported> on this machine: {}",
            unsupported.join(", ")
        );
    }
    if !o.is_empty() {
        o.push('\n');
    }
    o
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

    #[test]
    fn perf_figures_read_as_perf_stat_prints_them() {
        assert_eq!(grouped(5_501_234.5, 2), "5,501,234.50");
        assert_eq!(grouped(999.0, 0), "999");
        assert_eq!(grouped(12_345.0, 0), "12,345");
        assert_eq!(per_sec(2_245.0), "2.245 K/sec");
        let text = format!(
            r#"{{"schema":"{}","impl":"x","workload":"w",
            "config":{{"vcpus":1,"seed":1,"desc_ext":3,"aliases":1,"mem_bytes":4096}},
            "machine":{{"online_cpus":2,"cpu_model":"c","kernel":"k","hostname":"h",
                       "oversubscribed":false,"clock_source":"tsc"}},
            "lab_version":"0","started_at":"t","duration_s":2.0,"interrupted":false,
            "verdict":{{"lost_writes":0,"rmap_inconsistencies":0,"ok":true}},
            "metrics":{{}},
            "counters":{{"walks":0,"restarts":0,"restarts_by_reason":{{}},"guest_writes":5,
                        "faults_fast":0,"faults_slow":0,"zaps":0,"rounds":0}},
            "throughput":{{}},
            "perf":{{"vcpu":{{
               "task-clock":{{"supported":true,"value":3.3e9,"time_enabled_ns":1,"time_running_ns":1,"per_op":33.4}},
               "context-switches":{{"supported":true,"value":4490.0,"time_enabled_ns":1,"time_running_ns":1}},
               "cycles":{{"supported":false,"value":null,"time_enabled_ns":0,"time_running_ns":0}}}}}}}}"#,
            crate::record::result::SCHEMA
        );
        let r = RunResult::parse(&text).unwrap();
        let s = perf_stat(&r);
        assert!(s.contains("3,300.00  msec task-clock"), "{s}");
        assert!(s.contains("1.650 CPUs utilized"), "{s}");
        assert!(s.contains("33ns per guest write"), "{s}");
        assert!(s.contains("4,490  context-switches"), "{s}");
        assert!(s.contains("2.245 K/sec"), "{s}");
        assert!(s.contains("<not supported> on this machine: cycles"), "{s}");
    }
}
