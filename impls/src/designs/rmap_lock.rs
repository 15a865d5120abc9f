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
//! `mmu-lock` design does. Descriptors still come from the shared pool;
//! nobody reads them without the lock, so type stability is not needed
//! here, only inherited.

use super::chained::{Batch, ChainRmap, Chains, Section, Walker};
use crate::chain::{walk_locked, Chain64, PendingHead};
use crate::desc::{decode_head, HEAD_LOCK};
use crate::primitive::{spin_hint, AtomicUsize, Ordering};
use crate::spte::{Gfn, SlotId};
use crate::stats::WalkStats;

/// `rmap-lock` over chain discipline `C`: Linux 6.4's, as KVM 6.15's rmap
/// lock protects, unless `--chain 2013` asks for the series' head
/// discipline.
pub(crate) type RmapLockRmap<C = Chain64> = ChainRmap<UnderRmapLock, RmapLockBit, C>;

/// `kvm_rmap_lock`: returns the head value without the lock bit; 0 means
/// the rmap was empty and was *not* locked.
#[inline]
fn rmap_lock(head: &AtomicUsize) -> usize {
    let mut old = head.load(Ordering::Relaxed);
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
            Ok(_) => return old,
            Err(now) => old = now,
        }
    }
}

/// `kvm_rmap_unlock`: publish `new` (lock bit clear).
#[inline]
fn rmap_unlock(head: &AtomicUsize, new: usize) {
    debug_assert!(new & HEAD_LOCK == 0);
    // Release: pairs with the Acquire cmpxchg in `rmap_lock` of the next
    // holder.
    head.store(new, Ordering::Release);
}

/// The writer's section: the rmap lock, held while the chain changes.
pub(crate) struct RmapLockBit;

impl Section for RmapLockBit {
    /// The head's new value, published by the unlock (readers spin on the
    /// lock bit meanwhile).
    type Cell<'a> = PendingHead;
    /// The head word, to unlock.
    type Open<'a> = &'a AtomicUsize;

    fn new(_gfns: u64) -> Self {
        RmapLockBit
    }

    fn open<'a>(&'a self, head: &'a AtomicUsize, _gfn: Gfn) -> (PendingHead, &'a AtomicUsize) {
        (PendingHead::new(rmap_lock(head)), head)
    }

    fn close(&self, cell: PendingHead, head: &AtomicUsize) {
        rmap_unlock(head, cell.value());
    }
}

/// A walker that holds one rmap's lock at a time, and nothing across a batch.
pub(crate) struct UnderRmapLock;

impl Walker<RmapLockBit> for UnderRmapLock {
    const NAME: &'static str = "rmap-lock";
    const BATCH: Batch = Batch::Nothing;

    fn walk(c: &Chains, _: &RmapLockBit, gfn: Gfn, f: &mut impl FnMut(SlotId)) -> WalkStats {
        let head = c.head(gfn);
        let v = rmap_lock(head);
        let mut stats = WalkStats::one_walk();
        if v != 0 {
            // SAFETY: read from an rmap head by taking its lock, which every
            // writer of the head holds: the chain is in use until we unlock.
            stats.visited = walk_locked(&c.pool, unsafe { decode_head(v) }, f);
            rmap_unlock(head, v);
        }
        stats
    }
}
