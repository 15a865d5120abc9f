//! Property tests: every design, and every injected-bug twin that lives in the
//! rmap, against a sequential reference model.
//!
//! The model is what an rmap *means*: for every gfn the set of spte slots that
//! map it (`BTreeMap<Gfn, BTreeSet<SlotId>>`), plus the value of every spte
//! slot. proptest draws a memslot (1..=6 gfns, 1..=64 aliases, so up to 64
//! sptes per rmap), a `desc_ext` (1, 2, 3 or 14), a pool of 2..=4
//! descriptors per page (so that freed descriptors are reused by other rmaps
//! at once, and pages come and go under `reclaim`), and a few hundred
//! operations: slow-fault `map`, `unmap`, `zap` of a gfn range, a bulk fill of
//! one gfn, `walk`, `write_protect` of a batch of gfns, a fast page fault
//! that sets W again, a vCPU access that sets the Accessed bit, aging (`age`)
//! of a gfn range, and `reclaim`. Every chain design runs over each of its
//! chain disciplines (`--chain 2013` and `6.4`). Each operation runs on the
//! design and on the model, and then everything that is checkable in a
//! quiescent state is checked:
//!
//! * what the operation returned: `map` says `AlreadyPresent` iff the slot
//!   was present; `unmap` and `zap` count what the model removes;
//!   `write_protect` reports one walk per gfn of the batch, a `protected`
//!   count equal to the number of sptes that had W set, and calls
//!   `Observer::gfn_walked` once per gfn, in order; `age` reports one walk
//!   per gfn of the range, every spte of it visited, and a `young` count
//!   equal to the number of sptes that had Accessed set; an access sets
//!   Accessed exactly when the spte is present without it;
//! * every spte slot holds the model's value (write-protect clears W and
//!   keeps MMU_WRITABLE, zap clears the slot);
//! * a walk of every gfn visits exactly the model's set: nothing missing,
//!   nothing extra, no duplicates, and no restart (nothing races it);
//! * `mmu_lock` (or the rmap lock) is released as often as it was taken;
//! * the pool holds exactly the descriptors the chains need (head
//!   discipline: `ceil(n / desc_ext)` for an rmap of `n >= 2` sptes, none for
//!   one spte; Linux 6.4's: the same, but one spte may keep its descriptor,
//!   since such a chain never returns to the single form), or a number
//!   within the bounds of the tail discipline; after the final zap of
//!   everything, none at all. A leak, a double free or a descriptor left
//!   behind by the single-spte collapse shows up here.
//!
//! The injected bugs are concurrency bugs: their twins must stay
//! sequentially correct, so every twin runs the same sequences.
//!
//! The default is 64 cases per test; set `PROPTEST_CASES` for a longer run.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rmap_impls::spte::{is_present, make_spte, SPTE_ACCESSED, SPTE_WRITABLE};
use rmap_impls::{
    build, Bug, BugLayer, ChainKind, Gfn, ImplKind, LockKind, MapOutcome, Observer, Rmap,
    RmapConfig, SlotId, SpteTable, WalkStats,
};
use std::collections::{BTreeMap, BTreeSet};

/// One memslot and one pool shape.
#[derive(Clone, Debug)]
struct Setup {
    gfns: u64,
    aliases: u32,
    desc_ext: usize,
    page_descs: usize,
    lock: LockKind,
}

#[derive(Clone, Debug)]
enum Op {
    /// Slow fault of `alias`'s spte for `gfn`.
    Map {
        gfn: Gfn,
        alias: u32,
        writable: bool,
    },
    Unmap {
        gfn: Gfn,
        alias: u32,
    },
    /// Zap `start..end` (may be empty).
    Zap {
        start: Gfn,
        end: Gfn,
    },
    /// Map every alias of `gfn`, starting at `first` and wrapping: builds
    /// long chains in one step.
    Fill {
        gfn: Gfn,
        first: u32,
    },
    Walk {
        gfn: Gfn,
    },
    WriteProtect {
        gfns: Vec<Gfn>,
    },
    /// A vCPU write to a write-protected, MMU-writable spte: W comes back by
    /// cmpxchg, without the rmap.
    FastFault {
        gfn: Gfn,
        alias: u32,
    },
    /// A vCPU access through `alias`'s spte of `gfn`: sets Accessed if it is
    /// present without it, as the CPU does.
    Access {
        gfn: Gfn,
        alias: u32,
    },
    /// Aging of `start..end` (may be empty).
    Age {
        start: Gfn,
        end: Gfn,
    },
    Reclaim,
}

fn setup_strategy() -> impl Strategy<Value = Setup> {
    (
        1u64..=6,
        prop_oneof![1u32..=8, 9u32..=64],
        prop::sample::select(vec![1usize, 2, 3, 14]),
        2usize..=4,
        prop::sample::select(vec![LockKind::Spin, LockKind::Park]),
    )
        .prop_map(|(gfns, aliases, desc_ext, page_descs, lock)| Setup {
            gfns,
            aliases,
            desc_ext,
            page_descs,
            lock,
        })
}

fn op_strategy(s: &Setup) -> impl Strategy<Value = Op> {
    let (g, a) = (s.gfns, s.aliases);
    prop_oneof![
        10 => (0..g, 0..a, any::<bool>()).prop_map(|(gfn, alias, writable)| Op::Map { gfn, alias, writable }),
        6 => (0..g, 0..a).prop_map(|(gfn, alias)| Op::Unmap { gfn, alias }),
        1 => (0..=g, 0..=g).prop_map(|(x, y)| Op::Zap { start: x.min(y), end: x.max(y) }),
        1 => (0..g, 0..a).prop_map(|(gfn, first)| Op::Fill { gfn, first }),
        2 => (0..g).prop_map(|gfn| Op::Walk { gfn }),
        2 => prop::collection::vec(0..g, 0..=4).prop_map(|gfns| Op::WriteProtect { gfns }),
        2 => (0..g, 0..a).prop_map(|(gfn, alias)| Op::FastFault { gfn, alias }),
        2 => (0..g, 0..a).prop_map(|(gfn, alias)| Op::Access { gfn, alias }),
        1 => (0..=g, 0..=g).prop_map(|(x, y)| Op::Age { start: x.min(y), end: x.max(y) }),
        1 => Just(Op::Reclaim),
    ]
}

fn case_strategy() -> impl Strategy<Value = (Setup, Vec<Op>)> {
    setup_strategy().prop_flat_map(|s| {
        let ops = prop::collection::vec(op_strategy(&s), 1..300);
        (Just(s), ops)
    })
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig::with_cases(cases)
}

/// How a design lays out its chains, which fixes how many descriptors it
/// needs for a given set of rmaps.
#[derive(Clone, Copy, Debug)]
enum Discipline {
    /// No descriptor pool (`concurrent-map`).
    NoPool,
    /// New descriptors at the head, only the head non-full, one spte goes
    /// back to the single form: exactly `ceil(n / ext)` for `n >= 2`.
    Head,
    /// 2013's tail append (`mmu-lock`, the `fill-from-tail` twins): holes may
    /// stay in the middle and one spte may stay in a descriptor.
    Tail,
    /// Linux 6.4's: as `Head`, but an rmap that shrinks to one spte keeps
    /// its descriptor (no way back to the single form).
    Kvm64,
}

fn discipline(kind: ImplKind, bug: Option<Bug>, chain: Option<ChainKind>) -> Discipline {
    match (kind, bug, chain.or(kind.default_chain())) {
        (ImplKind::ConcurrentMap, ..) => Discipline::NoPool,
        (_, Some(Bug::FillFromTail), _) => Discipline::Tail,
        (_, _, Some(ChainKind::Linux64)) => Discipline::Kvm64,
        (ImplKind::MmuLock, ..) => Discipline::Tail,
        _ => Discipline::Head,
    }
}

/// Observer that count what they are told.
#[derive(Default)]
struct Counting {
    waits: u64,
    acquired: u64,
    released: u64,
    walked: Vec<Gfn>,
}

impl Observer for Counting {
    fn lock_wait(&mut self) {
        self.waits += 1;
    }
    fn lock_acquired(&mut self) {
        self.acquired += 1;
    }
    fn lock_released(&mut self) {
        self.released += 1;
    }
    fn gfn_walked(&mut self, gfn: Gfn, _stats: &WalkStats) {
        self.walked.push(gfn);
    }
}

/// The sequential reference: rmaps as sets, sptes as plain values.
struct Model {
    rmaps: BTreeMap<Gfn, BTreeSet<SlotId>>,
    sptes: Vec<u64>,
}

impl Model {
    fn present(&self, gfn: Gfn, slot: SlotId) -> bool {
        self.rmaps.get(&gfn).is_some_and(|s| s.contains(&slot))
    }
    fn len(&self, gfn: Gfn) -> usize {
        self.rmaps.get(&gfn).map_or(0, |s| s.len())
    }
    fn total(&self) -> usize {
        self.rmaps.values().map(|s| s.len()).sum()
    }
}

/// One design under test, its spte table and its model.
struct Harness<'a> {
    what: String,
    setup: &'a Setup,
    disc: Discipline,
    r: Box<dyn Rmap>,
    sptes: SpteTable,
    model: Model,
}

impl<'a> Harness<'a> {
    fn new(kind: ImplKind, bug: Option<Bug>, chain: Option<ChainKind>, setup: &'a Setup) -> Self {
        let cfg = RmapConfig {
            gfns: setup.gfns,
            desc_ext: setup.desc_ext,
            mmu_lock: setup.lock,
            page_descs: setup.page_descs,
            chain,
        };
        let r = build(kind, &cfg, bug).expect("a valid configuration builds");
        let mut what = match bug {
            Some(b) => format!("{kind} with bug {b}"),
            None => kind.to_string(),
        };
        if let Some(c) = chain {
            what += &format!(" over the {c} chain");
        }
        assert_eq!(r.name(), kind.name(), "the design names itself");
        Harness {
            what,
            setup,
            disc: discipline(kind, bug, chain),
            r,
            sptes: SpteTable::new(setup.gfns, setup.aliases),
            model: Model {
                rmaps: BTreeMap::new(),
                sptes: vec![0; (setup.gfns * setup.aliases as u64) as usize],
            },
        }
    }

    fn map(&mut self, gfn: Gfn, alias: u32, writable: bool) -> Result<(), TestCaseError> {
        let slot = self.sptes.slot_id(alias, gfn);
        let spte = make_spte(gfn, writable);
        let mut obs = Counting::default();
        let out = self.r.map(&self.sptes, gfn, slot, spte, &mut obs);
        let was = self.model.present(gfn, slot);
        let expect = if was {
            MapOutcome::AlreadyPresent
        } else {
            MapOutcome::Mapped
        };
        prop_assert_eq!(out, expect, "map of gfn {} alias {}", gfn, alias);
        if !was {
            self.model.rmaps.entry(gfn).or_default().insert(slot);
            self.model.sptes[slot] = spte;
        }
        self.check_locks(&obs)
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Map {
                gfn,
                alias,
                writable,
            } => self.map(gfn, alias, writable)?,
            Op::Fill { gfn, first } => {
                for k in 0..self.setup.aliases {
                    self.map(gfn, (first + k) % self.setup.aliases, true)?;
                }
            }
            Op::Unmap { gfn, alias } => {
                let slot = self.sptes.slot_id(alias, gfn);
                let mut obs = Counting::default();
                let got = self.r.unmap(&self.sptes, gfn, slot, &mut obs);
                let was = self.model.present(gfn, slot);
                prop_assert_eq!(got, was, "unmap of gfn {} alias {}", gfn, alias);
                if was {
                    self.model.rmaps.get_mut(&gfn).unwrap().remove(&slot);
                    self.model.sptes[slot] = 0;
                }
                self.check_locks(&obs)?;
            }
            Op::Zap { start, end } => {
                let mut obs = Counting::default();
                let got = self.r.zap(&self.sptes, start..end, &mut obs);
                let mut expect = 0;
                for gfn in start..end {
                    for slot in self.model.rmaps.remove(&gfn).unwrap_or_default() {
                        self.model.sptes[slot] = 0;
                        expect += 1;
                    }
                }
                prop_assert_eq!(got, expect, "zap of {}..{}", start, end);
                self.check_locks(&obs)?;
            }
            Op::Walk { gfn } => self.check_walk(gfn)?,
            Op::WriteProtect { ref gfns } => {
                let mut obs = Counting::default();
                let st = self.r.write_protect(&self.sptes, gfns, &mut obs);
                let (mut visited, mut protected) = (0, 0);
                for &gfn in gfns {
                    for &slot in self.model.rmaps.get(&gfn).into_iter().flatten() {
                        visited += 1;
                        if self.model.sptes[slot] & SPTE_WRITABLE != 0 {
                            protected += 1;
                            self.model.sptes[slot] &= !SPTE_WRITABLE;
                        }
                    }
                }
                prop_assert_eq!(st.walks, gfns.len() as u64, "walks of {:?}", gfns);
                prop_assert_eq!(st.visited, visited, "sptes visited in {:?}", gfns);
                prop_assert_eq!(st.protected, protected, "sptes protected in {:?}", gfns);
                prop_assert_eq!(st.total_restarts(), 0, "restarts without a race");
                prop_assert_eq!(&obs.walked, gfns, "gfn_walked calls");
                self.check_locks(&obs)?;
            }
            Op::FastFault { gfn, alias } => {
                let slot = self.sptes.slot_id(alias, gfn);
                let seen = self.sptes.load(slot);
                let expect = self.model.sptes[slot];
                prop_assert_eq!(seen, expect, "spte of gfn {} alias {}", gfn, alias);
                if self.model.present(gfn, slot) && seen & SPTE_WRITABLE == 0 {
                    prop_assert!(self.sptes.fast_fault_fix(slot, seen));
                    self.model.sptes[slot] |= SPTE_WRITABLE;
                }
            }
            Op::Access { gfn, alias } => {
                let slot = self.sptes.slot_id(alias, gfn);
                let v = self.model.sptes[slot];
                let expect = is_present(v) && v & SPTE_ACCESSED == 0;
                let set = self.sptes.mark_accessed(slot, self.sptes.load(slot));
                prop_assert_eq!(set, expect, "access of gfn {} alias {}", gfn, alias);
                if expect {
                    self.model.sptes[slot] |= SPTE_ACCESSED;
                }
            }
            Op::Age { start, end } => {
                let mut obs = Counting::default();
                let st = self.r.age(&self.sptes, start..end, &mut obs);
                let (mut visited, mut young) = (0, 0);
                for gfn in start..end {
                    for &slot in self.model.rmaps.get(&gfn).into_iter().flatten() {
                        visited += 1;
                        if self.model.sptes[slot] & SPTE_ACCESSED != 0 {
                            young += 1;
                            self.model.sptes[slot] &= !SPTE_ACCESSED;
                        }
                    }
                }
                prop_assert_eq!(
                    st.walk.walks,
                    end - start,
                    "aging walks of {}..{}",
                    start,
                    end
                );
                prop_assert_eq!(st.walk.visited, visited, "sptes aged in {}..{}", start, end);
                prop_assert_eq!(st.young, young, "young sptes in {}..{}", start, end);
                prop_assert_eq!(st.walk.protected, 0, "aging write-protects nothing");
                prop_assert_eq!(st.walk.total_restarts(), 0, "restarts without a race");
                self.check_locks(&obs)?;
            }
            Op::Reclaim => self.r.reclaim(),
        }
        self.check_all()
    }

    fn check_locks(&self, obs: &Counting) -> Result<(), TestCaseError> {
        prop_assert_eq!(
            obs.waits,
            obs.acquired,
            "lock waits that never got the lock"
        );
        prop_assert_eq!(obs.acquired, obs.released, "lock not released");
        Ok(())
    }

    /// A quiescent walk of `gfn` visits exactly the model's set.
    fn check_walk(&self, gfn: Gfn) -> Result<(), TestCaseError> {
        let mut seen = Vec::new();
        let st = self.r.walk(gfn, &mut |s| seen.push(s));
        seen.sort_unstable();
        let expect: Vec<SlotId> = self
            .model
            .rmaps
            .get(&gfn)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        prop_assert_eq!(&seen, &expect, "walk of gfn {}", gfn);
        prop_assert_eq!(st.walks, 1);
        prop_assert_eq!(st.visited, expect.len() as u64);
        prop_assert_eq!(st.total_restarts(), 0, "restarts without a race");
        Ok(())
    }

    fn check_all(&self) -> Result<(), TestCaseError> {
        for gfn in 0..self.setup.gfns {
            self.check_walk(gfn)?;
        }
        for (slot, &v) in self.model.sptes.iter().enumerate() {
            prop_assert_eq!(self.sptes.load(slot), v, "spte slot {}", slot);
        }
        let ext = self.setup.desc_ext;
        let in_use = self.r.descs_in_use();
        let (lo, hi) = (0..self.setup.gfns)
            .map(|g| self.model.len(g))
            .map(|n| match self.disc {
                Discipline::NoPool => (0, 0),
                Discipline::Head if n >= 2 => (n.div_ceil(ext), n.div_ceil(ext)),
                Discipline::Head => (0, 0),
                Discipline::Tail if n >= 2 => (n.div_ceil(ext), n),
                Discipline::Tail => (0, n),
                Discipline::Kvm64 if n >= 2 => (n.div_ceil(ext), n.div_ceil(ext)),
                Discipline::Kvm64 => (0, n),
            })
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
        prop_assert!(
            (lo..=hi).contains(&in_use),
            "{} descriptors in use, the rmaps need {}..={}",
            in_use,
            lo,
            hi
        );
        Ok(())
    }

    /// Zap everything: every pool must be empty afterwards.
    fn finish(mut self) -> Result<(), TestCaseError> {
        let gfns = self.setup.gfns;
        let total = self.model.total() as u64;
        let mut obs = Counting::default();
        prop_assert_eq!(self.r.zap(&self.sptes, 0..gfns, &mut obs), total);
        self.model.rmaps.clear();
        self.model.sptes.iter_mut().for_each(|v| *v = 0);
        self.check_all()?;
        prop_assert_eq!(self.r.descs_in_use(), 0, "descriptors leaked");
        self.r.reclaim();
        prop_assert_eq!(self.r.descs_in_use(), 0, "descriptors after reclaim");
        Ok(())
    }
}

fn run_case(
    kind: ImplKind,
    bug: Option<Bug>,
    chain: Option<ChainKind>,
    setup: &Setup,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut h = Harness::new(kind, bug, chain, setup);
    for (i, op) in ops.iter().enumerate() {
        h.run(op)
            .map_err(|e| TestCaseError::fail(format!("{}: op {i} {op:?}: {e}", h.what)))?;
    }
    let what = h.what.clone();
    h.finish()
        .map_err(|e| TestCaseError::fail(format!("{what}: final zap: {e}")))
}

/// The injected-bug twins that change the rmap: every `(bug, design)` pair
/// that `build` accepts.
fn rmap_twins() -> Vec<(Bug, ImplKind)> {
    Bug::ALL
        .into_iter()
        .filter(|b| b.layer() == BugLayer::Rmap)
        .flat_map(|b| b.applies_to().iter().map(move |&k| (b, k)))
        .collect()
}

macro_rules! design_test {
    ($name:ident, $kind:expr) => {
        design_test!($name, $kind, None);
    };
    ($name:ident, $kind:expr, $chain:expr) => {
        proptest! {
            #![proptest_config(config())]
            #[test]
            fn $name((setup, ops) in case_strategy()) {
                run_case($kind, None, $chain, &setup, &ops)?;
            }
        }
    };
}

design_test!(mmu_lock_matches_model, ImplKind::MmuLock);
design_test!(lockless_matches_model, ImplKind::Lockless);
design_test!(lockless_gen_matches_model, ImplKind::LocklessGen);
design_test!(seqlock_matches_model, ImplKind::Seqlock);
design_test!(rmap_lock_matches_model, ImplKind::RmapLock);
design_test!(concurrent_map_matches_model, ImplKind::ConcurrentMap);
design_test!(lockless_6_4_matches_model, ImplKind::Lockless64);

// Every chain design over the chain discipline it does not use by default.
const Y2013: Option<ChainKind> = Some(ChainKind::Y2013);
const LINUX64: Option<ChainKind> = Some(ChainKind::Linux64);
design_test!(mmu_lock_on_6_4_matches_model, ImplKind::MmuLock, LINUX64);
design_test!(lockless_on_6_4_matches_model, ImplKind::Lockless, LINUX64);
design_test!(
    lockless_gen_on_6_4_matches_model,
    ImplKind::LocklessGen,
    LINUX64
);
design_test!(seqlock_on_6_4_matches_model, ImplKind::Seqlock, LINUX64);
design_test!(rmap_lock_on_2013_matches_model, ImplKind::RmapLock, Y2013);

proptest! {
    #![proptest_config(config())]
    /// Every rmap-level bug twin is still a correct sequential rmap: the bugs
    /// only show under concurrency (`tests/stress.rs`, `tests/loom.rs`).
    #[test]
    fn bug_twins_match_model((setup, ops) in case_strategy()) {
        for (bug, kind) in rmap_twins() {
            run_case(kind, Some(bug), None, &setup, &ops)?;
        }
    }
}

#[test]
fn every_design_and_rmap_twin_is_covered() {
    // The design tests above are written out by hand; this catches a design
    // added to `ImplKind::ALL` without one, and a twin that does not build.
    assert_eq!(ImplKind::ALL.len(), 7);
    // One test per design over each chain it has beyond its default: a
    // chain added to `ChainKind::ALL` breaks this count.
    let extra_chains: usize = ImplKind::ALL
        .iter()
        .map(|k| k.chains().len().saturating_sub(1))
        .sum();
    assert_eq!(extra_chains, 5);
    let twins = rmap_twins();
    for (bug, kind) in &twins {
        let cfg = RmapConfig::new(1, 2, LockKind::Park);
        assert!(build(*kind, &cfg, Some(*bug)).is_ok(), "{bug} on {kind}");
    }
    let bugs: BTreeSet<Bug> = twins.iter().map(|(b, _)| *b).collect();
    let rmap_bugs = Bug::ALL.iter().filter(|b| b.layer() == BugLayer::Rmap);
    assert_eq!(bugs.len(), rmap_bugs.count());
}

#[test]
fn chains_that_a_design_lacks_are_refused() {
    let with = |c| RmapConfig {
        chain: Some(c),
        ..RmapConfig::new(1, 2, LockKind::Park)
    };
    for kind in ImplKind::ALL {
        for c in ChainKind::ALL {
            let built = build(kind, &with(c), None);
            assert_eq!(built.is_ok(), kind.chains().contains(&c), "{kind} over {c}");
        }
    }
    assert!(build(ImplKind::ConcurrentMap, &with(ChainKind::Y2013), None).is_err());
    assert!(build(ImplKind::Lockless64, &with(ChainKind::Y2013), None).is_err());
    assert!(build(
        ImplKind::LocklessGen,
        &with(ChainKind::Linux64),
        Some(Bug::FillFromTail)
    )
    .is_err());
}
