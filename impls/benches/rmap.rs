//! Single-threaded, uncontended cost of each design's rmap operations: what
//! its synchronisation costs on the fast path, next to a floor.
//!
//! For every design, `desc_ext` 3 (KVM in 2013) and 14 (KVM since 6.4), and
//! chain lengths K = 1, 3, 14, 64 (sptes in one gfn's rmap, one per alias):
//!
//! * `add-extE/DESIGN/K`: a slow-fault `map` of the K-th spte onto an rmap
//!   that holds K - 1 (the newest alias);
//! * `remove-extE/DESIGN/K`: an `unmap` of that same newest spte from an
//!   rmap of K (the head-discipline designs find it in the head descriptor,
//!   the 2013 tail discipline of `mmu-lock` walks to the tail);
//! * `wp-walk-extE/DESIGN/K`: the dirty-log `write_protect` of one gfn whose
//!   K sptes all have W set, so that every spte costs one cmpxchg;
//! * `wp-walk-extE/floor/K`: the same call on the floor
//!   (`rmap_impls::floor::ArrayRmap`), an `Rmap` whose walk is a plain loop
//!   over an array of slot ids: the same fixture, the same `dyn Rmap` call,
//!   the same per-gfn loop with its `WalkStats` and observer call, the same
//!   cmpxchg per spte; no chain, no lock, no epoch pin. A design's time over
//!   the floor's is its rmap and its synchronisation;
//! * `epoch-pin/pin`: entering and leaving the epoch read section that
//!   `lockless`, `lockless-gen` and `seqlock` hold across each
//!   `write_protect` call (`crossbeam_epoch::pin`), on its own line.
//!
//! Each timed batch runs over 256 gfns, one operation per gfn, and the state
//! is put back *outside* the timed region: `add` is undone by an untimed
//! `unmap`, `remove` by an untimed `map`, and before every batch of walks
//! (and of floor loops alike) W is set again on every spte of the batch by
//! an untimed `fetch_or`. Both put every rmap back exactly as it was, so each
//! timed operation sees the same chain. `mmu_lock` is the spinning kind (a
//! ticket lock), and `write_protect` gets one gfn per call (so `mmu-lock`
//! takes its lock per gfn here, not per batch). Only `lockless-gen`'s pool
//! stores the descriptors' sequence counts (`desc.rs`), so its `add` over
//! `lockless`'s is the repair's whole price on the writer side, and its walk
//! over `lockless`'s the price on the walker side.
//!
//! The chain groups (`chain-add`, `chain-remove`, `chain-wp-walk`) put
//! Linux 6.4's chain beside the 2013 ones: every chain design over each
//! chain it has (`DESIGN@2013`, `DESIGN@6.4`), at KVM 6.4's `desc_ext` 14,
//! the same operations at the same K. (`lockless-6.4` is `lockless@6.4`.)
//!
//! Run: `cargo bench -p rmap-impls --bench rmap` (about 300 benchmarks, 1 s
//! of measurement each, no plots; a filter such as `-- wp-walk-ext14` or
//! `-- chain-` runs a subset). Read medians and ratios from one run, on a
//! quiet machine if you have one; criterion keeps each median in
//! `target/criterion/GROUP/NAME/K/new/estimates.json`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use rmap_impls::floor::ArrayRmap;
use rmap_impls::spte::{make_spte, SPTE_WRITABLE};
use rmap_impls::{
    build, ChainKind, Gfn, ImplKind, LockKind, MapOutcome, NoObserver, Rmap, RmapConfig, SpteTable,
};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Rmaps per timed batch.
const GFNS: u64 = 256;
const CHAINS: [u32; 4] = [1, 3, 14, 64];
const DESC_EXTS: [usize; 2] = [3, 14];

/// What a benchmark runs on: a design, or the floor.
#[derive(Clone, Copy)]
enum Subject {
    Floor,
    Design(ImplKind),
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Subject::Floor => "floor",
            Subject::Design(kind) => kind.name(),
        }
    }
}

/// A design (or the floor) with `GFNS` rmaps of `k` sptes each (aliases
/// `0..k`, mapped in order, W set), or of `k - 1` with `partial`.
struct Fixture {
    r: Box<dyn Rmap>,
    t: SpteTable,
    k: u32,
}

impl Fixture {
    fn new(subject: Subject, desc_ext: usize, k: u32, partial: bool) -> Self {
        Fixture::on(subject, None, desc_ext, k, partial)
    }

    /// Over chain discipline `chain` (`None`: the design's own; the floor
    /// has none).
    fn on(
        subject: Subject,
        chain: Option<ChainKind>,
        desc_ext: usize,
        k: u32,
        partial: bool,
    ) -> Self {
        let cfg = RmapConfig {
            chain,
            ..RmapConfig::new(GFNS, desc_ext, LockKind::Spin)
        };
        // The spte table first: with the rmap allocated first, `lockless`
        // `add` measured 1.8 times slower on the development machine, a
        // memory-layout artifact (the same code in `seqlock` did not move).
        // Differences of a few ns between designs are within such artifacts.
        let t = SpteTable::new(GFNS, k);
        let r: Box<dyn Rmap> = match subject {
            Subject::Floor => Box::new(ArrayRmap::new(GFNS, k as usize)),
            Subject::Design(kind) => {
                build(kind, &cfg, None).expect("benchmark configuration builds")
            }
        };
        let f = Fixture { r, t, k };
        let upto = if partial { k - 1 } else { k };
        for gfn in 0..GFNS {
            for alias in 0..upto {
                assert_eq!(f.map(alias, gfn), MapOutcome::Mapped);
            }
        }
        f
    }

    fn map(&self, alias: u32, gfn: Gfn) -> MapOutcome {
        let slot = self.t.slot_id(alias, gfn);
        self.r
            .map(&self.t, gfn, slot, make_spte(gfn, true), &mut NoObserver)
    }

    fn unmap(&self, alias: u32, gfn: Gfn) -> bool {
        let slot = self.t.slot_id(alias, gfn);
        self.r.unmap(&self.t, gfn, slot, &mut NoObserver)
    }

    /// Set W again on every spte of gfns `0..n` (untimed).
    fn restore_w(&self, n: u64) {
        for gfn in 0..n {
            for alias in 0..self.k {
                self.t
                    .slot(self.t.slot_id(alias, gfn))
                    .fetch_or(SPTE_WRITABLE, Ordering::Relaxed);
            }
        }
    }
}

/// Run `iters` timed operations in batches of up to `GFNS`: `prepare(n)`
/// and `undo(n)` are untimed, `timed(gfn)` is timed over the batch.
fn batched(
    iters: u64,
    mut prepare: impl FnMut(u64),
    mut timed: impl FnMut(Gfn),
    mut undo: impl FnMut(u64),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(GFNS);
        prepare(n);
        let start = Instant::now();
        for gfn in 0..n {
            timed(gfn);
        }
        total += start.elapsed();
        undo(n);
        left -= n;
    }
    total
}

fn add_remove(c: &mut Criterion) {
    let designs: Vec<(ImplKind, Option<ChainKind>)> =
        ImplKind::ALL.into_iter().map(|k| (k, None)).collect();
    for ext in DESC_EXTS {
        add_and_remove(
            c,
            (format!("add-ext{ext}"), format!("remove-ext{ext}")),
            ext,
            &designs,
        );
    }
}

/// The groups `add` and `remove` of `designs` (each over a chain, `None`:
/// its own) at `desc_ext` `ext`.
fn add_and_remove(
    c: &mut Criterion,
    (add, remove): (String, String),
    ext: usize,
    designs: &[(ImplKind, Option<ChainKind>)],
) {
    // The timed map of the newest spte is undone by an untimed unmap, and the
    // other way round; the asserts also prove that the timed operation did
    // its work.
    let newest = |f: &Fixture| f.k - 1;
    one_op(
        c,
        add,
        designs,
        (ext, true),
        |f, gfn| {
            black_box(f.map(newest(f), gfn));
        },
        |f, gfn| assert!(f.unmap(newest(f), gfn)),
    );
    one_op(
        c,
        remove,
        designs,
        (ext, false),
        |f, gfn| {
            black_box(f.unmap(newest(f), gfn));
        },
        |f, gfn| assert_eq!(f.map(newest(f), gfn), MapOutcome::Mapped),
    );
}

/// A design's benchmark id at chain length `k`: its name, and `@CHAIN` when
/// it runs over a chain named for it.
fn id(kind: ImplKind, chain: Option<ChainKind>, k: u32) -> BenchmarkId {
    match chain {
        None => BenchmarkId::new(kind.name(), k),
        Some(ch) => BenchmarkId::new(format!("{kind}@{ch}"), k),
    }
}

/// One benchmark group: for every design (over its chain) and chain length
/// K, a fixture of `desc_ext` `ext` (holding K - 1 sptes per gfn with
/// `partial`, else K), `timed` on each gfn of a batch and `undo` after the
/// batch, untimed.
fn one_op(
    c: &mut Criterion,
    group: String,
    designs: &[(ImplKind, Option<ChainKind>)],
    (ext, partial): (usize, bool),
    timed: impl Fn(&Fixture, Gfn),
    undo: impl Fn(&Fixture, Gfn),
) {
    let mut g = c.benchmark_group(group);
    for &(kind, chain) in designs {
        for k in CHAINS {
            let f = Fixture::on(Subject::Design(kind), chain, ext, k, partial);
            g.bench_with_input(id(kind, chain, k), &k, |b, _| {
                b.iter_custom(|iters| {
                    batched(
                        iters,
                        |_| {},
                        |gfn| timed(&f, gfn),
                        |n| (0..n).for_each(|gfn| undo(&f, gfn)),
                    )
                })
            });
        }
    }
    g.finish();
}

/// One write-protect benchmark of gfn after gfn of `f`, W set again
/// untimed before each batch; first an untimed check that the walk does
/// the same work in every design (one cmpxchg per spte).
fn bench_write_protect(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    f: &Fixture,
) {
    f.restore_w(1);
    let st = f.r.write_protect(&f.t, &[0], &mut NoObserver);
    assert_eq!(
        st.protected,
        f.k as u64,
        "{}: one cmpxchg per spte",
        f.r.name()
    );
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                |n| f.restore_w(n),
                |gfn| {
                    black_box(f.r.write_protect(&f.t, &[gfn], &mut NoObserver));
                },
                |_| {},
            )
        })
    });
}

fn write_protect(c: &mut Criterion) {
    // The floor first, then every design, at each K: one code path for all.
    let subjects =
        std::iter::once(Subject::Floor).chain(ImplKind::ALL.into_iter().map(Subject::Design));
    let subjects: Vec<Subject> = subjects.collect();
    for ext in DESC_EXTS {
        let mut g = c.benchmark_group(format!("wp-walk-ext{ext}"));
        for k in CHAINS {
            for &subject in &subjects {
                let f = Fixture::new(subject, ext, k, false);
                bench_write_protect(&mut g, BenchmarkId::new(subject.name(), k), &f);
            }
        }
        g.finish();
    }
}

/// The epoch pin the lockless walkers and `seqlock` take around each
/// `write_protect` call, alone.
fn epoch_pin(c: &mut Criterion) {
    let mut g = c.benchmark_group("epoch-pin");
    g.bench_function("pin", |b| {
        b.iter(|| drop(black_box(crossbeam_epoch::pin())))
    });
    g.finish();
}

/// Linux 6.4's chain beside the 2013 ones (module doc): add, remove and the
/// write-protect walk of every chain design over each chain it has, at
/// `desc_ext` 14, with the same fixtures and untimed undo as above.
fn chains(c: &mut Criterion) {
    const EXT: usize = 14;
    let pairs: Vec<(ImplKind, Option<ChainKind>)> = ImplKind::ALL
        .into_iter()
        .filter(|&k| k != ImplKind::Lockless64)
        .flat_map(|k| k.chains().iter().map(move |&ch| (k, Some(ch))))
        .collect();
    add_and_remove(c, ("chain-add".into(), "chain-remove".into()), EXT, &pairs);
    let mut g = c.benchmark_group("chain-wp-walk");
    for &(kind, chain) in &pairs {
        for k in CHAINS {
            let f = Fixture::on(Subject::Design(kind), chain, EXT, k, false);
            bench_write_protect(&mut g, id(kind, chain, k), &f);
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // Short runs, no plots: about 300 benchmarks in about ten minutes.
    config = Criterion::default()
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(20)
        .without_plots();
    targets = write_protect, epoch_pin, add_remove, chains
}
criterion_main!(benches);
