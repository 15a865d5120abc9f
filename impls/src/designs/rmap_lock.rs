//! `rmap-lock`: Linux 6.15's answer for lockless aging, applied to the
//! dirty-log write-protect. Bit 1 of the rmap head is a lock bit.
//!
//! * lock: spin (with a pause) while the bit is set, then cmpxchg it on with
//!   Acquire; an *empty* rmap is never locked (there is nothing to protect,
//!   and a writer that fills it publishes the new head with the unlock
//!   store);
//! * unlock: a Release store of the new head value, which also publishes
//!   everything the holder changed;
//! * writers hold `mmu_lock` *and* the rmap lock, and use the head
//!   discipline of `chain.rs`;
//! * the write-protect walker holds only the rmap lock: it never waits for
//!   `mmu_lock`, but it does wait for (and block) writers of the same gfn.
//!
//! Under the lock the chain is stable, so the walk reads it like the
//! `mmu-lock` design does. Descriptors still come from the shared pool;
//! nobody reads them without the lock, so type stability is not needed
//! here, only inherited.

use crate::chain::{self, HeadCell, PendingHead};
use crate::desc::{DescPool, HEAD_LOCK};
use crate::lock::{LockKind, MmuLock};
use crate::observer::Observer;
use crate::primitive::{spin_hint, AtomicUsize, Ordering};
use crate::rmap::{MapOutcome, Rmap, WalkStats};
use crate::spte::{is_present, Gfn, SlotId, SpteTable};
use std::ops::Range;

pub struct RmapLockRmap {
    heads: Box<[AtomicUsize]>,
    pool: DescPool,
    mmu_lock: MmuLock,
}

impl RmapLockRmap {
    pub fn new(gfns: u64, desc_ext: usize, lock: LockKind, page_descs: usize) -> Self {
        RmapLockRmap {
            heads: (0..gfns).map(|_| AtomicUsize::new(0)).collect(),
            pool: DescPool::new(desc_ext, page_descs),
            mmu_lock: MmuLock::new(lock),
        }
    }

    /// `kvm_rmap_lock`: returns the head value without the lock bit; 0 means
    /// the rmap was empty and was *not* locked.
    #[inline]
    fn rmap_lock(&self, gfn: Gfn) -> usize {
        let head = &self.heads[gfn as usize];
        // Relaxed: a hint; the cmpxchg below is what synchronises.
        let mut old = head.load(Ordering::Relaxed);
        loop {
            if old == 0 {
                return 0;
            }
            if old & HEAD_LOCK != 0 {
                spin_hint();
                // Relaxed: as above.
                old = head.load(Ordering::Relaxed);
                continue;
            }
            // Acquire: pairs with the Release store in `rmap_unlock` of the
            // previous holder (or the writer that filled an empty rmap).
            match head.compare_exchange_weak(
                old,
                old | HEAD_LOCK,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return old,
                Err(now) => old = now,
            }
        }
    }

    /// `kvm_rmap_unlock`: publish `new` (lock bit clear).
    #[inline]
    fn rmap_unlock(&self, gfn: Gfn, new: usize) {
        debug_assert!(new & HEAD_LOCK == 0);
        // Release: pairs with the Acquire cmpxchg of the next locker.
        self.heads[gfn as usize].store(new, Ordering::Release);
    }

    /// Run `change` on rmap `gfn` with its lock held (the caller holds
    /// `mmu_lock`), publishing the new head on unlock.
    fn locked<R>(&self, gfn: Gfn, change: impl FnOnce(&PendingHead) -> R) -> R {
        let h = PendingHead::new(self.rmap_lock(gfn));
        let r = change(&h);
        self.rmap_unlock(gfn, h.value());
        r
    }
}

impl Rmap for RmapLockRmap {
    fn name(&self) -> &'static str {
        "rmap-lock"
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
            self.locked(gfn, |h| chain::head_add(&self.pool, h, gfn, slot));
            MapOutcome::Mapped
        };
        self.mmu_lock.unlock(g, obs);
        out
    }

    fn unmap(&self, sptes: &SpteTable, gfn: Gfn, slot: SlotId, obs: &mut dyn Observer) -> bool {
        let g = self.mmu_lock.lock(obs);
        let present = is_present(sptes.clear(slot));
        if present {
            self.locked(gfn, |h| chain::head_remove(&self.pool, h, gfn, slot));
        }
        self.mmu_lock.unlock(g, obs);
        present
    }

    fn zap(&self, sptes: &SpteTable, gfns: Range<Gfn>, obs: &mut dyn Observer) -> u64 {
        let g = self.mmu_lock.lock(obs);
        let mut n = 0;
        for gfn in gfns {
            n += self.locked(gfn, |h| {
                let mut n = 0;
                while let Some(s) = chain::first_entry(h.get()) {
                    sptes.clear(s);
                    chain::head_remove(&self.pool, h, gfn, s);
                    n += 1;
                }
                n
            });
        }
        self.mmu_lock.unlock(g, obs);
        n
    }

    fn write_protect(&self, sptes: &SpteTable, gfns: &[Gfn], obs: &mut dyn Observer) -> WalkStats {
        let mut total = WalkStats::default();
        for &gfn in gfns {
            let mut protected = 0;
            let st = WalkStats {
                walks: 1,
                visited: self
                    .walk_rmap_locked(gfn, &mut |s| protected += sptes.write_protect(s) as u64),
                protected: 0,
                restarts: [0; 5],
            };
            let st = WalkStats { protected, ..st };
            obs.gfn_walked(gfn, &st);
            total.add(&st);
        }
        total
    }

    fn walk(&self, gfn: Gfn, f: &mut dyn FnMut(SlotId)) -> WalkStats {
        WalkStats {
            walks: 1,
            visited: self.walk_rmap_locked(gfn, f),
            ..WalkStats::default()
        }
    }

    #[cfg(not(loom))]
    fn reclaim(&self) {
        self.pool.reclaim();
    }

    fn descs_in_use(&self) -> usize {
        self.pool.in_use()
    }
}

impl RmapLockRmap {
    fn walk_rmap_locked(&self, gfn: Gfn, f: &mut dyn FnMut(SlotId)) -> u64 {
        let v = self.rmap_lock(gfn);
        if v == 0 {
            return 0;
        }
        let n = chain::walk_locked(v, self.pool.desc_ext(), f);
        self.rmap_unlock(gfn, v);
        n
    }
}
