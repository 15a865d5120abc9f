//! `lab compare` on hand-made result files: medians over repeats, ratios to
//! the baseline, the spread warning, the export formats, and bad input.

mod common;
mod fixture;

use common::{lab, stderr, stdout};
use fixture::Run;
use serde_json::Value;
use std::path::Path;

fn run(impl_name: &str, vcpus: u32, seed: u64, writes: f64, fault_p99: u64) -> Run {
    let mut r = Run::new(impl_name, vcpus);
    r.seed = seed;
    r.writes_per_s = writes;
    r.fault_slow = Some((1_000, fault_p99));
    r
}

fn compare_json(args: &[&str]) -> Value {
    let mut a = vec!["compare", "--format", "json"];
    a.extend_from_slice(args);
    let o = lab(&a);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("--format json prints JSON")
}

fn group<'a>(c: &'a Value, impl_name: &str, vcpus: u64) -> &'a Value {
    c["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["impl"] == impl_name && g["params"]["vcpus"] == vcpus)
        .unwrap_or_else(|| panic!("no group {impl_name} vcpus={vcpus}"))
}

/// The warnings of a `--format json` comparison.
fn warnings_of(c: &Value) -> Vec<&str> {
    c["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect()
}

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() < 1e-9 * b.abs().max(1.0)
}

/// Two implementations, three repeats each at 8 vCPUs, with known medians:
/// mmu-lock writes {1.0, 1.2, 1.1}M/s and slow-fault p99 {10, 12, 11}us;
/// lockless-gen {2.2, 2.0, 2.4}M/s and {5.5, 5.0, 6.0}us. The ratios are
/// 2.2/1.1 = 2 and 5.5/11 = 0.5. At 16 vCPUs only lockless-gen ran.
fn sweep_dir(dir: &Path) {
    for (seed, w, p) in [(1, 1.0e6, 10_000), (2, 1.2e6, 12_000), (3, 1.1e6, 11_000)] {
        run("mmu-lock", 8, seed, w, p).write(dir, &format!("mmu-lock-8-{seed}"));
    }
    for (seed, w, p) in [(1, 2.2e6, 5_500), (2, 2.0e6, 5_000), (3, 2.4e6, 6_000)] {
        let mut r = run("lockless-gen", 8, seed, w, p);
        r.restarts = 500;
        r.write(dir, &format!("lockless-gen-8-{seed}"));
    }
    run("lockless-gen", 16, 1, 3.0e6, 7_000).write(dir, "lockless-gen-16-1");
}

#[test]
fn medians_over_repeats_and_ratios_to_the_baseline() {
    let d = tempfile::tempdir().unwrap();
    sweep_dir(d.path());
    let c = compare_json(&[d.path().to_str().unwrap()]);
    assert_eq!(c["schema"], "rmap-lab/compare/v1");
    assert_eq!(c["baseline"], "mmu-lock");
    // Seeds are repeats, not configurations; vcpus is a key.
    assert_eq!(c["keys"], serde_json::json!(["vcpus"]));
    assert_eq!(c["groups"].as_array().unwrap().len(), 3);

    let base = group(&c, "mmu-lock", 8);
    assert_eq!(base["baseline"], true);
    assert_eq!(base["runs"].as_array().unwrap().len(), 3);
    let w = &base["figures"]["writes"];
    assert!(close(&w["stats"]["median"], 1.1e6));
    assert!(close(&w["stats"]["min"], 1.0e6));
    assert!(close(&w["stats"]["max"], 1.2e6));
    assert!(close(&w["ratio"], 1.0));

    let g = group(&c, "lockless-gen", 8);
    let f = &g["figures"];
    assert!(close(&f["writes"]["stats"]["median"], 2.2e6));
    assert!(close(&f["writes"]["ratio"], 2.0));
    assert!(close(&f["fault_slow_p99"]["stats"]["median"], 5_500.0));
    assert!(close(&f["fault_slow_p99"]["ratio"], 0.5));
    // 500 restarts in 100,000 walks; mmu-lock's zero has no ratio.
    assert!(close(&f["restarts"]["stats"]["median"], 5.0));
    assert!(f["restarts"]["ratio"].is_null());
    assert!(close(&f["lost_writes"]["stats"]["median"], 0.0));

    // No baseline at 16 vCPUs: no ratio, and a warning that says so.
    let lone = group(&c, "lockless-gen", 16);
    assert!(lone["figures"]["writes"]["ratio"].is_null());
    let warnings = warnings_of(&c);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("no mmu-lock run at vcpus=16")),
        "{warnings:?}"
    );
    // The differences are larger than the spreads: no noise warning.
    assert!(
        !warnings.iter().any(|w| w.contains("spread")),
        "{warnings:?}"
    );
}

#[test]
fn baseline_is_chosen_and_can_be_named() {
    let d = tempfile::tempdir().unwrap();
    let a = run("seqlock", 4, 1, 1.0e6, 8_000).write(d.path(), "a");
    let b = run("rmap-lock", 4, 1, 4.0e6, 2_000).write(d.path(), "b");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    // Without mmu-lock, the first input's implementation is the baseline.
    let c = compare_json(&[a, b]);
    assert_eq!(c["baseline"], "seqlock");
    assert!(close(
        &group(&c, "rmap-lock", 4)["figures"]["writes"]["ratio"],
        4.0
    ));
    let c = compare_json(&["--baseline", "rmap-lock", a, b]);
    assert_eq!(c["baseline"], "rmap-lock");
    let s = &group(&c, "seqlock", 4)["figures"];
    assert!(close(&s["writes"]["ratio"], 0.25));
    assert!(close(&s["fault_slow_p99"]["ratio"], 4.0));

    let o = lab(&["compare", "--baseline", "nosuch", a, b]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("baseline 'nosuch'"), "{err}");
}

#[test]
fn a_ratio_within_the_noise_is_marked_not_coloured_and_noted_once() {
    let d = tempfile::tempdir().unwrap();
    // mmu-lock: 1.0 and 1.5 M/s (median 1.25); lockless: 1.2 and 1.4
    // (median 1.3). The ratio 1.04 has a 95% interval from about 0.8 to
    // 1.4: within the noise.
    for (i, w) in [1.0e6, 1.5e6].into_iter().enumerate() {
        run("mmu-lock", 2, i as u64, w, 10_000).write(d.path(), &format!("m{i}"));
    }
    for (i, w) in [1.2e6, 1.4e6].into_iter().enumerate() {
        run("lockless", 2, i as u64, w, 10_000).write(d.path(), &format!("l{i}"));
    }
    let p = d.path().to_str().unwrap();
    let o = lab(&["compare", p]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    // The cell carries the mark, the legend says what it means.
    assert!(out.contains("1.30M (1.04x~)"), "{out}");
    assert!(
        out.contains("~ the ratio's 95% confidence interval holds 1"),
        "{out}"
    );
    // One line for the kind, the details only with --verbose.
    let note = out
        .lines()
        .find(|l| l.starts_with("Note:"))
        .unwrap_or_else(|| panic!("{out}"));
    // Four: the writes, and the figures both designs share exactly (a
    // ratio of exactly 1 is within any noise).
    assert!(
        note.contains("4 ratios in 1 row are within the noise"),
        "{note}"
    );
    assert!(note.contains("--verbose"), "{note}");
    assert!(
        !out.contains("lockless at vcpus=2, against mmu-lock"),
        "{out}"
    );
    let verbose = stdout(&lab(&["compare", "--verbose", p]));
    let detail = verbose
        .lines()
        .find(|l| l.contains("lockless at vcpus=2, against mmu-lock"))
        .unwrap_or_else(|| panic!("{verbose}"));
    assert!(
        detail.contains("guest writes/s 1.04x (95% interval"),
        "{detail}"
    );
    assert!(
        detail.contains("slow fault p99 1.00x (95% interval 1.00x-1.00x)"),
        "{detail}"
    );
    // The headline says the same in words.
    assert!(
        out.contains("within noise of mmu-lock: guest writes/s 1.04x ("),
        "{out}"
    );

    // Machine-readable formats keep stdout clean: the note goes to stderr.
    let o = lab(&["compare", "--format", "csv", p]);
    assert!(!stdout(&o).contains("within the noise"));
    assert!(
        stderr(&o).contains("lab: note: 4 ratios in 1 row are within the noise"),
        "{}",
        stderr(&o)
    );
    // And the CSV says it per cell.
    assert!(stdout(&o).contains(",noise"), "{}", stdout(&o));
}

#[test]
fn every_export_format_carries_the_rows() {
    let d = tempfile::tempdir().unwrap();
    sweep_dir(d.path());
    let p = d.path().to_str().unwrap();

    let table = stdout(&lab(&["compare", p]));
    let row = table
        .lines()
        .find(|l| l.starts_with("lockless-gen") && l.contains(" 8 "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("2.20M (2.00x)"), "{row}");
    assert!(row.contains("5.5us (0.50x)"), "{row}");
    // The range of the repeats on the line below.
    assert!(table.contains("2.00M-2.40M"), "{table}");

    let md = stdout(&lab(&["compare", "--format", "markdown", p]));
    // The headline first, then the shared configuration and the table.
    assert!(
        md.lines().next().unwrap().starts_with("**Headline:"),
        "{md}"
    );
    assert!(md.contains("\nConfiguration: `"), "{md}");
    assert!(
        md.contains("| impl | vcpus | runs | guest writes/s | vs mmu-lock |"),
        "{md}"
    );
    assert!(
        md.contains("| lockless-gen | 8 | 3 | 2.20M [2.00M-2.40M] | 2.00x |"),
        "{md}"
    );

    let csv = stdout(&lab(&["compare", "--format", "csv", p]));
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&head[..3], ["impl", "vcpus", "runs"]);
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3);
    let lg = rows
        .iter()
        .find(|r| r[0] == "lockless-gen" && r[1] == "8")
        .unwrap();
    assert_eq!(lg[col("writes_per_s_median")], "2200000");
    assert_eq!(lg[col("fault_slow_p99_ns_ratio")], "0.5");
    assert!(rows.iter().all(|r| r.len() == head.len()));

    let bad = lab(&["compare", "--format", "xml", p]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(stderr(&bad).lines().count(), 1);
}

#[test]
fn metric_selects_the_columns() {
    let d = tempfile::tempdir().unwrap();
    sweep_dir(d.path());
    let p = d.path().to_str().unwrap();
    let c = compare_json(&["--metric", "writes,walker.wp_gfn:p50,counter:walks", p]);
    let ids: Vec<&str> = c["figures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["writes", "walker.wp_gfn:p50", "counter:walks"]);
    let f = &group(&c, "lockless-gen", 8)["figures"];
    assert!(close(&f["walker.wp_gfn:p50"]["stats"]["median"], 500.0));
    assert!(close(&f["counter:walks"]["stats"]["median"], 100_000.0));

    let o = lab(&["compare", "--metric", "walker.wp_gfn:p42", p]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown statistic 'p42'"),
        "{}",
        stderr(&o)
    );
}

/// Bad input: one line on stderr naming the file and the problem, exit 2,
/// for both commands that read results.
#[test]
fn corrupt_and_foreign_files_give_one_line_and_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let good = run("mmu-lock", 1, 1, 1.0e6, 1_000).write(d.path(), "good");
    let corrupt = d.path().join("corrupt.json");
    std::fs::write(&corrupt, "{\"schema\": \"rmap-lab/result/v1\", \"impl\": ").unwrap();
    let foreign = d.path().join("foreign.json");
    std::fs::write(
        &foreign,
        "{\"name\": \"package.json\", \"version\": \"1.0.0\"}",
    )
    .unwrap();
    let missing = d.path().join("missing.json");
    let mut bad_hdr = Run::new("mmu-lock", 1).json();
    bad_hdr["metrics"]["vcpu.fault_slow"]["hdr"] = "AAAA!!".into();
    let bad_hdr_path = d.path().join("badhdr.json");
    std::fs::write(&bad_hdr_path, bad_hdr.to_string()).unwrap();

    let out = d.path().join("out");
    for (file, why) in [
        (&corrupt, "not JSON"),
        (&foreign, "not an rmap-lab result"),
        (&missing, "no such file"),
    ] {
        for cmd in [
            vec!["compare", good.to_str().unwrap(), file.to_str().unwrap()],
            vec![
                "plot",
                "--out",
                out.to_str().unwrap(),
                file.to_str().unwrap(),
            ],
        ] {
            let o = lab(&cmd);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{cmd:?}: {err}");
            assert!(
                err.contains(file.file_name().unwrap().to_str().unwrap()),
                "{err}"
            );
            assert!(err.contains(why), "{cmd:?}: {err}");
            assert!(stdout(&o).is_empty());
        }
    }
    // A histogram that does not decode: `plot` needs it, and says which.
    let o = lab(&[
        "plot",
        "--out",
        out.to_str().unwrap(),
        bad_hdr_path.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("badhdr.json") && err.contains("vcpu.fault_slow"),
        "{err}"
    );

    let empty = tempfile::tempdir().unwrap();
    let o = lab(&["compare", empty.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no result files"));
}

#[test]
fn disjoint_ranges_are_a_difference_however_wide_one_of_them_is() {
    let d = tempfile::tempdir().unwrap();
    // mmu-lock: 1.0 and 9.0 M/s (median 5.0, spread 8.0); lockless: 10.0
    // and 10.2 (median 10.1). The spread exceeds the difference of 5.1,
    // but every lockless repeat beats every mmu-lock repeat: the interval
    // of the ratio excludes 1, so it is a difference, not noise.
    for (i, w) in [1.0e6, 9.0e6].into_iter().enumerate() {
        run("mmu-lock", 2, i as u64, w, 10_000).write(d.path(), &format!("m{i}"));
    }
    for (i, w) in [10.0e6, 10.2e6].into_iter().enumerate() {
        run("lockless", 2, i as u64, w, 10_000).write(d.path(), &format!("l{i}"));
    }
    let c = compare_json(&[d.path().to_str().unwrap()]);
    let w = &group(&c, "lockless", 2)["figures"]["writes"];
    assert_eq!(w["change"], "better", "{w}");
    assert!(w["ratio_ci"]["lo"].as_f64().unwrap() > 1.0, "{w}");
    let o = lab(&["compare", d.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("10.1M (2.02x)"), "{}", stdout(&o));
}

/// A sweep of two designs at 2 and 8 vCPUs, three repeats each with about
/// 1% of spread; `slow` multiplies lockless-gen's slow-fault p99 at 8 vCPUs.
fn baseline_sweep(dir: &Path, slow: f64) {
    for (name, base_writes, base_p99) in [
        ("mmu-lock", 1.0e6, 40_000.0),
        ("lockless-gen", 2.0e6, 10_000.0),
    ] {
        for vcpus in [2u32, 8] {
            for (seed, jitter) in [(1u64, 1.0), (2, 1.01), (3, 0.99)] {
                let p99 = base_p99
                    * jitter
                    * if name == "lockless-gen" && vcpus == 8 {
                        slow
                    } else {
                        1.0
                    };
                run(name, vcpus, seed, base_writes * jitter, p99 as u64)
                    .write(dir, &format!("{name}-{vcpus}-{seed}"));
            }
        }
    }
}

fn against(new: &Path, old: &Path, extra: &[&str]) -> std::process::Output {
    let mut a = vec![
        "compare",
        new.to_str().unwrap(),
        "--against",
        old.to_str().unwrap(),
    ];
    a.extend_from_slice(extra);
    lab(&a)
}

#[test]
fn against_labels_a_planted_regression_and_only_it() {
    let d = tempfile::tempdir().unwrap();
    let (old, new) = (d.path().join("old"), d.path().join("new"));
    baseline_sweep(&old, 1.0);
    baseline_sweep(&new, 1.2);
    let o = against(&new, &old, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["schema"], "rmap-lab/compare-against/v1");
    assert_eq!(j["matched"], 4);
    let changes = j["changes"].as_array().unwrap();
    let regressed: Vec<&Value> = changes
        .iter()
        .filter(|c| c["verdict"] == "regressed")
        .collect();
    assert_eq!(regressed.len(), 1, "{regressed:?}");
    let r = regressed[0];
    assert_eq!(r["impl"], "lockless-gen");
    assert_eq!(r["params"]["vcpus"], 8);
    assert_eq!(r["figure"], "fault_slow_p99");
    assert!(close(&r["ratio"], 1.2), "{r}");
    let ci = &r["ratio_ci"];
    assert!(
        ci["lo"].as_f64().unwrap() > 1.1 && ci["hi"].as_f64().unwrap() < 1.3,
        "{r}"
    );
    // Everything else moved by nothing but the jitter.
    assert_eq!(j["improved"], 0);
    assert_eq!(
        j["within_noise"].as_u64().unwrap() as usize,
        changes.len() - 1
    );

    // The table names it, with its interval; scripts get exit 1 on request.
    let o = against(&new, &old, &["--fail-on-regression"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("regressed"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("lockless-gen") && line.contains("vcpus=8"),
        "{line}"
    );
    assert!(
        line.contains("slow fault p99") && line.contains("1.20x ("),
        "{line}"
    );
    assert!(out.contains("1 regressed, 0 improved"), "{out}");
}

#[test]
fn against_identical_data_is_within_noise_everywhere() {
    let d = tempfile::tempdir().unwrap();
    let (old, new) = (d.path().join("old"), d.path().join("new"));
    baseline_sweep(&old, 1.0);
    baseline_sweep(&new, 1.0);
    let o = against(&new, &old, &["--fail-on-regression", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let changes = j["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    assert!(
        changes.iter().all(|c| c["verdict"] == "within_noise"),
        "{changes:?}"
    );
    // Lost writes where there were none are a regression whatever else.
    let mut lossy = Run::new("lockless-gen", 2);
    lossy.seed = 9;
    lossy.lost_writes = 3;
    lossy.writes_per_s = 2.0e6;
    lossy.fault_slow = Some((1_000, 10_000));
    lossy.write(&new, "lockless-gen-2-9");
    let o = against(&new, &old, &["--fail-on-regression", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["figure"] == "lost_writes" && c["verdict"] == "regressed"));
    // Nothing in common: said, exit 2.
    let other = d.path().join("other");
    run("seqlock", 64, 1, 1.0e6, 10_000).write(&other, "s");
    let o = against(&other, &old, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no configuration"), "{}", stderr(&o));
}

/// Runs whose zappers issued different shares of the zaps they requested
/// ran under different loads: compare says so, as its own warning; shares
/// within 5 points of each other are not flagged.
#[test]
fn a_comparison_of_different_offered_loads_is_flagged() {
    let d = tempfile::tempdir().unwrap();
    let with_zaps = |impl_name: &str, seed: u64, issued: u64| {
        let mut r = run(impl_name, 32, seed, 1.0e6, 10_000);
        r.zaps = issued;
        r.zaps_requested = Some(20_000);
        r
    };
    for seed in 0..3 {
        with_zaps("mmu-lock", seed, 270).write(d.path(), &format!("m{seed}"));
        with_zaps("lockless", seed, 19_900).write(d.path(), &format!("l{seed}"));
        with_zaps("rmap-lock", seed, 19_000).write(d.path(), &format!("r{seed}"));
    }
    let c = compare_json(&[d.path().to_str().unwrap()]);
    let warnings = warnings_of(&c);
    let offered: Vec<&&str> = warnings
        .iter()
        .filter(|w| w.starts_with("offered load differs"))
        .collect();
    assert_eq!(offered.len(), 2, "{warnings:?}");
    assert!(
        offered
            .iter()
            .any(|w| w.contains("lockless issued 100%") && w.contains("mmu-lock 1%")),
        "{offered:?}"
    );

    // Baseline lockless: rmap-lock's 95% is within 5 points of 99.5%.
    let c = compare_json(&["--baseline", "lockless", d.path().to_str().unwrap()]);
    let flagged: Vec<&str> = warnings_of(&c)
        .into_iter()
        .filter(|w| w.starts_with("offered load differs"))
        .collect();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert!(flagged[0].contains("mmu-lock issued 1%"), "{flagged:?}");
}

/// Guest progress under dirty logging over idle, with the same lock kind:
/// the pass-time ratio, writes per vCPU CPU-second, the walker's CPUs; a
/// pair whose lock kinds differ is named and not compared.
#[test]
fn guest_progress_pairs_dirty_log_with_idle_of_the_same_lock_kind() {
    let d = tempfile::tempdir().unwrap();
    let side = |impl_name: &str, vcpus: u32, workload: &str, lock: &str, pass: u64, cpu: f64| {
        let mut r = run(impl_name, vcpus, 1, 2.0e6, 10_000);
        r.workload = workload.into();
        r.mmu_lock = Some(lock.into());
        r.pass = Some((pass, 2 * pass));
        r.thread_cpu_s = vec![("vcpu", cpu), ("walker", 5.0)];
        r
    };
    // mmu-lock at 2 vCPUs: passes 3x slower, 20M writes on 8 vs 4 CPU-s.
    side("mmu-lock", 2, "dirty-log", "spin", 300_000, 8.0).write(d.path(), "md");
    side("mmu-lock", 2, "idle", "spin", 100_000, 4.0).write(d.path(), "mi");
    // mmu-lock at 4 vCPUs: auto chose park for dirty-log only.
    side("mmu-lock", 4, "dirty-log", "park", 300_000, 8.0).write(d.path(), "md4");
    side("mmu-lock", 4, "idle", "spin", 100_000, 4.0).write(d.path(), "mi4");
    let c = compare_json(&[d.path().to_str().unwrap()]);
    let pairs = c["interference"].as_array().unwrap();
    assert_eq!(pairs.len(), 2, "{pairs:?}");
    let at = |v: u64| {
        pairs
            .iter()
            .find(|p| p["params"]["vcpus"] == v)
            .unwrap_or_else(|| panic!("{pairs:?}"))
    };
    let p2 = at(2);
    assert!(close(&p2["pass_ratio"], 3.0), "{p2}");
    assert!(close(&p2["writes_per_vcpu_cpu_s_ratio"], 0.5), "{p2}");
    assert!(close(&p2["walker_cpus"], 0.5), "{p2}");
    assert_eq!(p2["mmu_lock"], "spin");
    let p4 = at(4);
    assert!(
        p4["pass_ratio"].is_null() && p4["pass_p50"].is_null(),
        "{p4}"
    );
    assert!(
        p4["note"]
            .as_str()
            .unwrap()
            .contains("dirty-log ran mmu_lock park, idle spin"),
        "{p4}"
    );
    // The terminal block says the same.
    let o = lab(&["compare", d.path().to_str().unwrap()]);
    let out = stdout(&o);
    assert!(out.contains("guest progress"), "{out}");
    assert!(
        out.contains("not compared: dirty-log ran mmu_lock park"),
        "{out}"
    );
}

/// A real-KVM run whose write-protect step KVM's statistics show was not an
/// rmap walk (bitmap handling only) is named in a warning; an rmap-walk run
/// is not.
#[test]
fn a_calibration_that_walked_no_rmap_is_named() {
    let d = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../results/reference/calibrate/host-kvm-20261129T163949.227Z.json");
    let mut r: Value = serde_json::from_str(&std::fs::read_to_string(src).unwrap()).unwrap();
    assert_eq!(r["write_protect"]["measured"], "rmap-walk");
    std::fs::write(d.path().join("walk.json"), r.to_string()).unwrap();
    let dir = d.path().to_str().unwrap();
    let c = compare_json(&[dir]);
    assert!(
        warnings_of(&c)
            .iter()
            .all(|w| !w.contains("not an rmap walk")),
        "{c}"
    );
    r["write_protect"]["measured"] = "bitmap-only".into();
    r["write_protect"]["rmap_walk"] = false.into();
    std::fs::write(d.path().join("bitmap.json"), r.to_string()).unwrap();
    let c = compare_json(&[dir]);
    let named: Vec<&str> = warnings_of(&c)
        .into_iter()
        .filter(|w| w.contains("not an rmap walk"))
        .collect();
    assert_eq!(named.len(), 1, "{c}");
    assert!(named[0].contains("bitmap.json (bitmap-only)") && !named[0].contains("walk.json"));
}
