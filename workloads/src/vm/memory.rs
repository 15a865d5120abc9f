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
}
