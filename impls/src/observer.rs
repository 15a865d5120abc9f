//! [`Observer`]: what an rmap operation reports while it works (lock waits
//! and holds, each gfn a write-protect batch finished, failed optimistic
//! passes). This crate never reads a clock; the workloads implement the
//! trait to time these events.

use crate::spte::Gfn;
use crate::stats::WalkStats;

/// What an implementation reports while it works; the workloads time these
/// events (this crate never reads a clock).
///
/// Two locks are reported, each with its own three events: `mmu_lock` (every
/// design but `concurrent-map`) and `rmap-lock`'s per-rmap bit lock
/// (`rmap_lock_*`). An acquired event follows its wait event and a released
/// event its acquired one, with nothing of the same lock in between; a wait
/// for the bit lock may end without it (the rmap became empty meanwhile,
/// and an empty rmap is not locked). The bit lock may be taken inside
/// `mmu_lock` (a writer's section), never the other way round.
pub trait Observer {
    /// About to acquire `mmu_lock`.
    fn lock_wait(&mut self) {}
    /// `mmu_lock` is held.
    fn lock_acquired(&mut self) {}
    /// `mmu_lock` was released.
    fn lock_released(&mut self) {}
    /// About to take the lock bit of rmap `gfn` (`rmap-lock`); not reported
    /// for an rmap found empty, which is never locked (`rmap-lock`'s module
    /// doc).
    fn rmap_lock_wait(&mut self, _gfn: Gfn) {}
    /// The rmap's lock bit is held.
    fn rmap_lock_acquired(&mut self) {}
    /// The rmap's lock bit was released.
    fn rmap_lock_released(&mut self) {}
    /// A pass of an optimistic walk (a `seqlock` retry, a lockless restart)
    /// failed; the walk starts another. Reported once per failed pass, after
    /// it, so the last report of a walk is where its successful pass began.
    fn walk_pass_failed(&mut self) {}
    /// The write-protect walk of one gfn of a batch is done.
    fn gfn_walked(&mut self, _gfn: Gfn, _stats: &WalkStats) {}
}

/// An observer that observes nothing.
pub struct NoObserver;
impl Observer for NoObserver {}
