//! Shadow page-table entries and the tables that hold them.
//!
//! The VM has `aliases` address spaces (guest page tables, think guest
//! processes), each with one spte slot per gfn of the memslot. A slot is a
//! stable `AtomicU64`: the rmap stores the slot's index ([`SlotId`]) the way
//! KVM's rmap stores a `u64 *sptep`.
//!
//! Every spte update that can race is an atomic: the fast page fault sets
//! `WRITABLE` with a cmpxchg and no lock, so the write-protect walk must clear
//! it with a cmpxchg too (a plain store could undo a concurrent fast fault's
//! `ACCESSED` update or resurrect a zapped spte).

use crate::primitive::{AtomicU64, Ordering};

/// Guest frame number: a 4 KiB page of guest-physical memory.
pub type Gfn = u64;

/// Index of an spte slot in a [`SpteTable`]: `alias * gfns + gfn`.
pub type SlotId = usize;

/// The spte maps a page.
pub const SPTE_PRESENT: u64 = 1 << 0;
/// The hardware W bit: writes go through without a fault.
pub const SPTE_WRITABLE: u64 = 1 << 1;
/// W may be restored by a fast page fault without `mmu_lock`
/// (dirty logging cleared W, the mapping itself allows writes).
pub const SPTE_MMU_WRITABLE: u64 = 1 << 2;
/// The guest touched the page since the bit was last cleared.
pub const SPTE_ACCESSED: u64 = 1 << 3;
const SPTE_GFN_SHIFT: u32 = 12;

/// Build the value of a present spte mapping `gfn`.
#[inline]
pub fn make_spte(gfn: Gfn, writable: bool) -> u64 {
    let mut spte = SPTE_PRESENT | SPTE_MMU_WRITABLE | SPTE_ACCESSED | (gfn << SPTE_GFN_SHIFT);
    if writable {
        spte |= SPTE_WRITABLE;
    }
    spte
}

#[inline]
pub fn spte_gfn(spte: u64) -> Gfn {
    spte >> SPTE_GFN_SHIFT
}

#[inline]
pub fn is_present(spte: u64) -> bool {
    spte & SPTE_PRESENT != 0
}

#[inline]
pub fn is_writable(spte: u64) -> bool {
    spte & SPTE_WRITABLE != 0
}

/// All spte slots of the VM: `aliases` address spaces of `gfns` slots each.
pub struct SpteTable {
    gfns: u64,
    aliases: u32,
    slots: Box<[AtomicU64]>,
}

impl SpteTable {
    pub fn new(gfns: u64, aliases: u32) -> Self {
        let n = gfns as usize * aliases as usize;
        let slots = (0..n).map(|_| AtomicU64::new(0)).collect();
        SpteTable {
            gfns,
            aliases,
            slots,
        }
    }

    pub fn gfns(&self) -> u64 {
        self.gfns
    }

    pub fn aliases(&self) -> u32 {
        self.aliases
    }

    #[inline]
    pub fn slot_id(&self, alias: u32, gfn: Gfn) -> SlotId {
        debug_assert!(alias < self.aliases && gfn < self.gfns);
        alias as usize * self.gfns as usize + gfn as usize
    }

    #[inline]
    pub fn gfn_of(&self, slot: SlotId) -> Gfn {
        (slot % self.gfns as usize) as Gfn
    }

    /// The spte slot itself, for the fault paths that cmpxchg it.
    #[inline]
    pub fn slot(&self, slot: SlotId) -> &AtomicU64 {
        &self.slots[slot]
    }

    /// Read an spte. Acquire: pairs with the Release in [`Self::install`] so
    /// that a vCPU that sees a present spte also sees the rmap add that the
    /// slow fault did before granting W (see `rmap-workloads`).
    #[inline]
    pub fn load(&self, slot: SlotId) -> u64 {
        self.slots[slot].load(Ordering::Acquire)
    }

    /// Install a new spte in an empty slot (slow fault, under the
    /// implementation's writer lock). Release: pairs with the Acquire in
    /// [`Self::load`].
    #[inline]
    pub fn install(&self, slot: SlotId, spte: u64) {
        self.slots[slot].store(spte, Ordering::Release);
    }

    /// Zap: make the spte not present, returning the old value. AcqRel: the
    /// swap orders against the fast fault's cmpxchg on the same slot (a
    /// cmpxchg that lost to the zap fails and refaults).
    #[inline]
    pub fn clear(&self, slot: SlotId) -> u64 {
        self.slots[slot].swap(0, Ordering::AcqRel)
    }

    /// Write-protect for dirty logging: clear W by cmpxchg, keep
    /// MMU_WRITABLE. Returns whether this call cleared W. AcqRel on success:
    /// the cleared W must be ordered before the remote TLB flush that the
    /// round performs next (the flush's own SeqCst accesses make it visible
    /// to every vCPU that enters guest mode afterwards).
    #[inline]
    pub fn write_protect(&self, slot: SlotId) -> bool {
        let cell = &self.slots[slot];
        let mut old = cell.load(Ordering::Acquire);
        loop {
            if old & SPTE_WRITABLE == 0 {
                return false;
            }
            match cell.compare_exchange_weak(
                old,
                old & !SPTE_WRITABLE,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => old = now,
            }
        }
    }

    /// Fast page fault: set W again on a present, write-protected,
    /// MMU-writable spte with one cmpxchg and no lock. Returns false when
    /// the spte changed under us (zapped, or another vCPU fixed it): the
    /// caller retries the access. AcqRel: pairs with the zap's swap and the
    /// walker's cmpxchg on the same slot.
    #[inline]
    pub fn fast_fault_fix(&self, slot: SlotId, seen: u64) -> bool {
        debug_assert!(is_present(seen) && seen & SPTE_MMU_WRITABLE != 0);
        self.slots[slot]
            .compare_exchange(
                seen,
                seen | SPTE_WRITABLE,
                Ordering::AcqRel,
                // Relaxed on failure: the value is dropped, the caller
                // retries the whole access.
                Ordering::Relaxed,
            )
            .is_ok()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn write_protect_keeps_mmu_writable_and_fast_fault_restores_w() {
        let t = SpteTable::new(8, 2);
        let s = t.slot_id(1, 5);
        assert_eq!(t.gfn_of(s), 5);
        t.install(s, make_spte(5, true));
        assert!(t.write_protect(s));
        let v = t.load(s);
        assert!(!is_writable(v) && v & SPTE_MMU_WRITABLE != 0 && spte_gfn(v) == 5);
        assert!(!t.write_protect(s), "second write-protect is a no-op");
        assert!(t.fast_fault_fix(s, v));
        assert!(is_writable(t.load(s)));
        assert!(!t.fast_fault_fix(s, v), "stale cmpxchg must fail");
        assert!(is_present(t.clear(s)));
        assert_eq!(t.load(s), 0);
    }
}
