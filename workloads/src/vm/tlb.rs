//! The vCPUs as the rest of the VM sees them ([`Vcpus`]): each one's mode
//! (in guest mode or not) and the gfn of its fault in flight, and the remote
//! TLB flush that waits on the modes (see [the remote TLB
//! flush](crate#the-remote-tlb-flush) in the crate docs, which gives the
//! store-buffering argument the orderings below rely on).
//!
//! A vCPU's mode is a counter, odd while in guest mode; the flush waits for
//! each vCPU it saw odd to move on. The waiter spins briefly (a vCPU that
//! is running leaves guest mode within a burst of writes), then blocks on
//! the vCPU's condition variable, which the vCPU's exit signals only when a
//! waiter registered on it: the exit path pays one load of a word on its
//! own line, which a flusher writes only while it waits. Blocking gives the
//! waiter's CPU to the vCPU it waits for, and its wake-up is the futex's,
//! a few microseconds, not a sleep's timer slack (a 20 us sleep took about
//! 70 us). While a flush is blocked, running vCPUs yield their CPU at their
//! next guest entry ([`Vcpus::kicked`]).

use crate::clock;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

/// A flush waiting for a vCPU spins this long before it blocks: a running
/// vCPU leaves guest mode well within it, a descheduled one does not.
const SPIN_NS: u64 = 3_000;

/// Which flush [`Vcpus::flush_as`] is: the protocol, or one of two broken
/// twins that only the protocol's test instantiates (a const parameter, so
/// the run's flush compiles neither branch).
const FLUSH: u8 = 0;
/// Broken: never waits for the last vCPU.
const FLUSH_SKIPS_LAST: u8 = 1;
/// Broken: waits for no vCPU at all.
const FLUSH_WAITS_FOR_NONE: u8 = 2;

/// Which exit [`Vcpus::exit_as`] is: the protocol, or a broken twin that
/// never wakes a blocked flusher (only its test instantiates it).
const EXIT: u8 = 0;
#[cfg(test)]
const EXIT_WAKES_NOBODY: u8 = 1;

/// No fault in flight.
pub(crate) const NO_FAULT: u64 = u64::MAX;

/// What the rest of the VM can see of one vCPU.
pub(crate) struct VcpuShared {
    /// Odd while in guest mode.
    mode: AtomicU64,
    /// The gfn whose fault this vCPU is handling, from before it makes an
    /// spte writable until after it marked the gfn dirty (for the oracle).
    fault_gfn: AtomicU64,
    /// Flushes blocked (or about to block) on `wake` until `mode` moves.
    blocked: AtomicU64,
    /// Guards nothing but the wait on `wake`: a flusher checks `mode` under
    /// it, so that an exit's notification cannot fall between that check
    /// and the wait.
    lock: Mutex<()>,
    wake: Condvar,
}

pub(crate) struct Vcpus {
    v: Box<[CachePadded<VcpuShared>]>,
    /// Flushes now blocked waiting for a vCPU to leave guest mode.
    waiting: CachePadded<AtomicU64>,
}

impl Vcpus {
    pub(crate) fn new(n: u32) -> Self {
        Vcpus {
            v: (0..n)
                .map(|_| {
                    CachePadded::new(VcpuShared {
                        mode: AtomicU64::new(0),
                        fault_gfn: AtomicU64::new(NO_FAULT),
                        blocked: AtomicU64::new(0),
                        lock: Mutex::new(()),
                        wake: Condvar::new(),
                    })
                })
                .collect(),
            waiting: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// A flush is waiting for some vCPU: a running vCPU should give up its
    /// CPU before it enters guest mode again.
    #[inline]
    pub(crate) fn kicked(&self) -> bool {
        // Relaxed: a hint; missing it costs only time.
        self.waiting.load(Ordering::Relaxed) != 0
    }

    /// Enter guest mode. SeqCst: the store half of the store-buffering pair
    /// with [`Self::flush`] (crate docs); the caller's spte read that
    /// follows must be SeqCst too.
    #[inline]
    pub(crate) fn enter(&self, i: usize) {
        self.v[i].mode.fetch_add(1, Ordering::SeqCst);
    }

    /// Leave guest mode, and wake the flushes blocked on this vCPU.
    #[inline]
    pub(crate) fn exit(&self, i: usize) {
        self.exit_as::<EXIT>(i);
    }

    #[inline(always)]
    fn exit_as<const HOW: u8>(&self, i: usize) {
        let v = &self.v[i];
        // SeqCst: its Release half pairs with the Acquire mode load in the
        // flush that sees the new value, so the writes made in guest mode
        // are visible to whoever returns from that flush (the copy); its
        // store half is one side of a second store-buffering pair, with a
        // blocking flusher that increments `blocked` and then reads the mode:
        // either this load sees the flusher registered, or the flusher's
        // read sees the new mode and does not wait.
        v.mode.fetch_add(1, Ordering::SeqCst);
        // SeqCst: the load half of that pair.
        if HOW == EXIT && v.blocked.load(Ordering::SeqCst) != 0 {
            v.wake_all();
        }
    }

    /// The fault path of vCPU `i` is about to make an spte of `gfn` writable.
    #[inline]
    pub(crate) fn fault_begin(&self, i: usize, gfn: u64) {
        // SeqCst: the oracle reads it before the dirty bit, in one total
        // order with the mark and `fault_end` (crate docs, "The migration
        // oracle").
        self.v[i].fault_gfn.store(gfn, Ordering::SeqCst);
    }

    /// ... and has marked the gfn dirty.
    #[inline]
    pub(crate) fn fault_end(&self, i: usize) {
        // SeqCst: as `fault_begin`.
        self.v[i].fault_gfn.store(NO_FAULT, Ordering::SeqCst);
    }

    /// Whether some vCPU is handling a fault on `gfn` now.
    pub(crate) fn fault_in_flight(&self, gfn: u64) -> bool {
        // SeqCst: as `fault_begin`.
        self.v
            .iter()
            .any(|v| v.fault_gfn.load(Ordering::SeqCst) == gfn)
    }

    /// The remote TLB flush: return once every vCPU that was in guest mode
    /// when it started has left it. The caller made its spte changes before.
    pub(crate) fn flush(&self) {
        self.flush_as::<FLUSH>();
    }

    #[inline(always)]
    fn flush_as<const HOW: u8>(&self) {
        // SeqCst fence: the load half of the store-buffering pair (crate
        // docs); orders the caller's spte cmpxchgs/swaps before the mode
        // reads.
        fence(Ordering::SeqCst);
        let n = self.v.len();
        for (i, v) in self.v.iter().enumerate() {
            let seen = v.mode.load(Ordering::SeqCst);
            if seen & 1 == 0
                || (HOW == FLUSH_SKIPS_LAST && i + 1 == n)
                || HOW == FLUSH_WAITS_FOR_NONE
            {
                continue;
            }
            self.wait_until_moved(v, seen);
        }
    }

    /// Return once `v`'s mode is no longer `seen`: spin, then block until
    /// its exit wakes us.
    fn wait_until_moved(&self, v: &VcpuShared, seen: u64) {
        let start = clock::now();
        let mut spins = 0u32;
        loop {
            // Acquire: pairs with the Release half of the exit's bump.
            if v.mode.load(Ordering::Acquire) != seen {
                return;
            }
            std::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(16) && clock::delta_ns(start, clock::now()) >= SPIN_NS {
                break;
            }
        }
        // Relaxed: the kick is a hint (see `kicked`).
        self.waiting.fetch_add(1, Ordering::Relaxed);
        // SeqCst: the store half of the pair with `exit` (see there).
        v.blocked.fetch_add(1, Ordering::SeqCst);
        // The lock guards no data; a panic cannot leave anything half done.
        let mut guard = v.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // SeqCst: the load half of that pair (and Acquire, as above). Read
        // under the lock: an exit that bumps the mode after this read takes
        // the lock to notify, so it waits until this thread is in `wait`.
        while v.mode.load(Ordering::SeqCst) == seen {
            guard = v.wake.wait(guard).unwrap_or_else(PoisonError::into_inner);
        }
        drop(guard);
        // Relaxed: an exit that still sees us registered only takes the
        // lock and notifies nobody.
        v.blocked.fetch_sub(1, Ordering::Relaxed);
        // Relaxed: as above.
        self.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl VcpuShared {
    /// Wake every flush blocked on this vCPU (its exit, having seen one
    /// registered). Taking the lock orders the notification after a
    /// flusher's mode check, or before it (the check then sees the new mode).
    fn wake_all(&self) {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmap_impls::spte::{is_writable, make_spte, spte_gfn};
    use rmap_impls::SpteTable;
    use std::sync::atomic::AtomicBool;

    /// The flush's guarantee under concurrency. The flusher makes an spte
    /// writable, with a new generation number in its gfn field, waits until
    /// a vCPU writes through it, write-protects it, flushes, and publishes
    /// the generation as flushed. vCPUs enter guest mode, read the spte,
    /// and while it is writable write through it for a long burst, looking
    /// before each write whether the flush that followed the write-protect
    /// of that generation has returned. A write after that is a translation
    /// that outlived its flush: the flush skipped a vCPU in guest mode,
    /// returned before one left, or let one that entered after its fence
    /// see W. Returns how many bursts made such a write.
    fn bursts_that_outlived_their_flush<const HOW: u8>() -> u64 {
        const VCPUS: u32 = 2;
        const FLUSHES: u64 = 100;
        const BURST: u32 = 1_000;
        let vcpus = Vcpus::new(VCPUS);
        let sptes = SpteTable::new(1, 1);
        let flushed = AtomicU64::new(0);
        let page = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let outlived = AtomicU64::new(0);
        std::thread::scope(|s| {
            for i in 0..VCPUS as usize {
                let (vcpus, sptes, flushed, page, stop, outlived) =
                    (&vcpus, &sptes, &flushed, &page, &stop, &outlived);
                s.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if vcpus.kicked() {
                            std::thread::yield_now();
                        }
                        vcpus.enter(i);
                        // SeqCst: the vCPU's half of the store-buffering
                        // pair, as in the vCPU thread.
                        let spte = sptes.slot(0).load(Ordering::SeqCst);
                        if is_writable(spte) {
                            for _ in 0..BURST {
                                // Relaxed is enough: the flusher publishes
                                // only after it saw this vCPU leave guest
                                // mode, which comes after this load.
                                if flushed.load(Ordering::Relaxed) >= spte_gfn(spte) {
                                    outlived.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                                page.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        vcpus.exit(i);
                    }
                });
            }
            for generation in 1..=FLUSHES {
                sptes.install(0, make_spte(generation, true));
                let before = page.load(Ordering::Relaxed);
                while page.load(Ordering::Relaxed) == before {
                    std::thread::yield_now();
                }
                sptes.write_protect(0);
                vcpus.flush_as::<HOW>();
                flushed.store(generation, Ordering::Relaxed);
            }
            stop.store(true, Ordering::Relaxed);
        });
        outlived.into_inner()
    }

    #[test]
    fn no_translation_outlives_its_flush() {
        assert_eq!(bursts_that_outlived_their_flush::<FLUSH>(), 0);
    }

    /// The check above is not blind: it catches a flush that never waits
    /// for the last vCPU, and one that waits for none.
    #[test]
    fn a_flush_that_skips_a_vcpu_or_returns_early_is_caught() {
        assert!(bursts_that_outlived_their_flush::<FLUSH_SKIPS_LAST>() > 0);
        assert!(bursts_that_outlived_their_flush::<FLUSH_WAITS_FOR_NONE>() > 0);
    }

    #[test]
    fn flush_waits_for_a_vcpu_in_guest_mode() {
        let vcpus = Vcpus::new(2);
        let released = AtomicBool::new(false);
        vcpus.enter(1);
        std::thread::scope(|s| {
            s.spawn(|| {
                vcpus.flush();
                // The flush may only return after the exit below.
                assert!(released.load(Ordering::SeqCst), "flush returned early");
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            released.store(true, Ordering::SeqCst);
            vcpus.exit(1);
        });
        // A vCPU outside guest mode does not hold a flush up.
        vcpus.flush();
    }

    /// A flusher blocked on a vCPU in guest mode returns when that vCPU
    /// exits (`wakes`), or, with an exit that never wakes anybody, stays
    /// blocked. Returns whether the flush returned within `limit` of the
    /// exit. The flusher runs on a detached thread and a broken exit is
    /// followed by a wake-up, so a missing wake-up fails the test instead
    /// of hanging it.
    fn flush_returns_after_exit(wakes: bool, limit: std::time::Duration) -> bool {
        use std::sync::mpsc;
        use std::sync::Arc;
        use std::time::{Duration, Instant};
        let vcpus = Arc::new(Vcpus::new(2));
        vcpus.enter(1);
        let (tx, rx) = mpsc::channel();
        let flusher = {
            let vcpus = Arc::clone(&vcpus);
            std::thread::spawn(move || {
                vcpus.flush();
                let _ = tx.send(());
            })
        };
        // Wait (boundedly) until the flusher has spun out and registered.
        let registered_by = Instant::now() + Duration::from_secs(30);
        while vcpus.v[1].blocked.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < registered_by, "the flush never blocked");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Give it time to reach the wait itself (not needed for
        // correctness: the exit's protocol covers a flusher anywhere
        // after its registration).
        std::thread::sleep(Duration::from_millis(20));
        if wakes {
            vcpus.exit(1);
        } else {
            vcpus.exit_as::<EXIT_WAKES_NOBODY>(1);
        }
        let returned = rx.recv_timeout(limit).is_ok();
        if !returned {
            // Release the flusher the broken exit left blocked.
            vcpus.v[1].wake_all();
            rx.recv_timeout(Duration::from_secs(30))
                .expect("a wake-up releases the blocked flusher");
        }
        flusher.join().unwrap();
        returned
    }

    /// The exit wakes a flusher blocked on it: the flush returns (within a
    /// bound generous enough for a loaded machine; it never returns at all
    /// without the wake-up).
    #[test]
    fn an_exit_wakes_the_flush_blocked_on_it() {
        assert!(flush_returns_after_exit(
            true,
            std::time::Duration::from_secs(30)
        ));
    }

    /// The check above is not blind: without the exit's wake-up the blocked
    /// flusher does not return by itself.
    #[test]
    fn without_the_wake_up_a_blocked_flush_stays_blocked() {
        assert!(!flush_returns_after_exit(
            false,
            std::time::Duration::from_millis(300)
        ));
    }

    #[test]
    fn fault_in_flight_names_the_gfn() {
        let vcpus = Vcpus::new(3);
        vcpus.fault_begin(2, 77);
        assert!(vcpus.fault_in_flight(77));
        assert!(!vcpus.fault_in_flight(78));
        vcpus.fault_end(2);
        assert!(!vcpus.fault_in_flight(77));
    }
}
