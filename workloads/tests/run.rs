//! A run through the library API: which threads it starts and what they
//! are called, and which metrics its report names after which role.

use rmap_impls::ImplKind;
use rmap_workloads::{run, Config, Live, Probe, RoleKind, RunReport, WorkloadKind, METRIC_NAMES};
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

fn short(workload: WorkloadKind) -> Config {
    Config {
        impl_kind: ImplKind::MmuLock,
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
            role == "mmu_lock" || RoleKind::ALL.iter().any(|r| r.name() == role),
            "{name} is named after a role"
        );
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
