//! Guest memory, its migration destination, and the dirty log.
//!
//! A guest page's contents are modelled by one `u64`: its *version*. Every
//! guest write makes the page's version strictly newer (a `fetch_add`), so
//! "the destination is at least as new as the source was" is a comparison of
//! two integers. The destination holds what the last copy of each page
//! brought across.
//!
//! The dirty log is KVM's dirty bitmap, one bit per gfn: the fault paths set
//! a gfn's bit (`mark_page_dirty`), a dirty-log round fetches and clears it a
//! word at a time (`KVM_GET_DIRTY_LOG` without manual protection).

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

    /// Copy page `gfn` to the destination (the migration thread only).
    #[inline]
    pub(crate) fn copy(&self, gfn: Gfn) {
        let v = self.version(gfn);
        // Relaxed: the destination is written by the migration thread and
        // read by the same thread or after it was joined.
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

/// The dirty bitmap of the memslot.
pub(crate) struct DirtyLog {
    words: Box<[AtomicU64]>,
}

impl DirtyLog {
    pub(crate) fn new(gfns: u64) -> Self {
        DirtyLog {
            words: zeroed(gfns.div_ceil(64)),
        }
    }

    /// `mark_page_dirty`. Test before set, as the kernel's `set_bit_le`
    /// callers do, so a page written over and over costs one locked
    /// operation per round, not per fault. SeqCst: the oracle reads the bit
    /// after reading a vCPU's in-flight fault gfn and relies on one total
    /// order of the mark, the fault's end and those reads (see
    /// `oracle.rs`). A stale "already set" is harmless: the round that
    /// clears it then write-protects the gfn, after the spte was made
    /// writable.
    #[inline]
    pub(crate) fn mark(&self, gfn: Gfn) {
        let w = &self.words[(gfn / 64) as usize];
        let bit = 1u64 << (gfn % 64);
        if w.load(Ordering::SeqCst) & bit == 0 {
            w.fetch_or(bit, Ordering::SeqCst);
        }
    }

    /// Whether `gfn` is dirty now (the oracle).
    #[inline]
    pub(crate) fn is_dirty(&self, gfn: Gfn) -> bool {
        self.words[(gfn / 64) as usize].load(Ordering::SeqCst) & (1u64 << (gfn % 64)) != 0
    }

    /// Fetch and clear the whole bitmap, appending the dirty gfns to `out`
    /// in ascending order. SeqCst swap: every mark is either harvested here
    /// or left for the next round, never lost between the read and the clear.
    pub(crate) fn harvest(&self, out: &mut Vec<Gfn>) {
        for (i, w) in self.words.iter().enumerate() {
            if w.load(Ordering::SeqCst) == 0 {
                continue;
            }
            let mut bits = w.swap(0, Ordering::SeqCst);
            while bits != 0 {
                let b = bits.trailing_zeros() as u64;
                out.push(i as u64 * 64 + b);
                bits &= bits - 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harvest_fetches_and_clears_every_mark_once() {
        let d = DirtyLog::new(200);
        for g in [0, 5, 63, 64, 130, 199, 5] {
            d.mark(g);
        }
        assert!(d.is_dirty(130) && !d.is_dirty(131));
        let mut out = Vec::new();
        d.harvest(&mut out);
        assert_eq!(out, vec![0, 5, 63, 64, 130, 199]);
        out.clear();
        d.harvest(&mut out);
        assert!(out.is_empty(), "a harvested mark is gone");
    }

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
