//! `lockless` and `lockless-gen`: rmap walks without `mmu_lock`, over a
//! nulls-terminated chain of type-stable descriptors (the 2013 series
//! "KVM: MMU: locklessly write-protect", its patch 09/12 "introduce
//! pte-list lockless walker", and the review thread in `shared/seeds/`).
//!
//! # The algorithm
//!
//! **Head.** One word per gfn (see `desc.rs`): empty, one spte, or
//! `desc | 1`. **Writers** (add, remove, zap) still take `mmu_lock`, so they
//! never race each other; they follow the *head* discipline of `chain.rs`: a
//! new descriptor goes to the head, only the head may be non-full, remove
//! fills its hole from the head descriptor ("forward move"), and an rmap
//! left with one spte returns to the single form. Every chain ends in a
//! *nulls* marker `(gfn << 2) | 1` that names its own rmap.
//!
//! **Walkers** (the dirty-log write-protect) take no lock: an epoch guard
//! (the RCU read section) keeps pool pages from being freed, nothing keeps a
//! descriptor from being freed and reused at once, for any rmap. A walker
//! reads the head, then each descriptor's slots *bottom-up* (from the last
//! slot to slot 0; a forward move takes the head's last entry, so a walker
//! that already read the source reads the hole after it), then its `more`
//! link, and
//!
//! * restarts when `more` is 0: the descriptor is being initialised for a
//!   new owner (seed case 3.b);
//! * restarts when the chain ends on a nulls marker of *another* rmap: the
//!   descriptor it stood on was reused elsewhere (seed case 3.c.2);
//! * re-reads the head on every restart (a compiler that keeps the head in
//!   a register across the restart is Linux commit c87a124a5d5e; here the
//!   head is an atomic loaded inside the restart loop);
//! * write-protects each spte it read with a cmpxchg that clears W and keeps
//!   MMU_WRITABLE, racing fast page faults on equal terms.
//!
//! # The seed's case analysis, and where each case is checked
//!
//! The loom models in `impls/tests/loom.rs` run a walker against a writer
//! script for each case; the concurrent stress test in
//! `impls/tests/stress.rs` runs them all at random.
//!
//! | seed case | what happens | model |
//! |---|---|---|
//! | 1 | a descriptor the walker passed is deleted | `case_1_deleted_behind_walker` |
//! | 2 | a descriptor ahead of the walker is deleted | `case_2_deleted_ahead_of_walker` |
//! | 3.a | the walker's descriptor is deleted, not reused | `case_3a_deleted_under_walker` |
//! | 3.b | ... reused, being initialised (`more` is 0) | `case_3b_reused_while_initialising` |
//! | 3.c.1 | ... re-added to the same rmap at the head | `case_3c1_readded_to_same_rmap` |
//! | 3.c.2 | ... added to another rmap | `case_3c2_moved_to_other_rmap` |
//! | 3.c.3 | moved to another rmap and back (Gleb) | `case_3c3_moved_away_and_back` |
//! | - | an entry moved under the walker (forward move) | `entry_moved_under_walker` |
//! | - | recycled into the same rmap through the single-spte form | `recycled_through_single_form` |
//! | - | a single-form rmap's last descriptor reused by another rmap | `single_form_reused_elsewhere` |
//!
//! # The flaw (`lockless`), and the repair (`lockless-gen`)
//!
//! Case 3.c.1 does not hold. The seed argues that a descriptor re-added to
//! the walker's own rmap "acts as the head desc, then we will walk all
//! entries". But the walker does not go back to the head: it is *on* the
//! descriptor, and when it reads `more` it finds its own rmap's nulls and
//! stops, with everything that used to follow the descriptor unvisited. The
//! model checker finds it (`desc_ext` 2, spte `v` present throughout; the
//! loom model `lockless::recycled_through_single_form` reports exactly this
//! trace, and finds no other script that breaks `lockless`):
//!
//! ```text
//!   rmap R = [D: x y] -> [E: v w] -> nulls(R);  rmap Q = one spte a
//!   walker                          writer (holds mmu_lock)
//!   head(R) = D, read D.slot1 = y
//!   read D.slot0 = x
//!                                   remove x: y moves to D.slot0
//!                                   remove y: D empty, head(R) = E, free D
//!                                   remove w: R = {v}, single form, free E
//!                                   add b to Q: Q = [E: a b], reuses E
//!                                   add u to R: R = [D: v u] -> nulls(R),
//!                                               reuses D, copies v in
//!   read D.more = nulls(R): "my own end", stop
//!   v was present all along and was not visited: its W bit survives the
//!   round and the next writes through it are never logged.
//! ```
//!
//! `lockless-gen` gives every descriptor a sequence count, odd while a
//! writer sets it up (`DescPool::alloc` .. `DescPool::publish`). The walker
//! reads the count (Acquire) before the slots and again after `more`, and
//! accepts the descriptor's slots and link only when both reads are the same
//! even value; otherwise it restarts (reason `desc-seq`). In the trace above
//! D's count moved from even `s` to `s + 2` between the walker's two reads.
//! Weaker repairs fail under the checker (see DESIGN.md §1).
//!
//! # Memory ordering
//!
//! Every store a walker may read (head, slots, `more`, `seq`) is Release and
//! every walker load is Acquire: a walker that observes any store of a
//! writer's update observes everything the writer did before it. On x86
//! both are plain moves; the orderings are for the compiler and for loom.

use crate::chain::{self, DirectHead};
use crate::desc::{decode_head, decode_more, slot_entry, DescPool, Head, More, MAX_DESC_EXT};
use crate::lock::{LockKind, MmuLock};
use crate::observer::Observer;
use crate::primitive::{spin_hint, AtomicUsize, Ordering};
use crate::rmap::{MapOutcome, RestartReason, Rmap, WalkStats};
use crate::spte::{is_present, Gfn, SlotId, SpteTable};
use crate::Bug;
use std::ops::Range;

/// Bug codes for the const generic `BUG` parameter, so that a correct build
/// compiles none of the broken branches.
pub(crate) mod bug {
    pub const NONE: u8 = 0;
    pub const BACKWARD_MOVE: u8 = 1;
    pub const NO_NULLS_CHECK: u8 = 2;
    pub const TOP_DOWN_WALK: u8 = 3;
    pub const STALE_HEAD_RESTART: u8 = 4;
    pub const SEQ_NO_RETRY: u8 = 5;
    /// Not a bug but an experiment (DESIGN.md §1, open question): read a
    /// descriptor's `more` link *before* its slots, without a sequence
    /// count. Only [`super::LocklessMoreFirst`] uses it; `tests/loom.rs`
    /// shows that it does not close the hole.
    pub const MORE_FIRST: u8 = 6;
}

/// Restarts after which a `stale-head-restart` walker gives up: restarting
/// from a stale head can loop forever on a descriptor now owned by another
/// rmap. Correct walkers have no limit, like the kernel's.
const STALE_HEAD_LIMIT: u64 = 1000;

/// The nulls-list rmap. `GEN` adds the per-descriptor sequence check;
/// `BUG` selects an injected walker bug ([`bug`]).
pub struct NullsRmap<const GEN: bool, const BUG: u8> {
    heads: Box<[AtomicUsize]>,
    pool: DescPool,
    mmu_lock: MmuLock,
}

/// The seed's design, flaw included.
pub type Lockless = NullsRmap<false, { bug::NONE }>;
/// The repaired design.
pub type LocklessGen = NullsRmap<true, { bug::NONE }>;
/// The open question of DESIGN.md §1: the faithful walker, but reading each
/// descriptor's `more` link before its slots. For the model checker only;
/// not reachable from [`crate::build`].
pub type LocklessMoreFirst = NullsRmap<false, { bug::MORE_FIRST }>;

impl<const GEN: bool, const BUG: u8> NullsRmap<GEN, BUG> {
    pub fn new(gfns: u64, desc_ext: usize, lock: LockKind, page_descs: usize) -> Self {
        NullsRmap {
            heads: (0..gfns).map(|_| AtomicUsize::new(0)).collect(),
            pool: DescPool::new(desc_ext, page_descs),
            mmu_lock: MmuLock::new(lock),
        }
    }

    /// Loom models only (DESIGN.md §1, open question): defer the reuse of
    /// freed descriptors until no walker is pinned, instead of handing them
    /// out at once. See `desc.rs`.
    #[cfg(loom)]
    pub fn with_deferred_reuse(mut self) -> Self {
        self.pool.defer_reuse();
        self
    }

    pub fn lock_kind(&self) -> LockKind {
        self.mmu_lock.kind()
    }

    fn add(&self, gfn: Gfn, slot: SlotId) {
        let h = DirectHead(&self.heads[gfn as usize]);
        if BUG == bug::BACKWARD_MOVE {
            chain::tail_add(&self.pool, &h, gfn, slot)
        } else {
            chain::head_add(&self.pool, &h, gfn, slot)
        }
    }

    fn remove(&self, gfn: Gfn, slot: SlotId) -> bool {
        let h = DirectHead(&self.heads[gfn as usize]);
        if BUG == bug::BACKWARD_MOVE {
            chain::tail_remove(&self.pool, &h, slot, true)
        } else {
            chain::head_remove(&self.pool, &h, gfn, slot)
        }
    }

    /// The lockless walk of rmap `gfn`. The caller holds an epoch guard.
    fn walk_nulls(&self, gfn: Gfn, f: &mut impl FnMut(SlotId)) -> WalkStats {
        let head = &self.heads[gfn as usize];
        let ext = self.pool.desc_ext();
        let mut stats = WalkStats {
            walks: 1,
            ..WalkStats::default()
        };
        let mut buf = [0usize; MAX_DESC_EXT];
        // Acquire: pairs with the Release head store of `chain::*_add` and
        // `*_remove`; the descriptor the head names is fully set up.
        let cached_head = head.load(Ordering::Acquire);
        'restart: loop {
            let v = if BUG == bug::STALE_HEAD_RESTART {
                if stats.total_restarts() >= STALE_HEAD_LIMIT {
                    stats.restart(RestartReason::Limit);
                    return stats;
                }
                cached_head
            } else if stats.total_restarts() == 0 {
                cached_head
            } else {
                // Acquire: as above. Re-read on every restart.
                head.load(Ordering::Acquire)
            };
            let mut d = match decode_head(v) {
                Head::Empty => return stats,
                Head::One(s) => {
                    stats.visited += 1;
                    f(s);
                    return stats;
                }
                Head::Desc(d) => d,
            };
            loop {
                let seq = if GEN {
                    // Acquire: pairs with the Release in `DescPool::publish`
                    // (an even count means the setup's stores are visible).
                    let seq = d.seq().load(Ordering::Acquire);
                    if seq & 1 == 1 && BUG != bug::SEQ_NO_RETRY {
                        stats.restart(RestartReason::DescSeq);
                        spin_hint();
                        continue 'restart;
                    }
                    seq
                } else {
                    0
                };
                let more_first = if BUG == bug::MORE_FIRST {
                    // Acquire: as for `more` below.
                    d.more().load(Ordering::Acquire)
                } else {
                    0
                };
                let mut n = 0;
                for k in 0..ext {
                    let i = if BUG == bug::TOP_DOWN_WALK {
                        k
                    } else {
                        ext - 1 - k
                    };
                    // Acquire: pairs with the Release slot stores of the
                    // writer; reading a cleared source of a forward move
                    // implies reading its filled hole later in this walk.
                    buf[n] = d.slot(i).load(Ordering::Acquire);
                    n += (buf[n] != 0) as usize;
                }
                let more = if BUG == bug::MORE_FIRST {
                    more_first
                } else {
                    // Acquire: pairs with the Release stores of `more` (link,
                    // nulls) and with the 0 stored by `DescPool::alloc`.
                    d.more().load(Ordering::Acquire)
                };
                if GEN && BUG != bug::SEQ_NO_RETRY {
                    // Acquire (and after the Acquire loads above in program
                    // order): if any of them read a store of a new setup,
                    // this load sees that setup's odd count or later.
                    if d.seq().load(Ordering::Acquire) != seq {
                        stats.restart(RestartReason::DescSeq);
                        spin_hint();
                        continue 'restart;
                    }
                }
                for &e in &buf[..n] {
                    if let Some(s) = slot_entry(e) {
                        stats.visited += 1;
                        f(s);
                    }
                }
                match decode_more(more) {
                    More::Next(next) => d = next,
                    More::Nulls(g) if g == gfn || BUG == bug::NO_NULLS_CHECK => return stats,
                    More::Nulls(_) => {
                        stats.restart(RestartReason::ForeignNulls);
                        spin_hint();
                        continue 'restart;
                    }
                    More::Init => {
                        stats.restart(RestartReason::DescInit);
                        spin_hint();
                        continue 'restart;
                    }
                }
            }
        }
    }
}

impl<const GEN: bool, const BUG: u8> Rmap for NullsRmap<GEN, BUG> {
    fn name(&self) -> &'static str {
        if GEN {
            "lockless-gen"
        } else {
            "lockless"
        }
    }

    fn map(
        &self,
        sptes: &SpteTable,
        gfn: Gfn,
        slot: SlotId,
        spte: u64,
        obs: &mut dyn Observer,
    ) -> MapOutcome {
        let g = self.mmu_lock.lock(obs);
        let out = if is_present(sptes.load(slot)) {
            MapOutcome::AlreadyPresent
        } else {
            sptes.install(slot, spte);
            self.add(gfn, slot);
            MapOutcome::Mapped
        };
        self.mmu_lock.unlock(g, obs);
        out
    }

    fn unmap(&self, sptes: &SpteTable, gfn: Gfn, slot: SlotId, obs: &mut dyn Observer) -> bool {
        let g = self.mmu_lock.lock(obs);
        let present = is_present(sptes.clear(slot));
        if present {
            let found = self.remove(gfn, slot);
            debug_assert!(found, "present spte missing from rmap {gfn}");
        }
        self.mmu_lock.unlock(g, obs);
        present
    }

    fn zap(&self, sptes: &SpteTable, gfns: Range<Gfn>, obs: &mut dyn Observer) -> u64 {
        let g = self.mmu_lock.lock(obs);
        let mut n = 0;
        for gfn in gfns {
            // Relaxed: we hold mmu_lock, heads only change under it.
            while let Some(s) = chain::first_entry(self.heads[gfn as usize].load(Ordering::Relaxed))
            {
                sptes.clear(s);
                self.remove(gfn, s);
                n += 1;
            }
        }
        self.mmu_lock.unlock(g, obs);
        n
    }

    fn write_protect(&self, sptes: &SpteTable, gfns: &[Gfn], obs: &mut dyn Observer) -> WalkStats {
        let _guard = self.pool.pin();
        let mut total = WalkStats::default();
        for &gfn in gfns {
            let mut protected = 0;
            let mut st = self.walk_nulls(gfn, &mut |s| protected += sptes.write_protect(s) as u64);
            st.protected = protected;
            obs.gfn_walked(gfn, &st);
            total.add(&st);
        }
        total
    }

    fn walk(&self, gfn: Gfn, f: &mut dyn FnMut(SlotId)) -> WalkStats {
        let _guard = self.pool.pin();
        self.walk_nulls(gfn, &mut |s| f(s))
    }

    #[cfg(not(loom))]
    fn reclaim(&self) {
        self.pool.reclaim();
    }

    fn descs_in_use(&self) -> usize {
        self.pool.in_use()
    }
}

/// Build the `lockless` family member for `gen` and `bug`.
pub(crate) fn build(
    gen: bool,
    bug: Option<Bug>,
    gfns: u64,
    desc_ext: usize,
    lock: LockKind,
    page_descs: usize,
) -> Box<dyn Rmap> {
    macro_rules! mk {
        ($g:expr, $b:expr) => {
            Box::new(NullsRmap::<$g, { $b }>::new(
                gfns, desc_ext, lock, page_descs,
            ))
        };
    }
    match (gen, bug) {
        (false, None) => mk!(false, bug::NONE),
        (true, None) => mk!(true, bug::NONE),
        (false, Some(Bug::BackwardMove)) => mk!(false, bug::BACKWARD_MOVE),
        (true, Some(Bug::BackwardMove)) => mk!(true, bug::BACKWARD_MOVE),
        (false, Some(Bug::NoNullsCheck)) => mk!(false, bug::NO_NULLS_CHECK),
        (true, Some(Bug::NoNullsCheck)) => mk!(true, bug::NO_NULLS_CHECK),
        (false, Some(Bug::TopDownWalk)) => mk!(false, bug::TOP_DOWN_WALK),
        (true, Some(Bug::TopDownWalk)) => mk!(true, bug::TOP_DOWN_WALK),
        (false, Some(Bug::StaleHeadRestart)) => mk!(false, bug::STALE_HEAD_RESTART),
        (true, Some(Bug::StaleHeadRestart)) => mk!(true, bug::STALE_HEAD_RESTART),
        (_, Some(Bug::SeqNoRetry)) => mk!(true, bug::SEQ_NO_RETRY),
        // Workload-level bugs do not change the rmap.
        (false, Some(_)) => mk!(false, bug::NONE),
        (true, Some(_)) => mk!(true, bug::NONE),
    }
}
