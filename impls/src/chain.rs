//! Chain disciplines: the writer-side algorithms of an rmap kept as a head
//! word plus a chain of descriptors, one [`Chain`] implementation each.
//! Callers hold the design's writer lock (`mmu_lock`, plus the rmap lock for
//! `rmap-lock`), so no two of these run on one rmap at once, and pool
//! allocation is serialised with them.
//!
//! * [`HeadChain`] (the 2013 lockless series): a new descriptor goes to the
//!   head, only the head may be non-full, and remove fills the hole with the
//!   head descriptor's last entry ("forward move": an entry only ever moves
//!   from a descriptor a walker has already passed, or is about to read, to
//!   one it reads later). An rmap left with one spte returns to the single
//!   form.
//! * [`TailChain`] (KVM in 2013, Linux 3.11's `pte_list_add` and
//!   `pte_list_desc_remove_entry`): add appends to the last descriptor,
//!   remove fills the hole with the last entry of the *same* descriptor, an
//!   emptied descriptor is unlinked wherever it is. Correct under
//!   `mmu_lock`; whether the nulls walker survives it is a loom model
//!   (`designs::lockless::over_2013_remove`).
//! * [`FillFromTailChain`]: the tail discipline, but a remove fills the hole
//!   from the last entry of the *tail* descriptor, as the lockless series'
//!   commit message describes the remove: an entry moves backwards, from a
//!   descriptor a lockless walker has not reached yet to one it may have
//!   passed. The `fill-from-tail` injected bug (called `backward-move`
//!   before it was told apart from 2013's own remove).
//!
//! A further discipline (Linux 6.4's, where a new descriptor becomes the
//! head only when the head is full, a hole is filled from the head's last
//! entry, an emptied head is freed and an rmap never returns to the single
//! form) is one more `Chain`, with one more header word in `desc.rs` for the
//! head's `tail_count`; the designs take the discipline as a type parameter.
//!
//! Every store a lockless walker may read (head, slots, `more`) is Release,
//! pairing with the walkers' Acquire loads: a walker that observes one store
//! of a writer's update observes all stores the writer made before it (the
//! crate docs, "Memory ordering"). Writers' own loads are Relaxed: only
//! writers store these words, and the writer lock orders them.

use crate::desc::{
    decode_head, encode_desc, encode_one, nulls, slot_entry, DescPool, DescRef, Head, More,
};
use crate::primitive::{AtomicUsize, Ordering};
use crate::spte::{Gfn, SlotId};
use std::cell::Cell;

/// Where a writer reads and publishes an rmap head.
pub(crate) trait HeadCell {
    /// The head word, as the writer last left it.
    fn get(&self) -> usize;
    fn set(&self, v: usize);

    /// The head, decoded.
    fn head(&self) -> Head {
        // SAFETY: a head cell holds what was in the rmap head when the
        // writer's section opened, or what a chain algorithm stored through
        // it since: in both cases 0 or an encoded value. The chain it names
        // is in use, and the writer's lock keeps it so.
        unsafe { decode_head(self.get()) }
    }
}

/// The head word itself: each `set` is immediately visible to walkers.
pub(crate) struct DirectHead<'a>(pub(crate) &'a AtomicUsize);

impl HeadCell for DirectHead<'_> {
    #[inline]
    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
    #[inline]
    fn set(&self, v: usize) {
        // Release: pairs with the walkers' Acquire load of the head; a
        // walker that sees the new head sees the descriptor it names set up.
        self.0.store(v, Ordering::Release)
    }
}

/// A head whose new value is published only when the section closes
/// (`rmap-lock`, whose readers spin on the lock bit meanwhile). It lives on
/// the writer's stack, so a plain `Cell` suffices.
pub(crate) struct PendingHead(Cell<usize>);

impl PendingHead {
    pub(crate) fn new(v: usize) -> Self {
        PendingHead(Cell::new(v))
    }

    pub(crate) fn value(&self) -> usize {
        self.0.get()
    }
}

impl HeadCell for PendingHead {
    fn get(&self) -> usize {
        self.0.get()
    }
    fn set(&self, v: usize) {
        self.0.set(v)
    }
}

/// A chain discipline: where an add puts a new spte and how a remove fills
/// its hole. The caller holds the design's writer lock.
pub(crate) trait Chain: 'static {
    /// Add `slot` to rmap `gfn`, whose head is `h`.
    fn add(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId);
    /// Remove `slot` from rmap `gfn`; false when it was not there.
    fn remove(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) -> bool;
}

/// The 2013 series' head discipline (module doc).
pub(crate) struct HeadChain;
/// KVM's 2013 tail discipline (module doc).
pub(crate) struct TailChain;
/// The `fill-from-tail` bug (module doc).
pub(crate) struct FillFromTailChain;

impl Chain for HeadChain {
    fn add(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) {
        let Some(head) = add_to_single(pool, h, gfn, slot) else {
            return;
        };
        let c = count(head);
        if c < pool.desc_ext() {
            put(&pool.slots(head)[c], slot + 1);
            set_count(head, c + 1);
        } else {
            let d = new_desc(pool, slot, head.raw());
            h.set(encode_desc(d));
        }
    }

    fn remove(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) -> bool {
        let (head, at) = match locate(pool, h, slot) {
            Located::Desc(head, at) => (head, at),
            Located::Done(found) => return found,
        };
        let last = count(head) - 1;
        let source = &pool.slots(head)[last];
        if !(at.desc == head && at.index == last) {
            // Fill the hole first, then clear the source: a walker that reads
            // the cleared source (Acquire) then reads the hole, which it
            // reaches later in its bottom-up, head-to-tail order, and finds
            // the entry.
            put(&pool.slots(at.desc)[at.index], ld(source));
        }
        put(source, 0);
        set_count(head, last);
        if last == 0 {
            match head.next(Ordering::Relaxed) {
                More::Next(n) => h.set(encode_desc(n)),
                _ => h.set(0),
            }
            pool.free(head);
        }
        // Back to the single form when one spte is left.
        if let Head::Desc(d) = h.head() {
            if count(d) == 1 && d.next(Ordering::Relaxed) == More::Nulls(gfn) {
                let s = entry(pool, d, 0).expect("a one-entry head keeps it in slot 0");
                h.set(encode_one(s));
                pool.free(d);
            }
        }
        true
    }
}

impl Chain for TailChain {
    fn add(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) {
        tail_add(pool, h, gfn, slot)
    }

    fn remove(pool: &DescPool, h: &impl HeadCell, _gfn: Gfn, slot: SlotId) -> bool {
        tail_remove(pool, h, slot, false)
    }
}

impl Chain for FillFromTailChain {
    fn add(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) {
        tail_add(pool, h, gfn, slot)
    }

    fn remove(pool: &DescPool, h: &impl HeadCell, _gfn: Gfn, slot: SlotId) -> bool {
        tail_remove(pool, h, slot, true)
    }
}

#[inline]
fn ld(a: &AtomicUsize) -> usize {
    a.load(Ordering::Relaxed)
}

#[inline]
fn count(d: DescRef) -> usize {
    ld(d.count())
}

#[inline]
fn set_count(d: DescRef, c: usize) {
    d.count().store(c, Ordering::Relaxed)
}

#[inline]
fn put(a: &AtomicUsize, v: usize) {
    // Release: see the module doc; pairs with the walkers' Acquire loads.
    a.store(v, Ordering::Release)
}

/// The slot id stored in slot `i` of `d` (writer view).
#[inline]
fn entry(pool: &DescPool, d: DescRef, i: usize) -> Option<SlotId> {
    slot_entry(ld(&pool.slots(d)[i]))
}

/// How every add starts, in both disciplines: an empty rmap takes `slot` in
/// the single form, and a single-form rmap moves into a fresh descriptor
/// (the series' "single -> many": the old spte into slot 0, the new one into
/// slot 1, our nulls as its end, and only then the head, which the series
/// ordered with `smp_wmb`). Returns the head descriptor to add `slot` to, or
/// None when `slot` is in (with `desc_ext` 1 it does not fit beside the old
/// spte and is left to the caller).
fn add_to_single(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) -> Option<DescRef> {
    let old = match h.head() {
        Head::Empty => {
            h.set(encode_one(slot));
            return None;
        }
        Head::One(old) => old,
        Head::Desc(d) => return Some(d),
    };
    let both = pool.desc_ext() >= 2;
    let d = pool.alloc();
    let slots = pool.slots(d);
    put(&slots[0], old + 1);
    if both {
        put(&slots[1], slot + 1);
    }
    set_count(d, 1 + both as usize);
    put(d.more(), nulls(gfn));
    pool.publish(d);
    h.set(encode_desc(d));
    (!both).then_some(d)
}

/// A fresh descriptor holding `slot` alone, linked to `more`, set up and
/// published; the caller links it into the chain.
fn new_desc(pool: &DescPool, slot: SlotId, more: usize) -> DescRef {
    let d = pool.alloc();
    put(&pool.slots(d)[0], slot + 1);
    set_count(d, 1);
    put(d.more(), more);
    pool.publish(d);
    d
}

/// Where an spte sits in a chain.
struct At {
    prev: Option<DescRef>,
    desc: DescRef,
    index: usize,
}

/// How every remove starts.
enum Located {
    /// The rmap had no descriptor; the remove is done (was the spte there?).
    Done(bool),
    /// The head descriptor, and where the spte is.
    Desc(DescRef, At),
}

/// Handle the empty and single forms (removing the single spte), or find
/// `slot` in the chain.
fn locate(pool: &DescPool, h: &impl HeadCell, slot: SlotId) -> Located {
    match h.head() {
        Head::Empty => Located::Done(false),
        Head::One(s) if s == slot => {
            h.set(0);
            Located::Done(true)
        }
        Head::One(_) => Located::Done(false),
        Head::Desc(head) => match find(pool, head, slot) {
            Some(at) => Located::Desc(head, at),
            None => Located::Done(false),
        },
    }
}

fn find(pool: &DescPool, first: DescRef, slot: SlotId) -> Option<At> {
    let mut prev = None;
    let mut d = first;
    loop {
        let slots = pool.slots(d);
        let c = count(d).min(slots.len());
        if let Some(index) = slots[..c]
            .iter()
            .position(|s| slot_entry(ld(s)) == Some(slot))
        {
            return Some(At {
                prev,
                desc: d,
                index,
            });
        }
        match d.next(Ordering::Relaxed) {
            More::Next(n) => {
                prev = Some(d);
                d = n;
            }
            _ => return None,
        }
    }
}

/// Tail discipline: append `slot` to the last descriptor.
fn tail_add(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) {
    let Some(mut d) = add_to_single(pool, h, gfn, slot) else {
        return;
    };
    let ext = pool.desc_ext();
    while count(d) == ext {
        match d.next(Ordering::Relaxed) {
            More::Next(n) => d = n,
            _ => break,
        }
    }
    let c = count(d);
    if c < ext {
        put(&pool.slots(d)[c], slot + 1);
        set_count(d, c + 1);
    } else {
        let n = new_desc(pool, slot, nulls(gfn));
        put(d.more(), n.raw());
    }
}

/// Tail discipline: remove `slot`, filling the hole with the last entry of
/// the same descriptor (`from_tail` false) or of the last one (true).
fn tail_remove(pool: &DescPool, h: &impl HeadCell, slot: SlotId, from_tail: bool) -> bool {
    let (head, at) = match locate(pool, h, slot) {
        Located::Desc(head, at) => (head, at),
        Located::Done(found) => return found,
    };
    let (src_prev, src) = if from_tail {
        let (mut p, mut t) = (None, head);
        while let More::Next(n) = t.next(Ordering::Relaxed) {
            p = Some(t);
            t = n;
        }
        (p, t)
    } else {
        (at.prev, at.desc)
    };
    let j = count(src) - 1;
    let source = &pool.slots(src)[j];
    if !(src == at.desc && at.index == j) {
        put(&pool.slots(at.desc)[at.index], ld(source));
    }
    put(source, 0);
    set_count(src, j);
    if j == 0 {
        // Unlink the emptied descriptor.
        match src_prev {
            Some(p) => put(p.more(), ld(src.more())),
            None => match src.next(Ordering::Relaxed) {
                More::Next(n) => h.set(encode_desc(n)),
                _ => h.set(0),
            },
        }
        pool.free(src);
    }
    true
}

/// Any one entry of the rmap whose head is `head` (the head descriptor's
/// last), for zapping an rmap one spte at a time as `kvm_unmap_rmapp` does.
pub(crate) fn first_entry(pool: &DescPool, head: Head) -> Option<SlotId> {
    match head {
        Head::Empty => None,
        Head::One(s) => Some(s),
        Head::Desc(d) => entry(pool, d, count(d).checked_sub(1)?),
    }
}

/// Visit every entry of a chain whose writers are excluded (the caller
/// holds `mmu_lock` or the rmap lock, whose Acquire orders these Relaxed
/// loads after the last writer's stores). Returns the number visited.
pub(crate) fn walk_locked(pool: &DescPool, head: Head, f: &mut impl FnMut(SlotId)) -> u64 {
    let mut d = match head {
        Head::Empty => return 0,
        Head::One(s) => {
            f(s);
            return 1;
        }
        Head::Desc(d) => d,
    };
    let mut n = 0;
    loop {
        let slots = pool.slots(d);
        for s in &slots[..count(d).min(slots.len())] {
            if let Some(s) = slot_entry(ld(s)) {
                f(s);
                n += 1;
            }
        }
        match d.next(Ordering::Relaxed) {
            More::Next(next) => d = next,
            _ => return n,
        }
    }
}
