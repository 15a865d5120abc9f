//! `lockless`, `lockless-gen` and `lockless-6.4`: rmap walks without
//! `mmu_lock`, over a nulls-terminated chain of type-stable descriptors (the
//! 2013 series "KVM: MMU: locklessly write-protect", its patch 09/12
//! "introduce pte-list lockless walker"; the crate docs summarise its review
//! thread). `lockless-6.4` is `lockless`'s walker, unchanged, over Linux
//! 6.4's chain discipline instead of the series' (`chain.rs`).
//!
//! # The algorithm
//!
//! **Writers** (add, remove, zap) still take `mmu_lock`, so they never race
//! each other; they write the head word directly and follow the head
//! discipline (`chain.rs`): a new descriptor goes to the head, only the head
//! may be non-full, remove fills its hole from the head descriptor ("forward
//! move"), and an rmap left with one spte returns to the single form. Every
//! chain ends in a *nulls* marker `(gfn << 2) | 1` that names its own rmap.
//!
//! **Walkers** (the dirty-log write-protect) take no lock: an epoch guard
//! (the RCU read section) keeps pool pages from being freed, nothing keeps a
//! descriptor from being freed and reused at once, for any rmap. A walker
//! reads the head, then each descriptor's slots *bottom-up* (from the last
//! slot to slot 0; a forward move takes the head's last entry, so a walker
//! that already read the source reads the hole after it), then its `more`
//! link, visits what it read, and follows the link. One pass ends at its own
//! rmap's nulls; every other ending starts the walk again from a head read
//! again:
//!
//! * `more` is 0: the descriptor is being initialised for a new owner (seed
//!   case 3.b);
//! * a nulls marker of *another* rmap: the descriptor the walker stood on
//!   was reused elsewhere (seed case 3.c.2). The lab's nulls names the gfn
//!   (`(gfn << 2) | 1`); the series used the address of the rmap head,
//!   which names the same rmap. The series also argued that a nulls cannot
//!   be reused during a walk because memslot changes and `GET_DIRTY_LOG`
//!   are serialised by the slots lock; the lab's memslot never changes, so
//!   that argument is not modelled;
//! * (`lockless-gen`) the descriptor's sequence count was odd, or moved
//!   while its slots and link were read.
//!
//! Write-protect clears W by cmpxchg, keeping MMU_WRITABLE, racing fast page
//! faults on equal terms. `Nulls::walk` is that walker, written once; the
//! injected bugs are the named `Deviation`s, each confined to the one step
//! it changes.
//!
//! # The flaw and the repair
//!
//! The faithful walker misses an spte when the descriptor it stands on is
//! recycled into its own rmap through the single-spte form: the
//! counterexample is written out in the crate docs ("The counterexample").
//! `lockless-gen` gives every descriptor a sequence count, odd while a writer
//! sets it up (`DescPool::alloc` .. `DescPool::publish`), and the walker
//! accepts a descriptor's slots and link only when it read the same even
//! count before the slots and after the link.
//!
//! # Over Linux 6.4's chain
//!
//! The same walker over Linux 6.4's discipline (`lockless-6.4`, or any
//! nulls design with `--chain 6.4`) misses nothing: the model checker finds
//! no interleaving that breaks the walk guarantee on any script, the
//! recycling ones included, without a bound. The argument is in the crate
//! docs ("KVM today"): under 6.4 no entry ever moves into a descriptor from
//! another one, and a descriptor joins a non-empty rmap only as a new head
//! in front of the whole chain, so a recycled descriptor can neither carry
//! an entry the walker skipped nor end the walk early.
//!
//! # Memory ordering
//!
//! Every store a walker may read (head, slots, `more`, `seq`) is Release and
//! every walker load is Acquire: a walker that observes any store of a
//! writer's update observes everything the writer did before it. On x86
//! both are plain moves; the orderings are for the compiler and for loom.
//! This is the series with its barriers as its review asked for them, not
//! as posted: the posted patch ordered the head store with an `smp_wmb` it
//! wrote by hand (and, by its author's own account in the thread, forgot
//! when publishing an empty descriptor) and read the head with
//! `ACCESS_ONCE` and `smp_read_barrier_depends`; Gleb Natapov asked for
//! `rcu_dereference` (and `rcu_assign_pointer`) instead. Release stores and
//! Acquire loads give at least that.

use super::chained::{Batch, ChainRmap, Chains, Direct, Walker};
use super::optimistic::{Deviation, GenerationOnce, HeadRecheck, MoreFirst, SlotBuf};
use crate::chain::{HeadChain, TailChain};
use crate::desc::{decode_head, slot_entry, DescRef, Head, More};
use crate::observer::Observer;
use crate::perturb::{PerturbPoint, Points, Unperturbed};
use crate::primitive::{spin_hint, AtomicUsize, Ordering};
use crate::rmap::{Rmap, RmapConfig};
use crate::spte::{Gfn, SlotId};
use crate::stats::{RestartReason, WalkStats};
use std::marker::PhantomData;

/// The nulls walker. `GEN` adds the per-descriptor sequence check; `D` is
/// the correct walker (`Correct`) or an injected bug.
pub(crate) struct Nulls<const GEN: bool, D>(PhantomData<D>);

/// The nulls-list rmap: `lockless` (`GEN` false) or `lockless-gen`, with
/// walker deviation `D` (the correct walker is `Correct`), over chain
/// discipline `C` (the series' head discipline, unless a twin says else),
/// with perturbation points `P` (none, unless a torture asks).
pub(crate) type NullsRmap<
    const GEN: bool,
    D,
    C = HeadChain,
    P = Unperturbed,
    const INSTALL_FIRST: bool = false,
> = ChainRmap<Nulls<GEN, D>, Direct, C, P, INSTALL_FIRST>;

/// The crate docs' open question: the faithful walker, reading each
/// descriptor's `more` link before its slots. For the model checker; not
/// reachable from [`crate::build`].
pub fn more_first(cfg: &RmapConfig) -> Box<dyn Rmap> {
    Box::new(NullsRmap::<false, MoreFirst>::new(cfg))
}

/// The weaker repairs of the flaw that the crate docs say fail ("The
/// counterexample"), for the model checker; not reachable from
/// [`crate::build`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeakerRepair {
    /// The faithful walker that, on reaching its own nulls, reads the head
    /// again and starts over if it changed since the pass began.
    HeadRecheck,
    /// `lockless-gen`'s count read as a generation bumped once per reuse:
    /// compared before the slots and after `more`, but a descriptor in
    /// setup (odd) is not told apart.
    GenerationOnce,
}

/// The walker of a weaker repair over the series' chains.
pub fn weaker_repair(repair: WeakerRepair, cfg: &RmapConfig) -> Box<dyn Rmap> {
    match repair {
        WeakerRepair::HeadRecheck => Box::new(NullsRmap::<false, HeadRecheck>::new(cfg)),
        WeakerRepair::GenerationOnce => Box::new(NullsRmap::<true, GenerationOnce>::new(cfg)),
    }
}

/// The nulls walker (`GEN` true: with `lockless-gen`'s count) over the
/// remove that KVM really had in 2013 (Linux 3.10's
/// `pte_list_desc_remove_entry`, the `mmu-lock` design's `TailChain`): adds
/// append at the tail, a remove fills its hole from the last entry of the
/// *same* descriptor, an emptied descriptor is unlinked wherever it is. For
/// the model checker (the crate docs, "What 2013 really did").
pub fn over_2013_remove(gen: bool, cfg: &RmapConfig) -> Box<dyn Rmap> {
    use super::Correct;
    if gen {
        Box::new(NullsRmap::<true, Correct, TailChain>::new(cfg))
    } else {
        Box::new(NullsRmap::<false, Correct, TailChain>::new(cfg))
    }
}

/// Loom models only (the crate docs' other open question): the faithful
/// design over a pool that hands a freed descriptor out again only once no
/// walker is pinned, and that grows no more once a walker has pinned
/// (`desc.rs`, "Deferred reuse"); `exhausted` says what an allocation does
/// when nothing but descriptors freed under a pinned walker is left.
#[cfg(loom)]
pub fn with_deferred_reuse(cfg: &RmapConfig, exhausted: crate::desc::Exhausted) -> Box<dyn Rmap> {
    Box::new(NullsRmap::<false, super::Correct>::new(cfg).with_deferred_reuse(exhausted))
}

/// Restarts after which a `stale-head-restart` walker gives up: restarting
/// from a stale head can loop forever on a descriptor now owned by another
/// rmap. Correct walkers have no limit, like the kernel's.
const STALE_HEAD_LIMIT: u64 = 100;

impl<const GEN: bool, D: Deviation> Walker<Direct> for Nulls<GEN, D> {
    const NAME: &'static str = if GEN { "lockless-gen" } else { "lockless" };
    const BATCH: Batch = Batch::Pinned;
    const READS_DESC_SEQ: bool = GEN;

    #[inline]
    fn walk(
        c: &Chains,
        _: &Direct,
        p: &impl Points,
        gfn: Gfn,
        f: &mut impl FnMut(SlotId),
        obs: &mut dyn Observer,
    ) -> WalkStats {
        let head = c.head(gfn);
        let mut stats = WalkStats::one_walk();
        let mut buf = SlotBuf::new();
        let first = Self::load_head(head);
        let mut from = first;
        // The one restart path: count the reason, tell the observer, pause,
        // start again from the head.
        loop {
            match Self::pass(c, gfn, from, p, &mut buf, f, &mut stats) {
                Ok(()) => return stats,
                Err(why) => stats.restart(why),
            }
            obs.walk_pass_failed();
            spin_hint();
            match Self::restart_head(head, first, &mut stats) {
                Some(h) => from = h,
                None => return stats,
            }
        }
    }
}

impl<const GEN: bool, D: Deviation> Nulls<GEN, D> {
    /// One pass over the chain from `head`: visit every entry up to the
    /// walker's own nulls, or say why the walk must start again.
    #[inline(always)]
    fn pass(
        c: &Chains,
        gfn: Gfn,
        head: Head,
        p: &impl Points,
        buf: &mut SlotBuf,
        f: &mut impl FnMut(SlotId),
        stats: &mut WalkStats,
    ) -> Result<(), RestartReason> {
        let mut d = match head {
            Head::Empty => return Ok(()),
            Head::One(s) => {
                stats.visited += 1;
                f(s);
                return Ok(());
            }
            Head::Desc(d) => d,
        };
        loop {
            p.at(PerturbPoint::WalkBetweenDescs);
            let seq = Self::seq_before(d)?;
            if GEN {
                p.at(PerturbPoint::WalkInDesc);
            }
            let more = Self::read_desc(c, d, p, buf);
            if GEN {
                p.at(PerturbPoint::WalkInDesc);
            }
            Self::seq_after(d, seq)?;
            buf.visit(stats, f);
            match more {
                More::Next(next) => d = next,
                More::Nulls(g) if Self::ends_walk(g, gfn) => {
                    return Self::head_unchanged(c.head(gfn), head)
                }
                More::Nulls(_) => return Err(RestartReason::ForeignNulls),
                More::Init => return Err(RestartReason::DescInit),
            }
        }
    }

    /// A weaker repair (`HeadRecheck`, the model checker's only): at its own
    /// nulls, the walker reads the head again and starts over when it is no
    /// longer the one the pass began from. Blind to ABA: the head may name
    /// the same descriptor again in a new life.
    #[inline(always)]
    fn head_unchanged(head: &AtomicUsize, began: Head) -> Result<(), RestartReason> {
        if D::RECHECKS_HEAD_AT_END && Self::load_head(head) != began {
            return Err(RestartReason::HeadMoved);
        }
        Ok(())
    }

    /// Read and decode the head. Acquire: pairs with the Release head store
    /// of the writer (`DirectHead::set`): the descriptor a head names was set
    /// up, its nulls stored, before the head was published.
    #[inline(always)]
    fn load_head(head: &AtomicUsize) -> Head {
        let v = head.load(Ordering::Acquire);
        // SAFETY: `v` was read from an rmap head, and the walker has been
        // pinned (`Batch::Pinned`) since before the load, which keeps every
        // descriptor it reaches from there allocated (`desc.rs`, "Type
        // stability").
        unsafe { decode_head(v) }
    }

    /// Where a restart starts: the head, read again. It is an atomic load
    /// inside the restart loop, which no compiler may hoist out of it (Linux
    /// commit c87a124a5d5e fixed a walker whose compiler kept the head in a
    /// register across the restart).
    /// `stale-head-restart` restarts from the head read before the first pass
    /// instead, and gives up (None) after [`STALE_HEAD_LIMIT`] restarts.
    #[inline(always)]
    fn restart_head(head: &AtomicUsize, first: Head, stats: &mut WalkStats) -> Option<Head> {
        if D::RESTARTS_FROM_STALE_HEAD {
            if stats.total_restarts() >= STALE_HEAD_LIMIT {
                stats.restart(RestartReason::Limit);
                return None;
            }
            return Some(first);
        }
        Some(Self::load_head(head))
    }

    /// Read descriptor `d`: its slots into `buf`, then its `more` link.
    /// Acquire on `more`: pairs with the Release stores of a link or a nulls
    /// (`chain.rs`) and of the 0 that `DescPool::alloc` stores.
    /// Between two of these loads the walker passes a perturbation point
    /// (`WalkInDesc`): the counterexample's window is the one between the
    /// last slot and `more`.
    #[inline(always)]
    fn read_desc(c: &Chains, d: DescRef, p: &impl Points, buf: &mut SlotBuf) -> More {
        if D::READS_MORE_FIRST {
            let more = d.next(Ordering::Acquire);
            p.at(PerturbPoint::WalkInDesc);
            Self::read_slots(c, d, p, buf);
            return more;
        }
        Self::read_slots(c, d, p, buf);
        p.at(PerturbPoint::WalkInDesc);
        d.next(Ordering::Acquire)
    }

    /// Read the slots of `d` bottom-up (`top-down-walk`: from slot 0 up).
    #[inline(always)]
    fn read_slots(c: &Chains, d: DescRef, p: &impl Points, buf: &mut SlotBuf) {
        buf.clear();
        let slots = c.pool.slots(d);
        let ext = slots.len();
        for k in 0..ext {
            if k > 0 {
                p.at(PerturbPoint::WalkInDesc);
            }
            let i = if D::READS_TOP_DOWN { k } else { ext - 1 - k };
            // Acquire: pairs with the writers' Release slot stores; having
            // read the cleared source of a forward move, the walker reads
            // the filled hole later in this walk.
            if let Some(s) = slot_entry(slots[i].load(Ordering::Acquire)) {
                buf.push(s);
            }
        }
    }

    /// `lockless-gen`: the descriptor's count before its slots. Odd means a
    /// writer is setting it up: start again. Acquire: pairs with the Release
    /// in `DescPool::publish`, so an even count makes that setup visible.
    #[inline(always)]
    fn seq_before(d: DescRef) -> Result<usize, RestartReason> {
        if !GEN {
            return Ok(0);
        }
        let seq = d.seq().load(Ordering::Acquire);
        if seq & 1 == 1 && !D::IGNORES_SEQ && !D::SEQ_IS_A_GENERATION {
            return Err(RestartReason::DescSeq);
        }
        Ok(seq)
    }

    /// `lockless-gen`: the count again, after the link. If a load above read
    /// a store of a later setup of `d` (a Release that follows that setup's
    /// odd count in its writer, read by an Acquire), this load, after it in
    /// program order, reads that odd count or a later one: start again.
    #[inline(always)]
    fn seq_after(d: DescRef, seq: usize) -> Result<(), RestartReason> {
        if !GEN || D::IGNORES_SEQ {
            return Ok(());
        }
        // Acquire, as every walker load (module doc): pairs with the Release
        // count stores of `DescPool::alloc` and `DescPool::publish`.
        if d.seq().load(Ordering::Acquire) != seq {
            return Err(RestartReason::DescSeq);
        }
        Ok(())
    }

    /// Whether a nulls marker of rmap `g` ends the walk of rmap `gfn`: only
    /// its own (`no-nulls-check`: any).
    #[inline(always)]
    fn ends_walk(g: Gfn, gfn: Gfn) -> bool {
        g == gfn || D::STOPS_AT_ANY_NULLS
    }
}
