//! A run through the library API: which threads it starts and what they
//! are called, and which metrics its report names after which role.

use rmap_impls::{ImplKind, LockKind};
use rmap_workloads::{
    run, Config, Delay, Live, Perturbation, Probe, RoleKind, RunReport, SpanKind, WorkloadKind,
    METRIC_NAMES,
};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

/// Records each worker thread's role, index and OS thread name as it starts.
#[derive(Default)]
struct Threads(Mutex<Vec<(RoleKind, u32, String)>>);

impl Probe for Threads {
    fn thread_start(&self, role: RoleKind, index: u32) {
        let name = std::thread::current().name().unwrap_or("").to_string();
        self.0.lock().unwrap().push((role, index, name));
    }
}

/// A short run. `mmu_lock` parks, as `--mmu-lock auto` would choose with
/// more worker threads than a small test machine has CPUs: a spinning FIFO
/// lock hands over to waiters in arrival order, so on a loaded machine
/// every descheduled waiter stalls the queue for a time slice.
fn short(workload: WorkloadKind) -> Config {
    Config {
        impl_kind: ImplKind::MmuLock,
        mmu_lock: LockKind::Park,
        workload,
        vcpus: 2,
        mem_bytes: 64 * 4096,
        duration: Duration::from_millis(200),
        warmup: Duration::from_millis(20),
        zap_rate: 2_000.0,
        ..Config::default()
    }
}

fn run_with(cfg: &Config, probe: &Threads) -> RunReport {
    run(cfg, &AtomicBool::new(false), &Live::default(), probe).expect("a valid configuration")
}

fn names(probe: &Threads) -> Vec<String> {
    let mut v: Vec<String> = probe
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.2.clone())
        .collect();
    v.sort();
    v
}

/// The dirty-log thread has one name: its role is `Walker`, its OS thread
/// `walker`, its metrics `walker.*`.
#[test]
fn a_dirty_log_run_starts_vcpus_a_walker_and_a_zapper() {
    let probe = Threads::default();
    let r = run_with(&short(WorkloadKind::DirtyLog), &probe);
    assert_eq!(names(&probe), ["vcpu0", "vcpu1", "walker", "zapper"]);
    for (role, index, name) in probe.0.lock().unwrap().iter() {
        match role {
            RoleKind::Vcpu => assert_eq!(*name, format!("vcpu{index}")),
            r => assert_eq!((name.as_str(), *index), (r.name(), 0)),
        }
    }
    assert_eq!(r.threads, 4);
    assert!(
        r.verdict.ok() && r.verdict.rounds_checked > 0,
        "{:?}",
        r.verdict
    );
    assert!(r.counters.rounds > 0 && r.counters.zaps > 0 && r.counters.guest_writes > 0);

    let recorded: Vec<&str> = r.histograms.iter().map(|(n, _)| *n).collect();
    assert!(
        recorded.iter().all(|n| METRIC_NAMES.contains(n)),
        "{recorded:?}"
    );
    for m in [
        "vcpu.fault_slow",
        "walker.round",
        "walker.wp_gfn",
        "walker.tlb_flush",
        "zapper.zap",
        "mmu_lock.wait",
        "mmu_lock.hold",
    ] {
        assert!(recorded.contains(&m), "{m} missing from {recorded:?}");
    }
    for (name, _) in &r.histograms {
        let role = name.split('.').next().unwrap();
        assert!(
            role == "mmu_lock"
                || role == "rmap_lock"
                || RoleKind::ALL.iter().any(|r| r.name() == role),
            "{name} is named after a role"
        );
    }
}

/// Each lock's waits and holds are recorded per role, by exactly the
/// designs that take that lock in that role: `mmu_lock` by every writer of
/// every design but `concurrent-map` and by `mmu-lock`'s walker;
/// `rmap-lock`'s bit lock by every role of `rmap-lock` and nobody else. The
/// all-roles `mmu_lock.wait` and `mmu_lock.hold` are the sums of the roles'.
///
/// A metric that must be absent is checked in every run; one that must be
/// present needs its thread to have run during the measured phase, which a
/// loaded machine may delay, so a design whose run lacks one runs again,
/// longer (no timing is asserted).
#[test]
fn lock_metrics_are_per_role_and_only_where_the_lock_is_taken() {
    let roles = ["vcpu", "walker", "zapper"];
    for kind in ImplKind::ALL {
        let expected = |name: &str| {
            let role = name.rsplit('.').next().unwrap();
            match name.split('.').next().unwrap() {
                "mmu_lock" => {
                    kind != ImplKind::ConcurrentMap
                        && (role != "walker" || kind == ImplKind::MmuLock)
                }
                _ => kind == ImplKind::RmapLock,
            }
        };
        let names: Vec<String> = ["mmu_lock", "rmap_lock"]
            .iter()
            .flat_map(|lock| {
                ["wait", "hold"]
                    .iter()
                    .flat_map(move |what| roles.map(|role| format!("{lock}.{what}.{role}")))
            })
            .collect();
        let mut missing = Vec::new();
        for attempt in 0..4 {
            // `churn`: every role changes or walks the same few rmaps over
            // and over, so each thread takes each lock far more often than
            // the bit lock's sampling rate.
            let cfg = Config {
                impl_kind: kind,
                duration: Duration::from_millis(300 << (2 * attempt)),
                ..short(WorkloadKind::Churn)
            };
            let r = run_with(&cfg, &Threads::default());
            let count = |name: &str| {
                r.histograms
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, h)| h.len())
            };
            for n in names.iter().filter(|n| !expected(n)) {
                assert_eq!(count(n), None, "{kind} recorded {n}");
            }
            for what in ["wait", "hold"] {
                let merged = count(&format!("mmu_lock.{what}"));
                let by_role: u64 = roles
                    .iter()
                    .filter_map(|role| count(&format!("mmu_lock.{what}.{role}")))
                    .sum();
                assert_eq!(merged.unwrap_or(0), by_role, "{kind}: mmu_lock.{what}");
            }
            // The 2013 flush is under `mmu_lock` (the default): the walker's
            // hold of the round with the longest flush contains that flush.
            let max = |name: &str| {
                r.histograms
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, h)| h.max())
            };
            if let (ImplKind::MmuLock, Some(hold), Some(flush)) =
                (kind, max("mmu_lock.hold.walker"), max("walker.tlb_flush"))
            {
                assert!(hold >= flush, "the flush ran outside the walker's hold");
            }
            missing = names
                .iter()
                .filter(|n| expected(n) && count(n).is_none())
                .cloned()
                .collect();
            if missing.is_empty() {
                break;
            }
            eprintln!("{kind}: run {attempt} lacks {missing:?}; running longer");
        }
        assert!(missing.is_empty(), "{kind} never recorded {missing:?}");
    }
}

#[test]
fn an_idle_run_has_no_walker() {
    let probe = Threads::default();
    let r = run_with(&short(WorkloadKind::Idle), &probe);
    assert_eq!(names(&probe), ["vcpu0", "vcpu1", "zapper"]);
    assert_eq!(r.threads, 3);
    assert_eq!(r.verdict.rounds_checked, 0);
    assert_eq!(r.counters.rounds, 0);
    assert!(r.histograms.iter().all(|(n, _)| !n.starts_with("walker.")));
    assert_eq!(r.verdict.rmap_inconsistencies, 0);
}

/// What a run tells a tracing probe beyond its spans: counter samples by
/// name and `mmu_lock` handoffs.
struct Tracing {
    sample: Option<u32>,
    counters: Mutex<Vec<&'static str>>,
    handoffs: Mutex<Vec<(RoleKind, u32, rmap_workloads::LockHandoff)>>,
}

impl Tracing {
    fn new(sample: Option<u32>) -> Tracing {
        Tracing {
            sample,
            counters: Mutex::new(Vec::new()),
            handoffs: Mutex::new(Vec::new()),
        }
    }
}

impl Probe for Tracing {
    fn trace_sample(&self) -> Option<u32> {
        self.sample
    }
    /// A traced wait's span is reported as the lock is taken: stalling
    /// there lengthens every traced hold, so other threads queue behind it
    /// and handoffs happen whatever the scheduler does.
    fn span(
        &self,
        _role: RoleKind,
        _index: u32,
        kind: SpanKind,
        _start: u64,
        _dur: u64,
        _arg: u64,
    ) {
        if kind == SpanKind::LockWait {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    fn counter(&self, name: &'static str, _key: &'static str, _at_ns: u64, _value: f64) {
        self.counters.lock().unwrap().push(name);
    }
    fn lock_handoff(&self, role: RoleKind, index: u32, h: rmap_workloads::LockHandoff) {
        self.handoffs.lock().unwrap().push((role, index, h));
    }
}

/// The trace's counter tracks and lock handoffs come only when tracing,
/// and a handoff names another thread's hold that overlapped the wait.
#[test]
fn counters_and_handoffs_only_when_tracing() {
    let mut cfg = short(WorkloadKind::DirtyLog);
    cfg.vcpus = 4;
    let quiet = Tracing::new(None);
    run(&cfg, &AtomicBool::new(false), &Live::default(), &quiet).unwrap();
    assert!(quiet.counters.lock().unwrap().is_empty());
    assert!(quiet.handoffs.lock().unwrap().is_empty());

    let traced = Tracing::new(Some(1));
    run(&cfg, &AtomicBool::new(false), &Live::default(), &traced).unwrap();
    let counters = traced.counters.lock().unwrap();
    for name in ["guest writes", "mmu_lock waiters", "dirty pages"] {
        assert!(counters.contains(&name), "no {name} samples");
    }
    let handoffs = traced.handoffs.lock().unwrap();
    assert!(
        !handoffs.is_empty(),
        "mmu-lock at 4 vCPUs never handed over"
    );
    for (role, index, h) in handoffs.iter() {
        assert_ne!((*role, *index), (h.holder_role, h.holder_index), "{h:?}");
        assert!(h.wait_start_ns <= h.acquired_ns, "{h:?}");
        assert!(h.hold_start_ns <= h.acquired_ns, "{h:?}");
    }
}

fn count(r: &RunReport, metric: &str) -> u64 {
    r.histograms
        .iter()
        .find(|(n, _)| *n == metric)
        .map_or(0, |(_, h)| h.len())
}

/// Every histogram says its sampling step: the sampled ones theirs, the
/// others 1; every slow fault is timed, raced or not.
#[test]
fn every_histogram_has_its_sampling_step_and_every_slow_fault_is_timed() {
    let cfg = Config {
        vcpus: 4,
        mem_bytes: 8 * 4096,
        aliases: 1,
        zap_rate: 20_000.0,
        zap_gfns: 8,
        ..short(WorkloadKind::DirtyLog)
    };
    let r = run_with(&cfg, &Threads::default());
    assert_eq!(r.sample_every.len(), r.histograms.len());
    for ((name, _), (name2, every)) in r.histograms.iter().zip(&r.sample_every) {
        assert_eq!(name, name2);
        let want = match *name {
            "vcpu.write" => 64,
            "vcpu.fault_fast" => 16,
            _ => 1,
        };
        assert_eq!(*every, want, "{name}");
    }
    assert!(r
        .sample_every
        .iter()
        .any(|(n, e)| *n == "vcpu.write" && *e > 1));
    assert_eq!(count(&r, "vcpu.fault_slow"), r.counters.faults_slow);
    assert_eq!(count(&r, "vcpu.fault_slow_raced"), r.counters.faults_raced);
    assert!(r.counters.faults_slow > 0);
}

/// `vcpu.pass` holds one sample per pass, in every run (latency recording
/// off included), and a pass is `gfns / vcpus` accesses that went through.
#[test]
fn vcpu_pass_counts_every_pass() {
    for (workload, record_latency) in [
        (WorkloadKind::DirtyLog, true),
        (WorkloadKind::Idle, true),
        (WorkloadKind::DirtyLog, false),
    ] {
        let cfg = Config {
            record_latency,
            ..short(workload)
        };
        let r = run_with(&cfg, &Threads::default());
        let c = &r.counters;
        let passes = count(&r, "vcpu.pass");
        assert_eq!(passes, c.passes, "{workload} latency {record_latency}");
        let accesses = c.guest_writes / cfg.tlb_burst as u64 + c.guest_reads;
        let slice = cfg.pass_accesses();
        assert_eq!(slice, 32);
        // Each vCPU completes floor(its accesses / slice) passes.
        assert!(
            passes <= accesses / slice && passes + cfg.vcpus as u64 > accesses / slice,
            "{passes} passes for {accesses} accesses of slices of {slice}"
        );
        assert!(passes > 0);
        if !record_latency {
            let names: Vec<&str> = r.histograms.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, ["vcpu.pass"]);
        }
    }
}

/// The zapper is open loop: it never runs ahead of its schedule, and one
/// that cannot keep up (a zap of 4,096 gfns due every nanosecond, which no
/// machine can issue: a zap reads the clock, takes `mmu_lock` and flushes)
/// issues far fewer zaps than the schedule requested, most of them late,
/// and the zaps still due at the end count at their wait.
#[test]
fn the_zapper_counts_requested_issued_and_late_zaps() {
    let paced = run_with(&short(WorkloadKind::Idle), &Threads::default());
    let c = &paced.counters;
    assert!(c.zaps_requested > 0 && c.zaps > 0, "{c:?}");
    assert!(
        c.zaps <= c.zaps_requested + 1,
        "ran ahead of its schedule: {c:?}"
    );
    assert!(c.zaps_late <= c.zaps);

    let cfg = Config {
        mem_bytes: 16 << 20,
        zap_rate: 1e9,
        zap_gfns: 4096,
        ..short(WorkloadKind::Idle)
    };
    let slow = run_with(&cfg, &Threads::default());
    let c = &slow.counters;
    // About 1e9/s over the measured phase.
    let want = slow.measured.as_secs_f64() * cfg.zap_rate;
    assert!(
        (c.zaps_requested as f64) > 0.5 * want && (c.zaps_requested as f64) < 1.5 * want,
        "{} requested, {want} expected",
        c.zaps_requested
    );
    assert!(
        (c.zaps as f64) < 0.95 * c.zaps_requested as f64,
        "{} of {} issued",
        c.zaps,
        c.zaps_requested
    );
    assert!(c.zaps_late > 0 && c.zaps_late <= c.zaps, "{c:?}");
    // The backlog at the end counts at its wait so far: more samples than
    // zaps issued (at most 60,000 more), and the longest wait is most of the
    // measured phase, not one zap's time.
    let samples = count(&slow, "zapper.zap");
    assert!(
        samples > c.zaps && samples - c.zaps <= 60_000,
        "{samples} samples, {} zaps issued",
        c.zaps
    );
    let longest = slow
        .histograms
        .iter()
        .find(|(n, _)| *n == "zapper.zap")
        .map(|(_, h)| h.max())
        .unwrap();
    assert!(
        longest as f64 > 0.5 * slow.measured.as_nanos() as f64,
        "longest zap wait {longest} ns in a {:?} run",
        slow.measured
    );

    let churn = run_with(&short(WorkloadKind::Churn), &Threads::default());
    assert_eq!(churn.counters.zaps_requested, 0, "churn is not paced");
}
/// `aging` starts an aging thread instead of a walker; its passes clear the
/// Accessed bits the vCPUs set, and each pass visits every rmap once.
#[test]
fn an_aging_run_ages_what_the_vcpus_access() {
    for impl_kind in [ImplKind::MmuLock, ImplKind::RmapLock, ImplKind::Lockless64] {
        let probe = Threads::default();
        let cfg = Config {
            impl_kind,
            age_gfns: 16,
            ..short(WorkloadKind::Aging)
        };
        let r = run_with(&cfg, &probe);
        assert_eq!(names(&probe), ["aging", "vcpu0", "vcpu1", "zapper"]);
        assert_eq!(r.threads, 4);
        let c = &r.counters;
        assert_eq!((c.rounds, c.walk.walks), (0, 0), "no dirty logging");
        assert!(c.age_passes > 0, "{impl_kind}: no pass");
        assert!(c.age_passes_due >= c.age_passes);
        // A pass walks every rmap (64 gfns, in 4 ranges); the first pass may
        // have begun in warmup, the last be cut short by the end of the run.
        assert!(
            c.aging.walk.walks > 64 * (c.age_passes - 1)
                && c.aging.walk.walks < 64 * (c.age_passes + 1),
            "{impl_kind}: {} rmaps walked in {} passes",
            c.aging.walk.walks,
            c.age_passes
        );
        assert!(c.aging.young > 0 && c.aging.young <= c.aging.walk.visited);
        // vCPUs found Accessed cleared under them, and set it again.
        assert!(c.accessed_set > 0, "{impl_kind}: no access set Accessed");
        let recorded: Vec<&str> = r.histograms.iter().map(|(n, _)| *n).collect();
        for m in ["aging.pass", "aging.range"] {
            assert!(recorded.contains(&m), "{m} missing from {recorded:?}");
        }
        assert!(recorded.iter().all(|n| !n.starts_with("walker.")));
        assert_eq!(r.verdict.rmap_inconsistencies, 0);
    }
}

/// `min_rounds`: a run too short for one round (1 ms, where every walk
/// sleeps at each of its perturbation points, so a round of a memslot the
/// vCPUs dirtied takes tens of milliseconds) goes on until the oracle has
/// checked the rounds asked for, and its measured phase says so.
#[test]
fn a_run_goes_on_until_it_has_checked_min_rounds() {
    let cfg = Config {
        mem_bytes: 8 << 20,
        duration: Duration::from_millis(1),
        perturb: Some(Perturbation {
            rate: 1.0,
            writer_rate: 0.0,
            delay: Delay::Sleep,
            max: Duration::from_micros(100),
        }),
        min_rounds: 2,
        ..short(WorkloadKind::DirtyLog)
    };
    let r = run_with(&cfg, &Threads::default());
    assert!(r.verdict.rounds_checked >= 2, "{:?}", r.verdict);
    assert!(r.measured > cfg.duration, "{:?}", r.measured);
    assert!(r.verdict.ok(), "{:?}", r.verdict);
}
