//! `lab run --trace` end to end: the file opens as Chrome trace JSON, with
//! the counter tracks and the `mmu_lock` handoff arrows Perfetto draws, each
//! arrow bound inside the holder's hold and the waiter's wait.

mod common;

use common::{lab, stderr, stdout};
use serde_json::Value;
use std::collections::BTreeMap;

/// One traced run of `mmu-lock` at the default 256 MiB, whose rounds hold
/// `mmu_lock` for a whole harvest while vCPUs fault; how many waits meet a
/// hold depends on the scheduler, so up to three runs are taken to find one.
fn traced_run(dir: &std::path::Path) -> Value {
    let trace = dir.join("t.json");
    let mut last = Value::Null;
    for _ in 0..3 {
        let o = lab(&[
            "run",
            "--impl",
            "mmu-lock",
            "--vcpus",
            "4",
            "--duration",
            "400ms",
            "--warmup",
            "100ms",
            "--perf",
            "off",
            "--no-progress",
            "--trace-sample",
            "8",
            "--out",
            dir.to_str().unwrap(),
            "--trace",
            trace.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        // The summary names the file and says it is a sample.
        assert!(
            stdout(&o).contains("one operation in 8 of each kind"),
            "{}",
            stdout(&o)
        );
        last = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
        let o = &last["otherData"];
        if o["lock_handoffs"].as_u64() > o["lock_handoffs_unmatched"].as_u64() {
            break;
        }
    }
    last
}

#[test]
fn a_trace_has_counter_tracks_and_handoff_arrows_between_hold_and_wait() {
    let d = tempfile::tempdir().unwrap();
    let v = traced_run(d.path());
    let evs = v["traceEvents"].as_array().unwrap();
    let other = &v["otherData"];
    assert_eq!(other["sample_one_in"], 8);

    // Counter tracks: one value per sample, keyed by the unit.
    let mut tracks: BTreeMap<String, usize> = BTreeMap::new();
    for e in evs.iter().filter(|e| e["ph"] == "C") {
        let (key, val) = e["args"].as_object().unwrap().iter().next().unwrap();
        assert!(val.as_f64().unwrap() >= 0.0, "{e}");
        *tracks
            .entry(format!("{} {key}", e["name"].as_str().unwrap()))
            .or_default() += 1;
    }
    for t in [
        "guest writes per second",
        "mmu_lock waiters queued",
        "dirty pages per round",
    ] {
        assert!(
            tracks.get(t).is_some_and(|n| *n > 0),
            "no {t} track in {tracks:?}"
        );
    }

    // Arrows: every 's' lies in an "mmu_lock hold" of its thread and its 'f'
    // in an "mmu_lock wait" of another thread, no earlier. Times are whole
    // nanoseconds written as microseconds: compared as nanoseconds.
    let ns = |v: &Value| (v.as_f64().unwrap() * 1000.0).round() as u64;
    let slices = |tid: &Value, name: &str| -> Vec<(u64, u64)> {
        evs.iter()
            .filter(|e| e["ph"] == "X" && &e["tid"] == tid && e["name"] == name)
            .map(|e| (ns(&e["ts"]), ns(&e["ts"]) + ns(&e["dur"])))
            .collect()
    };
    let inside = |s: &[(u64, u64)], t: u64| s.iter().any(|(a, b)| *a <= t && t <= *b);
    let ends: BTreeMap<u64, &Value> = evs
        .iter()
        .filter(|e| e["ph"] == "f")
        .map(|e| (e["id"].as_u64().unwrap(), e))
        .collect();
    let starts: Vec<&Value> = evs.iter().filter(|e| e["ph"] == "s").collect();
    assert!(!starts.is_empty(), "no handoff arrow: {other}");
    assert_eq!(starts.len(), ends.len());
    for s in starts {
        let f = ends[&s["id"].as_u64().unwrap()];
        let (ts, tf) = (ns(&s["ts"]), ns(&f["ts"]));
        assert!(inside(&slices(&s["tid"], "mmu_lock hold"), ts), "{s}");
        assert!(inside(&slices(&f["tid"], "mmu_lock wait"), tf), "{f}");
        assert_ne!(s["tid"], f["tid"]);
        assert!(ts <= tf, "{s} {f}");
        assert_eq!(f["bp"], "e");
    }
    // Every handoff either has its arrow or is counted as unmatched.
    let handoffs = other["lock_handoffs"].as_u64().unwrap();
    let unmatched = other["lock_handoffs_unmatched"].as_u64().unwrap();
    assert_eq!(handoffs - unmatched, ends.len() as u64);
}
