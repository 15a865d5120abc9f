//! `mmu_lock`, the VM-wide lock that serialises spte and rmap changes.
//!
//! Two kinds:
//!
//! * [`LockKind::Spin`] is a fair FIFO spinlock, a [`TicketLock`]: a waiter
//!   takes a ticket and burns its CPU until the ticket is served, and
//!   tickets are served in the order they were taken. That is the kernel's
//!   `spin_lock` on x86 in 2013: ticket spinlocks from Linux 2.6.25 ("x86:
//!   FIFO ticket spinlocks", Nick Piggin) until queued spinlocks replaced
//!   them in Linux 4.2, themselves FIFO (an MCS queue). `mmu_lock` is an
//!   `rwlock_t` on x86 since Linux 5.12 ("KVM: x86/mmu: Use an rwlock for
//!   the x86 MMU"), a queued rwlock whose writers, the only kind this lab
//!   has, also queue in order.
//! * [`LockKind::Park`] sleeps in the kernel after a short spin (a futex
//!   mutex, `parking_lot::Mutex`), which userspace needs once threads
//!   outnumber CPUs. It is not FIFO, but it is eventually fair: a thread
//!   that arrives while the lock is free may take it ahead of sleepers,
//!   except that an unlock hands the lock to the longest sleeper once that
//!   one has waited about half a millisecond. `std::sync::Mutex` (which it
//!   replaced) never hands over: a walker that re-takes the lock for its
//!   next round at once starved the zapper of `mmu-lock` at 32 vCPUs on
//!   2 CPUs (no zap issued in 4 of 5 runs of the reference sweep).
//!
//! **What userspace cannot copy.** The kernel's holder of a spinlock or an
//! rwlock runs with preemption disabled (`spin_lock` calls
//! `preempt_disable`, on every kernel without `PREEMPT_RT`): it can be
//! interrupted, never descheduled, so no waiter ever spins behind a holder
//! that is not running. The lab's holder is an ordinary thread that the
//! scheduler may deschedule at any instruction, lock held. On a machine with
//! more worker threads than CPUs, "holder preempted" and the long tails of
//! `mmu_lock.wait` are therefore a property of running the lock in
//! userspace, not of the design under test; with a fair lock they are worse
//! still, since every waiter queued behind a descheduled one waits too.
//!
//! The designs only call `MmuLock::with`; a further kind is one more
//! [`LockKind`] and one more arm in `MmuLock::acquire` and in the held
//! guard, here and nowhere else.

use crate::observer::Observer;
use crate::primitive::{spin_hint, AtomicU32, Ordering};
#[cfg(loom)]
use crate::primitive::{Mutex, MutexGuard};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockKind {
    /// A fair FIFO spinlock ([`TicketLock`]), as the kernel's.
    Spin,
    /// A futex mutex that sleeps when contended (not FIFO).
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

/// A fair FIFO spinlock: a ticket lock, as Linux's x86 `arch_spinlock_t`
/// was from 2.6.25 to 4.1 (`head` and `tail` there, `serving` and `next`
/// here).
///
/// [`TicketLock::lock`] takes the next ticket and spins until `serving`
/// reaches it; dropping the guard serves the next ticket. So the lock is
/// granted in exactly the order tickets were taken, which
/// [`TicketGuard::ticket`] tells (the tests compare the two orders). All
/// waiters spin on one word, which the release invalidates in every
/// waiter's cache (an MCS queue would hand over to one waiter's own line);
/// with the few threads the lab runs, that costs less than the queue's extra
/// atomics.
pub struct TicketLock {
    /// The next ticket to hand out.
    next: AtomicU32,
    /// The ticket whose holder holds the lock.
    serving: AtomicU32,
}

/// A held [`TicketLock`]; dropping it serves the next ticket.
pub struct TicketGuard<'a> {
    lock: &'a TicketLock,
    ticket: u32,
}

impl TicketLock {
    pub fn new() -> Self {
        TicketLock {
            next: AtomicU32::new(0),
            serving: AtomicU32::new(0),
        }
    }

    /// Take a ticket and wait for it to be served.
    #[inline]
    pub fn lock(&self) -> TicketGuard<'_> {
        // Relaxed: the read-modify-write alone makes tickets distinct and
        // consecutive (every fetch_add of `next` reads the one before it in
        // the word's modification order); nothing else is ordered by it.
        // Tickets wrap at 2^32, which needs 2^32 waiters at once to confuse.
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        // Acquire: pairs with the Release store in `TicketGuard::drop` that
        // served this ticket; everything the previous holder did under the
        // lock happens before what this one does.
        while self.serving.load(Ordering::Acquire) != ticket {
            spin_hint();
        }
        TicketGuard { lock: self, ticket }
    }
}

impl Default for TicketLock {
    fn default() -> Self {
        TicketLock::new()
    }
}

impl TicketGuard<'_> {
    /// The ticket this holder took: its place in the order of arrival.
    pub fn ticket(&self) -> u32 {
        self.ticket
    }
}

impl Drop for TicketGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // Release: pairs with the Acquire load in `TicketLock::lock` of the
        // next ticket's holder. Only the holder stores `serving`, so a store
        // (not a read-modify-write) of its own ticket plus one is enough.
        self.lock
            .serving
            .store(self.ticket.wrapping_add(1), Ordering::Release);
    }
}

/// The sleeping lock: eventually fair `parking_lot` in the lab, loom's
/// mutex in the models.
#[cfg(not(loom))]
type ParkMutex = parking_lot::Mutex<()>;
#[cfg(not(loom))]
type ParkGuard<'a> = parking_lot::MutexGuard<'a, ()>;
#[cfg(loom)]
type ParkMutex = Mutex<()>;
#[cfg(loom)]
type ParkGuard<'a> = MutexGuard<'a, ()>;

pub(crate) struct MmuLock {
    kind: LockKind,
    spin: TicketLock,
    park: ParkMutex,
}

/// A held `mmu_lock`; dropping it releases the lock.
enum Held<'a> {
    Spin { _guard: TicketGuard<'a> },
    Park { _guard: ParkGuard<'a> },
}

impl MmuLock {
    pub(crate) fn new(kind: LockKind) -> Self {
        MmuLock {
            kind,
            spin: TicketLock::new(),
            park: ParkMutex::new(()),
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
            LockKind::Spin => Held::Spin {
                _guard: self.spin.lock(),
            },
            #[cfg(not(loom))]
            LockKind::Park => Held::Park {
                _guard: self.park.lock(),
            },
            #[cfg(loom)]
            LockKind::Park => Held::Park {
                _guard: self.park.lock().unwrap(),
            },
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Barrier, Mutex as StdMutex};

    const THREADS: usize = 3;
    const ROUNDS: usize = 100;

    /// `THREADS` threads, started together, take a lock `ROUNDS` times
    /// each; inside, each appends (its ticket, itself) to a log and yields. The ticket is
    /// its place in the order of arrival, the log the order of acquisition.
    /// The log is a mutex the holder only `try_lock`s: finding it taken
    /// would mean two holders at once.
    fn acquisition_log<G>(lock: impl Fn() -> (u32, G) + Sync) -> Vec<(u32, usize)> {
        let log = StdMutex::new(Vec::with_capacity(THREADS * ROUNDS));
        let start = Barrier::new(THREADS);
        std::thread::scope(|s| {
            for me in 0..THREADS {
                let (log, start, lock) = (&log, &start, &lock);
                s.spawn(move || {
                    start.wait();
                    for _ in 0..ROUNDS {
                        let (ticket, _held) = lock();
                        log.try_lock()
                            .expect("two holders at once")
                            .push((ticket, me));
                        // Give the CPU away, lock held, so that the other
                        // threads queue up behind the holder (two cores
                        // would otherwise rarely see more than one waiter).
                        std::thread::yield_now();
                    }
                });
            }
        });
        log.into_inner().unwrap()
    }

    fn in_order(log: &[(u32, usize)]) -> bool {
        log.iter().enumerate().all(|(i, &(t, _))| t == i as u32)
    }

    /// Threads contended: some thread acquired between two acquisitions of
    /// another (without contention any lock is granted in order).
    fn interleaved(log: &[(u32, usize)]) -> bool {
        log.windows(2).any(|w| w[0].1 != w[1].1)
    }

    #[test]
    fn tickets_are_served_in_the_order_they_were_taken() {
        // Under load the threads may not meet in one run; each run must be
        // in order, and some run must have interleaved.
        let mut met = false;
        for _ in 0..20 {
            let lock = TicketLock::new();
            let log = acquisition_log(|| {
                let g = lock.lock();
                (g.ticket(), g)
            });
            assert_eq!(log.len(), THREADS * ROUNDS);
            assert!(in_order(&log), "granted out of ticket order");
            met |= interleaved(&log);
            if met {
                break;
            }
        }
        assert!(met, "the threads never contended, so FIFO was not tested");
    }

    /// The check is not blind: a lock that takes a ticket on arrival but is
    /// then granted to whichever waiter wins a compare-and-swap (the lab's
    /// `spin` lock before it was made fair) lets later arrivals overtake.
    #[test]
    fn an_unfair_lock_fails_the_order_check() {
        struct Unfair<'a>(&'a AtomicBool);
        impl Drop for Unfair<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        // Whether the threads overlap is up to the scheduler; 20 runs that
        // all stay in order would take threads that never meet.
        let overtaken = (0..20).any(|_| {
            let next = AtomicU32::new(0);
            let flag = AtomicBool::new(false);
            let log = acquisition_log(|| {
                let ticket = next.fetch_add(1, Ordering::Relaxed);
                while flag
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
                {
                    std::hint::spin_loop();
                }
                (ticket, Unfair(&flag))
            });
            !in_order(&log)
        });
        assert!(overtaken, "a test-and-set lock was always granted in order");
    }
}
