//! `mmu-lock`: KVM in 2013. Every add, remove and walk runs under the one
//! VM-wide `mmu_lock`; chains follow the *tail* discipline of `chain.rs`
//! (append at the tail, fill a hole from the same descriptor). The dirty-log
//! round holds the lock across a whole batch of gfns (`--wp-batch`; by
//! default the whole harvest, as `kvm_vm_ioctl_get_dirty_log` did), so every
//! vCPU that faults meanwhile waits for the entire write-protect pass: the
//! scalability problem the lockless series set out to fix.

use crate::chain::{self, DirectHead};
use crate::desc::DescPool;
use crate::lock::{LockKind, MmuLock};
use crate::observer::{NoObserver, Observer};
use crate::primitive::{AtomicUsize, Ordering};
use crate::rmap::{MapOutcome, Rmap, WalkStats};
use crate::spte::{is_present, Gfn, SlotId, SpteTable};
use std::ops::Range;

pub struct MmuLockRmap {
    heads: Box<[AtomicUsize]>,
    pool: DescPool,
    mmu_lock: MmuLock,
}

impl MmuLockRmap {
    pub fn new(gfns: u64, desc_ext: usize, lock: LockKind, page_descs: usize) -> Self {
        MmuLockRmap {
            heads: (0..gfns).map(|_| AtomicUsize::new(0)).collect(),
            pool: DescPool::new(desc_ext, page_descs),
            mmu_lock: MmuLock::new(lock),
        }
    }

    fn head(&self, gfn: Gfn) -> DirectHead<'_> {
        DirectHead(&self.heads[gfn as usize])
    }

    /// Visit rmap `gfn`; the caller holds `mmu_lock`.
    fn walk_held(&self, gfn: Gfn, f: &mut dyn FnMut(SlotId)) -> WalkStats {
        // Relaxed: heads and chains only change under mmu_lock, which we hold.
        let v = self.heads[gfn as usize].load(Ordering::Relaxed);
        WalkStats {
            walks: 1,
            visited: chain::walk_locked(v, self.pool.desc_ext(), f),
            ..WalkStats::default()
        }
    }
}

impl Rmap for MmuLockRmap {
    fn name(&self) -> &'static str {
        "mmu-lock"
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
            chain::tail_add(&self.pool, &self.head(gfn), gfn, slot);
            MapOutcome::Mapped
        };
        self.mmu_lock.unlock(g, obs);
        out
    }

    fn unmap(&self, sptes: &SpteTable, gfn: Gfn, slot: SlotId, obs: &mut dyn Observer) -> bool {
        let g = self.mmu_lock.lock(obs);
        let present = is_present(sptes.clear(slot));
        if present {
            chain::tail_remove(&self.pool, &self.head(gfn), slot, false);
        }
        self.mmu_lock.unlock(g, obs);
        present
    }

    fn zap(&self, sptes: &SpteTable, gfns: Range<Gfn>, obs: &mut dyn Observer) -> u64 {
        let g = self.mmu_lock.lock(obs);
        let mut n = 0;
        for gfn in gfns {
            let h = self.head(gfn);
            use chain::HeadCell;
            while let Some(s) = chain::first_entry(h.get()) {
                sptes.clear(s);
                chain::tail_remove(&self.pool, &h, s, false);
                n += 1;
            }
        }
        self.mmu_lock.unlock(g, obs);
        n
    }

    fn write_protect(&self, sptes: &SpteTable, gfns: &[Gfn], obs: &mut dyn Observer) -> WalkStats {
        let mut total = WalkStats::default();
        let g = self.mmu_lock.lock(obs);
        for &gfn in gfns {
            let mut protected = 0;
            let mut st = self.walk_held(gfn, &mut |s| protected += sptes.write_protect(s) as u64);
            st.protected = protected;
            obs.gfn_walked(gfn, &st);
            total.add(&st);
        }
        self.mmu_lock.unlock(g, obs);
        total
    }

    fn walk(&self, gfn: Gfn, f: &mut dyn FnMut(SlotId)) -> WalkStats {
        let g = self.mmu_lock.lock(&mut NoObserver);
        let st = self.walk_held(gfn, f);
        self.mmu_lock.unlock(g, &mut NoObserver);
        st
    }

    #[cfg(not(loom))]
    fn reclaim(&self) {
        self.pool.reclaim();
    }

    fn descs_in_use(&self) -> usize {
        self.pool.in_use()
    }
}
