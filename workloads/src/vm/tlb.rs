//! The vCPUs as the rest of the VM sees them ([`Vcpus`]): each one's mode
//! (in guest mode or not) and the gfn of its fault in flight, and the remote
//! TLB flush that waits on the modes (see [the remote TLB
//! flush](crate#the-remote-tlb-flush) in the crate docs, which gives the
//! store-buffering argument the orderings below rely on).
//!
//! A vCPU's mode is a counter, odd while in guest mode; the flush waits for
//! each vCPU it saw odd to move on. The waiter spins briefly, then yields,
//! then sleeps, so that it gives its CPU to the vCPU it waits for instead of
//! competing with it; while a flush waits, running vCPUs yield their CPU at
//! their next guest entry ([`Vcpus::kicked`]).

use crossbeam_utils::CachePadded;
use std::sync::atomic::{fence, AtomicU64, Ordering};

/// A flush waiting for a vCPU spins this many times, then yields this many
/// times, then sleeps.
const SPIN_TRIES: u32 = 128;
const YIELD_TRIES: u32 = 16;

/// Which flush [`Vcpus::flush_as`] is: the protocol, or one of two broken
/// twins that only the protocol's test instantiates (a const parameter, so
/// the run's flush compiles neither branch).
const FLUSH: u8 = 0;
/// Broken: never waits for the last vCPU.
const FLUSH_SKIPS_LAST: u8 = 1;
/// Broken: waits for no vCPU at all.
const FLUSH_WAITS_FOR_NONE: u8 = 2;

/// No fault in flight.
pub(crate) const NO_FAULT: u64 = u64::MAX;

/// What the rest of the VM can see of one vCPU.
pub(crate) struct VcpuShared {
    /// Odd while in guest mode.
    mode: AtomicU64,
    /// The gfn whose fault this vCPU is handling, from before it makes an
    /// spte writable until after it marked the gfn dirty (for the oracle).
    fault_gfn: AtomicU64,
}

pub(crate) struct Vcpus {
    v: Box<[CachePadded<VcpuShared>]>,
    /// Flushes now waiting for a vCPU to leave guest mode.
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

    /// Leave guest mode. Release: pairs with the Acquire load in
    /// [`Self::flush`] that sees the new value; the writes made in guest mode
    /// are visible to whoever returns from that flush (the copy).
    #[inline]
    pub(crate) fn exit(&self, i: usize) {
        self.v[i].mode.fetch_add(1, Ordering::Release);
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
            let mut tries = 0u32;
            // Acquire: pairs with the Release in `exit`.
            while v.mode.load(Ordering::Acquire) == seen {
                tries += 1;
                if tries < SPIN_TRIES {
                    std::hint::spin_loop();
                } else if tries == SPIN_TRIES {
                    // Relaxed: the kick is a hint (see `kicked`).
                    self.waiting.fetch_add(1, Ordering::Relaxed);
                } else if tries < SPIN_TRIES + YIELD_TRIES {
                    // The vCPU may be descheduled; let it run.
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(std::time::Duration::from_micros(20));
                }
            }
            if tries >= SPIN_TRIES {
                // Relaxed: as above.
                self.waiting.fetch_sub(1, Ordering::Relaxed);
            }
        }
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
