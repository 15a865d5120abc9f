//! `lab calibrate` end to end: the `lab` binary against this machine's real
//! `/dev/kvm`. Where KVM cannot be opened (or the machine is not x86-64
//! Linux) the KVM tests print why and skip; the argument checks run
//! everywhere.

use serde_json::Value;
use std::path::Path;
mod common;

use common::{lab, stderr, stdout};
use std::sync::OnceLock;

/// Why the KVM tests cannot run here, if they cannot.
fn kvm_missing() -> Option<String> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Some("lab calibrate needs x86-64 Linux".into());
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => None,
        Err(e) => Some(format!("/dev/kvm cannot be opened: {e}")),
    }
}

macro_rules! require_kvm {
    () => {
        if let Some(why) = kvm_missing() {
            eprintln!("skipping: {why}");
            return;
        }
    };
}

fn result_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Every key the result schema (`rmap-lab/result/v1`, `harness/src/record/result.rs`) requires, with the types a reader relies on.
fn assert_schema(r: &Value) {
    assert_eq!(r["schema"], "rmap-lab/result/v1");
    for k in [
        "impl",
        "workload",
        "config",
        "machine",
        "lab_version",
        "started_at",
        "duration_s",
        "interrupted",
        "verdict",
        "metrics",
        "counters",
        "throughput",
        "perf",
    ] {
        assert!(r.get(k).is_some(), "result lacks '{k}'");
    }
    for k in ["vcpus", "seed", "desc_ext", "aliases", "mem_bytes"] {
        assert!(r["config"][k].is_u64(), "config lacks '{k}'");
    }
    for k in ["online_cpus", "cpu_model", "kernel", "oversubscribed"] {
        assert!(r["machine"].get(k).is_some(), "machine lacks '{k}'");
    }
    for k in ["lost_writes", "rmap_inconsistencies", "ok"] {
        assert!(r["verdict"].get(k).is_some(), "verdict lacks '{k}'");
    }
    for k in [
        "walks",
        "restarts",
        "restarts_by_reason",
        "guest_writes",
        "faults_fast",
        "faults_slow",
        "zaps",
        "rounds",
    ] {
        assert!(r["counters"].get(k).is_some(), "counters lack '{k}'");
    }
    for (name, m) in r["metrics"].as_object().unwrap() {
        for k in [
            "count", "min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "mean_ns", "hdr",
        ] {
            assert!(m.get(k).is_some(), "metric {name} lacks '{k}'");
        }
    }
    assert!(r["started_at"].as_str().unwrap().ends_with('Z'));
}

/// The brief's small calibration, run once and shared by the tests that
/// read it: 2 vCPUs, 4 MiB (1024 pages), 3 iterations.
struct SmallRun {
    json: Value,
    file: Value,
    _dir: tempfile::TempDir,
}

fn small_run() -> &'static SmallRun {
    static RUN: OnceLock<SmallRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = lab(&[
            "calibrate",
            "--vcpus",
            "2",
            "--mem",
            "4MiB",
            "--iterations",
            "3",
            "--duration",
            "100ms",
            "--json",
            "--out",
            dir.path().to_str().unwrap(),
        ]);
        let stderr = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
        let json: Value = serde_json::from_slice(&out.stdout).expect("stdout is the result JSON");
        let files = result_files(dir.path());
        assert_eq!(files.len(), 1, "one result file: {files:?}");
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("host-kvm-") && name.ends_with(".json"),
            "{name}"
        );
        let file: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
        SmallRun {
            json,
            file,
            _dir: dir,
        }
    })
}

#[test]
fn every_page_the_guest_wrote_is_in_the_next_harvest() {
    require_kvm!();
    let r = &small_run().json;
    assert_schema(r);
    assert_eq!(r["impl"], "host-kvm");
    assert_eq!(r["workload"], "dirty-log");
    assert_eq!(r["config"]["vcpus"], 2);
    assert_eq!(r["config"]["mem_bytes"], 4 << 20);
    let its = r["per_iteration"].as_array().unwrap();
    assert_eq!(its.len(), 3);
    for (k, it) in its.iter().enumerate() {
        // The guest wrote every page of the memslot once in this iteration.
        assert_eq!(it["written_pages"], 1024, "iteration {k}");
        assert_eq!(it["dirty_pages"], 1024, "iteration {k}: {it}");
        assert_eq!(it["lost_pages"], 0, "iteration {k}");
        assert!(it["get_ns"].as_u64().unwrap() > 0);
    }
    // Nothing wrote after the last round: its harvest left nothing behind.
    assert_eq!(r["quiescent_dirty_pages"], 0);
    assert_eq!(r["counters"]["rounds"], 3);
    assert_eq!(r["counters"]["pages_harvested"], 3 * 1024);
    assert_eq!(r["verdict"]["ok"], true);
    assert_eq!(r["verdict"]["lost_writes"], 0);
    let round = &r["metrics"]["walker.round"];
    assert_eq!(round["count"], 3);
    assert!(round["min_ns"].as_u64().unwrap() > 0);
    assert!(round["p50_ns"].as_u64().unwrap() >= round["min_ns"].as_u64().unwrap());
    assert!(r["metrics"]["walker.get_dirty_log"]["count"] == 3);
    let mode = r["dirty_log_mode"].as_str().unwrap();
    assert!(mode == "clear" || mode == "get", "{mode}");
    assert_eq!(
        r["metrics"].get("walker.clear_dirty_log").is_some(),
        mode == "clear"
    );
    assert!(r["round_ns_per_dirty_page"].as_f64().unwrap() > 0.0);
    // The file is the same result as stdout.
    assert_eq!(r, &small_run().file);
}

#[test]
fn guest_memory_holds_each_vcpus_last_pass() {
    require_kvm!();
    let r = &small_run().json;
    let vcpus = r["per_vcpu"].as_array().unwrap();
    assert_eq!(vcpus.len(), 2);
    let mut next_page = 0;
    let mut writes = 0;
    for (i, v) in vcpus.iter().enumerate() {
        assert_eq!(v["id"], i as u64);
        assert_eq!(v["first_page"], next_page, "shares are contiguous");
        let pages = v["pages"].as_u64().unwrap();
        next_page += pages;
        let passes = v["passes"].as_u64().unwrap();
        // populate + 2 live phases of at least 2 passes + 3 iterations.
        assert!(passes >= 8, "vCPU {i}: {passes} passes");
        let want = passes << 32 | i as u64;
        assert_eq!(v["first_word"], want, "vCPU {i}: first page");
        assert_eq!(v["last_word"], want, "vCPU {i}: last page");
        assert_eq!(v["stale_pages"], 0, "vCPU {i}");
        writes += passes * pages;
    }
    assert_eq!(next_page, 1024, "the shares cover the memslot");
    assert_eq!(r["counters"]["guest_writes"], writes);
    assert!(r["throughput"]["vcpu.guest_writes"].as_f64().unwrap() > 0.0);
    assert!(r["interference_ratio"].as_f64().unwrap() > 0.0);
}

#[test]
fn the_host_kvm_is_recorded() {
    require_kvm!();
    let kvm = &small_run().json["machine"]["kvm"];
    let tdp = std::fs::read_to_string("/sys/module/kvm/parameters/tdp_mmu")
        .ok()
        .map(|s| s.trim().to_string());
    assert_eq!(kvm["tdp_mmu"].as_str().map(String::from), tdp);
    let pvm = Path::new("/sys/module/kvm_pvm").exists();
    assert_eq!(kvm["kvm_pvm"], pvm);
    let warned = small_run().json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("kvm_pvm"));
    assert_eq!(warned, pvm, "the result notes software virtualisation");
}

/// A one-vCPU, 1 MiB, two-iteration calibration with `extra` arguments,
/// writing into `out`.
fn tiny_run(extra: &[&str], out: &Path) -> std::process::Output {
    let mut args = vec![
        "calibrate",
        "--vcpus",
        "1",
        "--mem",
        "1MiB",
        "--iterations",
        "2",
        "--duration",
        "50ms",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    lab(&args)
}

#[test]
fn forced_get_mode_and_the_human_summary() {
    require_kvm!();
    let dir = tempfile::tempdir().unwrap();
    let out = tiny_run(&["--dirty-log-mode", "get"], dir.path());
    let stdout = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", stderr(&out));
    assert!(stdout.contains("dirty-log mode: get"), "{stdout}");
    for line in [
        "Populate memory time: ",
        "Enabling dirty logging time: ",
        "Iteration 2 dirty memory time: ",
        "Iteration 2 get dirty log time: ",
        "Disabling dirty logging time: ",
        "Get dirty log over 2 iterations took ",
        "interference ratio ",
    ] {
        assert!(stdout.contains(line), "missing '{line}' in:\n{stdout}");
    }
    assert!(!stdout.contains("clear dirty log time"), "{stdout}");
    let files = result_files(dir.path());
    assert_eq!(files.len(), 1);
    assert!(stdout.contains(&files[0].display().to_string()));
    let r: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_schema(&r);
    assert_eq!(r["dirty_log_mode"], "get");
    assert_eq!(r["config"]["dirty_log_mode_forced"], true);
    assert!(r["metrics"].get("walker.clear_dirty_log").is_none());
    for it in r["per_iteration"].as_array().unwrap() {
        assert_eq!(it["dirty_pages"], 256);
        assert_eq!(it["clear_ns"], 0);
    }
}

#[test]
fn bad_arguments_and_missing_kvm_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for (args, says) in [
        (vec!["--vcpus", "0"], "--vcpus must be at least 1"),
        (
            vec!["--vcpus", "4", "--mem", "8KiB"],
            "too small for 4 vCPUs",
        ),
        (vec!["--mem", "1000000"], "multiple of the 4KiB page"),
        (vec!["--mem", "64TiB"], "beyond this machine's memory"),
        (vec!["--iterations", "0"], "--iterations must be at least 1"),
        (
            vec!["--kvm-device", "/nonexistent/kvm"],
            "KVM is not usable here: cannot open /nonexistent/kvm",
        ),
        (vec!["--dirty-log-mode", "sometimes"], "sometimes"),
        (vec!["--guest-cpl", "1"], "--guest-cpl"),
    ] {
        let mut all = vec!["calibrate", "--out", d];
        all.extend(&args);
        let out = lab(&all);
        let stderr = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line, got {stderr}"
        );
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(
        result_files(dir.path()).is_empty(),
        "no result for a refused run"
    );
}

/// The counts of `name` in a statistics scope (`{"vm": .., "vcpus": ..}`).
fn count(scope: &Value, name: &str) -> u64 {
    ["vm", "vcpus"]
        .iter()
        .filter_map(|s| scope[s]["counts"][name].as_u64())
        .sum()
}

#[test]
fn kvms_own_statistics_are_read_and_exits_grow() {
    require_kvm!();
    let r = &small_run().json;
    let ks = &r["kvm_stats"];
    if let Some(why) = ks.get("unavailable") {
        eprintln!("skipping: this kernel gives no KVM statistics: {why}");
        return;
    }
    let names = |k: &str| -> Vec<String> {
        ks[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    };
    let (vm, vcpu) = (names("vm_stats"), names("vcpu_stats"));
    assert!(vm.iter().any(|n| n == "pages_4k"), "VM statistics: {vm:?}");
    for want in ["exits", "pf_fixed", "pf_taken"] {
        assert!(
            vcpu.iter().any(|n| n == want),
            "vCPU statistics lack {want}: {vcpu:?}"
        );
    }
    let phases = ks["phases"].as_array().unwrap();
    let order: Vec<_> = phases
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "populate",
            "live_nolog",
            "enable_dirty_log",
            "iterations",
            "quiescent_round",
            "live_dirty_log",
            "disable_dirty_log"
        ]
    );
    // Every pass ends with an `out` that exits to the host: exits grow by
    // at least one per pass, in every phase that ran passes and overall.
    let exits: u64 = phases.iter().map(|p| count(p, "exits")).sum();
    let passes = r["counters"]["passes"].as_u64().unwrap();
    assert!(exits >= passes, "{exits} exits for {passes} passes");
    assert!(
        count(&phases[0], "exits") >= 2,
        "populate: one pass per vCPU"
    );
    for (k, it) in r["per_iteration"].as_array().unwrap().iter().enumerate() {
        let s = &it["kvm_stats"];
        assert!(count(&s["pass"], "exits") >= 2, "iteration {k}: {s}");
        assert!(s["round"]["vm"]["levels"]["pages_4k"]["before"].is_u64());
    }
    // The statement of what the write-protect figure measured.
    let wp = &r["write_protect"];
    let measured = wp["measured"].as_str().unwrap();
    assert!(
        ["rmap-walk", "partial", "bitmap-only"].contains(&measured),
        "{measured}"
    );
    assert!(!wp["statement"].as_str().unwrap().is_empty());
    if measured == "rmap-walk" {
        assert!(wp["sptes_4k_min"].as_u64().unwrap() >= 1024, "{wp}");
    }
}

#[test]
fn on_kvm_pvm_only_a_user_mode_guest_gets_sptes() {
    require_kvm!();
    if !Path::new("/sys/module/kvm_pvm").exists() {
        eprintln!("skipping: not a kvm_pvm host (both privileges get sptes elsewhere)");
        return;
    }
    if small_run().json["kvm_stats"].get("unavailable").is_some() {
        eprintln!("skipping: this kernel gives no KVM statistics");
        return;
    }
    // The default, CPL 3: every dirty page had an spte, and the pass after
    // each round faulted on every page (the round really write-protected).
    let user = &small_run().json["write_protect"];
    assert_eq!(user["measured"], "rmap-walk", "{user}");
    assert!(
        user["refaults_per_page"].as_f64().unwrap() >= 0.99,
        "{user}"
    );
    // CPL 0, as dirty_log_perf_test's guest: emulated, no spte at all.
    let dir = tempfile::tempdir().unwrap();
    let out = tiny_run(&["--guest-cpl", "0", "--json"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["config"]["guest_cpl"], 0);
    let kernel = &r["write_protect"];
    assert_eq!(kernel["measured"], "bitmap-only", "{kernel}");
    // The guest loop is 4 instructions a page, each emulated.
    assert!(
        kernel["emulated_insns_per_page"].as_f64().unwrap() >= 4.0,
        "{kernel}"
    );
    assert_eq!(kernel["sptes_4k_max"], 0);
    assert!(
        r["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("bitmap handling, not rmap walks")),
        "{}",
        r["warnings"]
    );
}
