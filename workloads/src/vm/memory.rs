//! Guest memory and its migration destination ([`GuestMemory`]): one
//! version per page (see [memory](crate#the-memslot-and-guest-memory) in the
//! crate docs).

use rmap_impls::Gfn;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct GuestMemory {
    /// The source VM's pages: one version per gfn.
    src: Box<[AtomicU64]>,
    /// The destination's copy of each page.
    dst: Box<[AtomicU64]>,
}

fn zeroed(n: u64) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl GuestMemory {
    pub(crate) fn new(gfns: u64) -> Self {
        GuestMemory {
            src: zeroed(gfns),
            dst: zeroed(gfns),
        }
    }

    pub(crate) fn gfns(&self) -> u64 {
        self.src.len() as u64
    }

    /// One guest write to page `gfn`. Release: pairs with the Acquire of the
    /// oracle's snapshot ([`Self::version`]); a snapshot that includes this
    /// write also sees the dirty-log mark the vCPU made before it (the fault
    /// path marks, then retries the access), so the round that harvests
    /// after the snapshot finds the mark.
    #[inline]
    pub(crate) fn guest_write(&self, gfn: Gfn) {
        self.src[gfn as usize].fetch_add(1, Ordering::Release);
    }

    /// The source version of `gfn` now. Acquire: pairs with the Release of
    /// [`Self::guest_write`].
    #[inline]
    pub(crate) fn version(&self, gfn: Gfn) -> u64 {
        self.src[gfn as usize].load(Ordering::Acquire)
    }

    /// Copy page `gfn` to the destination (the walker only).
    #[inline]
    pub(crate) fn copy(&self, gfn: Gfn) {
        let v = self.version(gfn);
        // Relaxed: the destination is written by the walker and read by the
        // same thread or after it was joined.
        self.dst[gfn as usize].store(v, Ordering::Relaxed);
    }

    /// The destination's version of `gfn`.
    #[inline]
    pub(crate) fn copied(&self, gfn: Gfn) -> u64 {
        // Relaxed: see `copy`.
        self.dst[gfn as usize].load(Ordering::Relaxed)
    }

    /// Bring the destination of `gfn` up to `v` (the oracle, after it has
    /// counted a shortfall, so that one miss is counted once).
    pub(crate) fn settle(&self, gfn: Gfn, v: u64) {
        // Relaxed: as `copy`.
        self.dst[gfn as usize].fetch_max(v, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_only_move_forward() {
        let m = GuestMemory::new(4);
        m.guest_write(2);
        m.guest_write(2);
        assert_eq!(m.version(2), 2);
        m.copy(2);
        assert_eq!(m.copied(2), 2);
        m.settle(2, 1);
        assert_eq!(m.copied(2), 2, "settle never moves the destination back");
    }

    /// Under concurrent writes, each copy brings the destination forward
    /// and never past the source: two vCPUs write the same pages while the
    /// walker copies them over and over and settles them (as the oracle
    /// does) to what it saw.
    #[test]
    fn under_concurrent_writes_the_destination_only_moves_forward() {
        const GFNS: u64 = 4;
        const WRITES: u64 = 100_000;
        let m = GuestMemory::new(GFNS);
        let writers_done = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for g in (0..GFNS).cycle().take(WRITES as usize) {
                        m.guest_write(g);
                    }
                    writers_done.fetch_add(1, Ordering::Relaxed);
                });
            }
            let mut last = [0u64; GFNS as usize];
            while writers_done.load(Ordering::Relaxed) < 2 {
                for g in 0..GFNS {
                    let seen = m.version(g);
                    m.copy(g);
                    m.settle(g, seen);
                    let now = m.copied(g);
                    assert!(now >= last[g as usize], "the destination moved back");
                    assert!(now >= seen && now <= m.version(g));
                    last[g as usize] = now;
                }
            }
        });
        for g in 0..GFNS {
            assert_eq!(m.version(g), 2 * WRITES / GFNS, "every write counted");
        }
    }
}
