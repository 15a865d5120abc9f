//! The migration oracle, through the library API: it catches the two
//! workload-level injected bugs, and the same configurations without the
//! bug keep every write.
//!
//! Whether a run loses a write is up to the scheduler: `dirty-before-rmap`
//! needs a round to harvest and walk between a slow fault's mark and its
//! rmap add, `skip-flush` a vCPU still writing through a stale translation
//! after the round's copy. So a bug's test makes short runs, seeds 1, 2, ...,
//! until the oracle counts a lost write, and fails only if [`MAX_RUNS`] runs
//! in a row count none. On a loaded 2-core machine, with these tests running
//! side by side (30 searches per bug and design), one 250 ms run caught
//! `skip-flush` every time and `dirty-before-rmap` in 27% (`mmu-lock`) to
//! 44% (`lockless-gen`) of runs, with at most 11 misses in a row: 48 in a
//! row would happen in fewer than one test in a million.

use rmap_impls::{Bug, ImplKind, LockKind};
use rmap_workloads::{run, Config, Live, NoProbe, Verdict};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Runs a bug's test may make before it gives up.
const MAX_RUNS: u64 = 48;

/// A configuration that makes both workload bugs likely: a tiny memslot
/// (64 pages) with one address space, every access a write, frequent zaps
/// (slow faults), and the parking `mmu_lock` (what `lab check` takes when
/// threads outnumber CPUs, as they do here).
fn config(impl_kind: ImplKind, bug: Option<Bug>, seed: u64) -> Config {
    Config {
        impl_kind,
        bug,
        seed,
        vcpus: 2,
        mem_bytes: 64 * 4096,
        aliases: 1,
        write_pct: 100,
        zap_rate: 20_000.0,
        zap_gfns: 16,
        duration: Duration::from_millis(250),
        warmup: Duration::from_millis(20),
        mmu_lock: LockKind::Park,
        ..Config::default()
    }
}

fn verdict(cfg: &Config) -> Verdict {
    run(cfg, &AtomicBool::new(false), &Live::default(), &NoProbe)
        .expect("a valid configuration")
        .verdict
}

/// Runs `bug` on `kind` until the oracle counts a lost write; returns how
/// many runs that took.
fn runs_until_caught(kind: ImplKind, bug: Bug) -> u64 {
    for seed in 1..=MAX_RUNS {
        let v = verdict(&config(kind, Some(bug), seed));
        assert!(
            v.rounds_checked > 0,
            "{bug} on {kind}: the oracle checked rounds"
        );
        assert_eq!(
            v.rmap_inconsistencies, 0,
            "{bug} on {kind}: a workload bug leaves the rmaps consistent"
        );
        if v.lost_writes > 0 {
            assert!(!v.ok());
            assert!(!v.lost_write_gfns.is_empty() && v.lost_write_gfns.iter().all(|&g| g < 64));
            eprintln!("{bug} on {kind}: caught in run {seed}");
            return seed;
        }
    }
    panic!("{bug} on {kind}: no lost write in {MAX_RUNS} runs");
}

/// The designs the bugs are injected into: the 2013 locked walker, the
/// repaired lockless walker, and Linux 6.15's rmap lock.
const DESIGNS: [ImplKind; 3] = [ImplKind::MmuLock, ImplKind::LocklessGen, ImplKind::RmapLock];

#[test]
fn the_oracle_catches_dirty_before_rmap() {
    for kind in DESIGNS {
        runs_until_caught(kind, Bug::DirtyBeforeRmap);
    }
}

#[test]
fn the_oracle_catches_skip_flush() {
    for kind in DESIGNS {
        runs_until_caught(kind, Bug::SkipFlush);
    }
}

#[test]
fn without_the_bug_every_write_is_kept() {
    for kind in ImplKind::correct() {
        let v = verdict(&config(kind, None, 1));
        assert!(v.rounds_checked > 0, "{kind}: the oracle checked rounds");
        assert_eq!(
            v,
            Verdict {
                rounds_checked: v.rounds_checked,
                ..Verdict::default()
            },
            "{kind}"
        );
        assert!(v.ok());
    }
}
