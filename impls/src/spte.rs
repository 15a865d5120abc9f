//! Shadow page-table entries and the tables that hold them.
//!
//! The VM has `aliases` address spaces (guest page tables, think guest
//! processes), each with one spte slot per gfn of the memslot. A slot is a
//! stable `AtomicU64`: the rmap stores the slot's index ([`SlotId`]) the way
//! KVM's rmap stores a `u64 *sptep`.
//!
//! # Who changes what
//!
//! * Presence changes only under the writer lock of the spte's rmap
//!   (`mmu_lock`, or `concurrent-map`'s shard lock): [`SpteTable::install`]
//!   in a slow fault, [`SpteTable::clear`] in a zap.
//! * W changes without that lock: a fast page fault sets it
//!   ([`SpteTable::fast_fault_fix`]) and a write-protect walk clears it
//!   ([`SpteTable::write_protect`]), both by cmpxchg, so that neither undoes
//!   the other, nor a zap (a plain store could resurrect a zapped spte).
//! * Accessed changes without it too: a vCPU's access sets it as the CPU's
//!   page walk does with A/D bits ([`SpteTable::mark_accessed`], a cmpxchg
//!   on a present spte), aging clears it ([`SpteTable::test_and_clear_accessed`],
//!   an atomic AND, as Linux 6.15's `kvm_rmap_age_gfn_range` clears the bit
//!   with `clear_bit`). Every other update of the word is a cmpxchg or a
//!   swap, so none of them loses the bit or brings it back.
//!
//! # Memory ordering
//!
//! What each ordering below is for (the dirty-log protocol that relies on
//! them lives in `rmap-workloads`):
//!
//! * [`SpteTable::install`] is Release, paired with the vCPU's SeqCst read
//!   of its slot: a vCPU that sees a new spte sees what the slow fault did
//!   before installing it, its in-flight fault record in particular, which
//!   the migration oracle relies on to excuse a write that goes through the
//!   new spte before the gfn is marked dirty. It does *not* order the rmap
//!   add, which every design makes after the install; a walker sees the
//!   install because it read the rmap entry (stored Release after it) with
//!   an Acquire load, or under the writer's lock.
//! * [`SpteTable::write_protect`]'s cmpxchg is Release, paired with the
//!   Acquire of the [`SpteTable::fast_fault_fix`] that restores W: such a
//!   vCPU is ordered after everything the dirty-log round did before the
//!   walk, its harvest of the dirty bitmap included, so the vCPU's dirty
//!   mark is left for the next round instead of being taken by a harvest
//!   that copies the page before the write.
//! * [`SpteTable::clear`] and `fast_fault_fix` are Release: a thread that
//!   reads the value they store (Acquire or stronger) sees what the zapper
//!   or the vCPU did before; the stress test's generation counters rely on
//!   it (`tests/stress.rs`).
//! * A cleared W (or spte) reaches the vCPUs through the remote TLB flush,
//!   whose SeqCst fence orders it before the flusher reads the vCPUs' modes;
//!   no ordering here is needed for that.
//!
//! Everything else is Relaxed: a writer reads presence under the lock that
//! orders every install and clear.

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
/// The guest touched the page since the bit was last cleared: the CPU sets
/// it on an access ([`SpteTable::mark_accessed`]), aging clears it
/// ([`SpteTable::test_and_clear_accessed`]).
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

    /// Read an spte. Relaxed: a caller that needs ordering has it from
    /// elsewhere: the writer lock it holds (presence only changes under it),
    /// a thread join, or its own SeqCst load of [`Self::slot`].
    #[inline]
    pub fn load(&self, slot: SlotId) -> u64 {
        self.slots[slot].load(Ordering::Relaxed)
    }

    /// Install a new spte in an empty slot (slow fault, under the
    /// implementation's writer lock). Release: pairs with the vCPU's SeqCst
    /// read of the slot (module doc), and so publishes the rmap add that
    /// `Rmap::map` made before it: a fast fault that read this spte, and a
    /// walk that harvested that fault's dirty mark, find the spte in its
    /// rmap.
    #[inline]
    pub fn install(&self, slot: SlotId, spte: u64) {
        self.slots[slot].store(spte, Ordering::Release);
    }

    /// Zap: make the spte not present, returning the old value (a swap, so
    /// that a concurrent cmpxchg of W either lands before it and is returned,
    /// or fails and refaults). Release: a thread that reads the cleared spte
    /// sees what the zapper did before (module doc).
    #[inline]
    pub fn clear(&self, slot: SlotId) -> u64 {
        self.slots[slot].swap(0, Ordering::Release)
    }

    /// Write-protect for dirty logging: clear W by cmpxchg, keep
    /// MMU_WRITABLE. Returns whether this call cleared W. Release on
    /// success: pairs with the Acquire of the fast fault that restores W
    /// (module doc).
    #[inline]
    pub fn write_protect(&self, slot: SlotId) -> bool {
        let cell = &self.slots[slot];
        let mut old = cell.load(Ordering::Relaxed);
        loop {
            if old & SPTE_WRITABLE == 0 {
                return false;
            }
            match cell.compare_exchange_weak(
                old,
                old & !SPTE_WRITABLE,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => old = now,
            }
        }
    }

    /// A vCPU access through a translation that read `seen` (present, A
    /// clear): set the Accessed bit, as the CPU's page walk does on a
    /// present entry (one locked update of the entry). A cmpxchg, not a
    /// `fetch_or`: the spte may have been zapped since the vCPU read it, and
    /// an OR would leave A set in an empty slot, which the hardware never
    /// does. Retries while the spte stays present without A (a write-protect
    /// or fast fault moved W meanwhile); returns whether this call set it.
    /// Relaxed: nothing is ordered by the Accessed bit; aging only counts it.
    #[inline]
    pub fn mark_accessed(&self, slot: SlotId, seen: u64) -> bool {
        let cell = &self.slots[slot];
        let mut old = seen;
        while is_present(old) && old & SPTE_ACCESSED == 0 {
            match cell.compare_exchange_weak(
                old,
                old | SPTE_ACCESSED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => old = now,
            }
        }
        false
    }

    /// Aging of rmap `gfn`: if the spte maps `gfn` and its Accessed bit is
    /// set, clear it (an atomic AND, as Linux 6.15's aging checks
    /// `is_accessed_spte` and then `clear_bit`s it). Returns whether it was
    /// set. An AND cannot make an empty slot non-empty, nor undo W.
    ///
    /// The gfn check is for the lockless walks: one may visit a slot of
    /// another rmap, read from a recycled descriptor before it restarts.
    /// Clearing W there costs a spurious fast fault; clearing Accessed
    /// would make a page its own rmap's aging never saw look cold to
    /// reclaim, so aging leaves it alone. A slot always maps the same gfn,
    /// so the gfn of the value loaded is the gfn of the slot.
    /// Relaxed: see [`SpteTable::mark_accessed`].
    #[inline]
    pub fn test_and_clear_accessed(&self, slot: SlotId, gfn: Gfn) -> bool {
        let cell = &self.slots[slot];
        let v = cell.load(Ordering::Relaxed);
        if v & SPTE_ACCESSED == 0 || spte_gfn(v) != gfn {
            return false;
        }
        cell.fetch_and(!SPTE_ACCESSED, Ordering::Relaxed) & SPTE_ACCESSED != 0
    }

    /// Fast page fault: set W again on a present, write-protected,
    /// MMU-writable spte with one cmpxchg and no lock. Returns false when
    /// the spte changed under us (zapped, or another vCPU fixed it): the
    /// caller retries the access. AcqRel on success: the Acquire pairs with
    /// the Release of the write-protect that cleared W, the Release with a
    /// reader of the restored W (module doc).
    #[inline]
    pub fn fast_fault_fix(&self, slot: SlotId, seen: u64) -> bool {
        debug_assert!(is_present(seen) && seen & SPTE_MMU_WRITABLE != 0);
        self.slots[slot]
            .compare_exchange(
                seen,
                seen | SPTE_WRITABLE,
                Ordering::AcqRel,
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

    #[test]
    fn accessed_is_set_on_present_sptes_only_and_aging_clears_it_once() {
        let t = SpteTable::new(4, 1);
        let s = t.slot_id(0, 3);
        t.install(s, make_spte(3, true));
        assert!(!t.test_and_clear_accessed(s, 2), "another rmap's spte");
        assert!(t.test_and_clear_accessed(s, 3), "a new spte is accessed");
        assert!(!t.test_and_clear_accessed(s, 3), "and young only once");
        let v = t.load(s);
        assert!(v & SPTE_ACCESSED == 0 && is_writable(v), "aging keeps W");
        assert!(t.mark_accessed(s, v));
        assert!(!t.mark_accessed(s, t.load(s)), "already accessed");
        // A translation read before a zap must not set A in the empty slot.
        t.test_and_clear_accessed(s, 3);
        let stale = t.load(s);
        t.clear(s);
        assert!(!t.mark_accessed(s, stale));
        assert_eq!(t.load(s), 0);
        // A W change under the vCPU's feet: it retries and still sets A.
        t.install(s, make_spte(3, true));
        t.test_and_clear_accessed(s, 3);
        let before_wp = t.load(s);
        assert!(t.write_protect(s));
        assert!(t.mark_accessed(s, before_wp));
        let v = t.load(s);
        assert!(v & SPTE_ACCESSED != 0 && !is_writable(v));
    }
}
