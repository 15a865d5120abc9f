//! The regression gate over the deterministic benchmarks (`benches/cost.rs`):
//! the instruction counts of a chosen set are committed in
//! `benches/cost-baseline.tsv`, and the gate fails when one grows by more than
//! 2%. Instruction counts under valgrind are the same on every run of the
//! same binary, so the gate needs no repeats and no quiet machine.
//!
//! ```sh
//! cargo run --release -p rmap-impls --example cost-gate              # run the gated set, compare
//! cargo run --release -p rmap-impls --example cost-gate -- --update  # record a new baseline
//! cargo run --release -p rmap-impls --example cost-gate -- --table   # every benchmark, as tables
//! ```
//!
//! `--from FILE` reads the summaries of an earlier run instead
//! (`cargo bench -p rmap-impls --bench cost -- --output-format=json > FILE`).
//!
//! The gated set is every design's `walk`, `add` and `remove` (and the
//! floor's walk) at `desc_ext` 3 and K = 1 and 14: the benchmarks whose id
//! matches `e3_k1*`. It runs them through `cargo bench` (so
//! `gungraun-runner` of the `gungraun` version in `Cargo.toml` must be
//! installed), reads their JSON summaries, and also reads each one's
//! callgrind profile: a gated benchmark that calls one of glibc's string
//! functions fails the gate too, because glibc picks their implementation
//! per CPU (AVX2 here, EVEX or ERMS there), so the same binary would count
//! differently on an Intel and an AMD machine.
//!
//! Exit status: 0 the gate holds, 1 it does not (every failure is one line
//! naming the benchmark), 2 bad usage, or the benchmarks could not run.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// Growth in instructions, in percent, above which the gate fails.
const LIMIT_PCT: f64 = 2.0;
/// gungraun's filter for the gated set (`FILE::GROUP::FUNCTION::ID`).
const GATED: &str = "cost::*::*::e3_k1*";
/// Where the baseline lives, relative to this crate.
const BASELINE: &str = "benches/cost-baseline.tsv";
/// The command that rewrites the baseline, for messages.
const UPDATE: &str = "cargo run --release -p rmap-impls --example cost-gate -- --update";

/// One benchmark's counts, as the summaries report them.
#[derive(Clone, Debug, Default, PartialEq)]
struct Counts {
    /// Instructions executed.
    ir: u64,
    /// L1 data read and write misses.
    d1mr: u64,
    d1mw: u64,
    /// Last-level data read and write misses.
    dlmr: u64,
    dlmw: u64,
    /// Callgrind's estimate: Ir + 10 x L1 misses + 100 x LL misses.
    cycles: u64,
}

/// One benchmark of a run.
#[derive(Clone, Debug, PartialEq)]
struct Bench {
    /// `GROUP/DESIGN/ID`, e.g. `walk/lockless/e3_k14`.
    name: String,
    counts: Counts,
    /// The callgrind profile of the run.
    profile: Option<PathBuf>,
}

fn main() -> ExitCode {
    let mut mode = Mode::Check;
    let mut from = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--update" if mode == Mode::Check => mode = Mode::Update,
            "--table" if mode == Mode::Check => mode = Mode::Table,
            "--from" if from.is_none() => match args.next() {
                Some(f) => from = Some(PathBuf::from(f)),
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    match run(mode, from.as_deref()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("cost-gate: {e}");
            ExitCode::from(2)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: cost-gate [--update | --table] [--from FILE]");
    ExitCode::from(2)
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Check,
    Update,
    Table,
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(mode: Mode, from: Option<&Path>) -> Result<bool, String> {
    let benches = match from {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let all = parse_summaries(&text, &crate_dir().join(".."))?;
            match mode {
                Mode::Table => all,
                _ => all.into_iter().filter(|b| is_gated(&b.name)).collect(),
            }
        }
        None => run_benches(if mode == Mode::Table {
            None
        } else {
            Some(GATED)
        })?,
    };
    if mode == Mode::Table {
        print!("{}", tables(&benches));
        return Ok(true);
    }
    let mut failures = Vec::new();
    for b in &benches {
        let Some(profile) = &b.profile else {
            failures.push(format!("{}: no callgrind profile to check", b.name));
            continue;
        };
        let text =
            std::fs::read_to_string(profile).map_err(|e| format!("{}: {e}", profile.display()))?;
        failures.extend(cpu_dispatched_calls(&text).into_iter().map(|f| {
            format!(
                "{}: calls {f}, which glibc picks per CPU: {}",
                b.name, PER_CPU
            )
        }));
    }
    let toolchain = rustc_version();
    let path = crate_dir().join(BASELINE);
    if mode == Mode::Update {
        if !failures.is_empty() {
            report(&failures);
            eprintln!("cost-gate: baseline not written: a per-CPU count is no baseline");
            return Ok(false);
        }
        let text = format_baseline(&toolchain, &benches);
        write_atomically(&path, &text)?;
        println!(
            "cost-gate: wrote {} instruction counts to {}",
            benches.len(),
            path.display()
        );
        return Ok(true);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (record one with `{UPDATE}`)", path.display()))?;
    let baseline = parse_baseline(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let now: Vec<(String, u64)> = benches
        .iter()
        .map(|b| (b.name.clone(), b.counts.ir))
        .collect();
    let verdict = compare(&baseline.counts, &now, LIMIT_PCT);
    for line in &verdict.notes {
        println!("{line}");
    }
    failures.extend(verdict.failures);
    if failures.is_empty() {
        println!(
            "cost-gate: {} benchmarks within {LIMIT_PCT}% of the baseline",
            now.len()
        );
        return Ok(true);
    }
    report(&failures);
    if baseline.toolchain.as_deref() != Some(toolchain.as_str()) {
        eprintln!(
            "cost-gate: the baseline was recorded with {}, this is {toolchain}; \
             a compiler changes the counts too",
            baseline.toolchain.as_deref().unwrap_or("an unknown rustc")
        );
    }
    eprintln!("cost-gate: if the change is intended, record it: {UPDATE}");
    Ok(false)
}

const PER_CPU: &str = "keep it off the measured path, or its count differs between machines";

fn report(failures: &[String]) {
    for f in failures {
        eprintln!("FAIL {f}");
    }
}

/// Whether `GROUP/DESIGN/ID` is in the gated set (what [`GATED`] selects).
fn is_gated(name: &str) -> bool {
    name.rsplit('/')
        .next()
        .is_some_and(|id| id.starts_with("e3_k1"))
        && !name.starts_with("fixture/")
}

/// Run `cargo bench --bench cost` (the gated set, or all) and parse its
/// JSON summaries.
fn run_benches(filter: Option<&str>) -> Result<Vec<Bench>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(crate_dir())
        .args(["bench", "-p", "rmap-impls", "--bench", "cost", "--"])
        .arg("--output-format=json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(f) = filter {
        cmd.arg(f);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo bench -p rmap-impls --bench cost` failed ({}); is gungraun-runner \
             installed at the version of the gungraun crate? (see impls/Cargo.toml)",
            out.status
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let benches = parse_summaries(&text, &crate_dir().join(".."))?;
    if benches.is_empty() {
        return Err("cargo bench ran no benchmark".into());
    }
    Ok(benches)
}

/// Parse gungraun's JSON summaries, one object per line (other lines are
/// ignored). Relative paths are taken from `root`, the workspace.
fn parse_summaries(text: &str, root: &Path) -> Result<Vec<Bench>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("a summary is not JSON: {e}"))?;
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("a summary has no `{k}`"))
        };
        // `module_path` is FILE::GROUP::FUNCTION.
        let module = field("module_path")?;
        let mut parts = module.split("::").skip(1);
        let (Some(group), Some(function)) = (parts.next(), parts.next()) else {
            return Err(format!("unexpected module path `{module}`"));
        };
        let id = field("id")?;
        let name = format!("{group}/{function}/{id}");
        let profile = v
            .get("profiles")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("tool").and_then(Value::as_str) == Some("Callgrind"))
            })
            .ok_or_else(|| format!("{name}: no callgrind profile in its summary"))?;
        let metrics = profile
            .pointer("/data/total/metrics")
            .ok_or_else(|| format!("{name}: no total metrics"))?;
        let metric = |k: &str| -> Result<u64, String> {
            metrics
                .pointer(&format!("/{k}/values/new"))
                .and_then(|x| x.as_u64().or_else(|| x.as_f64().map(|f| f as u64)))
                .ok_or_else(|| format!("{name}: no `{k}` count"))
        };
        let counts = Counts {
            ir: metric("Ir")?,
            d1mr: metric("D1mr")?,
            d1mw: metric("D1mw")?,
            dlmr: metric("DLmr")?,
            dlmw: metric("DLmw")?,
            cycles: metric("EstimatedCycles")?,
        };
        let profile = v.get("output_dir").and_then(Value::as_str).map(|dir| {
            let file = format!("callgrind.{function}.{id}.out");
            root.join(dir).join(file)
        });
        out.push(Bench {
            name,
            counts,
            profile,
        });
    }
    Ok(out)
}

/// The functions of a callgrind profile (`fn=` lines) that are glibc
/// string functions, whose implementation glibc selects per CPU
/// (`memset`, `memcpy`, `__memmove_avx_unaligned_erms`, `strlen`...).
fn cpu_dispatched_calls(profile: &str) -> Vec<String> {
    let mut found: Vec<String> = profile
        .lines()
        .filter_map(|l| l.strip_prefix("fn="))
        // Compressed names: `(12) name` the first time, `(12)` after.
        .map(|f| f.split_once(") ").map_or(f, |(_, name)| name))
        .filter(|name| is_string_function(name))
        .map(str::to_owned)
        .collect();
    found.sort();
    found.dedup();
    found
}

fn is_string_function(name: &str) -> bool {
    let bare = name.trim_start_matches('_');
    ["mem", "str", "wmem", "wcs", "bzero", "bcmp", "stpcpy", "rawmemchr"]
        .iter()
        .any(|p| bare.starts_with(p))
        // Not Rust's own functions that merely start that way.
        && !name.contains("::")
}

/// A committed baseline: instruction counts by benchmark, and the rustc
/// that produced them.
#[derive(Debug, PartialEq)]
struct Baseline {
    toolchain: Option<String>,
    counts: Vec<(String, u64)>,
}

fn format_baseline(toolchain: &str, benches: &[Bench]) -> String {
    let mut s = format!(
        "# Instruction counts of the gated benchmarks of benches/cost.rs (one\n\
         # operation each, under valgrind); the gate fails when one grows by more\n\
         # than {LIMIT_PCT}%. Rewrite with: {UPDATE}\n\
         # toolchain: {toolchain}\n"
    );
    let sorted: BTreeMap<&str, u64> = benches
        .iter()
        .map(|b| (b.name.as_str(), b.counts.ir))
        .collect();
    for (name, ir) in sorted {
        s.push_str(&format!("{name}\t{ir}\n"));
    }
    s
}

fn parse_baseline(text: &str) -> Result<Baseline, String> {
    let mut toolchain = None;
    let mut counts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(comment) = line.strip_prefix('#') {
            if let Some(t) = comment.trim().strip_prefix("toolchain:") {
                toolchain = Some(t.trim().to_owned());
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let bad = || {
            format!(
                "line {}: expected `NAME<TAB>INSTRUCTIONS`, got `{line}`",
                i + 1
            )
        };
        let (name, ir) = line.split_once('\t').ok_or_else(bad)?;
        let ir: u64 = ir.trim().parse().map_err(|_| bad())?;
        counts.push((name.trim().to_owned(), ir));
    }
    Ok(Baseline { toolchain, counts })
}

/// What the comparison found: failures (one line each, naming the
/// benchmark) and notes (improvements).
#[derive(Debug, Default)]
struct Verdict {
    failures: Vec<String>,
    notes: Vec<String>,
}

/// Compare instruction counts with the baseline: a growth of more than
/// `limit_pct` fails, and so does a benchmark on one side only.
fn compare(baseline: &[(String, u64)], now: &[(String, u64)], limit_pct: f64) -> Verdict {
    let now: BTreeMap<&str, u64> = now.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let base: BTreeMap<&str, u64> = baseline.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let mut v = Verdict::default();
    for (&name, &old) in &base {
        let Some(&new) = now.get(name) else {
            v.failures.push(format!(
                "{name}: in the baseline but not measured (renamed or removed? then `{UPDATE}`)"
            ));
            continue;
        };
        let pct = if old == 0 {
            if new == 0 {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            (new as f64 - old as f64) * 100.0 / old as f64
        };
        if pct > limit_pct {
            v.failures.push(format!(
                "{name}: instructions {old} -> {new} ({pct:+.1}%), over the {limit_pct}% limit"
            ));
        } else if new < old {
            v.notes.push(format!(
                "{name}: instructions {old} -> {new} ({pct:+.1}%), better than the baseline"
            ));
        }
    }
    for name in now.keys().filter(|n| !base.contains_key(*n)) {
        v.failures.push(format!(
            "{name}: measured but not in the baseline (new? then `{UPDATE}`)"
        ));
    }
    v
}

fn rustc_version() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "an unknown rustc".into())
}

/// Write `text` to `path` through a temporary file in the same directory
/// and a rename, so a reader never sees half a baseline.
fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tsv.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The README's tables, from a full run: counts net of the empty fixture
/// (`fixture/empty/cold`), as `instructions / lines`, where lines are L1
/// data misses (on the benchmarks' cache, the gfn's distinct cache lines).
fn tables(benches: &[Bench]) -> String {
    let by_name: BTreeMap<&str, &Counts> = benches
        .iter()
        .map(|b| (b.name.as_str(), &b.counts))
        .collect();
    let empty = by_name
        .get("fixture/empty/cold")
        .map(|c| (*c).clone())
        .unwrap_or_default();
    let cell = |name: String| match by_name.get(name.as_str()) {
        Some(c) => format!(
            "{} / {}",
            c.ir.saturating_sub(empty.ir),
            (c.d1mr + c.d1mw).saturating_sub(empty.d1mr + empty.d1mw)
        ),
        None => "-".into(),
    };
    // Designs in the order the bench file lists them.
    let mut designs: Vec<&str> = Vec::new();
    for b in benches {
        let mut it = b.name.split('/');
        if let (Some("walk"), Some(d)) = (it.next(), it.next()) {
            if !designs.contains(&d) {
                designs.push(d);
            }
        }
    }
    let row = |d: &str, cells: Vec<String>| {
        format!("| {} | {} |\n", d.replace('_', "-"), cells.join(" | "))
    };
    let mut s = format!(
        "The fixture alone (subtracted below): {} instructions, {} L1 data misses, {} LL data \
         misses, {} estimated cycles. Cells: instructions / cache lines missed.\n\n",
        empty.ir,
        empty.d1mr + empty.d1mw,
        empty.dlmr + empty.dlmw,
        empty.cycles
    );
    s.push_str(
        "| walk | desc_ext 3: K = 1 | K = 14 | K = 64 | desc_ext 14: K = 1 | K = 14 | K = 64 |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for d in &designs {
        let cells = [3, 14]
            .iter()
            .flat_map(|e| [1, 14, 64].map(|k| cell(format!("walk/{d}/e{e}_k{k}"))))
            .collect();
        s.push_str(&row(d, cells));
    }
    for op in ["add", "remove"] {
        s.push_str(&format!(
            "\n| {op} | desc_ext 3: K = 1 | K = 3 | K = 14 | K = 64 | desc_ext 14: K = 1 | K = 3 | K = 14 | K = 64 |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        ));
        for d in designs
            .iter()
            .filter(|d| by_name.contains_key(format!("{op}/{d}/e3_k1").as_str()))
        {
            let cells = [3, 14]
                .iter()
                .flat_map(|e| [1, 3, 14, 64].map(|k| cell(format!("{op}/{d}/e{e}_k{k}"))))
                .collect();
            s.push_str(&row(d, cells));
        }
    }
    // The layout sweep: the designs that walk every desc_ext.
    let chain: Vec<&str> = designs
        .iter()
        .copied()
        .filter(|d| by_name.contains_key(format!("walk/{d}/e1_k14").as_str()))
        .collect();
    for k in [14, 64] {
        s.push_str(&format!(
            "\n| walk, K = {k}: desc_ext | {} |\n| ---: |{}\n",
            chain
                .iter()
                .map(|d| d.replace('_', "-"))
                .collect::<Vec<_>>()
                .join(" | "),
            " ---: |".repeat(chain.len())
        ));
        for e in [1, 2, 3, 7, 13, 14, 28, 64] {
            let cells = chain
                .iter()
                .map(|d| cell(format!("walk/{d}/e{e}_k{k}")))
                .collect();
            s.push_str(&row(&e.to_string(), cells));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    #[test]
    fn growth_over_the_limit_fails_naming_the_benchmark_and_the_change() {
        let base = counts(&[("walk/lockless/e3_k14", 1000), ("add/seqlock/e3_k14", 500)]);
        let now = counts(&[("walk/lockless/e3_k14", 1030), ("add/seqlock/e3_k14", 500)]);
        let v = compare(&base, &now, LIMIT_PCT);
        assert_eq!(v.failures.len(), 1, "{:?}", v.failures);
        let f = &v.failures[0];
        assert!(f.starts_with("walk/lockless/e3_k14: "), "{f}");
        assert!(f.contains("1000 -> 1030") && f.contains("+3.0%"), "{f}");
    }

    #[test]
    fn growth_within_the_limit_passes() {
        let base = counts(&[("walk/lockless/e3_k14", 1000)]);
        for new in [1010, 1020, 990, 1000] {
            let v = compare(&base, &counts(&[("walk/lockless/e3_k14", new)]), LIMIT_PCT);
            assert!(v.failures.is_empty(), "{new}: {:?}", v.failures);
        }
        // A few instructions on a short path are a few percent: 2% of 60 is
        // 1.2, so a second instruction fails.
        let base = counts(&[("walk/floor/e3_k1", 60)]);
        assert!(
            compare(&base, &counts(&[("walk/floor/e3_k1", 61)]), LIMIT_PCT)
                .failures
                .is_empty()
        );
        assert_eq!(
            compare(&base, &counts(&[("walk/floor/e3_k1", 62)]), LIMIT_PCT)
                .failures
                .len(),
            1
        );
    }

    #[test]
    fn an_improvement_passes_with_a_note() {
        let base = counts(&[("remove/mmu_lock/e3_k14", 1000)]);
        let v = compare(
            &base,
            &counts(&[("remove/mmu_lock/e3_k14", 900)]),
            LIMIT_PCT,
        );
        assert!(v.failures.is_empty());
        assert_eq!(v.notes.len(), 1);
        assert!(v.notes[0].contains("1000 -> 900"), "{:?}", v.notes);
    }

    #[test]
    fn a_benchmark_on_one_side_only_is_reported() {
        let base = counts(&[("walk/lockless/e3_k1", 300), ("walk/seqlock/e3_k1", 300)]);
        let now = counts(&[("walk/lockless/e3_k1", 300), ("walk/chain64/e3_k1", 280)]);
        let v = compare(&base, &now, LIMIT_PCT);
        assert_eq!(v.failures.len(), 2, "{:?}", v.failures);
        assert!(v.failures[0].starts_with("walk/seqlock/e3_k1: in the baseline but not measured"));
        assert!(v.failures[1].starts_with("walk/chain64/e3_k1: measured but not in the baseline"));
        assert!(v.failures.iter().all(|f| f.contains("--update")));
    }

    #[test]
    fn the_baseline_round_trips_and_bad_lines_are_named() {
        let benches: Vec<Bench> = [("walk/seqlock/e3_k1", 412), ("add/mmu_lock/e3_k14", 733)]
            .iter()
            .map(|(n, ir)| Bench {
                name: n.to_string(),
                counts: Counts {
                    ir: *ir,
                    ..Counts::default()
                },
                profile: None,
            })
            .collect();
        let text = format_baseline("rustc 1.95.0 (test)", &benches);
        let b = parse_baseline(&text).unwrap();
        assert_eq!(b.toolchain.as_deref(), Some("rustc 1.95.0 (test)"));
        // Sorted by name.
        assert_eq!(
            b.counts,
            counts(&[("add/mmu_lock/e3_k14", 733), ("walk/seqlock/e3_k1", 412)])
        );
        let e = parse_baseline("# x\nwalk/a/e3_k1\t12\nwalk/b/e3_k1 twelve\n").unwrap_err();
        assert!(e.starts_with("line 3: "), "{e}");
    }

    #[test]
    fn summaries_are_read_by_group_design_and_id() {
        let metric = |n: u64| serde_json::json!({"values": {"new": n, "old": null}});
        let summary = serde_json::json!({
            "module_path": "cost::walk::lockless_gen",
            "id": "e3_k14",
            "output_dir": "target/gungraun/rmap-impls/cost/walk/lockless_gen.e3_k14",
            "profiles": [{"tool": "Callgrind", "data": {"total": {"metrics": {
                "Ir": metric(734), "D1mr": metric(20), "D1mw": metric(1),
                "DLmr": metric(19), "DLmw": metric(1), "EstimatedCycles": metric(3000),
            }}}}],
        });
        let text = format!("Compiling...\n{summary}\nGungraun result: Ok.\n");
        let b = parse_summaries(&text, Path::new("/ws")).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].name, "walk/lockless_gen/e3_k14");
        assert_eq!(
            b[0].counts,
            Counts {
                ir: 734,
                d1mr: 20,
                d1mw: 1,
                dlmr: 19,
                dlmw: 1,
                cycles: 3000
            }
        );
        assert_eq!(
            b[0].profile.as_deref(),
            Some(Path::new(
                "/ws/target/gungraun/rmap-impls/cost/walk/lockless_gen.e3_k14/callgrind.lockless_gen.e3_k14.out"
            ))
        );
        let broken = text.replace("\"Ir\"", "\"Irx\"");
        let e = parse_summaries(&broken, Path::new("/ws")).unwrap_err();
        assert!(
            e.contains("walk/lockless_gen/e3_k14") && e.contains("Ir"),
            "{e}"
        );
    }

    #[test]
    fn the_gated_set_is_desc_ext_3_at_k_1_and_14() {
        for n in [
            "walk/floor/e3_k1",
            "walk/lockless/e3_k14",
            "add/seqlock/e3_k1",
            "remove/rmap_lock/e3_k14",
        ] {
            assert!(is_gated(n), "{n}");
        }
        for n in [
            "walk/lockless/e3_k3",
            "walk/lockless/e3_k64",
            "walk/lockless/e14_k1",
            "walk/lockless/e13_k14",
            "fixture/empty/cold",
        ] {
            assert!(!is_gated(n), "{n}");
        }
    }

    #[test]
    fn per_cpu_string_functions_are_found_in_a_profile() {
        let profile = "\
fn=(1) cost::walk_benches::lockless::__gungraun_wrapper_mod::lockless
fn=(2) __memset_avx2_unaligned_erms
fn=(3) <rmap_impls::designs::lockless::NullsRmap<_,_> as rmap_impls::rmap::Rmap>::write_protect
fn=(4) core::str::from_utf8
fn=(2)
fn=(5) __memmove_evex_unaligned_erms
fn=(6) memcpy
";
        assert_eq!(
            cpu_dispatched_calls(profile),
            [
                "__memmove_evex_unaligned_erms",
                "__memset_avx2_unaligned_erms",
                "memcpy"
            ]
        );
        assert!(cpu_dispatched_calls("fn=(1) rmap_impls::chain::walk_locked\n").is_empty());
    }
}
