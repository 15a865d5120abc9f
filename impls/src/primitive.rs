//! The one switch between `std` and `loom`.
//!
//! Every atomic, lock and spin hint in this crate comes from here, so that
//! `RUSTFLAGS="--cfg loom"` puts the whole crate under the model checker and
//! nothing else in the crate mentions loom (the crossbeam-epoch habit).
//!
//! Under loom there is no crossbeam-epoch: the descriptor pool never returns
//! memory inside a model, so a grace period is not needed there, and the
//! pool's own `DescPool::pin` stands in for [`pin`].

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;

pub(crate) use std::sync::atomic::Ordering;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::fence;

/// One iteration of a wait loop: `pause` on hardware, a yield point under
/// loom (a loom model that spins without yielding never terminates).
#[inline(always)]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// Enter an RCU-like read-side critical section: descriptor pages are not
/// returned while any guard taken before their retirement is alive.
#[cfg(not(loom))]
#[inline]
pub(crate) fn pin() -> crossbeam_epoch::Guard {
    crossbeam_epoch::pin()
}
