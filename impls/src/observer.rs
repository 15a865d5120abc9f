//! [`Observer`]: what an rmap operation reports while it works (lock waits
//! and holds, each gfn a write-protect batch finished). This crate never
//! reads a clock; the workloads implement the trait to time these events.

use crate::spte::Gfn;
use crate::stats::WalkStats;

/// What an implementation reports while it works; the workloads time these
/// events (this crate never reads a clock).
pub trait Observer {
    /// About to acquire `mmu_lock`.
    fn lock_wait(&mut self) {}
    /// `mmu_lock` is held.
    fn lock_acquired(&mut self) {}
    /// `mmu_lock` was released.
    fn lock_released(&mut self) {}
    /// The write-protect walk of one gfn of a batch is done.
    fn gfn_walked(&mut self, _gfn: Gfn, _stats: &WalkStats) {}
}

/// An observer that observes nothing.
pub struct NoObserver;
impl Observer for NoObserver {}
