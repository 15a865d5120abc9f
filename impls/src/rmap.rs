//! The [`Rmap`] trait: what every design offers and what a walk guarantees.

use crate::observer::Observer;
use crate::spte::{Gfn, SlotId, SpteTable};
use std::ops::Range;

/// Why a lockless walk started over, or a seqlock walk retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RestartReason {
    /// A `more` link was 0: the descriptor was being initialised (seed 3.b).
    DescInit,
    /// The walk ended on the nulls marker of another rmap (seed 3.c.2).
    ForeignNulls,
    /// `lockless-gen`: a descriptor's sequence count was odd or moved while
    /// its slots and `more` link were read.
    DescSeq,
    /// `seqlock`: the rmap's sequence count was odd or moved.
    RmapSeq,
    /// A walker with the `stale-head-restart` bug gave up after too many
    /// restarts from the same stale head (only that bug can loop forever).
    Limit,
}

impl RestartReason {
    pub const ALL: [RestartReason; 5] = [
        RestartReason::DescInit,
        RestartReason::ForeignNulls,
        RestartReason::DescSeq,
        RestartReason::RmapSeq,
        RestartReason::Limit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RestartReason::DescInit => "desc-init",
            RestartReason::ForeignNulls => "foreign-nulls",
            RestartReason::DescSeq => "desc-seq",
            RestartReason::RmapSeq => "rmap-seq",
            RestartReason::Limit => "restart-limit",
        }
    }
}

/// What one walk (or a batch of walks) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Rmaps walked (gfns).
    pub walks: u64,
    /// spte references visited, counting revisits after a restart.
    pub visited: u64,
    /// sptes whose W bit this walk cleared.
    pub protected: u64,
    /// Restarts (retries for `seqlock`), indexed like [`RestartReason::ALL`].
    pub restarts: [u64; 5],
}

impl WalkStats {
    #[inline]
    pub fn restart(&mut self, why: RestartReason) {
        self.restarts[why as usize] += 1;
    }

    pub fn total_restarts(&self) -> u64 {
        self.restarts.iter().sum()
    }

    pub fn add(&mut self, other: &WalkStats) {
        self.walks += other.walks;
        self.visited += other.visited;
        self.protected += other.protected;
        for (a, b) in self.restarts.iter_mut().zip(other.restarts.iter()) {
            *a += b;
        }
    }
}

/// Result of a slow-fault [`Rmap::map`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapOutcome {
    /// The spte was installed and added to the rmap.
    Mapped,
    /// Another vCPU installed this slot first; nothing was done.
    AlreadyPresent,
}

/// A reverse map for every gfn of one memslot, with its own synchronisation.
///
/// **What a walk guarantees.** Every spte that is present, and in rmap
/// `gfn`, for the whole duration of a walk of `gfn` is visited at least once
/// (and, for [`Rmap::write_protect`], has W clear when the walk returns).
/// sptes added or removed during the walk may or may not be visited. Every
/// implementation is tested against exactly this sentence: property tests
/// against a sequential model, a concurrent stress test, and loom models.
///
/// The workloads call this trait and nothing else: whether an operation
/// takes `mmu_lock`, an rmap lock, or nothing is the implementation's
/// business, reported through [`Observer`].
pub trait Rmap: Send + Sync {
    /// The design's CLI name.
    fn name(&self) -> &'static str;

    /// Slow fault: install `spte` in `slot` (of rmap `gfn`) and add the slot
    /// to rmap `gfn`, unless the slot is already present.
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

    /// A generic walk: call `f` on every spte slot in rmap `gfn`, with the
    /// same guarantee (and the same synchronisation) as the write-protect
    /// walk.
    fn walk(&self, gfn: Gfn, f: &mut dyn FnMut(SlotId)) -> WalkStats;

    /// Give descriptor memory that is entirely free back to the system after
    /// a grace period. Cheap to call rarely; a no-op for designs without a
    /// pool.
    fn reclaim(&self) {}

    /// Descriptors in use (0 for designs without a pool).
    fn descs_in_use(&self) -> usize {
        0
    }
}
