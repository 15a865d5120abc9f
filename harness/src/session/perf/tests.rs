//! Tests of the perf session. They run on machines without a PMU (hardware
//! events not supported) and with one; no test asserts a time, only
//! orderings and counts of things the test itself caused.

use super::*;
use std::sync::mpsc;
use std::time::Duration;

/// Deterministic CPU work, `units` times the same amount.
fn busy(units: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..units * 2_000_000 {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    x
}

/// Run `f` on a new thread registered as `role`/`index` with `s`.
fn on_thread<F: FnOnce() + Send>(s: &PerfSession, role: RoleKind, index: u32, f: F) {
    std::thread::scope(|sc| {
        sc.spawn(|| {
            s.thread_start(role, index);
            f();
            s.thread_stop(role, index);
        });
    });
}

fn session(spec: &str) -> PerfSession {
    PerfSession::new(&spec.parse().unwrap()).unwrap()
}

fn value(r: &BTreeMap<String, BTreeMap<String, PerfValue>>, role: &str, ev: &str) -> f64 {
    r[role][ev]
        .value
        .unwrap_or_else(|| panic!("{role} {ev}: {:?}", r[role][ev]))
}

/// Whether sysfs shows a CPU PMU (x86 `cpu`, hybrid `cpu_core`, arm
/// `armv8_pmuv3_0`...).
fn machine_has_pmu() -> bool {
    std::fs::read_dir("/sys/bus/event_source/devices")
        .map(|d| {
            d.flatten().any(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("cpu") || n.starts_with("armv")
            })
        })
        .unwrap_or(false)
}

#[test]
fn unknown_event_is_an_error_naming_it_and_the_known_ones() {
    let e = "cycles,bogus-event".parse::<PerfSpec>().unwrap_err();
    assert!(e.contains("'bogus-event'"), "{e}");
    assert!(
        e.contains("task-clock") && e.contains("LLC-load-misses"),
        "{e}"
    );
    assert!(!e.contains('\n'));
    // A spec built by hand is checked too.
    let e = PerfSession::new(&PerfSpec::Events(vec!["nope".into()]))
        .err()
        .unwrap();
    assert!(e.contains("'nope'"));
    assert_eq!("off".parse::<PerfSpec>().unwrap(), PerfSpec::Off);
    assert_eq!("default".parse::<PerfSpec>().unwrap(), PerfSpec::Default);
    assert_eq!(
        "task-clock, page-faults,task-clock"
            .parse::<PerfSpec>()
            .unwrap(),
        PerfSpec::Events(vec!["task-clock".into(), "page-faults".into()])
    );
    assert!(",".parse::<PerfSpec>().is_err());
}

#[test]
fn off_probes_and_opens_nothing() {
    let s = PerfSession::new(&PerfSpec::Off).unwrap();
    assert!(s.probes().is_empty());
    assert!(s.layout.is_empty());
    let mut live_during = usize::MAX;
    on_thread(&s, RoleKind::Vcpu, 0, || {
        live_during = s.lock().live.len();
    });
    assert_eq!(live_during, 0, "no group was opened");
    assert!(s.lock().roles.is_empty());
    assert!(s.values(|_| 1).is_empty());
    assert!(s.snapshot().roles.is_empty());
}

#[test]
fn task_clock_grows_with_the_role_s_work() {
    let s = session("task-clock");
    on_thread(&s, RoleKind::Vcpu, 0, || {
        busy(1);
    });
    on_thread(&s, RoleKind::Walker, 0, || {
        busy(8);
    });
    let r = s.values(|_| 0);
    let (vcpu, walker) = (
        value(&r, "vcpu", "task-clock"),
        value(&r, "walker", "task-clock"),
    );
    assert!(vcpu > 0.0);
    assert!(walker > vcpu, "walker {walker} <= vcpu {vcpu}");
    assert!(!r.contains_key("zapper"), "the zapper never ran");
    // Software events are never multiplexed.
    let v = &r["walker"]["task-clock"];
    assert_eq!(v.time_enabled_ns, v.time_running_ns);
    assert!(v.time_enabled_ns > 0);
}

#[test]
fn threads_of_one_role_add_up() {
    let s = session("task-clock");
    on_thread(&s, RoleKind::Vcpu, 0, || {
        busy(2);
    });
    let one = value(&s.values(|_| 0), "vcpu", "task-clock");
    on_thread(&s, RoleKind::Vcpu, 1, || {
        busy(2);
    });
    let r = s.values(|_| 0);
    assert!(value(&r, "vcpu", "task-clock") > one);
    assert_eq!(s.lock().roles[&RoleKind::Vcpu].threads, 2);
}

#[test]
fn context_switches_are_counted_when_a_thread_sleeps() {
    const SLEEPS: u32 = 20;
    let s = session("context-switches,task-clock");
    on_thread(&s, RoleKind::Zapper, 0, || {
        for _ in 0..SLEEPS {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let r = s.values(|_| 0);
    let cs = &r["zapper"]["context-switches"];
    if s.probes()[0].supported {
        assert!(
            cs.value.unwrap() >= SLEEPS as f64,
            "{} context switches for {SLEEPS} sleeps",
            cs.value.unwrap()
        );
    } else {
        // Kernel counting forbidden to this user: said, not a silent 0.
        assert!(cs.reason.as_deref().unwrap().contains("kernel"));
    }
}

#[test]
fn the_results_agree_with_the_probe() {
    let s = session("default");
    let probes = s.probes();
    assert_eq!(probes.len(), events::KNOWN.len());
    for role in RoleKind::ALL {
        on_thread(&s, role, 0, || {
            busy(1);
        });
    }
    let r = s.values(|_| 10);
    assert_eq!(r.len(), RoleKind::ALL.len());
    for (role, evs) in &r {
        assert_eq!(evs.len(), probes.len(), "{role}: every requested event");
        for p in &probes {
            let v = &evs[&p.name];
            assert_eq!(v.supported, p.supported, "{role} {}", p.name);
            assert_eq!(v.value.is_some(), p.supported, "{role} {}", p.name);
            assert_eq!(v.per_op.is_some(), p.supported);
            if p.supported {
                assert!(v.reason.is_none());
                assert_eq!(v.per_op.unwrap(), v.value.unwrap() / 10.0);
            } else {
                assert!(!v.reason.as_deref().unwrap_or("").is_empty());
                assert_eq!(v.reason, p.reason);
            }
        }
        // task-clock is there wherever perf is.
        assert!(evs["task-clock"].value.unwrap() > 0.0);
    }
    if !machine_has_pmu() {
        for p in probes.iter().filter(|p| p.kind == EventKind::Hardware) {
            assert!(!p.supported, "{} supported without a PMU", p.name);
            assert!(
                p.reason.as_deref().unwrap().starts_with('E'),
                "{:?}",
                p.reason
            );
        }
        assert_eq!(s.hardware_layout(), "none");
        assert!(s.warnings()[0].starts_with("hardware counters not available"));
        // ... and says where cache misses come from instead.
        assert!(s.warnings()[0].contains("cargo bench -p rmap-impls --bench cost"));
    }
}

#[test]
fn per_op_divides_by_the_role_s_primary_operation() {
    let s = session("task-clock,page-faults");
    on_thread(&s, RoleKind::Vcpu, 0, || {
        busy(1);
    });
    on_thread(&s, RoleKind::Walker, 0, || {
        busy(1);
    });
    let mut counters = Counters {
        guest_writes: 4_000,
        zaps: 7,
        ..Counters::default()
    };
    counters.walk.walks = 0;
    let report = RunReport {
        config: Default::default(),
        interrupted: false,
        measured: Duration::from_secs(1),
        histograms: Vec::new(),
        sample_every: Vec::new(),
        counters,
        verdict: Default::default(),
        rounds: Vec::new(),
        online_cpus: 2,
        threads: 2,
        mmu_lock: rmap_impls::LockKind::Spin,
        clock_source: "test",
        clock: rmap_workloads::clock::info(),
        cpu_s: Vec::new(),
        intervals: Vec::new(),
        lock_holds_sampled: 0,
        lock_holder_preempted: 0,
        first_violation: None,
        stopped_at_violation: false,
        perturb_delays: 0,
    };
    let r = s.results(&report);
    let v = &r["vcpu"]["task-clock"];
    assert_eq!(v.per_op.unwrap(), v.value.unwrap() / 4_000.0);
    // No walks: no per-walk value rather than a division by zero.
    assert!(r["walker"]["task-clock"].per_op.is_none());
    assert!(r["walker"]["task-clock"].value.is_some());
}

#[test]
fn snapshots_read_live_threads_from_another_thread() {
    let s = session("task-clock");
    let (to_worker, from_main) = mpsc::channel::<()>();
    let (to_main, from_worker) = mpsc::channel::<()>();
    let s = &s;
    std::thread::scope(|sc| {
        sc.spawn(move || {
            s.thread_start(RoleKind::Walker, 0);
            busy(1);
            to_main.send(()).unwrap();
            from_main.recv().unwrap();
            busy(4);
            to_main.send(()).unwrap();
            from_main.recv().unwrap();
            s.thread_stop(RoleKind::Walker, 0);
            to_main.send(()).unwrap();
        });
        from_worker.recv().unwrap();
        let s1 = s.snapshot();
        to_worker.send(()).unwrap();
        from_worker.recv().unwrap();
        let s2 = s.snapshot();
        to_worker.send(()).unwrap();
        from_worker.recv().unwrap();
        let s3 = s.snapshot();
        let tc = |snap: &PerfSnapshot| snap.get(RoleKind::Walker, "task-clock").unwrap();
        assert!(tc(&s1).value > 0);
        assert!(
            tc(&s2).value > tc(&s1).value,
            "live group read while running"
        );
        assert!(
            tc(&s3).value >= tc(&s2).value,
            "a stopped thread still counts"
        );
        let d = s2.since(&s1);
        let d = d.get(RoleKind::Walker, "task-clock").unwrap();
        assert_eq!(d.value, tc(&s2).value - tc(&s1).value);
        assert!(d.scaled().unwrap() > 0.0);
    });
}

#[test]
fn begin_measured_drops_what_came_before() {
    let s = session("task-clock");
    let (to_worker, from_main) = mpsc::channel::<()>();
    let (to_main, from_worker) = mpsc::channel::<()>();
    let s = &s;
    let before = std::thread::scope(|sc| {
        // A thread that ended during warmup counts for nothing.
        on_thread(s, RoleKind::Zapper, 0, || {
            busy(1);
        });
        sc.spawn(move || {
            s.thread_start(RoleKind::Vcpu, 0);
            busy(8);
            to_main.send(()).unwrap();
            from_main.recv().unwrap();
            busy(1);
            s.thread_stop(RoleKind::Vcpu, 0);
        });
        from_worker.recv().unwrap();
        let before = s.snapshot();
        s.begin_measured();
        to_worker.send(()).unwrap();
        before
    });
    let r = s.values(|_| 0);
    let warm = before.get(RoleKind::Vcpu, "task-clock").unwrap().value as f64;
    assert!(value(&r, "vcpu", "task-clock") < warm);
    assert_eq!(value(&r, "zapper", "task-clock"), 0.0);
}

#[test]
fn scaling_follows_perf_stat() {
    let c = Counts {
        value: 100,
        enabled_ns: 200,
        running_ns: 50,
    };
    assert_eq!(c.scaled(), Some(400.0));
    let full = Counts {
        running_ns: 200,
        ..c
    };
    assert_eq!(full.scaled(), Some(100.0));
    let never = Counts { running_ns: 0, ..c };
    assert_eq!(never.scaled(), None, "not counted");
    assert_eq!(Counts::default().scaled(), Some(0.0));
    assert_eq!(
        c.since(&Counts {
            value: 40,
            enabled_ns: 100,
            running_ns: 50
        }),
        Counts {
            value: 60,
            enabled_ns: 100,
            running_ns: 0
        }
    );
}

/// A session whose probe says every event is supported (no syscalls), to
/// test the layout on machines without a PMU.
fn pretend_all_supported() -> Vec<SessionEvent> {
    events::KNOWN
        .iter()
        .map(|def| SessionEvent {
            def,
            probe: EventProbe {
                name: def.name.into(),
                kind: def.kind,
                supported: true,
                reason: None,
                user_only: false,
            },
        })
        .collect()
}

#[test]
fn groups_keep_software_apart_and_pair_hardware_when_needed() {
    let evs = pretend_all_supported();
    let names = |layout: Vec<Vec<usize>>| -> Vec<Vec<&str>> {
        layout
            .into_iter()
            .map(|g| g.into_iter().map(|i| evs[i].def.name).collect())
            .collect()
    };
    assert_eq!(
        names(plan_groups(&evs, true)),
        vec![
            vec![
                "task-clock",
                "context-switches",
                "cpu-migrations",
                "page-faults"
            ],
            vec![
                "cycles",
                "instructions",
                "cache-references",
                "cache-misses",
                "L1-dcache-load-misses",
                "LLC-load-misses"
            ],
        ]
    );
    assert_eq!(
        names(plan_groups(&evs, false))[1..],
        [
            vec!["cycles", "instructions"],
            vec!["cache-references", "cache-misses"],
            vec!["L1-dcache-load-misses", "LLC-load-misses"],
        ]
    );
}

#[test]
fn a_thread_that_cannot_open_is_reported_not_supported() {
    // Make the probe believe `cycles` is supported; on a machine without a
    // PMU the thread's open then fails, and that must show as a failure
    // with its reason, not a value. With a PMU it simply counts.
    let s = session("task-clock");
    let cycles = events::find("cycles").unwrap();
    let s = PerfSession {
        events: vec![
            SessionEvent {
                def: cycles,
                probe: EventProbe {
                    name: "cycles".into(),
                    kind: EventKind::Hardware,
                    supported: true,
                    reason: None,
                    user_only: events::probe(cycles).user_only,
                },
            },
            SessionEvent {
                def: s.events[0].def,
                probe: s.events[0].probe.clone(),
            },
        ],
        layout: vec![vec![0], vec![1]],
        hw_one_group: false,
        state: Mutex::new(State::default()),
    };
    on_thread(&s, RoleKind::Vcpu, 0, || {
        busy(1);
    });
    let r = s.values(|_| 0);
    assert!(
        r["vcpu"]["task-clock"].value.unwrap() > 0.0,
        "the rest still counts"
    );
    let c = &r["vcpu"]["cycles"];
    if events::probe(cycles).supported {
        assert!(c.supported);
    } else {
        assert!(!c.supported && c.value.is_none());
        let why = c.reason.as_deref().unwrap();
        assert!(why.starts_with("failed on 1 of 1 vcpu threads: E"), "{why}");
        assert!(s.warnings().iter().any(|w| w.contains("failed on 1 of 1")));
    }
}

/// Cost of opening, enabling and reading the default groups on one thread
/// (run with `--release --ignored --nocapture`).
#[test]
#[ignore]
fn cost_of_thread_start_and_stop() {
    let s = session("default");
    const N: u32 = 200;
    let mut start_ns = Vec::new();
    let mut stop_ns = Vec::new();
    let mut snap_ns = Vec::new();
    for i in 0..N {
        on_thread(&s, RoleKind::Vcpu, i, || {
            let t = std::time::Instant::now();
            s.thread_start(RoleKind::Vcpu, 1_000 + i);
            start_ns.push(t.elapsed().as_nanos() as u64);
            let t = std::time::Instant::now();
            let _ = s.snapshot();
            snap_ns.push(t.elapsed().as_nanos() as u64);
            let t = std::time::Instant::now();
            s.thread_stop(RoleKind::Vcpu, 1_000 + i);
            stop_ns.push(t.elapsed().as_nanos() as u64);
        });
    }
    for (name, v) in [
        ("thread_start", start_ns),
        ("snapshot (1 thread live)", snap_ns),
        ("thread_stop", stop_ns),
    ] {
        let mut v = v;
        v.sort();
        println!(
            "{name}: median {} ns, p90 {} ns over {N}",
            v[v.len() / 2],
            v[v.len() * 9 / 10]
        );
    }
    let t = std::time::Instant::now();
    let p = probe_all();
    println!(
        "probe_all: {} us ({} events)",
        t.elapsed().as_micros(),
        p.len()
    );
    let t = std::time::Instant::now();
    let _ = session("default");
    println!("PerfSession::new(default): {} us", t.elapsed().as_micros());
}
