//! Descriptors, the rmap head encoding, and the type-stable descriptor pool.
//!
//! # Head and link encoding
//!
//! One word per rmap head, one `more` link per descriptor:
//!
//! | value                 | in a head                 | in `desc.more`               |
//! |-----------------------|---------------------------|------------------------------|
//! | `0`                   | empty rmap                | descriptor being initialised |
//! | `(slot + 1) << 2`     | one spte (bit 0 clear)    | never                        |
//! | `desc_ptr \| 1`       | a descriptor chain        | never                        |
//! | `desc_ptr`            | never                     | the next descriptor          |
//! | `(gfn << 2) \| 1`     | never                     | nulls: end of rmap `gfn`     |
//!
//! Bit 1 of a head is the `rmap-lock` design's lock bit; everybody else
//! leaves it clear. A descriptor starts at a word of its page, so it is
//! aligned like an `AtomicUsize`; the encoding needs bits 0 and 1 of that
//! address free, which a compile-time assertion checks (it matters under
//! loom, whose `AtomicUsize` is not a plain `usize`).
//!
//! # Descriptor layout
//!
//! A descriptor is `3 + desc_ext` words in a pool page: `seq`, `more`,
//! `count`, then `desc_ext` spte slots (`slot + 1`, or 0 for a hole).
//! `seq` is even while the descriptor is stable and odd while a writer sets it
//! up (bumped by every [`DescPool::alloc`] / [`DescPool::publish`] pair);
//! only `lockless-gen` readers look at it. `count` is writer-private (read and
//! written only under the writer's lock).
//!
//! # Type stability
//!
//! Like the kernel's `SLAB_TYPESAFE_BY_RCU`, a freed descriptor may be handed
//! out again at once, to any rmap, while a lockless walker still reads it. The
//! walker is therefore only ever told "this word is some descriptor's word",
//! never "this is still your descriptor": it must validate what it read (the
//! nulls marker, the sequence count). Every word of a descriptor is an atomic
//! and every read of it is an atomic load, so reading a recycled descriptor
//! is defined behaviour, merely stale.
//!
//! Walkers enter their read-side section with [`DescPool::pin`].
//! Pool pages are returned to the allocator only by [`DescPool::reclaim`],
//! and only after a crossbeam-epoch grace period. A walker holds an epoch
//! guard for its whole walk. Every descriptor a walker reaches was live at
//! some moment after the walker pinned (it starts from a live head, and a
//! `more` value it reads was stored while the target was live: we never write
//! `more` on free), so the page holding it cannot be retired and freed before
//! the walker unpins.
//!
//! # Deferred reuse (loom models only)
//!
//! DESIGN.md §1 asks whether deferring *reuse* by a grace period, instead of
//! handing a freed descriptor out at once, closes the hole of the faithful
//! walker. Under loom a pool can be switched to that policy
//! ([`DescPool::defer_reuse`]): it then counts the walkers pinned on it, and
//! a freed descriptor waits in a limbo list until an `alloc` finds no walker
//! pinned. That is stricter than an epoch scheme (which waits only for the
//! walkers pinned *before* the free), so a checker that finds no miss
//! under it says the grace period closes the hole, at least in the models.
//! Normal builds have neither the count nor the limbo list.

#[cfg(loom)]
use crate::primitive::fence;
use crate::primitive::{AtomicUsize, Mutex, Ordering};
use crate::spte::{Gfn, SlotId};
use std::ptr::NonNull;

/// Largest `desc_ext` a pool accepts.
pub const MAX_DESC_EXT: usize = 64;

pub(crate) const HEAD_DESC: usize = 1;
pub(crate) const HEAD_LOCK: usize = 2;

/// Bytes from one descriptor word to the next: the size of the atomic type
/// the words are made of. That is a `usize` in a normal build; loom's
/// atomics are handles into the model's store, whose layout loom does not
/// promise to keep equal to the integer's.
const WORD_BYTES: usize = std::mem::size_of::<AtomicUsize>();

/// The head and `more` encodings keep bits 0 (`HEAD_DESC`, nulls) and 1
/// (`HEAD_LOCK`) of a descriptor address for tags.
const _: () = assert!(
    std::mem::align_of::<AtomicUsize>() > HEAD_DESC | HEAD_LOCK,
    "descriptor words must be aligned so that the head's tag bits are free"
);

const SEQ: usize = 0;
const MORE: usize = 1;
const COUNT: usize = 2;
const SLOTS: usize = 3;

/// What a head word says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Head {
    Empty,
    One(SlotId),
    Desc(DescRef),
}

#[inline]
pub(crate) fn decode_head(v: usize) -> Head {
    let v = v & !HEAD_LOCK;
    if v == 0 {
        Head::Empty
    } else if v & HEAD_DESC == 0 {
        Head::One((v >> 2) - 1)
    } else {
        // SAFETY: a head with bit 0 set only ever holds `desc.raw() | 1` of
        // a descriptor from this rmap's pool (see the table above).
        Head::Desc(unsafe { DescRef::from_raw(v & !(HEAD_DESC | HEAD_LOCK)) })
    }
}

#[inline]
pub(crate) fn encode_one(slot: SlotId) -> usize {
    (slot + 1) << 2
}

#[inline]
pub(crate) fn encode_desc(d: DescRef) -> usize {
    d.raw() | HEAD_DESC
}

/// The nulls marker that ends rmap `gfn`'s chain.
#[inline]
pub(crate) fn nulls(gfn: Gfn) -> usize {
    ((gfn as usize) << 2) | 1
}

/// What a `more` link says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum More {
    /// 0: the descriptor is being initialised.
    Init,
    /// The end of the chain of rmap `gfn`.
    Nulls(Gfn),
    Next(DescRef),
}

#[inline]
pub(crate) fn decode_more(v: usize) -> More {
    if v == 0 {
        More::Init
    } else if v & 1 == 1 {
        More::Nulls((v >> 2) as Gfn)
    } else {
        // SAFETY: a `more` link with bit 0 clear and non-zero only ever holds
        // `desc.raw()` of a descriptor of the same pool.
        More::Next(unsafe { DescRef::from_raw(v) })
    }
}

/// A descriptor in a pool page: a handle that is `Copy` and may outlive the
/// descriptor's membership of any rmap (never the page, see the module doc).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct DescRef(NonNull<AtomicUsize>);

impl std::fmt::Debug for DescRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "desc@{:#x}", self.raw())
    }
}

// SAFETY: a DescRef only names atomics in a pool page; sharing the address
// between threads is what the lockless walkers do by design.
unsafe impl Send for DescRef {}
unsafe impl Sync for DescRef {}

impl DescRef {
    /// # Safety
    /// `raw` must be the address of a descriptor of a live pool page (one not
    /// yet freed by the epoch collector), as stored in a head or `more` link.
    #[inline]
    pub(crate) unsafe fn from_raw(raw: usize) -> Self {
        debug_assert!(raw != 0 && raw & (HEAD_DESC | HEAD_LOCK) == 0);
        DescRef(NonNull::new_unchecked(raw as *mut AtomicUsize))
    }

    #[inline]
    pub(crate) fn raw(self) -> usize {
        self.0.as_ptr() as usize
    }

    #[inline]
    fn word(&self, i: usize) -> &AtomicUsize {
        // SAFETY: the page outlives every reader that can name it (module
        // doc), and `i < 3 + desc_ext` by construction of the callers.
        unsafe { &*self.0.as_ptr().add(i) }
    }

    #[inline]
    pub(crate) fn seq(&self) -> &AtomicUsize {
        self.word(SEQ)
    }

    #[inline]
    pub(crate) fn more(&self) -> &AtomicUsize {
        self.word(MORE)
    }

    /// Writer-private fill count; only touched under the writer's lock.
    #[inline]
    pub(crate) fn count(&self) -> &AtomicUsize {
        self.word(COUNT)
    }

    /// Slot `i` holds `spte slot + 1`, or 0 for a hole.
    #[inline]
    pub(crate) fn slot(&self, i: usize) -> &AtomicUsize {
        self.word(SLOTS + i)
    }
}

/// Decode a descriptor slot value.
#[inline]
pub(crate) fn slot_entry(v: usize) -> Option<SlotId> {
    v.checked_sub(1)
}

struct Page {
    // Owns the page's memory; only `reclaim` (not built under loom) reads it.
    #[cfg_attr(loom, allow(dead_code))]
    words: Box<[AtomicUsize]>,
}

struct PoolInner {
    free: Vec<DescRef>,
    pages: Vec<Page>,
    /// Freed while a walker may still read them (deferred reuse only).
    #[cfg(loom)]
    limbo: Vec<DescRef>,
}

/// Type-stable descriptor memory shared by every rmap of one VM.
///
/// `alloc` and `free` are called by writers only (under the implementation's
/// writer lock); a small internal mutex keeps the pool sound on its own.
/// Reuse is last-in-first-out and immediate: the freshest freed descriptor is
/// the next one handed out, which is what makes recycling races likely.
pub(crate) struct DescPool {
    desc_ext: usize,
    page_descs: usize,
    inner: Mutex<PoolInner>,
    /// Walkers pinned on this pool; `Some` when reuse is deferred.
    #[cfg(loom)]
    pinned: Option<AtomicUsize>,
}

/// A walker's read-side section on a pool under loom: counted when the pool
/// defers reuse, nothing otherwise.
#[cfg(loom)]
pub(crate) struct PoolGuard<'a>(Option<&'a AtomicUsize>);

#[cfg(loom)]
impl Drop for PoolGuard<'_> {
    fn drop(&mut self) {
        if let Some(pinned) = self.0 {
            // Release: pairs with the Acquire load in `DescPool::alloc`; a
            // writer that sees this walker gone reuses a descriptor only
            // after every read the walker made of it.
            pinned.fetch_sub(1, Ordering::Release);
        }
    }
}

// SAFETY: the raw descriptor handles in `PoolInner` point into `pages`, which
// the pool owns; all access to them goes through atomics.
unsafe impl Send for DescPool {}
unsafe impl Sync for DescPool {}

impl DescPool {
    pub(crate) fn new(desc_ext: usize, page_descs: usize) -> Self {
        assert!((1..=MAX_DESC_EXT).contains(&desc_ext));
        assert!(page_descs > 0);
        DescPool {
            desc_ext,
            page_descs,
            inner: Mutex::new(PoolInner {
                free: Vec::new(),
                pages: Vec::new(),
                #[cfg(loom)]
                limbo: Vec::new(),
            }),
            #[cfg(loom)]
            pinned: None,
        }
    }

    /// Enter a walker's read-side section: the pool's pages stay allocated
    /// until the guard is dropped (an epoch guard; see the module doc).
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn pin(&self) -> crossbeam_epoch::Guard {
        crate::primitive::pin()
    }

    /// Under loom: count the walker when reuse is deferred.
    #[cfg(loom)]
    pub(crate) fn pin(&self) -> PoolGuard<'_> {
        if let Some(pinned) = &self.pinned {
            // Relaxed, then a SeqCst fence that pairs with the one in
            // `alloc`: either that writer's check sees this walker pinned,
            // or this walker's loads after the fence see every unlink the
            // writer made before its check (store buffering needs both).
            pinned.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
        }
        PoolGuard(self.pinned.as_ref())
    }

    /// Loom models only: from now on a freed descriptor is not handed out
    /// while any walker is pinned (see the module doc).
    #[cfg(loom)]
    pub(crate) fn defer_reuse(&mut self) {
        self.pinned = Some(AtomicUsize::new(0));
    }

    pub(crate) fn desc_ext(&self) -> usize {
        self.desc_ext
    }

    fn stride(&self) -> usize {
        SLOTS + self.desc_ext
    }

    /// Take a descriptor and start setting it up: its `seq` becomes odd and
    /// its `more` link 0 ("being initialised"), in that order, before the
    /// writer touches anything else. Its slots are all holes.
    pub(crate) fn alloc(&self) -> DescRef {
        let d = {
            let mut inner = self.inner.lock().unwrap();
            #[cfg(loom)]
            if let Some(pinned) = &self.pinned {
                // SeqCst fence: pairs with the fence in `pin`. Acquire:
                // pairs with the Release in `PoolGuard::drop`.
                fence(Ordering::SeqCst);
                if pinned.load(Ordering::Acquire) == 0 {
                    let limbo = std::mem::take(&mut inner.limbo);
                    inner.free.extend(limbo);
                }
            }
            match inner.free.pop() {
                Some(d) => d,
                None => {
                    let stride = self.stride();
                    let words: Box<[AtomicUsize]> = (0..stride * self.page_descs)
                        .map(|_| AtomicUsize::new(0))
                        .collect();
                    let base = words.as_ptr() as usize;
                    // Hand out the page's first descriptor, keep the rest;
                    // pushed in reverse so that the lowest address goes next.
                    for i in (1..self.page_descs).rev() {
                        let addr = base + i * stride * WORD_BYTES;
                        // SAFETY: an address inside the page just allocated.
                        inner.free.push(unsafe { DescRef::from_raw(addr) });
                    }
                    inner.pages.push(Page { words });
                    // SAFETY: the first descriptor of that page.
                    unsafe { DescRef::from_raw(base) }
                }
            }
        };
        // Writer-side read of a word only writers change: Relaxed, ordered
        // for us by the pool mutex and the writer's lock.
        let seq = d.seq().load(Ordering::Relaxed);
        debug_assert!(seq % 2 == 0);
        // Release: a walker that reads this odd count or anything stored
        // after it (Acquire) sees the descriptor as "being initialised".
        d.seq().store(seq + 1, Ordering::Release);
        // Release: pairs with the walker's Acquire load of `more`; a walker
        // still on the previous incarnation sees 0 and restarts (seed case
        // 3.b) and, for lockless-gen, sees the odd count when it rechecks.
        d.more().store(0, Ordering::Release);
        d.count().store(0, Ordering::Relaxed);
        d
    }

    /// End the setup of `d`: its `seq` becomes even again. Release: pairs
    /// with the Acquire load of `seq` in the lockless-gen walker, which then
    /// sees every slot and `more` value stored during the setup.
    pub(crate) fn publish(&self, d: DescRef) {
        let seq = d.seq().load(Ordering::Relaxed);
        debug_assert!(seq % 2 == 1);
        d.seq().store(seq + 1, Ordering::Release);
    }

    /// Give `d` back. Nothing in it is cleared: a walker that still reads it
    /// sees its last contents (seed case 3.a) until it is allocated again.
    pub(crate) fn free(&self, d: DescRef) {
        let mut inner = self.inner.lock().unwrap();
        #[cfg(loom)]
        if self.pinned.is_some() {
            inner.limbo.push(d);
            return;
        }
        inner.free.push(d);
    }

    /// Number of descriptors currently handed out.
    pub(crate) fn in_use(&self) -> usize {
        let inner = self.inner.lock().unwrap();
        #[cfg(loom)]
        let waiting = inner.limbo.len();
        #[cfg(not(loom))]
        let waiting = 0;
        inner.pages.len() * self.page_descs - inner.free.len() - waiting
    }

    /// Return every page whose descriptors are all free to the allocator,
    /// after an epoch grace period. Returns the number of pages retired.
    #[cfg(not(loom))]
    pub(crate) fn reclaim(&self) -> usize {
        let stride_bytes = self.stride() * WORD_BYTES;
        let page_bytes = stride_bytes * self.page_descs;
        let mut inner = self.inner.lock().unwrap();
        let mut free_per_page = vec![0usize; inner.pages.len()];
        let page_of = |pages: &[Page], d: DescRef| {
            pages.iter().position(|p| {
                let base = p.words.as_ptr() as usize;
                (base..base + page_bytes).contains(&d.raw())
            })
        };
        for d in inner.free.iter() {
            if let Some(p) = page_of(&inner.pages, *d) {
                free_per_page[p] += 1;
            }
        }
        let retire: Vec<usize> = (0..inner.pages.len())
            .filter(|&p| free_per_page[p] == self.page_descs)
            .collect();
        if retire.is_empty() {
            return 0;
        }
        let pages = std::mem::take(&mut inner.pages);
        let (gone, kept): (Vec<(usize, Page)>, Vec<(usize, Page)>) = pages
            .into_iter()
            .enumerate()
            .partition(|(i, _)| retire.contains(i));
        inner.pages = kept.into_iter().map(|(_, p)| p).collect();
        let bases: Vec<usize> = gone
            .iter()
            .map(|(_, p)| p.words.as_ptr() as usize)
            .collect();
        inner.free.retain(|d| {
            !bases
                .iter()
                .any(|b| (*b..*b + page_bytes).contains(&d.raw()))
        });
        let guard = crate::primitive::pin();
        for (_, page) in gone {
            // The page is unreachable from any live rmap now; walkers pinned
            // before this point may still read it, so it is dropped only
            // after every such guard is gone.
            guard.defer(move || drop(page));
        }
        guard.flush();
        retire.len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn head_and_more_round_trip() {
        assert_eq!(decode_head(0), Head::Empty);
        assert_eq!(decode_head(encode_one(0)), Head::One(0));
        assert_eq!(decode_head(encode_one(12345)), Head::One(12345));
        assert_eq!(decode_more(nulls(77)), More::Nulls(77));
        assert_eq!(decode_more(0), More::Init);
        let pool = DescPool::new(3, 4);
        let d = pool.alloc();
        assert_eq!(decode_head(encode_desc(d)), Head::Desc(d));
        assert_eq!(decode_head(encode_desc(d) | HEAD_LOCK), Head::Desc(d));
        assert_eq!(decode_more(d.raw()), More::Next(d));
        pool.free(d);
    }

    #[test]
    fn reuse_is_lifo_and_seq_is_odd_during_setup() {
        let pool = DescPool::new(2, 4);
        let a = pool.alloc();
        assert_eq!(a.seq().load(Ordering::Relaxed) % 2, 1);
        pool.publish(a);
        assert_eq!(a.seq().load(Ordering::Relaxed), 2);
        let b = pool.alloc();
        pool.publish(b);
        pool.free(a);
        assert_eq!(pool.alloc(), a, "last freed is next handed out");
        assert_eq!(a.seq().load(Ordering::Relaxed), 3);
        assert_eq!(pool.in_use(), 2);
    }

    #[test]
    fn reclaim_returns_only_fully_free_pages() {
        let pool = DescPool::new(2, 2);
        let ds: Vec<_> = (0..4).map(|_| pool.alloc()).collect();
        for d in &ds {
            pool.publish(*d);
        }
        assert_eq!(pool.reclaim(), 0);
        pool.free(ds[0]);
        pool.free(ds[2]);
        pool.free(ds[3]);
        assert_eq!(
            pool.reclaim(),
            1,
            "only the page of ds[2], ds[3] is all free"
        );
        assert_eq!(pool.in_use(), 1);
        assert_eq!(
            pool.alloc(),
            ds[0],
            "the surviving free descriptor is reused"
        );
    }
}
