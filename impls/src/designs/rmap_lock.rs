//! `rmap-lock`: Linux 6.15's answer for lockless aging ("KVM: x86/mmu: Age
//! sptes locklessly", `kvm_rmap_lock`), applied to the dirty-log
//! write-protect. Bit 1 of the rmap head is a lock bit.
//!
//! * lock: spin (with a pause) while the bit is set, then cmpxchg it on with
//!   Acquire; an *empty* rmap is never locked (there is nothing to protect,
//!   and a writer that fills it publishes the new head with the unlock
//!   store);
//! * unlock: a Release store of the new head value, which also publishes
//!   everything the holder changed;
//! * writers hold `mmu_lock` *and* the rmap lock (the section,
//!   `RmapLockBit`), and use Linux 6.4's chain discipline (`chain.rs`), as
//!   KVM 6.15 does (`--chain 2013`: the series' head discipline);
//! * the write-protect walker holds only the rmap lock: it never waits for
//!   `mmu_lock`, but it does wait for (and block) writers of the same gfn.
//!
//! Under the lock the chain is stable, so the walk reads it like the
//! `mmu-lock` design does.
//!
//! The observer hears of every bit lock taken, by writers (`open`, `close`)
//! and by the walker (`walk`): `rmap_lock_wait` once the rmap was found
//! non-empty, `rmap_lock_acquired` when the cmpxchg took the bit,
//! `rmap_lock_released` after the unlock store. Descriptors still come from the shared pool;
//! nobody reads them without the lock, so type stability is not needed
//! here, only inherited.

use super::chained::{Batch, ChainRmap, Chains, Section, Walker};
use crate::chain::{walk_locked, Chain64, PendingHead};
use crate::desc::{decode_head, HEAD_LOCK};
use crate::observer::Observer;
use crate::perturb::{PerturbPoint, Points, Unperturbed};
use crate::primitive::{spin_hint, AtomicUsize, Ordering};
use crate::spte::{Gfn, SlotId};
use crate::stats::WalkStats;

/// `rmap-lock` over chain discipline `C`: Linux 6.4's, as KVM 6.15's rmap
/// lock protects, unless `--chain 2013` asks for the series' head
/// discipline; with perturbation points `P`.
pub(crate) type RmapLockRmap<C = Chain64, P = Unperturbed, const INSTALL_FIRST: bool = false> =
    ChainRmap<UnderRmapLock, RmapLockBit, C, P, INSTALL_FIRST>;

/// `kvm_rmap_lock`: returns the head value without the lock bit; 0 means
/// the rmap was empty and was *not* locked. Reports the wait (unless the
/// rmap is empty at once) and the acquisition to `obs`.
#[inline]
fn rmap_lock(head: &AtomicUsize, gfn: Gfn, obs: &mut dyn Observer) -> usize {
    let mut old = head.load(Ordering::Relaxed);
    if old != 0 {
        obs.rmap_lock_wait(gfn);
    }
    loop {
        if old == 0 {
            return 0;
        }
        if old & HEAD_LOCK != 0 {
            spin_hint();
            old = head.load(Ordering::Relaxed);
            continue;
        }
        // Acquire: pairs with the Release store in `rmap_unlock` of the
        // previous holder (or of the writer that filled an empty rmap).
        match head.compare_exchange_weak(old, old | HEAD_LOCK, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => {
                obs.rmap_lock_acquired();
                return old;
            }
            Err(now) => old = now,
        }
    }
}

/// `kvm_rmap_unlock`: publish `new` (lock bit clear). `locked` says whether
/// `rmap_lock` took the bit (it did not for an empty rmap); only then is the
/// release reported to `obs`.
#[inline]
fn rmap_unlock(head: &AtomicUsize, new: usize, locked: bool, obs: &mut dyn Observer) {
    debug_assert!(new & HEAD_LOCK == 0);
    // Release: pairs with the Acquire cmpxchg in `rmap_lock` of the next
    // holder.
    head.store(new, Ordering::Release);
    if locked {
        obs.rmap_lock_released();
    }
}

/// The writer's section: the rmap lock, held while the chain changes.
pub(crate) struct RmapLockBit;

impl Section for RmapLockBit {
    /// The head's new value, published by the unlock (readers spin on the
    /// lock bit meanwhile).
    type Cell<'a> = PendingHead;
    /// The head word, to unlock, and whether the bit was taken (an empty
    /// rmap is not locked).
    type Open<'a> = (&'a AtomicUsize, bool);

    fn new(_gfns: u64) -> Self {
        RmapLockBit
    }

    fn open<'a>(
        &'a self,
        head: &'a AtomicUsize,
        gfn: Gfn,
        obs: &mut dyn Observer,
    ) -> (PendingHead, (&'a AtomicUsize, bool)) {
        let v = rmap_lock(head, gfn, obs);
        (PendingHead::new(v), (head, v != 0))
    }

    fn close(
        &self,
        cell: PendingHead,
        (head, locked): (&AtomicUsize, bool),
        obs: &mut dyn Observer,
    ) {
        rmap_unlock(head, cell.value(), locked, obs);
    }
}

/// A walker that holds one rmap's lock at a time, and nothing across a batch.
pub(crate) struct UnderRmapLock;

impl Walker<RmapLockBit> for UnderRmapLock {
    const NAME: &'static str = "rmap-lock";
    const BATCH: Batch = Batch::Nothing;

    fn walk(
        c: &Chains,
        _: &RmapLockBit,
        p: &impl Points,
        gfn: Gfn,
        f: &mut impl FnMut(SlotId),
        obs: &mut dyn Observer,
    ) -> WalkStats {
        let head = c.head(gfn);
        let v = rmap_lock(head, gfn, obs);
        let mut stats = WalkStats::one_walk();
        if v != 0 {
            p.at(PerturbPoint::WalkBetweenDescs);
            // SAFETY: read from an rmap head by taking its lock, which every
            // writer of the head holds: the chain is in use until we unlock.
            stats.visited = walk_locked(&c.pool, unsafe { decode_head(v) }, f);
            rmap_unlock(head, v, true, obs);
        }
        stats
    }
}
