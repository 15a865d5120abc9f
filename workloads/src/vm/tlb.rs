//! vCPU modes and the remote TLB flush.
//!
//! A vCPU translates a guest address when it enters guest mode and keeps
//! using that translation (its "TLB") for the rest of the access, a burst of
//! `tlb_burst` writes. So a write-protect does not stop a vCPU that read W
//! before it: that vCPU may keep writing until it leaves guest mode. KVM makes
//! this safe with `kvm_flush_remote_tlbs`: it sends a request plus an IPI to
//! every vCPU in guest mode and waits until each has exited. Here every vCPU
//! has a mode counter, odd while in guest mode, and the flush waits for each
//! vCPU it saw odd to move on. After the flush returns, every write that used
//! a translation from before the flush has landed.
//!
//! The ordering argument is store buffering. The flusher clears W (or the
//! whole spte, for a zap) and then reads the modes; a vCPU bumps its mode and
//! then reads the spte. With the flusher's SeqCst fence between its clears
//! and its reads, and the vCPU's SeqCst mode bump and SeqCst spte read, one
//! of the two sees the other: either the vCPU's translation sees W clear, or
//! the flusher sees the vCPU in guest mode and waits for it.
//!
//! On an oversubscribed machine the wait is long, and partly an artefact of
//! userspace. In KVM a preempted vCPU has already left guest mode (the
//! host's timer interrupt is a VM exit), so `kvm_flush_remote_tlbs` only
//! waits for IPIs to vCPUs that are running. A vCPU *thread* here can be
//! descheduled inside its guest-mode window, and the lab cannot see that,
//! so the flush waits until the scheduler runs it again. With a CPU per
//! thread the wait is the handshake alone; with more threads than CPUs it is
//! dominated by scheduling, and the run's output says so. The waiter spins
//! briefly, then yields, then sleeps, so that it gives its CPU to the vCPU it
//! waits for instead of competing with it. While a flush waits, running
//! vCPUs yield their CPU at their next guest entry ([`Vcpus::kicked`]): the
//! kick of KVM's flush IPI, which here lets a descheduled vCPU run and
//! leave guest mode instead of queueing behind vCPUs that are running.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{fence, AtomicU64, Ordering};

/// A flush waiting for a vCPU spins this many times, then yields this many
/// times, then sleeps.
const SPIN_TRIES: u32 = 128;
const YIELD_TRIES: u32 = 16;

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
    /// with [`Self::flush`] (module doc); the caller's spte read that follows
    /// must be SeqCst too.
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

    /// The fault path is about to make an spte of `gfn` writable.
    #[inline]
    pub(crate) fn fault_begin(&self, i: usize, gfn: u64) {
        // SeqCst: the oracle reads it before the dirty bit in one total
        // order with the mark and `fault_end` (oracle.rs).
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
        // SeqCst fence: the load half of the store-buffering pair (module
        // doc); orders the caller's spte cmpxchgs/swaps before the mode reads.
        fence(Ordering::SeqCst);
        for v in self.v.iter() {
            let seen = v.mode.load(Ordering::SeqCst);
            if seen & 1 == 0 {
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
    use std::sync::atomic::AtomicBool;

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
