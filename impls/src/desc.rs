//! Descriptors, the rmap head encoding, and the type-stable descriptor pool
//! (the crate docs draw the model this module implements).
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
//! loom, whose `AtomicUsize` is not a plain `usize`). A descriptor address
//! goes into a head or link with its provenance exposed and comes back with
//! [`std::ptr::with_exposed_provenance_mut`].
//!
//! # Descriptor layout
//!
//! A descriptor is `3 + desc_ext` words in a pool page: `seq`, `more`,
//! `counts`, then `desc_ext` spte slots (`slot + 1`, or 0 for a hole).
//!
//! * `seq` is even while the descriptor is stable and odd while a writer sets
//!   it up (bumped by every [`DescPool::alloc`] / [`DescPool::publish`]
//!   pair of a pool that counts); only `lockless-gen` readers look at it, so
//!   only its pool counts ([`DescPool::with_seq`]), and every other design's
//!   pool leaves `seq` at 0 and pays no store for it. KVM has no such word: it
//!   is the lab's repair of the 2013 series, kept in every descriptor so
//!   that one pool serves every design and every chain (a `lockless-gen`
//!   over the 6.4 chain reads it as over the 2013 one).
//! * `more`, then `counts`: Linux 6.4's `struct pte_list_desc` (commit
//!   141705b78381, "KVM: x86/mmu: Track tail count in pte_list_desc to
//!   optimize guest fork()") is `more`, `u32 spte_count`, `u32 tail_count`,
//!   then the sptes, metadata first. The lab packs the two counts into one
//!   word as the kernel's two `u32` share one 8-byte word: `spte_count` (the
//!   entries of this descriptor) in the low half, `tail_count` (the entries
//!   of every descriptor after it) in the high half. Writers keep both for
//!   every chain discipline, as a field nothing else reads; only the 6.4
//!   discipline's invariants are stated in terms of `tail_count`
//!   (`chain.rs`). `counts` is writer-private (read and written only under
//!   the writer's lock), so packing it costs a lockless walker nothing.
//!
//! So a lab descriptor is the kernel's plus one leading word (`seq`): 136
//! bytes at `desc_ext` 14 where Linux 6.4's is 128. Pool pages are not
//! cache-line aligned, so the kernel's "a descriptor of up to 6 sptes
//! touches one cache line" is not modelled.
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
//! the walker unpins. A walker that holds a lock which excludes the rmap's
//! writers (`mmu-lock`, `rmap-lock`) reaches only descriptors in use, whose
//! pages `reclaim` does not retire.
//!
//! [`DescRef`] carries that argument as its invariant: it names a descriptor
//! of one pool whose page stays allocated while its holder uses it. It is made
//! only by the pool, or by [`decode_head`] and [`DescRef::next`] from a word
//! read by such a holder.
//!
//! # Deferred reuse (loom models only)
//!
//! The crate docs ask whether deferring *reuse* by a grace period, instead of
//! handing a freed descriptor out at once, closes the hole of the faithful
//! walker. Under loom a pool can be switched to that policy
//! ([`DescPool::defer_reuse`]): it then counts the walkers pinned on it, and
//! a freed descriptor waits in a limbo list until an `alloc` finds no walker
//! pinned. That is stricter than an epoch scheme (which waits only for the
//! walkers pinned *before* the free), so a checker that finds no miss
//! under it says the grace period closes the hole, at least in the models.
//! Normal builds have neither the count nor the limbo list.
//!
//! A deferring pool does not grow while a descriptor waits in limbo: an
//! `alloc` that finds the free list empty, a walker pinned and something in
//! limbo must wait for the walker ([`Exhausted::Wait`], the grace period
//! honoured) or take the limbo's last descriptor anyway
//! ([`Exhausted::ReuseAnyway`], the variant that shows the model can fail).
//! With one descriptor per page, as the models build it, every descriptor a
//! writer takes while a walker is pinned is then a reused one: the model
//! cannot pass on fresh memory alone.

#[cfg(loom)]
use crate::primitive::{fence, spin_hint};
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
const COUNTS: usize = 2;
/// Header words before the slots.
const SLOTS: usize = 3;

/// What a head word says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Head {
    Empty,
    One(SlotId),
    Desc(DescRef),
}

/// Decode a head word (the `rmap-lock` bit is ignored).
///
/// # Safety
///
/// `v` was read from an rmap head, which holds only what [`encode_one`] and
/// [`encode_desc`] make (or 0), and a descriptor it names is one of the
/// rmap's pool that the caller keeps allocated while it uses the result: it
/// has been pinned since before it read `v`, or it holds a lock that every
/// writer of that head holds (see "Type stability").
#[inline]
pub(crate) unsafe fn decode_head(v: usize) -> Head {
    let v = v & !HEAD_LOCK;
    if v == 0 {
        Head::Empty
    } else if v & HEAD_DESC == 0 {
        Head::One((v >> 2) - 1)
    } else {
        // SAFETY: bit 0 set: `v` is `d.raw() | 1` of a descriptor the caller
        // keeps allocated (this function's contract).
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

/// Decode a `more` word.
///
/// # Safety
///
/// `v` was read from the `more` word of a descriptor of some pool, and a
/// descriptor it names stays allocated while the caller uses the result (as
/// for [`decode_head`]).
#[inline]
unsafe fn decode_more(v: usize) -> More {
    if v == 0 {
        More::Init
    } else if v & 1 == 1 {
        More::Nulls((v >> 2) as Gfn)
    } else {
        // SAFETY: non-zero with bit 0 clear: `v` is `d.raw()` of a
        // descriptor of the same pool (this function's contract).
        More::Next(unsafe { DescRef::from_raw(v) })
    }
}

/// A descriptor in a pool page: a handle that is `Copy` and may outlive the
/// descriptor's membership of any rmap (never the page: see "Type
/// stability" for the invariant every `DescRef` carries).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct DescRef(NonNull<AtomicUsize>);

impl std::fmt::Debug for DescRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "desc@{:#x}", self.raw())
    }
}

// SAFETY: a DescRef names atomics in a pool page; sending or sharing it
// shares `&AtomicUsize`, which is `Sync`. That lockless walkers read
// descriptors other threads change is the design.
unsafe impl Send for DescRef {}
unsafe impl Sync for DescRef {}

impl DescRef {
    /// # Safety
    /// `raw` is [`DescRef::raw`] of a descriptor whose page the caller keeps
    /// allocated while it uses the result.
    #[inline]
    unsafe fn from_raw(raw: usize) -> Self {
        debug_assert!(raw != 0 && raw & (HEAD_DESC | HEAD_LOCK) == 0);
        // SAFETY: `raw` is non-zero: it came from a `NonNull` (the contract).
        DescRef(unsafe { NonNull::new_unchecked(std::ptr::with_exposed_provenance_mut(raw)) })
    }

    /// The address, with its provenance exposed for [`DescRef::from_raw`].
    #[inline]
    pub(crate) fn raw(self) -> usize {
        self.0.as_ptr().expose_provenance()
    }

    /// Header word `I` (`I < SLOTS`, checked at compile time).
    #[inline]
    fn header<const I: usize>(&self) -> &AtomicUsize {
        const { assert!(I < SLOTS) };
        // SAFETY: every descriptor starts with `SLOTS` header words, and its
        // page is allocated while `self` is used (the type's invariant).
        unsafe { &*self.0.as_ptr().add(I) }
    }

    #[inline]
    pub(crate) fn seq(&self) -> &AtomicUsize {
        self.header::<SEQ>()
    }

    #[inline]
    pub(crate) fn more(&self) -> &AtomicUsize {
        self.header::<MORE>()
    }

    /// Load and decode the `more` link.
    #[inline]
    pub(crate) fn next(&self, order: Ordering) -> More {
        let v = self.more().load(order);
        // SAFETY: a `more` word holds only 0 (`DescPool::alloc`), a nulls
        // marker, or `raw()` of a descriptor of the same pool stored while
        // that descriptor was live (chain.rs). So it names a descriptor live
        // at some moment after the holder of `self` pinned or took its lock,
        // which keeps that page allocated too ("Type stability").
        unsafe { decode_more(v) }
    }

    /// Writer-private `spte_count` and `tail_count`, packed ("Descriptor
    /// layout"); only touched under the writer's lock.
    #[inline]
    pub(crate) fn counts(&self) -> &AtomicUsize {
        self.header::<COUNTS>()
    }
}

/// Decode a descriptor slot value.
#[inline]
pub(crate) fn slot_entry(v: usize) -> Option<SlotId> {
    v.checked_sub(1)
}

/// One page of descriptors. Its memory is taken from a `Box` once, as a raw
/// pointer, and given back once by [`Page::free`]: descriptors are handed
/// out as raw pointers into it, so no `Box` that could be moved after that
/// (and so invalidate them) ever owns it again.
struct Page {
    words: NonNull<[AtomicUsize]>,
}

// SAFETY: a Page is owned by exactly one of the pool (in `PoolInner::pages`)
// or the deferred free that retires it; its words are atomics.
unsafe impl Send for Page {}

impl Page {
    fn new(words: usize) -> Page {
        let words: Box<[AtomicUsize]> = (0..words).map(|_| AtomicUsize::new(0)).collect();
        Page {
            words: NonNull::from(Box::leak(words)),
        }
    }

    fn first(&self) -> NonNull<AtomicUsize> {
        self.words.cast()
    }

    #[cfg_attr(loom, allow(dead_code, reason = "only `reclaim` asks"))]
    fn contains(&self, d: DescRef) -> bool {
        let base = self.first().as_ptr().addr();
        (base..base + self.words.len() * WORD_BYTES).contains(&d.0.as_ptr().addr())
    }

    /// # Safety
    /// Nothing reads the page any more, or will: no rmap reaches one of its
    /// descriptors, none is in a free list, and every walker that could have
    /// reached one has unpinned.
    unsafe fn free(self) {
        // SAFETY: `words` came from `Box::leak` in `Page::new` and is freed
        // only here, once (`self` is consumed); nothing uses it (contract).
        drop(unsafe { Box::from_raw(self.words.as_ptr()) });
    }
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
    /// Bump each descriptor's `seq` around its setup (`lockless-gen` only).
    seq: bool,
    inner: Mutex<PoolInner>,
    /// Walkers pinned on this pool, and what an allocation does when only
    /// limbo is left; `Some` when reuse is deferred.
    #[cfg(loom)]
    deferred: Option<(AtomicUsize, Exhausted)>,
}

/// What a deferring pool's `alloc` does when its free list is empty, a
/// walker is pinned and freed descriptors wait in limbo (loom models only;
/// see "Deferred reuse").
#[cfg(loom)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    /// Wait until no walker is pinned (the grace period).
    Wait,
    /// Reuse the last descriptor freed, under the pinned walker.
    ReuseAnyway,
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

impl DescPool {
    pub(crate) fn new(desc_ext: usize, page_descs: usize) -> Self {
        assert!((1..=MAX_DESC_EXT).contains(&desc_ext));
        assert!(page_descs > 0);
        DescPool {
            desc_ext,
            page_descs,
            seq: true,
            inner: Mutex::new(PoolInner {
                free: Vec::new(),
                pages: Vec::new(),
                #[cfg(loom)]
                limbo: Vec::new(),
            }),
            #[cfg(loom)]
            deferred: None,
        }
    }

    /// Whether `alloc` and `publish` bump each descriptor's `seq` (the
    /// default): a pool whose walkers never read it (every design but
    /// `lockless-gen`) turns the two stores off, so that the designs compared
    /// with `lockless-gen` do not pay for its repair.
    pub(crate) fn with_seq(mut self, seq: bool) -> Self {
        self.seq = seq;
        self
    }

    /// Enter a walker's read-side section: the pool's pages stay allocated
    /// until the guard is dropped (an epoch guard; see "Type stability").
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn pin(&self) -> crossbeam_epoch::Guard {
        crate::primitive::pin()
    }

    /// Under loom: count the walker when reuse is deferred.
    #[cfg(loom)]
    pub(crate) fn pin(&self) -> PoolGuard<'_> {
        let pinned = self.deferred.as_ref().map(|(pinned, _)| pinned);
        if let Some(pinned) = pinned {
            // Relaxed, then a SeqCst fence that pairs with the one in
            // `alloc`: either that writer's check sees this walker pinned,
            // or this walker's loads after the fence see every unlink the
            // writer made before its check (store buffering needs both).
            pinned.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
        }
        PoolGuard(pinned)
    }

    /// Loom models only: from now on a freed descriptor is not handed out
    /// while any walker is pinned, and `exhausted` says what an allocation
    /// does when nothing else is left (see "Deferred reuse").
    #[cfg(loom)]
    pub(crate) fn defer_reuse(&mut self, exhausted: Exhausted) {
        self.deferred = Some((AtomicUsize::new(0), exhausted));
    }

    pub(crate) fn desc_ext(&self) -> usize {
        self.desc_ext
    }

    fn stride(&self) -> usize {
        SLOTS + self.desc_ext
    }

    /// The `desc_ext` spte slots of `d`, a descriptor of this pool. Each
    /// holds `slot + 1`, or 0 for a hole.
    #[inline]
    pub(crate) fn slots(&self, d: DescRef) -> &[AtomicUsize] {
        // SAFETY: a descriptor of this pool is `SLOTS + desc_ext` words of
        // one of its pages (`alloc`), allocated while `d` is used (the
        // invariant of `DescRef`); its slots are the last `desc_ext`.
        unsafe { std::slice::from_raw_parts(d.0.as_ptr().add(SLOTS), self.desc_ext) }
    }

    /// Take a descriptor and start setting it up: its `seq` becomes odd (in
    /// a pool that counts) and its `more` link 0 ("being initialised"), in
    /// that order, before the writer touches anything else. Its slots are
    /// all holes.
    pub(crate) fn alloc(&self) -> DescRef {
        #[allow(clippy::never_loop, reason = "only a waiting loom pool loops")]
        let d = loop {
            let mut inner = self.inner.lock().unwrap();
            #[cfg(loom)]
            if let Some((pinned, exhausted)) = &self.deferred {
                // SeqCst fence: pairs with the fence in `pin`. Acquire:
                // pairs with the Release in `PoolGuard::drop`.
                fence(Ordering::SeqCst);
                if pinned.load(Ordering::Acquire) == 0 {
                    let limbo = std::mem::take(&mut inner.limbo);
                    inner.free.extend(limbo);
                } else if inner.free.is_empty() && !inner.limbo.is_empty() {
                    match exhausted {
                        Exhausted::ReuseAnyway => break inner.limbo.pop().unwrap(),
                        Exhausted::Wait => {
                            drop(inner);
                            spin_hint();
                            continue;
                        }
                    }
                }
            }
            break match inner.free.pop() {
                Some(d) => d,
                None => {
                    let stride = self.stride();
                    let page = Page::new(stride * self.page_descs);
                    let first = page.first();
                    // Hand out the page's first descriptor, keep the rest;
                    // pushed in reverse so that the lowest address goes next.
                    for i in (1..self.page_descs).rev() {
                        // SAFETY: `i * stride` words in, inside the page just
                        // allocated (`page_descs * stride` words).
                        inner.free.push(DescRef(unsafe { first.add(i * stride) }));
                    }
                    inner.pages.push(page);
                    DescRef(first)
                }
            };
        };
        if self.seq {
            let seq = d.seq().load(Ordering::Relaxed);
            debug_assert!(seq % 2 == 0);
            // Release, as every store a lockless walker may read (crate docs,
            // "Memory ordering"). What the `lockless-gen` recheck relies on
            // is not this store's ordering but the Release of the setup's
            // stores that follow it: a walker that reads one of them reads
            // this odd count, or a later one, when it rechecks.
            d.seq().store(seq + 1, Ordering::Release);
        }
        // Release: as above. A walker still on the previous incarnation that
        // reads this 0 (Acquire) restarts (seed case 3.b).
        d.more().store(0, Ordering::Release);
        d.counts().store(0, Ordering::Relaxed);
        d
    }

    /// End the setup of `d`: its `seq` becomes even again (in a pool that
    /// counts; otherwise nothing). Release: pairs with the Acquire load of
    /// `seq` in the `lockless-gen` walker, which then sees every slot and
    /// `more` value stored during the setup.
    #[inline]
    pub(crate) fn publish(&self, d: DescRef) {
        if !self.seq {
            return;
        }
        let seq = d.seq().load(Ordering::Relaxed);
        debug_assert!(seq % 2 == 1);
        d.seq().store(seq + 1, Ordering::Release);
    }

    /// Give `d` back. Nothing in it is cleared: a walker that still reads it
    /// sees its last contents (seed case 3.a) until it is allocated again.
    pub(crate) fn free(&self, d: DescRef) {
        let mut inner = self.inner.lock().unwrap();
        #[cfg(loom)]
        if self.deferred.is_some() {
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
        let mut guard = self.inner.lock().unwrap();
        let inner = &mut *guard;
        let free = &inner.free;
        let all_free =
            |p: &Page| free.iter().filter(|&&d| p.contains(d)).count() == self.page_descs;
        let (gone, kept): (Vec<Page>, Vec<Page>) = std::mem::take(&mut inner.pages)
            .into_iter()
            .partition(all_free);
        inner.pages = kept;
        if gone.is_empty() {
            return 0;
        }
        inner.free.retain(|&d| !gone.iter().any(|p| p.contains(d)));
        let retired = gone.len();
        let epoch = crate::primitive::pin();
        for page in gone {
            // SAFETY: every descriptor of `page` was free and has left the
            // free list, so no rmap reaches it and no `alloc` hands it out;
            // walkers pinned before this point may still read it, and the
            // collector runs this only once all of them have unpinned. The
            // page has left `pages`, so `Drop` will not free it again.
            epoch.defer(move || unsafe { page.free() });
        }
        epoch.flush();
        retired
    }
}

impl Drop for DescPool {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        for page in inner.pages.drain(..) {
            // SAFETY: `&mut self`: no writer or walker borrows the pool any
            // more (both borrow the rmap that owns it), and a page is in
            // `pages` only until `reclaim` hands it to its deferred free.
            unsafe { page.free() };
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn head_and_more_round_trip() {
        let pool = DescPool::new(3, 4);
        let d = pool.alloc();
        // SAFETY: each value is what the encoders make, and `d` is a
        // descriptor of `pool`, alive for the whole test.
        unsafe {
            assert_eq!(decode_head(0), Head::Empty);
            assert_eq!(decode_head(encode_one(0)), Head::One(0));
            assert_eq!(decode_head(encode_one(12345)), Head::One(12345));
            assert_eq!(decode_more(nulls(77)), More::Nulls(77));
            assert_eq!(decode_more(0), More::Init);
            assert_eq!(decode_head(encode_desc(d)), Head::Desc(d));
            assert_eq!(decode_head(encode_desc(d) | HEAD_LOCK), Head::Desc(d));
            assert_eq!(decode_more(d.raw()), More::Next(d));
        }
        pool.free(d);
    }

    #[test]
    fn slots_are_the_descriptor_words_after_the_header() {
        let pool = DescPool::new(3, 2);
        let (a, b) = (pool.alloc(), pool.alloc());
        assert_eq!(pool.slots(a).len(), 3);
        let end_of_a = pool.slots(a).as_ptr_range().end as usize;
        assert_eq!(end_of_a, b.raw(), "b starts where a's last slot ends");
        pool.slots(a)[2].store(7, Ordering::Relaxed);
        assert_eq!(b.seq().load(Ordering::Relaxed), 1, "a's slots stay in a");
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
    fn a_pool_without_seq_never_stores_it() {
        let pool = DescPool::new(2, 4).with_seq(false);
        let a = pool.alloc();
        pool.publish(a);
        pool.free(a);
        assert_eq!(pool.alloc(), a);
        pool.publish(a);
        assert_eq!(a.seq().load(Ordering::Relaxed), 0);
        assert_eq!(
            a.more().load(Ordering::Relaxed),
            0,
            "more is still 0 in setup"
        );
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
