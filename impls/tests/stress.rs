//! Concurrent stress test of the sentence in the `Rmap` trait doc: every spte
//! that is present, and in the rmap, for the whole duration of a walk is
//! visited at least once; for `write_protect`, its W bit was clear at some
//! instant between that visit and the walk's return.
//!
//! # How a walker knows what was present for the whole walk
//!
//! Every spte slot has a *generation* counter: even while the spte is absent,
//! odd while it is present and in its rmap. Each gfn is owned by one writer
//! thread, so every generation has a single writer, which bumps it
//!
//! * to odd *after* `map` returned (the spte is installed and in the rmap),
//! * to even *before* it calls `unmap`, or `zap` on a range holding the slot.
//!
//! A walker reads the generation of every slot of its gfn (SeqCst) before the
//! walk and again after it. A slot whose generation is odd and unchanged was
//! present, and in the rmap, from before the walk began to after it ended:
//! the walk must have visited it. The argument: the odd store follows the map
//! in program order and the walker's first load reads it, so the map happened
//! before the walk. If the walk observed any store of a later `unmap` (they
//! are Release, the walks' loads Acquire, and `SpteTable::clear` is Release
//! for the walker's final read of the spte), the even store that precedes it
//! in the writer happened before the walker's second load, which therefore
//! cannot read the old odd value. The check never blames a walk for an spte
//! that came or went during it.
//!
//! # How a walker decides the W half
//!
//! A fast page fault may set W again at any time, legally. So every slot also
//! has a *fast-fault generation*, odd while the writer's fast fault on it is
//! in flight: bumped before `SpteTable::fast_fault_fix` and after it. The
//! walker reads it with the other generation, and reads the spte itself
//! (SeqCst) after the walk and before its second reads. If the fast-fault
//! generation was even and unchanged, no fast fault set W between the walk's
//! start and that read (the fix is Release, so a read of the W it set also
//! reads the bump before it), and nothing else sets W: "clear at some
//! instant between the visit and the return" is then exactly "clear at that
//! read". Otherwise a fault may have set W after the visit, and the walker
//! cannot tell: it checks only what it can decide, and never blames a correct
//! walk.
//!
//! # Shape of the stress
//!
//! Few gfns, `desc_ext` 2 and a pool of 2 descriptors per page, so that the
//! writers move descriptors between rmaps through the pool all the time and
//! reuse is immediate (last freed, first allocated). Writers map, unmap, zap
//! small gfn ranges and fast-fault; the low aliases of every gfn are
//! *stable* (changed only rarely, or never in the bug-hunting shapes), so
//! that an rmap keeps long-lived sptes (the ones a walker can be blamed for)
//! while the other aliases churn around them, shrink the rmap to its
//! single-spte form and grow it again. Walkers alternate `walk` and
//! `write_protect` on random gfns. A run is a series of short rounds, each
//! from empty rmaps with fresh threads; after each round the rmaps must
//! match the generations exactly, and once everything is zapped the pool
//! must have no descriptor in use.
//!
//! # The tests
//!
//! * Every correct design (all but `lockless`) at 2 threads (one writer, one
//!   walker, a spinning `mmu_lock`) and 4 threads (two of each, a parking
//!   `mmu_lock`), for a fixed number of walks: no violation.
//! * Every walker bug, injected into a design that is otherwise correct
//!   (`lockless-gen`, or `seqlock` for `seq-no-retry`), run until the first
//!   violation, with a cap on walks (not on time) of at least 20 times the
//!   worst mean walks-to-detection measured on the 2-core development
//!   machine (see the tests): the test expects the violation. Each bug runs
//!   in the shape that exposes its window fastest ([`bug_params`]).
//! * `seq-no-retry` in `lockless-gen`, which is the faithful `lockless` flaw
//!   again, is `#[ignore]`d: stress on 2 cores does not find it (see there).
//! * `measure_detection` (ignored) runs each bug, and the faithful
//!   `lockless` flaw, many times and prints walks and time to detection:
//!   `cargo test --release -p rmap-impls --test stress -- --ignored
//!   --nocapture measure_detection`. `STRESS_TRIALS`, `STRESS_CAP` (walks),
//!   `STRESS_ONLY` (a design or bug name), `STRESS_VERBOSE` and the shape
//!   overrides of [`Params::with_env_overrides`] tune it; `STRESS_SEED` replays the
//!   writers' and walkers' random choices (not the thread schedule).
//!
//! The loom models in `tests/loom.rs` are the deterministic proof for the
//! walker bugs; this test shows the same bugs surface on real hardware, with
//! real memory ordering and preemption, and that the correct designs hold up
//! there. Stress tests in this file run one at a time (they would otherwise
//! compete for the two cores of the machine and change each other's rates).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rmap_impls::spte::{is_present, is_writable, make_spte, SPTE_WRITABLE};
use rmap_impls::{
    build_with, Bug, ImplKind, LockKind, MapOutcome, NoObserver, Perturb, PerturbPoint,
    RestartReason, Rmap, RmapConfig, SpteTable, WalkStats,
};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One stress configuration.
#[derive(Clone, Copy, Debug)]
struct Params {
    kind: ImplKind,
    bug: Option<Bug>,
    lock: LockKind,
    writers: usize,
    walkers: usize,
    /// gfns owned by each writer.
    gfns_per_writer: u64,
    /// Sptes per gfn (chain length when all are present).
    aliases: u32,
    /// Aliases `0..stable` are unmapped or fast-faulted only once in
    /// `stable_rarity` picks (never when it is 0; a zap still clears them).
    stable: u32,
    stable_rarity: u32,
    /// Zaps per 1000 writer operations.
    zap_per_mille: u32,
    desc_ext: usize,
    page_descs: usize,
    /// Spin-loop hints per spte a `walk` visits: the work a real walker does
    /// per spte, which widens the window between two descriptors.
    walk_work: u32,
    /// A `walk` gives up its CPU (`yield_now`) at a visited spte with
    /// probability 1 / `walk_yield` (never when 0): on a loaded machine the
    /// walker and a writer share a core as often as not, and the writer then
    /// runs a whole time slice between two descriptors of the walk.
    walk_yield: u32,
    /// Walks per round. Every round starts from empty rmaps with fresh
    /// threads and seeds; races are most frequent in a round's first
    /// milliseconds (fresh threads run side by side on the two cores, the
    /// rmaps grow from nothing), so short rounds find most bugs sooner.
    round_walks: u64,
    /// The rmap's perturbation points in a walker (`PerturbPoint::WalkInDesc`
    /// and `WalkBetweenDescs`) yield the CPU with probability 1 /
    /// `perturb_yield` (never when 0): a writer then runs inside the
    /// walker's window whether or not a second core is free, so the walks a
    /// bug takes to show hardly depend on the machine's load.
    perturb_yield: u32,
}

impl Params {
    /// The default shape: few gfns, `desc_ext` 2, a tiny pool.
    fn new(kind: ImplKind, bug: Option<Bug>, writers: usize, walkers: usize) -> Self {
        Params {
            kind,
            bug,
            lock: if writers + walkers > 2 {
                LockKind::Park
            } else {
                LockKind::Spin
            },
            writers,
            walkers,
            gfns_per_writer: 2,
            aliases: 6,
            stable: 2,
            stable_rarity: 64,
            zap_per_mille: 10,
            desc_ext: 2,
            page_descs: 2,
            walk_work: 0,
            walk_yield: 0,
            round_walks: 20_000,
            perturb_yield: 0,
        }
    }

    /// `STRESS_*` environment overrides, for `measure_detection`.
    fn with_env_overrides(mut self) -> Self {
        for (var, field) in [
            ("STRESS_WORK", &mut self.walk_work as &mut dyn SetFrom),
            ("STRESS_EXT", &mut self.desc_ext),
            ("STRESS_ALIASES", &mut self.aliases),
            ("STRESS_STABLE", &mut self.stable),
            ("STRESS_RARITY", &mut self.stable_rarity),
            ("STRESS_ZAP", &mut self.zap_per_mille),
            ("STRESS_GFNS", &mut self.gfns_per_writer),
            ("STRESS_WRITERS", &mut self.writers),
            ("STRESS_YIELD", &mut self.walk_yield),
            ("STRESS_ROUND", &mut self.round_walks),
            ("STRESS_WALKERS", &mut self.walkers),
            ("STRESS_PERTURB", &mut self.perturb_yield),
        ] {
            if let Some(v) = std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok()) {
                field.set_from(v);
            }
        }
        self.lock = Params::new(self.kind, None, self.writers, self.walkers).lock;
        self
    }

    fn gfns(&self) -> u64 {
        self.gfns_per_writer * self.writers as u64
    }

    fn name(&self) -> String {
        match self.bug {
            Some(b) => format!("{} with bug {}", self.kind, b),
            None => self.kind.to_string(),
        }
    }
}

/// A numeric parameter an environment variable may override.
trait SetFrom {
    fn set_from(&mut self, v: u64);
}

macro_rules! set_from {
    ($($t:ty),*) => {
        $(impl SetFrom for $t {
            fn set_from(&mut self, v: u64) {
                *self = v as $t;
            }
        })*
    };
}

set_from!(u32, u64, usize);

struct Shared {
    p: Params,
    r: Box<dyn Rmap>,
    sptes: SpteTable,
    /// Per spte slot: even = absent, odd = present and in the rmap.
    gens: Box<[AtomicU64]>,
    /// Per spte slot: odd while a fast fault on it is in flight.
    fast: Box<[AtomicU64]>,
    stop: AtomicBool,
    stop_at_violation: bool,
    violation: Mutex<Option<String>>,
    writes: AtomicU64,
    checked: AtomicU64,
}

/// What one stress run saw.
#[derive(Debug)]
struct Outcome {
    walks: u64,
    /// Writer operations (map, unmap, zap, fast fault) done meanwhile.
    writes: u64,
    /// sptes a walk was checked against (present for its whole duration).
    checked: u64,
    elapsed: Duration,
    /// Restarts by reason, indexed like `RestartReason::ALL`.
    restarts: [u64; RestartReason::COUNT],
    violation: Option<String>,
}

/// Stress tests run one at a time (see the module doc).
static SERIAL: Mutex<()> = Mutex::new(());

thread_local! {
    /// A walker thread's generator for [`YieldInWalks`] (xorshift64).
    static PERTURB_RNG: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
}

/// The perturbation hook of the bug-hunting shapes: a yield at a walker's
/// perturbation points, with probability 1 / `.0`.
struct YieldInWalks(u64);

impl Perturb for YieldInWalks {
    fn at(&self, point: PerturbPoint) {
        if !matches!(
            point,
            PerturbPoint::WalkInDesc | PerturbPoint::WalkBetweenDescs
        ) {
            return;
        }
        let roll = PERTURB_RNG.with(|r| {
            let mut x = r.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            r.set(x);
            x
        });
        if roll.is_multiple_of(self.0) {
            std::thread::yield_now();
        }
    }
}

fn seed() -> u64 {
    std::env::var("STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

/// Run `p` in rounds until the walkers have done `max_walks` walks between
/// them, or (with `stop_at_violation`) until the first violation.
fn run(p: Params, max_walks: u64, stop_at_violation: bool) -> Outcome {
    let seed = seed();
    let mut total = Outcome {
        walks: 0,
        writes: 0,
        checked: 0,
        elapsed: Duration::ZERO,
        restarts: [0; RestartReason::COUNT],
        violation: None,
    };
    let mut round = 0u64;
    while total.walks < max_walks {
        let walks = p.round_walks.min(max_walks - total.walks);
        let round_seed = seed.wrapping_add(round.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let out = run_round(p, walks, stop_at_violation, round_seed);
        total.walks += out.walks;
        total.writes += out.writes;
        total.checked += out.checked;
        total.elapsed += out.elapsed;
        total
            .restarts
            .iter_mut()
            .zip(out.restarts)
            .for_each(|(a, b)| *a += b);
        round += 1;
        if let Some(v) = out.violation {
            total.violation = Some(format!("{v} (round {round}, STRESS_SEED={seed})"));
            if stop_at_violation {
                break;
            }
        }
    }
    total
}

fn counters(n: u64) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// One round: fresh rmaps and threads, `walks` walks between the walkers.
fn run_round(p: Params, walks: u64, stop_at_violation: bool, seed: u64) -> Outcome {
    let cfg = RmapConfig {
        gfns: p.gfns(),
        desc_ext: p.desc_ext,
        mmu_lock: p.lock,
        page_descs: p.page_descs,
        chain: None,
    };
    let sh = Shared {
        p,
        r: build_with(
            p.kind,
            &cfg,
            p.bug,
            (p.perturb_yield > 0)
                .then(|| Arc::new(YieldInWalks(p.perturb_yield as u64)) as Arc<dyn Perturb>),
        )
        .expect("stress configuration builds"),
        sptes: SpteTable::new(p.gfns(), p.aliases),
        gens: counters(p.gfns() * p.aliases as u64),
        fast: counters(p.gfns() * p.aliases as u64),
        stop: AtomicBool::new(false),
        stop_at_violation,
        violation: Mutex::new(None),
        writes: AtomicU64::new(0),
        checked: AtomicU64::new(0),
    };
    let per_walker = walks.div_ceil(p.walkers as u64);
    let start = Instant::now();
    let (walks, restarts) = std::thread::scope(|s| {
        let sh = &sh;
        for w in 0..p.writers {
            s.spawn(move || writer(sh, w, seed ^ (w as u64 + 1) << 32));
        }
        let walkers: Vec<_> = (0..p.walkers)
            .map(|w| s.spawn(move || walker(sh, per_walker, seed ^ (w as u64 + 101) << 32)))
            .collect();
        let mut total = (0, WalkStats::default());
        for h in walkers {
            let (walks, st) = h.join().unwrap();
            total.0 += walks;
            total.1.add(&st);
        }
        sh.stop.store(true, SeqCst);
        total
    });
    let elapsed = start.elapsed();
    let violation = sh.violation.lock().unwrap().take();
    if violation.is_none() {
        // Quiescent: every rmap holds exactly the present sptes, and once
        // everything is zapped no descriptor is left in use.
        let mut present = 0;
        for gfn in 0..p.gfns() {
            let mut seen = Vec::new();
            sh.r.walk(gfn, &mut |s| seen.push(s));
            seen.sort_unstable();
            let expect: Vec<_> = (0..p.aliases)
                .map(|a| sh.sptes.slot_id(a, gfn))
                .filter(|&s| sh.gens[s].load(SeqCst) % 2 == 1)
                .collect();
            assert_eq!(seen, expect, "{}: quiescent rmap of gfn {gfn}", p.name());
            present += expect.len() as u64;
        }
        let zapped = sh.r.zap(&sh.sptes, 0..p.gfns(), &mut NoObserver);
        assert_eq!(zapped, present, "{}: final zap", p.name());
        assert_eq!(sh.r.descs_in_use(), 0, "{}: descriptors leaked", p.name());
    }
    Outcome {
        walks,
        writes: sh.writes.load(SeqCst),
        checked: sh.checked.load(SeqCst),
        elapsed,
        restarts: restarts.restarts,
        violation,
    }
}

/// Map, unmap, zap and fast-fault the gfns this writer owns, until told to
/// stop; keep every slot's generation in step (module doc).
fn writer(sh: &Shared, w: usize, seed: u64) {
    let p = &sh.p;
    let mut rng = SmallRng::seed_from_u64(seed);
    let first = w as u64 * p.gfns_per_writer;
    let own = first..first + p.gfns_per_writer;
    let t = &sh.sptes;
    let bump = |slot: usize| sh.gens[slot].fetch_add(1, SeqCst) + 1;
    let present = |slot: usize| sh.gens[slot].load(SeqCst) % 2 == 1;
    let mut writes = 0;
    while !sh.stop.load(SeqCst) {
        writes += 1;
        let gfn = rng.gen_range(own.clone());
        let alias = rng.gen_range(0..p.aliases);
        let slot = t.slot_id(alias, gfn);
        let roll = rng.gen_range(0..1000u32);
        if roll < p.zap_per_mille {
            // Zap a sub-range of our own gfns.
            let a = rng.gen_range(own.clone());
            let b = rng.gen_range(a..=own.end);
            let mut expect = 0;
            for g in a..b {
                for al in 0..p.aliases {
                    let s = t.slot_id(al, g);
                    if present(s) {
                        bump(s);
                        expect += 1;
                    }
                }
            }
            let got = sh.r.zap(t, a..b, &mut NoObserver);
            assert_eq!(got, expect, "{}: zap of {a}..{b}", p.name());
        } else if !present(slot) {
            let out =
                sh.r.map(t, gfn, slot, make_spte(gfn, true), &mut NoObserver);
            assert_eq!(out, MapOutcome::Mapped, "{}: map of our own slot", p.name());
            bump(slot);
        } else if alias < p.stable
            && (p.stable_rarity == 0 || rng.gen_range(0..p.stable_rarity) != 0)
        {
            // A stable spte stays as it is, fast faults included: a walk
            // can only be blamed for sptes whose generations did not move.
        } else if roll < 200 {
            // Fast page fault: W back on a write-protected spte.
            let seen = t.load(slot);
            if seen & SPTE_WRITABLE == 0 {
                sh.fast[slot].fetch_add(1, SeqCst);
                assert!(t.fast_fault_fix(slot, seen), "only walkers race us");
                sh.fast[slot].fetch_add(1, SeqCst);
            }
        } else {
            bump(slot);
            assert!(sh.r.unmap(t, gfn, slot, &mut NoObserver), "{}", p.name());
        }
    }
    sh.writes.fetch_add(writes, SeqCst);
}

/// Walk random gfns and check the guarantee; returns the walks done and
/// their restarts.
fn walker(sh: &Shared, walks: u64, seed: u64) -> (u64, WalkStats) {
    let p = &sh.p;
    let mut rng = SmallRng::seed_from_u64(seed);
    let t = &sh.sptes;
    let k = p.aliases as usize;
    // Per alias: (generation, fast-fault generation), before and after.
    let (mut g1, mut g2) = (vec![(0, 0); k], vec![(0, 0); k]);
    let read = |gfn, out: &mut [(u64, u64)]| {
        for (a, g) in out.iter_mut().enumerate() {
            let slot = t.slot_id(a as u32, gfn);
            *g = (sh.gens[slot].load(SeqCst), sh.fast[slot].load(SeqCst));
        }
    };
    let mut seen = vec![false; k];
    let mut spte = vec![0u64; k];
    let mut restarts = WalkStats::default();
    let mut done = 0;
    let mut checked = 0;
    while done < walks && !sh.stop.load(SeqCst) {
        let gfn = rng.gen_range(0..p.gfns());
        read(gfn, &mut g1);
        let wp = done % 2 == 1;
        let st = if wp {
            let st = sh.r.write_protect(t, &[gfn], &mut NoObserver);
            for (a, v) in spte.iter_mut().enumerate() {
                *v = t.slot(t.slot_id(a as u32, gfn)).load(SeqCst);
            }
            st
        } else {
            seen.fill(false);
            sh.r.walk(gfn, &mut |s| {
                if t.gfn_of(s) == gfn {
                    seen[s / p.gfns() as usize] = true;
                }
                for _ in 0..p.walk_work {
                    std::hint::spin_loop();
                }
                if p.walk_yield > 0 && rng.gen_range(0..p.walk_yield) == 0 {
                    std::thread::yield_now();
                }
            })
        };
        read(gfn, &mut g2);
        done += 1;
        restarts.add(&st);
        for a in 0..k {
            let ((gen1, fast1), (gen2, fast2)) = (g1[a], g2[a]);
            if gen1 % 2 == 0 || gen1 != gen2 {
                continue; // not present for the whole walk
            }
            if wp && (fast1 % 2 == 1 || fast1 != fast2) {
                continue; // a fast fault may have set W after the visit
            }
            checked += 1;
            let missed = if wp {
                !is_present(spte[a]) || is_writable(spte[a])
            } else {
                !seen[a]
            };
            if missed {
                let what = if wp {
                    format!("write_protect left spte {:#x}", spte[a])
                } else {
                    "walk did not visit it".to_string()
                };
                let mut v = sh.violation.lock().unwrap();
                if v.is_none() {
                    *v = Some(format!(
                        "{}: gfn {gfn} alias {a} present for the whole walk \
                         (generation {gen1}): {what}; walk stats {st:?}",
                        p.name(),
                    ));
                }
                if sh.stop_at_violation {
                    sh.stop.store(true, SeqCst);
                }
                break;
            }
        }
    }
    sh.checked.fetch_add(checked, SeqCst);
    (done, restarts)
}

/// "3 desc-seq, 1 foreign-nulls" for the restart counts by reason.
fn restarts(by_reason: &[u64; RestartReason::COUNT]) -> String {
    let parts: Vec<String> = RestartReason::ALL
        .iter()
        .zip(by_reason)
        .filter(|(_, &n)| n > 0)
        .map(|(r, n)| format!("{n} {}", r.name()))
        .collect();
    if parts.is_empty() {
        "no restarts".to_string()
    } else {
        parts.join(", ")
    }
}

/// A correct design must never break the guarantee.
fn expect_correct(kind: ImplKind) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The release-build size; debug builds run a tenth.
    let walks = if cfg!(debug_assertions) {
        200_000
    } else {
        2_000_000
    };
    for (writers, walkers) in [(1, 1), (2, 2)] {
        let p = Params::new(kind, None, writers, walkers);
        let out = run(p, walks, false);
        eprintln!(
            "{} {writers}w/{walkers}r: {} walks, {} checked sptes, {} writes, {} in {:?}",
            p.name(),
            out.walks,
            out.checked,
            out.writes,
            restarts(&out.restarts),
            out.elapsed,
        );
        assert_eq!(out.walks, walks.div_ceil(walkers as u64) * walkers as u64);
        if let Some(v) = out.violation {
            panic!("{v}");
        }
    }
}

/// An injected walker bug must break the guarantee within `cap` walks.
fn expect_violation(p: Params, cap: u64) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = run(p, cap, true);
    eprintln!(
        "{}: {:?} after {} walks ({:?})",
        p.name(),
        out.violation,
        out.walks,
        out.elapsed
    );
    assert!(
        out.violation.is_some(),
        "{}: no violation in {} walks (cap {cap})",
        p.name(),
        out.walks
    );
}

/// One test per correct design.
macro_rules! keeps_the_walk_guarantee {
    ($($name:ident: $kind:ident;)*) => {
        $(
            #[test]
            fn $name() {
                expect_correct(ImplKind::$kind);
            }
        )*
    };
}

keeps_the_walk_guarantee! {
    mmu_lock_keeps_the_walk_guarantee: MmuLock;
    lockless_gen_keeps_the_walk_guarantee: LocklessGen;
    seqlock_keeps_the_walk_guarantee: Seqlock;
    rmap_lock_keeps_the_walk_guarantee: RmapLock;
    concurrent_map_keeps_the_walk_guarantee: ConcurrentMap;
    lockless_6_4_keeps_the_walk_guarantee: Lockless64;
}

/// The shape that hunts one walker bug. The stable sptes are permanent (no
/// zap, never unmapped), so every walk has sptes it can be blamed for, and
/// each bug gets the window it needs. Every shape is perturbed: a walker
/// yields at one perturbation point in 20, so that a writer runs inside the
/// walker's window whether or not the machine has a core to spare (without
/// it, detection needed 10 to 270 times more walks on a loaded machine, and
/// two of these tests failed their caps at load average 10). The choices
/// come from `measure_detection` runs on the 2-core development machine
/// (walks to detection, release build, the machine shared with other
/// builds):
fn bug_params(bug: Bug, kind: ImplKind) -> Params {
    let two_by_two = |p: Params| Params {
        writers: 2,
        walkers: 2,
        lock: LockKind::Park,
        ..p
    };
    let mut p = Params::new(kind, Some(bug), 1, 1);
    p.stable_rarity = 0;
    p.zap_per_mille = 0;
    p.round_walks = 2_000;
    p.perturb_yield = 20;
    match bug {
        // The entry moves from the tail to a descriptor the walker passed:
        // the default shape finds it in a few rounds.
        Bug::FillFromTail => {}
        // The walker must sit between two descriptors while the one it goes
        // to next is emptied and reused by another rmap: work per spte and
        // the odd yield widen that window (without the yield, detection
        // took 100 times more walks whenever the machine was busy).
        Bug::NoNullsCheck => {
            p.walk_work = 10;
            p.walk_yield = 10;
        }
        // The race is inside one descriptor: make it long (`desc_ext` 14)
        // and let more threads than cores preempt the walker inside it.
        Bug::TopDownWalk => {
            p = two_by_two(p);
            p.desc_ext = 14;
            p.aliases = 14;
            p.stable = 0;
        }
        // A first restart is rare; work between descriptors and more threads
        // than cores make it likely that the stale head the walker restarts
        // from has meanwhile gone to another rmap. Long rounds: the walk
        // that gives up after 1000 restarts needs its stable sptes to stay.
        Bug::StaleHeadRestart => {
            p = two_by_two(p);
            p.walk_work = 10;
            p.round_walks = 100_000;
        }
        // The optimistic pass is one tight loop: more threads than cores
        // preempt the walker inside it.
        Bug::SeqNoRetry => p = two_by_two(p),
        Bug::DirtyBeforeRmap | Bug::SkipFlush => unreachable!("not a walker bug"),
        // Its race is with a fast fault, which the stress test's writers do
        // not take: the torture catches it (`rmap-workloads`).
        Bug::InstallBeforeAdd => unreachable!("not a walker bug"),
    }
    p
}

// Caps, in walks (never in time): at least 20 times the mean
// walks-to-detection and 10 times the largest single count measured with
// `measure_detection` (release build, perturbed as above, the 2-core
// development machine at load average 15 to 24 from other agents' builds),
// rounded up. For an exponential distribution, 20 times the mean is missed
// once in 500 million runs. A passing run stops at the first violation and
// takes a second or two; only a bug that is no longer caught runs to the
// cap.

/// One test per walker bug, in the design it is injected into, with its
/// cap in walks.
macro_rules! is_caught {
    ($($(#[$doc:meta])* $name:ident: $bug:ident in $kind:ident, cap $cap:expr;)*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                expect_violation(bug_params(Bug::$bug, ImplKind::$kind), $cap);
            }
        )*
    };
}

is_caught! {
    /// Mean 3 291 walks, largest 10 346 (unperturbed: mean 73 613).
    fill_from_tail_is_caught: FillFromTail in LocklessGen, cap 200_000;
    /// Mean 1 642 walks, largest 8 153 (unperturbed: 1 806).
    no_nulls_check_is_caught: NoNullsCheck in LocklessGen, cap 100_000;
    /// Mean 2 586 walks, largest 7 257 (unperturbed: 66 104).
    top_down_walk_is_caught: TopDownWalk in LocklessGen, cap 100_000;
    /// Mean 26 792 walks, largest 75 911 (unperturbed: 280 137).
    stale_head_restart_is_caught: StaleHeadRestart in LocklessGen, cap 1_000_000;
    /// Mean 280 walks, largest 2 029 (unperturbed: 76 444).
    seq_no_retry_is_caught_in_seqlock: SeqNoRetry in Seqlock, cap 50_000;
}

/// `seq-no-retry` in `lockless-gen` turns it back into `lockless`: the walker
/// keeps its nulls check and only loses the sequence count, so what remains
/// is the faithful flaw, whose window is one load wide (between the walker's
/// read of slot 0 and of `more`, five writer operations must happen). Not
/// seen by stress on 2 cores: no violation in 20 000 000 walks of this shape
/// or of 1 writer + 3 walkers, walk work 10, and none for
/// `lockless` itself. The loom model is the proof; this run stays for a
/// machine with more cores.
#[test]
#[ignore = "not caught by stress on 2 cores in 20M walks; see tests/loom.rs"]
fn seq_no_retry_is_caught_in_lockless_gen() {
    expect_violation(
        bug_params(Bug::SeqNoRetry, ImplKind::LocklessGen),
        20_000_000,
    );
}

/// Walks and time to the first violation, per bug and for the faithful
/// `lockless` flaw; prints a table, asserts nothing about time.
#[test]
#[ignore = "measurement, run by hand (see the module doc)"]
fn measure_detection() {
    let trials: usize = std::env::var("STRESS_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let cap: u64 = std::env::var("STRESS_CAP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000_000);
    let cases = [
        bug_params(Bug::FillFromTail, ImplKind::LocklessGen),
        bug_params(Bug::NoNullsCheck, ImplKind::LocklessGen),
        bug_params(Bug::TopDownWalk, ImplKind::LocklessGen),
        bug_params(Bug::StaleHeadRestart, ImplKind::LocklessGen),
        bug_params(Bug::SeqNoRetry, ImplKind::Seqlock),
        bug_params(Bug::SeqNoRetry, ImplKind::LocklessGen),
        Params {
            bug: None,
            ..bug_params(Bug::SeqNoRetry, ImplKind::Lockless)
        },
    ];
    let only = std::env::var("STRESS_ONLY").ok();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for p in cases {
        let p = p.with_env_overrides();
        // STRESS_ONLY: a design ("lockless"), a bug ("top-down-walk"), or
        // both ("seqlock with bug seq-no-retry").
        let picked = |o: &String| *o == p.name() || p.bug.is_some_and(|b| b.name() == o);
        if only.as_ref().is_some_and(|o| !picked(o)) {
            continue;
        }
        let (mut walks, mut max, mut time, mut found) = (0u64, 0u64, Duration::ZERO, 0);
        let mut why = [0u64; RestartReason::COUNT];
        for _ in 0..trials {
            let out = run(p, cap, true);
            if std::env::var_os("STRESS_VERBOSE").is_some() {
                eprintln!("  {} walks, {:?}", out.walks, out.elapsed);
            }
            why.iter_mut().zip(out.restarts).for_each(|(a, b)| *a += b);
            walks += out.walks;
            max = max.max(out.walks);
            time += out.elapsed;
            found += out.violation.is_some() as usize;
        }
        eprintln!(
            "{:40} detected {found}/{trials}, mean {:>8} walks (max {:>8}), mean {:?}, 20x mean {}; {}; {p:?}",
            p.name(),
            walks / trials as u64,
            max,
            time / trials as u32,
            20 * walks / trials as u64,
            restarts(&why),
        );
    }
}
