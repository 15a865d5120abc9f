//! Guest memory and its migration destination ([`GuestMemory`]): one
//! version per page (see [memory](crate#the-memslot-and-guest-memory) in the
//! crate docs).
//!
//! Each source page's version sits on a cache line of its own
//! ([`CachePadded`]: 128 bytes on x86-64, whose adjacent-line prefetcher
//! pulls lines in pairs), as real guest pages, 4 KiB apart, never share a
//! line: two vCPUs writing two pages do not bounce a line between them. The
//! destination and the oracle's snapshot are the walker's alone and stay
//! packed ([`crate::config::HOST_BYTES_PER_PAGE`] says what a page costs).
//!
//! A guest write is a plain Release store of `version + 1` when every page
//! has one writer (`Config::pages_have_one_writer`: partitioned slices), and
//! a locked `fetch_add` when vCPUs share pages. With two writers, a plain
//! load and store would lose increments, and that is not harmless to the
//! oracle: vCPU A loads `v`, vCPU B stores `v + 1` and `v + 2`, A stores
//! `v + 1`, and the version has moved *back*, which the final comparison
//! reads as a lost write when a copy took `v + 2`; and a write through a
//! stale translation that loses its increment to a racing logged write
//! stores a version the copy already has, which hides it. The RMW keeps
//! versions strictly increasing, one per write; on a line of its own it
//! contends only when two vCPUs write the same page at once, which would
//! share a line in a real guest too.

use crossbeam_utils::CachePadded;
use rmap_impls::Gfn;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct GuestMemory {
    /// The source VM's pages: one version per gfn, a line each.
    src: Box<[CachePadded<AtomicU64>]>,
    /// The destination's copy of each page.
    dst: Box<[AtomicU64]>,
    /// At most one vCPU writes each page: plain stores suffice.
    one_writer: bool,
}

fn zeroed(n: u64) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl GuestMemory {
    /// `one_writer`: at most one vCPU writes each page
    /// (`Config::pages_have_one_writer`).
    pub(crate) fn new(gfns: u64, one_writer: bool) -> Self {
        GuestMemory {
            src: (0..gfns)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            dst: zeroed(gfns),
            one_writer,
        }
    }

    pub(crate) fn gfns(&self) -> u64 {
        self.src.len() as u64
    }

    /// One guest write to page `gfn`: the version moves to the next. Release
    /// (the store, or the RMW): pairs with the Acquire of the oracle's
    /// snapshot ([`Self::version`]); a snapshot that includes this write
    /// also sees the dirty-log mark the vCPU made before it (the fault path
    /// marks, then retries the access), so the round that harvests after
    /// the snapshot finds the mark. Which of the two (see the module doc)
    /// is one predictable branch.
    #[inline]
    pub(crate) fn guest_write(&self, gfn: Gfn) {
        let page = &self.src[gfn as usize];
        if self.one_writer {
            // Relaxed: this vCPU wrote the last version itself.
            let v = page.load(Ordering::Relaxed);
            page.store(v + 1, Ordering::Release);
        } else {
            page.fetch_add(1, Ordering::Release);
        }
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
        for one_writer in [false, true] {
            let m = GuestMemory::new(4, one_writer);
            m.guest_write(2);
            m.guest_write(2);
            assert_eq!(m.version(2), 2);
            assert_eq!(m.version(1), 0);
        }
        let m = GuestMemory::new(4, false);
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
        let m = GuestMemory::new(GFNS, false);
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

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// No two source pages share a cache line, nor, on x86-64, the pair of
    /// lines an adjacent-line prefetcher pulls together (128 bytes).
    #[test]
    fn guest_pages_do_not_share_a_cache_line() {
        let m = GuestMemory::new(64, false);
        let addr = |g: usize| &*m.src[g] as *const AtomicU64 as usize;
        for g in 0..63 {
            let (a, b) = (addr(g), addr(g + 1));
            assert!(
                b - a >= 64,
                "pages {g} and {} are {} bytes apart",
                g + 1,
                b - a
            );
            assert_ne!(a / 64, b / 64, "pages {g} and {} share a line", g + 1);
            if cfg!(target_arch = "x86_64") {
                assert_ne!(
                    a / 128,
                    b / 128,
                    "pages {g} and {} share a line pair",
                    g + 1
                );
            }
        }
        let per_page = std::mem::size_of::<CachePadded<AtomicU64>>() as u64 + 16;
        assert_eq!(per_page, crate::config::HOST_BYTES_PER_PAGE);
    }
}
