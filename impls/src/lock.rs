//! `mmu_lock`, the VM-wide lock that serialises spte and rmap changes.
//!
//! Two kinds: [`LockKind::Spin`] behaves like the kernel's spinlock (a waiter
//! burns its CPU until the holder lets go, which is fine when every vCPU has
//! a CPU and a disaster when the holder is descheduled), and
//! [`LockKind::Park`] sleeps in the kernel after a short spin (a futex
//! mutex), which userspace needs once threads outnumber CPUs.
//!
//! The designs only call `MmuLock::with`; a further kind (a fair FIFO
//! ticket lock, say) is one more [`LockKind`] and one more arm in
//! `MmuLock::acquire` and in the held guard, here and nowhere else.

use crate::observer::Observer;
use crate::primitive::{spin_hint, AtomicBool, Mutex, MutexGuard, Ordering};
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

/// A held `mmu_lock`; dropping it releases the lock.
enum Held<'a> {
    Spin(&'a AtomicBool),
    Park { _guard: MutexGuard<'a, ()> },
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Held::Spin(flag) = self {
            // Release: pairs with the Acquire cmpxchg in `MmuLock::acquire`
            // of the next holder, handing it everything done under the lock.
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

    /// Run `body` holding the lock, telling `obs` when the wait starts, when
    /// the lock is held and when it was released. `body` gets `obs` back to
    /// report what it does meanwhile.
    #[inline]
    pub(crate) fn with<R>(
        &self,
        obs: &mut dyn Observer,
        body: impl FnOnce(&mut dyn Observer) -> R,
    ) -> R {
        obs.lock_wait();
        let held = self.acquire();
        obs.lock_acquired();
        let r = body(obs);
        drop(held);
        obs.lock_released();
        r
    }

    #[inline]
    fn acquire(&self) -> Held<'_> {
        match self.kind {
            LockKind::Spin => {
                // Acquire: pairs with the Release store in `Held::drop`.
                while self
                    .spin
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
                {
                    // Test-and-test-and-set: wait on a plain load so that the
                    // line stays shared while the holder works.
                    while self.spin.load(Ordering::Relaxed) {
                        spin_hint();
                    }
                }
                Held::Spin(&self.spin)
            }
            LockKind::Park => Held::Park {
                _guard: self.park.lock().unwrap(),
            },
        }
    }
}
