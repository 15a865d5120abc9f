//! `mmu_lock`, the VM-wide lock that serialises spte and rmap changes.
//!
//! Two kinds: [`LockKind::Spin`] behaves like the kernel's spinlock (a waiter
//! burns its CPU until the holder lets go, which is fine when every vCPU has
//! a CPU and a disaster when the holder is descheduled), and
//! [`LockKind::Park`] sleeps in the kernel after a short spin (a futex
//! mutex), which userspace needs once threads outnumber CPUs.

use crate::observer::Observer;
use crate::primitive::{spin_hint, AtomicBool, Mutex, Ordering};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockKind {
    Spin,
    Park,
}

impl LockKind {
    pub fn name(self) -> &'static str {
        match self {
            LockKind::Spin => "spin",
            LockKind::Park => "park",
        }
    }
}

impl fmt::Display for LockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LockKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "spin" => Ok(LockKind::Spin),
            "park" => Ok(LockKind::Park),
            _ => Err(format!(
                "unknown mmu_lock kind '{s}' (expected spin or park)"
            )),
        }
    }
}

pub(crate) struct MmuLock {
    kind: LockKind,
    spin: AtomicBool,
    park: Mutex<()>,
}

pub(crate) enum MmuLockGuard<'a> {
    Spin(&'a AtomicBool),
    Park(#[allow(dead_code)] crate::primitive::MutexGuard<'a, ()>),
}

impl Drop for MmuLockGuard<'_> {
    fn drop(&mut self) {
        if let MmuLockGuard::Spin(flag) = self {
            // Release: pairs with the Acquire of the next lock holder's
            // compare_exchange, handing it everything done under the lock.
            flag.store(false, Ordering::Release);
        }
    }
}

impl MmuLock {
    pub(crate) fn new(kind: LockKind) -> Self {
        MmuLock {
            kind,
            spin: AtomicBool::new(false),
            park: Mutex::new(()),
        }
    }

    pub(crate) fn kind(&self) -> LockKind {
        self.kind
    }

    /// Take the lock, telling `obs` when the wait starts and ends. The
    /// caller reports the release with [`MmuLock::unlock`].
    #[inline]
    pub(crate) fn lock(&self, obs: &mut dyn Observer) -> MmuLockGuard<'_> {
        obs.lock_wait();
        let guard = match self.kind {
            LockKind::Spin => {
                loop {
                    // Acquire: pairs with the Release store in the guard's
                    // drop; Relaxed on failure, we only retry.
                    if self
                        .spin
                        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        break;
                    }
                    // Test-and-test-and-set: wait on a plain load so the line
                    // stays shared while the holder works. Relaxed: the
                    // cmpxchg above does the synchronising.
                    while self.spin.load(Ordering::Relaxed) {
                        spin_hint();
                    }
                }
                MmuLockGuard::Spin(&self.spin)
            }
            LockKind::Park => MmuLockGuard::Park(self.park.lock().unwrap()),
        };
        obs.lock_acquired();
        guard
    }

    #[inline]
    pub(crate) fn unlock(&self, guard: MmuLockGuard<'_>, obs: &mut dyn Observer) {
        drop(guard);
        obs.lock_released();
    }
}
