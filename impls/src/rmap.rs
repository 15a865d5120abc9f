//! The [`Rmap`] trait: what every design offers and what a walk guarantees,
//! and [`RmapConfig`], what it takes to build one.

use crate::lock::LockKind;
use crate::observer::Observer;
use crate::spte::{Gfn, SlotId, SpteTable};
use crate::stats::{AgeStats, WalkStats};
use crate::ChainKind;
use std::ops::Range;

/// Result of a slow-fault [`Rmap::map`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapOutcome {
    /// The spte was installed and added to the rmap.
    Mapped,
    /// Another vCPU installed this slot first; nothing was done.
    AlreadyPresent,
}

/// The work a batch of write-protect walks does at its end
/// ([`Rmap::write_protect_then`]): it gets the batch's statistics and the
/// observer, which may be inside `mmu_lock`.
pub type BatchEnd<'a> = dyn FnMut(&WalkStats, &mut dyn Observer) + 'a;

/// A reverse map for every gfn of one memslot, with its own synchronisation.
///
/// **What a walk guarantees.** Every spte that is present, and in rmap
/// `gfn`, for the whole duration of a walk of `gfn` is visited at least
/// once; for [`Rmap::write_protect`], its W bit was clear at some instant
/// between that visit and the walk's return. sptes added to or removed from
/// the rmap during the walk may or may not be visited.
///
/// W need not still be clear when the walk returns: a fast page fault may
/// set it again at any time, with a cmpxchg and no lock, and that is legal
/// (the fault marks the gfn dirty, so the next dirty-log round sees it).
/// Every implementation is tested against exactly this sentence: property
/// tests against a sequential model, a concurrent stress test that decides
/// the W half whenever no fast fault completed during the walk, and loom
/// models (the crate docs, "Checking").
///
/// The workloads call this trait and nothing else: whether an operation
/// takes `mmu_lock`, an rmap lock, or nothing is the implementation's
/// business, reported through [`Observer`].
pub trait Rmap: Send + Sync {
    /// The design's CLI name.
    fn name(&self) -> &'static str;

    /// Slow fault: add `slot` to rmap `gfn` and then install `spte` in it,
    /// unless the slot is already present.
    ///
    /// **Every present spte is in its rmap**, at every instant, not only
    /// under `mmu_lock`: the add comes before the install, and `unmap` and
    /// `zap` clear an spte before they remove it. A walker that does not
    /// hold `mmu_lock` relies on it: an spte installed MMU-writable before
    /// its add could be made writable by another vCPU's fast fault, which
    /// marks the gfn dirty, and a round could harvest that mark and walk the
    /// rmap before the add, leaving W set with nothing to log the writes
    /// (the shape of the `dirty-before-rmap` bug, reached through the fast
    /// fault). Linux 3.10's `mmu_set_spte` writes the spte before
    /// `rmap_add`, safely: its write-protect holds `mmu_lock`.
    fn map(
        &self,
        sptes: &SpteTable,
        gfn: Gfn,
        slot: SlotId,
        spte: u64,
        obs: &mut dyn Observer,
    ) -> MapOutcome;

    /// Zap one spte: clear it and remove it from rmap `gfn`. Returns false
    /// when it was not present.
    fn unmap(&self, sptes: &SpteTable, gfn: Gfn, slot: SlotId, obs: &mut dyn Observer) -> bool;

    /// Zap (mmu-notifier invalidation) of a gfn range: clear every spte of
    /// every rmap in `gfns` and empty those rmaps. Returns sptes zapped.
    fn zap(&self, sptes: &SpteTable, gfns: Range<Gfn>, obs: &mut dyn Observer) -> u64;

    /// The dirty-log write-protect walk of a batch of gfns: clear W (keeping
    /// MMU_WRITABLE) on every spte of each rmap. `mmu-lock` holds the lock
    /// for the whole batch; the others treat each gfn on its own. Calls
    /// [`Observer::gfn_walked`] after each gfn.
    fn write_protect(&self, sptes: &SpteTable, gfns: &[Gfn], obs: &mut dyn Observer) -> WalkStats;

    /// [`Rmap::write_protect`], then `end`, given the batch's stats, while
    /// still holding what the batch holds across its walks: `mmu_lock` for
    /// `mmu-lock` (so `end` runs inside the lock, reported to `obs` as part
    /// of the hold), nothing for the other designs (so `end` runs after the
    /// walks, outside any lock). The dirty-log round passes its remote TLB
    /// flush as `end`, which puts the flush under `mmu_lock` as Linux 3.10's
    /// `kvm_vm_ioctl_get_dirty_log` had it.
    fn write_protect_then(
        &self,
        sptes: &SpteTable,
        gfns: &[Gfn],
        obs: &mut dyn Observer,
        end: &mut BatchEnd<'_>,
    ) -> WalkStats {
        let st = self.write_protect(sptes, gfns, obs);
        end(&st, obs);
        st
    }

    /// A generic walk: call `f` on every spte slot in rmap `gfn`, with the
    /// same guarantee (and the same synchronisation) as the write-protect
    /// walk.
    fn walk(&self, gfn: Gfn, f: &mut dyn FnMut(SlotId)) -> WalkStats;

    /// Aging, as the primary MMU's page reclaim asks for it through the mmu
    /// notifier's `clear_young` (KVM's `kvm_age_gfn`): walk the rmap of every
    /// gfn in `gfns` and test-and-clear the Accessed bit of each spte visited
    /// ([`SpteTable::test_and_clear_accessed`]), counting in
    /// [`AgeStats::young`] the sptes found accessed. Every spte present for
    /// the whole call is visited (the walk guarantee, gfn by gfn). How it
    /// locks is the design's: `mmu-lock` holds `mmu_lock` for the whole
    /// range, as KVM did until Linux 6.14; `rmap-lock` takes each rmap's
    /// lock and no `mmu_lock`, as Linux 6.15 does; the optimistic designs
    /// age with their lockless walk.
    fn age(&self, sptes: &SpteTable, gfns: Range<Gfn>, obs: &mut dyn Observer) -> AgeStats;

    /// Give descriptor memory that is entirely free back to the system after
    /// a grace period. Cheap to call rarely; a no-op for designs without a
    /// pool.
    fn reclaim(&self) {}

    /// Descriptors in use (0 for designs without a pool).
    fn descs_in_use(&self) -> usize {
        0
    }
}

/// Everything needed to build an rmap for one memslot.
#[derive(Clone, Debug)]
pub struct RmapConfig {
    pub gfns: u64,
    /// spte references per descriptor, 1..=[`crate::MAX_DESC_EXT`].
    pub desc_ext: usize,
    pub mmu_lock: LockKind,
    /// Descriptors per pool page.
    pub page_descs: usize,
    /// The chain discipline; `None`: the design's own
    /// ([`crate::ImplKind::default_chain`]).
    pub chain: Option<ChainKind>,
}

impl RmapConfig {
    pub fn new(gfns: u64, desc_ext: usize, mmu_lock: LockKind) -> Self {
        RmapConfig {
            gfns,
            desc_ext,
            mmu_lock,
            page_descs: 256,
            chain: None,
        }
    }
}

/// The dirty-log write-protect of a batch as every design runs it: `walk`
/// each gfn of `gfns` with a [`Protector`], which clears W on each spte the
/// walk visits, and report the gfn to `obs` (which the walk gets too).
pub(crate) fn write_protect_each(
    sptes: &SpteTable,
    gfns: &[Gfn],
    obs: &mut dyn Observer,
    mut walk: impl FnMut(Gfn, &mut Protector<'_>, &mut dyn Observer) -> WalkStats,
) -> WalkStats {
    let mut total = WalkStats::default();
    for &gfn in gfns {
        let mut p = Protector {
            sptes,
            protected: 0,
        };
        let mut st = walk(gfn, &mut p, obs);
        st.protected = p.protected;
        obs.gfn_walked(gfn, &st);
        total.add(&st);
    }
    total
}

/// Age a range as every chain design runs it: `walk` each gfn of `gfns`,
/// test-and-clearing the Accessed bit of each spte it visits.
pub(crate) fn age_each(
    sptes: &SpteTable,
    gfns: Range<Gfn>,
    mut walk: impl FnMut(Gfn, &mut dyn FnMut(SlotId)) -> WalkStats,
) -> AgeStats {
    let mut total = AgeStats::default();
    for gfn in gfns {
        let mut young = 0;
        let st = walk(gfn, &mut |s| {
            young += sptes.test_and_clear_accessed(s, gfn) as u64
        });
        total.young += young;
        total.walk.add(&st);
    }
    total
}

/// What a write-protect walk does with each spte it visits.
pub(crate) struct Protector<'a> {
    sptes: &'a SpteTable,
    protected: u64,
}

impl Protector<'_> {
    #[inline]
    pub(crate) fn protect(&mut self, slot: SlotId) {
        self.protected += self.sptes.write_protect(slot) as u64;
    }
}
