//! What one rmap operation costs, counted rather than timed: instructions,
//! simulated cache misses and the simulator's estimated cycles, under
//! valgrind's callgrind, driven by `gungraun`. The counts are the same on
//! every run of the same binary, whatever else the machine does: the
//! noise-free counterpart of the criterion benches in `rmap.rs`.
//!
//! Benchmarks are named `GROUP::DESIGN::eE_kK` (`desc_ext` E, K sptes in the
//! measured gfn's rmap, one per alias):
//!
//! * `walk`: the dirty-log `write_protect` of one gfn whose K sptes all have
//!   W set (one cmpxchg per spte); `walk::floor` is the same cmpxchg on the
//!   same K sptes, whose slot ids sit in a plain array of the same fixture;
//! * `add`: a slow-fault `map` of the K-th spte onto an rmap of K - 1 (the
//!   newest alias);
//! * `remove`: an `unmap` of that same newest spte from an rmap of K;
//! * `fixture::empty::cold`: the same fixture and call with no operation,
//!   the harness's own cost, which `cost-gate --table` subtracts.
//!
//! Every design and the floor run at E = 3 and 14 and K = 1, 3, 14, 64; the
//! descriptor-chain designs also walk at E = 1, 2, 7, 13, 28, 64 and K = 14,
//! 64 (what the descriptor layout costs). A new design is two lines at the
//! bottom of this file (one per group macro) and its name in two lists.
//!
//! # What one benchmark measures
//!
//! Exactly one operation: gungraun counts only inside the benchmark
//! function, and everything else is its setup, outside the count. The setup
//! builds the design, maps the sptes of every gfn alias by alias (as faults
//! interleave in a VM, so that one rmap's descriptors lie among the others'),
//! dry-runs the operation on the measured gfn and undoes it (`add` by an
//! `unmap`, `remove` by a `map`, a walk by setting W again: the rmap is as
//! before), then sets up the cache (below). The teardown checks that the
//! measured operation did its work (every spte protected, the spte mapped
//! or unmapped), so a benchmark cannot silently measure a no-op.
//!
//! **The cache: the gfn's lines cold, the VM's warm.** [`Fixture::go_cold`]
//! reads a buffer twice the size of the simulated last-level cache, which
//! evicts every line from both levels. It then brings back what a vCPU or
//! the dirty-log walker has at hand when it reaches one gfn among many: the
//! stack, the fixture's own words (the operation's arguments), and the
//! design's per-VM state (the `mmu_lock` word, the epoch, the descriptor
//! pool's free list, the design's struct, the code), by running the same
//! operation on another gfn and undoing it. So every miss counted is a line
//! of *this gfn's* rmap that the operation fetched from memory: its head,
//! its descriptors, its sptes (and, for `concurrent-map`, its shard). On
//! such a cache L1 and last-level misses coincide: either is the number of
//! distinct per-gfn lines the operation touches. Instruction counts do not
//! depend on the cache.
//!
//! **The cache model is fixed**, not the host's, so that results do not
//! depend on the machine: I1 and D1 32 KiB, 8-way, 64-byte lines; LL 8 MiB,
//! 16-way (callgrind's `--I1`, `--D1`, `--LL`). Estimated cycles are
//! callgrind's: Ir + 10 x L1 misses + 100 x LL misses.
//!
//! Run: `cargo bench -p rmap-impls --bench cost`, after `cargo install
//! gungraun-runner --version 0.20.0` (the runner must match the version of
//! the `gungraun` crate). A filter runs a subset:
//! `cargo bench -p rmap-impls --bench cost -- 'cost::walk::*::e3_k14'`. The
//! CI's regression gate (`examples/cost-gate.rs`) runs the `e3_k1*` set.

use gungraun::{
    library_benchmark, library_benchmark_group, main, Callgrind, EventKind, LibraryBenchmarkConfig,
};
use rmap_impls::spte::{make_spte, SPTE_WRITABLE};
use rmap_impls::{
    build, Gfn, ImplKind, LockKind, MapOutcome, NoObserver, Rmap, RmapConfig, SlotId, SpteTable,
};
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};

/// gfns in the memslot. At least 8, so that the K sptes of one gfn lie in K
/// distinct cache lines (one per alias's table), as the sptes of one gfn do
/// in KVM's shadow pages.
const GFNS: u64 = 64;
/// The gfn every benchmark measures.
const GFN: Gfn = 0;
/// The gfn whose operation warms the per-VM state: far enough from `GFN`
/// that their rmap heads and sptes share no cache line.
const WARM_GFN: Gfn = GFNS / 2;

/// Cache lines, as modelled.
const LINE: usize = 64;
/// The simulated last-level cache: 8 MiB, 16-way.
const LL_BYTES: usize = 8 << 20;
/// Read by [`Fixture::go_cold`]: twice the last-level cache. A static, so
/// that it lies in zero pages and setting it up costs no `memset`.
static EVICT: [u8; 2 * LL_BYTES] = [0; 2 * LL_BYTES];
/// Stack below [`setup`]'s frame that it keeps warm.
const STACK_BYTES: usize = 16 << 10;

/// What the measured operation must have done (sptes protected), for the
/// teardown to check; set by the setup of the same process.
static EXPECT: AtomicU64 = AtomicU64::new(0);

/// The operation a benchmark measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// `write_protect` of the gfn, every spte with W set.
    Walk,
    /// The same cmpxchg on the same sptes, from the fixture's slot array.
    Floor,
    /// `map` of the gfn's newest spte.
    Add,
    /// `unmap` of the gfn's newest spte.
    Remove,
    /// Nothing: the harness's own cost.
    Empty,
}

impl Op {
    /// The function that runs the operation. A benchmark names its `Op` as
    /// a constant, so its call of `op.on()` compiles to a direct call.
    #[inline(always)]
    fn on(self) -> fn(&Fixture, &Target) -> Done {
        match self {
            Op::Walk => Fixture::walk_on,
            Op::Floor => Fixture::floor_on,
            Op::Add => Fixture::add_on,
            Op::Remove => Fixture::remove_on,
            Op::Empty => Fixture::empty_on,
        }
    }
}

/// What the operation returned, for the teardown to check. Small: it is
/// written into the harness's frame, which is not warm.
enum Done {
    /// sptes protected, spte references visited (more than K after a
    /// restart).
    Walk(u64, u64),
    Floor(u64),
    Add(MapOutcome),
    Remove(bool),
    Empty,
}

/// One gfn's part of the fixture.
struct Target {
    gfn: Gfn,
    /// The newest spte (alias K - 1): the one `add` maps and `remove`
    /// unmaps.
    newest: SlotId,
    /// The slot ids of its K sptes, for the floor and for restoring W.
    slots: Vec<SlotId>,
}

/// One memslot of `GFNS` gfns, each with the same sptes, and the operation
/// to measure.
struct Fixture {
    op: Op,
    r: Box<dyn Rmap>,
    t: SpteTable,
    /// `GFN`, the measured one.
    measured: Target,
    /// `WARM_GFN`, whose operation warms the per-VM state.
    warm: Target,
}

impl Fixture {
    /// A design whose gfns hold the sptes of aliases `0..mapped`, with room
    /// for `k` aliases.
    fn new(op: Op, kind: ImplKind, desc_ext: usize, k: u32, mapped: u32) -> &'static Fixture {
        // The spte table first, as in `rmap.rs`.
        let t = SpteTable::new(GFNS, k);
        let cfg = RmapConfig::new(GFNS, desc_ext, LockKind::Spin);
        let r = build(kind, &cfg, None).expect("benchmark configuration builds");
        for alias in 0..mapped {
            for gfn in 0..GFNS {
                let slot = t.slot_id(alias, gfn);
                let out = r.map(&t, gfn, slot, make_spte(gfn, true), &mut NoObserver);
                assert_eq!(out, MapOutcome::Mapped);
            }
        }
        let target = |gfn| Target {
            gfn,
            newest: t.slot_id(k - 1, gfn),
            slots: (0..k).map(|alias| t.slot_id(alias, gfn)).collect(),
        };
        let (measured, warm) = (target(GFN), target(WARM_GFN));
        // Leaked: one benchmark per process, and no drop in its teardown.
        Box::leak(Box::new(Fixture {
            op,
            r,
            t,
            measured,
            warm,
        }))
    }

    /// The operation on `g`, each in a function of its own: the measured
    /// call and the warming one in [`Self::go_cold`] run the same machine
    /// code and read the same constants (the observer's vtable), and a
    /// change to one operation's code leaves the others' alone.
    #[inline(never)]
    fn walk_on(&self, g: &Target) -> Done {
        let st = self.r.write_protect(&self.t, &[g.gfn], &mut NoObserver);
        Done::Walk(st.protected, st.visited)
    }

    #[inline(never)]
    fn floor_on(&self, g: &Target) -> Done {
        let mut protected = 0;
        for &s in &g.slots {
            protected += u64::from(self.t.write_protect(s));
        }
        Done::Floor(protected)
    }

    #[inline(never)]
    fn add_on(&self, g: &Target) -> Done {
        let spte = make_spte(g.gfn, true);
        Done::Add(self.r.map(&self.t, g.gfn, g.newest, spte, &mut NoObserver))
    }

    #[inline(never)]
    fn remove_on(&self, g: &Target) -> Done {
        Done::Remove(self.r.unmap(&self.t, g.gfn, g.newest, &mut NoObserver))
    }

    #[inline(never)]
    fn empty_on(&self, _: &Target) -> Done {
        Done::Empty
    }

    /// Run the operation on `g` (outside the count), check it, and put `g`'s
    /// rmap back as it was.
    fn dry_run(&self, g: &Target) {
        let done = self.op.on()(self, g);
        check(&done);
        match done {
            Done::Walk(..) | Done::Floor(_) => {
                for &s in &g.slots {
                    // Relaxed: single-threaded.
                    self.t.slot(s).fetch_or(SPTE_WRITABLE, Ordering::Relaxed);
                }
            }
            Done::Add(_) => assert!(self.r.unmap(&self.t, g.gfn, g.newest, &mut NoObserver)),
            Done::Remove(_) => {
                let spte = make_spte(g.gfn, true);
                let out = self.r.map(&self.t, g.gfn, g.newest, spte, &mut NoObserver);
                assert_eq!(out, MapOutcome::Mapped);
            }
            Done::Empty => {}
        }
    }

    /// Evict everything from the simulated data caches, then bring back the
    /// fixture's own words and the per-VM state (module doc; [`setup`]
    /// brings back the stack).
    #[inline(never)]
    fn go_cold(&self) {
        let mut sum = 0u8;
        for i in (0..EVICT.len()).step_by(LINE) {
            // Volatile, and summed: valgrind drops loads whose value is
            // unused. SAFETY: an in-bounds byte of a static.
            sum = sum.wrapping_add(unsafe { std::ptr::read_volatile(&EVICT[i]) });
        }
        black_box(sum);
        let words = std::ptr::from_ref(self).cast::<u8>();
        for i in (0..size_of::<Fixture>()).step_by(8) {
            // SAFETY: in-bounds bytes of a live `Fixture`.
            black_box(unsafe { std::ptr::read_volatile(words.add(i)) });
        }
        self.dry_run(&self.warm);
    }
}

/// Write one byte per line of `STACK_BYTES` of stack, below this frame.
#[inline(never)]
fn warm_stack() {
    let mut frame = MaybeUninit::<[u8; STACK_BYTES]>::uninit();
    let p = frame.as_mut_ptr().cast::<u8>();
    for i in (0..STACK_BYTES).step_by(LINE) {
        // SAFETY: in bounds of `frame`; written, never read as initialised.
        unsafe { p.add(i).write_volatile(0) };
    }
    black_box(&mut frame);
}

/// The setup of every benchmark: build the fixture (K - 1 sptes for `add`,
/// K otherwise), dry-run the operation on the measured gfn, go cold, and
/// last warm the stack below this frame, where the measured call will run
/// (this frame is small: the work is in `prepare`).
fn setup(op: Op, kind: ImplKind, desc_ext: usize, k: u32) -> &'static Fixture {
    let f = prepare(op, kind, desc_ext, k);
    warm_stack();
    f
}

#[inline(never)]
fn prepare(op: Op, kind: ImplKind, desc_ext: usize, k: u32) -> &'static Fixture {
    let mapped = if op == Op::Add { k - 1 } else { k };
    let f = Fixture::new(op, kind, desc_ext, k, mapped);
    EXPECT.store(u64::from(k), Ordering::Relaxed);
    f.dry_run(&f.measured);
    f.go_cold();
    f
}

/// The teardown of every benchmark: the measured operation did its work.
fn teardown(done: Done) {
    check(&done);
}

fn check(done: &Done) {
    let k = EXPECT.load(Ordering::Relaxed);
    match done {
        Done::Walk(protected, visited) => {
            assert_eq!(*protected, k, "one cmpxchg per spte");
            assert_eq!(*visited, k, "no restart");
        }
        Done::Floor(protected) => assert_eq!(*protected, k, "one cmpxchg per spte"),
        Done::Add(out) => assert_eq!(*out, MapOutcome::Mapped),
        Done::Remove(removed) => assert!(removed),
        Done::Empty => {}
    }
}

/// One benchmark function per design and operation: `desc_ext` 3 and 14 at
/// K = 1, 3, 14, 64; a walk of a descriptor-chain design (`layout`) also
/// over `desc_ext` at K = 14 and 64.
macro_rules! bench {
    // The two arms repeat the eight common ids: gungraun's attribute macro
    // does not accept `bench` attributes that come from another macro
    // expansion than its own (its generated names lose their hygiene).
    (layout $name:ident = $op:expr, $kind:expr) => {
        #[library_benchmark(setup = setup, teardown = teardown)]
        #[bench::e3_k1(args = ($op, $kind, 3, 1))]
        #[bench::e3_k3(args = ($op, $kind, 3, 3))]
        #[bench::e3_k14(args = ($op, $kind, 3, 14))]
        #[bench::e3_k64(args = ($op, $kind, 3, 64))]
        #[bench::e14_k1(args = ($op, $kind, 14, 1))]
        #[bench::e14_k3(args = ($op, $kind, 14, 3))]
        #[bench::e14_k14(args = ($op, $kind, 14, 14))]
        #[bench::e14_k64(args = ($op, $kind, 14, 64))]
        #[bench::e1_k14(args = ($op, $kind, 1, 14))]
        #[bench::e2_k14(args = ($op, $kind, 2, 14))]
        #[bench::e7_k14(args = ($op, $kind, 7, 14))]
        #[bench::e13_k14(args = ($op, $kind, 13, 14))]
        #[bench::e28_k14(args = ($op, $kind, 28, 14))]
        #[bench::e64_k14(args = ($op, $kind, 64, 14))]
        #[bench::e1_k64(args = ($op, $kind, 1, 64))]
        #[bench::e2_k64(args = ($op, $kind, 2, 64))]
        #[bench::e7_k64(args = ($op, $kind, 7, 64))]
        #[bench::e13_k64(args = ($op, $kind, 13, 64))]
        #[bench::e28_k64(args = ($op, $kind, 28, 64))]
        #[bench::e64_k64(args = ($op, $kind, 64, 64))]
        fn $name(f: &'static Fixture) -> Done {
            $op.on()(f, &f.measured)
        }
    };
    ($name:ident = $op:expr, $kind:expr) => {
        #[library_benchmark(setup = setup, teardown = teardown)]
        #[bench::e3_k1(args = ($op, $kind, 3, 1))]
        #[bench::e3_k3(args = ($op, $kind, 3, 3))]
        #[bench::e3_k14(args = ($op, $kind, 3, 14))]
        #[bench::e3_k64(args = ($op, $kind, 3, 64))]
        #[bench::e14_k1(args = ($op, $kind, 14, 1))]
        #[bench::e14_k3(args = ($op, $kind, 14, 3))]
        #[bench::e14_k14(args = ($op, $kind, 14, 14))]
        #[bench::e14_k64(args = ($op, $kind, 14, 64))]
        fn $name(f: &'static Fixture) -> Done {
            $op.on()(f, &f.measured)
        }
    };
}

// A new design is one line in `walk_benches` (with `layout` if it keeps
// descriptor chains) and one in `writer_group`, and its name in both
// `benchmarks` lists.

mod walk_benches {
    use super::*;

    // The floor's fixture holds an rmap it does not use, so that the sptes
    // are laid out as for the designs.
    bench!(floor = Op::Floor, ImplKind::MmuLock);
    bench!(layout mmu_lock = Op::Walk, ImplKind::MmuLock);
    bench!(layout lockless = Op::Walk, ImplKind::Lockless);
    bench!(layout lockless_gen = Op::Walk, ImplKind::LocklessGen);
    bench!(layout seqlock = Op::Walk, ImplKind::Seqlock);
    bench!(layout rmap_lock = Op::Walk, ImplKind::RmapLock);
    bench!(concurrent_map = Op::Walk, ImplKind::ConcurrentMap);
    bench!(layout lockless_6_4 = Op::Walk, ImplKind::Lockless64);

    library_benchmark_group!(
        name = walk;
        benchmarks = floor, mmu_lock, lockless, lockless_gen, seqlock, rmap_lock, concurrent_map,
            lockless_6_4
    );
}

/// The `add` and `remove` groups: one benchmark function per design.
macro_rules! writer_group {
    ($module:ident, $group:ident, $op:expr) => {
        mod $module {
            use super::*;

            bench!(mmu_lock = $op, ImplKind::MmuLock);
            bench!(lockless = $op, ImplKind::Lockless);
            bench!(lockless_gen = $op, ImplKind::LocklessGen);
            bench!(seqlock = $op, ImplKind::Seqlock);
            bench!(rmap_lock = $op, ImplKind::RmapLock);
            bench!(concurrent_map = $op, ImplKind::ConcurrentMap);
            bench!(lockless_6_4 = $op, ImplKind::Lockless64);

            library_benchmark_group!(
                name = $group;
                benchmarks = mmu_lock, lockless, lockless_gen, seqlock, rmap_lock, concurrent_map,
                    lockless_6_4
            );
        }
    };
}

writer_group!(add_benches, add, Op::Add);
writer_group!(remove_benches, remove, Op::Remove);

mod fixture_benches {
    use super::*;

    // The harness alone: the same fixture and call, no operation.
    #[library_benchmark(setup = setup, teardown = teardown)]
    #[bench::cold(args = (Op::Empty, ImplKind::MmuLock, 3, 1))]
    fn empty(f: &'static Fixture) -> Done {
        Op::Empty.on()(f, &f.measured)
    }

    library_benchmark_group!(name = fixture; benchmarks = empty);
}

use add_benches::add;
use fixture_benches::fixture;
use remove_benches::remove;
use walk_benches::walk;

main!(
    config = LibraryBenchmarkConfig::default().tool(
        Callgrind::with_args(["--I1=32768,8,64", "--D1=32768,8,64", "--LL=8388608,16,64"]).format([
            EventKind::Ir,
            EventKind::D1mr,
            EventKind::D1mw,
            EventKind::DLmr,
            EventKind::DLmw,
            EventKind::I1mr,
            EventKind::EstimatedCycles,
        ])
    );
    library_benchmark_groups = fixture, walk, add, remove
);
