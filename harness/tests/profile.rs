//! `lab profile` end to end: one short session of two implementations
//! (shared by the tests that read it) writes its directory with the result
//! files, the time series in JSON and CSV, and the charts; the series add up
//! to the run totals; bad input is one line and exit 2.
//!
//! No timing is asserted: only counts derived from the configured duration
//! and interval, sums that must match, and the files' structure.

mod common;

use common::{lab, stderr, stdout};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const IMPLS: [&str; 2] = ["mmu-lock", "lockless-gen"];
const DURATION_MS: u64 = 600;
const INTERVAL_MS: u64 = 100;
/// Intervals every run closes at least: the ticks before the end, less one
/// for a tick that lands past a late wake-up at the end.
const MIN_SAMPLES: usize = (DURATION_MS / INTERVAL_MS - 1) as usize;

/// The session directory of one `lab profile` run, made once.
fn session() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("profile-session");
        let _ = std::fs::remove_dir_all(&out);
        let o = lab(&[
            "profile",
            "--impl",
            &IMPLS.join(","),
            "--vcpus",
            "2",
            "--duration",
            &format!("{DURATION_MS}ms"),
            "--warmup",
            "100ms",
            "--interval",
            &format!("{INTERVAL_MS}ms"),
            "--mem",
            "8MiB",
            "--perf",
            "default",
            "--image-format",
            "svg",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "stdout: {}\nstderr: {}",
            stdout(&o),
            stderr(&o)
        );
        // `--out` is the session's directory itself.
        let dir = out.clone();
        assert!(
            dir.join("session.json").is_file(),
            "no session in {}",
            dir.display()
        );
        assert!(
            stdout(&o).contains(&dir.display().to_string()),
            "stdout names the session directory: {}",
            stdout(&o)
        );
        dir
    })
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

fn session_json() -> Value {
    json(&session().join("session.json"))
}

/// The session's entry for `impl_name`.
fn run_entry(impl_name: &str) -> Value {
    session_json()["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["impl"] == impl_name)
        .unwrap_or_else(|| panic!("no run of {impl_name} in session.json"))
        .clone()
}

/// A CSV without quoted fields (the lab's names need none): header, rows.
fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("a header")
        .split(',')
        .map(String::from)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn the_session_directory_holds_results_series_and_plots() {
    let dir = session();
    let s = session_json();
    assert_eq!(s["schema"], "rmap-lab/profile/v1");
    assert_eq!(s["impls"], serde_json::json!(IMPLS));
    assert_eq!(s["vcpus"], 2);
    assert_eq!(s["workload"], "dirty-log");
    assert!((s["interval_s"].as_f64().unwrap() - INTERVAL_MS as f64 / 1e3).abs() < 1e-9);
    assert!(s["command"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "profile"));
    assert_eq!(s["interrupted"], false);
    assert!(s["finished_at"].is_string());

    for name in IMPLS {
        let entry = run_entry(name);
        // The result file, as lab run writes it.
        let result = json(&dir.join(entry["result"].as_str().unwrap()));
        assert_eq!(result["schema"], "rmap-lab/result/v1");
        assert_eq!(result["impl"], name);
        assert_eq!(result["config"]["vcpus"], 2);
        assert_eq!(result["interrupted"], false);

        // The CSV: the documented columns, at least MIN_SAMPLES rows per role.
        let (header, rows) = csv(&dir.join(entry["timeseries_csv"].as_str().unwrap()));
        for col in [
            "t_s",
            "dt_s",
            "impl",
            "role",
            "task-clock_per_s",
            "task-clock_per_op",
            "context-switches_per_s",
            "guest_writes_per_s",
            "walks_per_s",
            "rounds_per_s",
            "restarts_per_s",
            "zaps_per_s",
            "vcpu.fault_slow_p99_ns",
            "vcpu.fault_slow_p50_ns",
            "walker.wp_gfn_p99_ns",
            "walker.round_p99_ns",
            "walker.tlb_flush_p99_ns",
        ] {
            assert!(
                header.iter().any(|h| h == col),
                "{name}: no column {col} in {header:?}"
            );
        }
        let col = |c: &str| header.iter().position(|h| h == c).unwrap();
        for row in &rows {
            assert_eq!(row.len(), header.len(), "{name}: a ragged row {row:?}");
            assert_eq!(row[col("impl")], name);
        }
        for role in ["vcpu", "walker", "zapper"] {
            let mine: Vec<&Vec<String>> = rows.iter().filter(|r| r[col("role")] == role).collect();
            assert!(
                mine.len() >= MIN_SAMPLES,
                "{name}: {} {role} rows, expected at least {MIN_SAMPLES}",
                mine.len()
            );
            // Each role's rows fill its own operation and only those.
            let writes = col("guest_writes_per_s");
            for r in &mine {
                assert_eq!(r[writes].is_empty(), role != "vcpu", "{name} {role}: {r:?}");
            }
        }

        // The JSON series parses and agrees with the CSV.
        let ts = json(&dir.join(entry["timeseries_json"].as_str().unwrap()));
        assert_eq!(ts["schema"], "rmap-lab/timeseries/v1");
        assert_eq!(ts["impl"], name);
        assert_eq!(ts["result"], entry["result"]);
        let intervals = ts["intervals"].as_array().unwrap();
        assert!(intervals.len() >= MIN_SAMPLES);
        assert_eq!(rows.len(), intervals.len() * 3);
        assert_eq!(entry["intervals"], intervals.len());
        let t: Vec<f64> = intervals
            .iter()
            .map(|i| i["t_s"].as_f64().unwrap())
            .collect();
        assert!(
            t.windows(2).all(|w| w[0] < w[1]),
            "{name}: times do not increase: {t:?}"
        );
        assert!(intervals
            .iter()
            .all(|i| i["metrics"]["vcpu.fault_fast"]["p99_ns"].is_u64()));
    }

    // One chart per figure, both implementations in each legend.
    let plots = dir.join("plots");
    for chart in [
        "perf-vcpu-task-clock",
        "perf-walker-task-clock",
        "perf-vcpu-context-switches",
        "p99-vcpu.fault_slow",
        "p99-walker.wp_gfn",
        "p99-walker.round",
        "rate-guest_writes",
    ] {
        let path = plots.join(format!("{chart}.svg"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{}: not XML: {e}", path.display()));
        let texts: BTreeSet<&str> = doc
            .descendants()
            .filter_map(|n| n.text())
            .map(str::trim)
            .collect();
        for name in IMPLS {
            assert!(
                texts.contains(name),
                "{chart}: no legend entry for {name} in {texts:?}"
            );
        }
        assert!(
            !plots.join(format!("{chart}.png")).exists(),
            "--image-format svg"
        );
    }
    let listed = s["plots"].as_array().unwrap();
    assert!(listed.iter().any(|p| p == "plots/rate-guest_writes.svg"));
    // The session's page links every chart, by relative link.
    let index = std::fs::read_to_string(plots.join("index.html")).expect("plots/index.html");
    assert!(index.starts_with("<!DOCTYPE html>"));
    for p in listed {
        let name = p.as_str().unwrap().trim_start_matches("plots/");
        assert!(
            index.contains(&format!("src=\"{name}\"")),
            "{name} is not on the page"
        );
    }
    assert!(index.contains("Medians over the intervals"));
}

#[test]
fn lab_compare_reads_the_session_and_skips_its_side_files() {
    let o = lab(&["compare", "--format", "json", session().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let c: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let impls: BTreeSet<&str> = c["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["impl"].as_str().unwrap())
        .collect();
    assert_eq!(impls, IMPLS.into_iter().collect());
}

#[test]
fn the_series_add_up_to_the_run_totals() {
    let dir = session();
    for name in IMPLS {
        let entry = run_entry(name);
        let result = json(&dir.join(entry["result"].as_str().unwrap()));
        let ts = json(&dir.join(entry["timeseries_json"].as_str().unwrap()));
        let intervals = ts["intervals"].as_array().unwrap();

        // Every operation lands in exactly one interval.
        for op in ["guest_writes", "walks", "rounds", "zaps"] {
            let sum: u64 = intervals
                .iter()
                .map(|i| i["counts"][op].as_u64().unwrap())
                .sum();
            assert_eq!(sum, result["counters"][op].as_u64().unwrap(), "{name} {op}");
        }

        let task_clock = &result["perf"]["vcpu"]["task-clock"];
        if task_clock["supported"] != true {
            // perf not permitted here: the series must not pretend.
            assert!(ts["events"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e != "task-clock"));
            continue;
        }
        // The intervals cover the measured phase up to the last interval's
        // end; the run's total also has the threads' few microseconds to
        // their stop. A generous factor, not a timing.
        let total = task_clock["value"].as_f64().unwrap();
        let sum: f64 = intervals
            .iter()
            .map(|i| i["perf"]["vcpu"]["task-clock"]["value"].as_f64().unwrap())
            .sum();
        assert!(
            total > 0.0 && sum > 0.5 * total && sum <= 1.5 * total,
            "{name}: vcpu task-clock over the intervals {sum} against the run's {total}"
        );
        // Context switches: a rate for every interval and role, never negative.
        for i in intervals {
            for role in ["vcpu", "walker", "zapper"] {
                let cs = &i["perf"][role]["context-switches"];
                if result["perf"][role]["context-switches"]["supported"] == true {
                    let r = cs["per_s"].as_f64().unwrap_or(-1.0);
                    assert!(r >= 0.0, "{name} {role}: context-switches {cs}");
                }
            }
        }
    }
}

/// `args` are refused with exit 2 and one line on stderr containing
/// `needle`, and no session directory is made.
fn refused(args: &[&str], needle: &str) {
    let out = tempfile::tempdir().unwrap();
    let mut a = vec![
        "profile",
        "--vcpus",
        "1",
        "--mem",
        "4MiB",
        "--out",
        out.path().to_str().unwrap(),
    ];
    a.extend_from_slice(args);
    let o = lab(&a);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: stderr {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "{args:?} wrote a session"
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    refused(&["--interval", "0"], "--interval must be longer than 0");
    refused(&["--interval", "0ms", "--impl", "mmu-lock"], "--interval");
    refused(
        &["--impl", "mmu-lock,nosuch"],
        "invalid value 'nosuch' for '--impl <NAME>'",
    );
    refused(&["--vcpus", "1,2"], "--vcpus takes one value here");
    refused(
        &["--interval", "2s", "--duration", "1s"],
        "is longer than --duration",
    );
    refused(
        &["--impl", "mmu-lock,mmu-lock", "--duration", "1s"],
        "names 'mmu-lock' twice",
    );
    refused(&["--interval", "1ms", "--duration", "10s"], "at most 1000");
    refused(&["--interval", "soon"], "not a duration");
}
