//! Writer-side chain algorithms, shared by every design that keeps an rmap as
//! a head word plus a chain of descriptors. Callers hold the design's writer
//! lock (`mmu_lock`, plus the rmap lock for `rmap-lock`), so no two of these
//! run on one rmap at once, and pool allocation is serialised with them.
//!
//! Two disciplines exist:
//!
//! * **Head** (the seed series, and KVM since 6.4): a new descriptor goes to
//!   the head, only the head may be non-full, and remove fills the hole with
//!   the head descriptor's last entry ("forward move": an entry only ever
//!   moves from a descriptor a walker has already passed, or is about to
//!   read, to one it reads later). An rmap left with one spte returns to the
//!   single form.
//! * **Tail** (KVM in 2013): add appends to the last descriptor, remove fills
//!   the hole with the last entry of the *same* descriptor, an emptied
//!   descriptor is unlinked wherever it is. Correct under `mmu_lock`; over a
//!   lockless walker it is one half of the `backward-move` bug, whose remove
//!   fills the hole from the tail of the chain instead (see [`tail_remove`]).
//!
//! Stores that a lockless walker may read are Release, and every lockless
//! load is Acquire (see `lockless.rs`): a walker that observes one store of a
//! writer's update observes all stores the writer made before it. Loads here
//! are Relaxed: they read words that only writers change, and writers are
//! serialised by their lock.

use crate::desc::{
    decode_head, decode_more, encode_desc, encode_one, nulls, slot_entry, DescPool, DescRef, Head,
    More,
};
use crate::primitive::{AtomicUsize, Ordering};
use crate::spte::{Gfn, SlotId};

use std::cell::Cell;

/// Where a writer reads and publishes an rmap head.
pub(crate) trait HeadCell {
    fn get(&self) -> usize;
    fn set(&self, v: usize);
}

/// The head word itself: each `set` is immediately visible to walkers.
pub(crate) struct DirectHead<'a>(pub(crate) &'a AtomicUsize);

impl HeadCell for DirectHead<'_> {
    #[inline]
    fn get(&self) -> usize {
        // Relaxed: only writers store heads, and they are serialised.
        self.0.load(Ordering::Relaxed)
    }
    #[inline]
    fn set(&self, v: usize) {
        // Release: pairs with the walker's Acquire load of the head; a
        // walker that sees the new head sees the descriptor it names fully
        // set up.
        self.0.store(v, Ordering::Release)
    }
}

/// A head whose new value is published only when the rmap lock is released
/// (`rmap-lock`): readers spin on the lock bit meanwhile.
/// It lives on the writer's stack, so a plain `Cell` suffices.
pub(crate) struct PendingHead {
    v: Cell<usize>,
}

impl PendingHead {
    pub(crate) fn new(v: usize) -> Self {
        PendingHead { v: Cell::new(v) }
    }
    pub(crate) fn value(&self) -> usize {
        self.v.get()
    }
}

impl HeadCell for PendingHead {
    fn get(&self) -> usize {
        self.v.get()
    }
    fn set(&self, v: usize) {
        self.v.set(v)
    }
}

/// A writer's load. Relaxed: only writers store these words, and writers
/// are serialised by their lock, whose acquire orders this load after the
/// previous writer's stores.
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
    // Relaxed: writer-private, ordered by the writer's lock.
    d.count().store(c, Ordering::Relaxed)
}

#[inline]
fn put(a: &AtomicUsize, v: usize) {
    // Release: see the module doc; pairs with the walkers' Acquire loads.
    a.store(v, Ordering::Release)
}

/// The slot id stored at `d.slot(i)` (writer view).
#[inline]
fn entry(d: DescRef, i: usize) -> Option<SlotId> {
    slot_entry(ld(d.slot(i)))
}

/// Turn a single-spte head into a one-entry descriptor (used by `desc_ext`
/// 1, where the second spte does not fit next to the first).
fn one_to_desc(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, old: SlotId) -> DescRef {
    let d = pool.alloc();
    put(d.slot(0), old + 1);
    set_count(d, 1);
    put(d.more(), nulls(gfn));
    pool.publish(d);
    h.set(encode_desc(d));
    d
}

/// Head discipline: add `slot` to rmap `gfn`.
pub(crate) fn head_add(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) {
    let ext = pool.desc_ext();
    let head = match decode_head(h.get()) {
        Head::Empty => return h.set(encode_one(slot)),
        Head::One(old) if ext >= 2 => {
            // The seed's single -> many: copy the old spte into slot 0 of a
            // fresh descriptor, the new one into slot 1, end with our nulls,
            // and only then publish the head (smp_wmb in the series).
            let d = pool.alloc();
            put(d.slot(0), old + 1);
            put(d.slot(1), slot + 1);
            set_count(d, 2);
            put(d.more(), nulls(gfn));
            pool.publish(d);
            return h.set(encode_desc(d));
        }
        Head::One(old) => one_to_desc(pool, h, gfn, old),
        Head::Desc(d) => d,
    };
    let c = count(head);
    if c < ext {
        put(head.slot(c), slot + 1);
        set_count(head, c + 1);
    } else {
        let n = pool.alloc();
        put(n.slot(0), slot + 1);
        set_count(n, 1);
        put(n.more(), head.raw());
        pool.publish(n);
        h.set(encode_desc(n));
    }
}

/// Find `slot` in a chain: (previous descriptor, descriptor, index).
fn find(first: DescRef, slot: SlotId, ext: usize) -> Option<(Option<DescRef>, DescRef, usize)> {
    let mut prev = None;
    let mut d = first;
    loop {
        let c = count(d).min(ext);
        if let Some(i) = (0..c).find(|&i| entry(d, i) == Some(slot)) {
            return Some((prev, d, i));
        }
        match decode_more(ld(d.more())) {
            More::Next(n) => {
                prev = Some(d);
                d = n;
            }
            _ => return None,
        }
    }
}

/// Head discipline: remove `slot` from rmap `gfn`, filling the hole from the
/// head descriptor (forward move). Returns false when it was not there.
pub(crate) fn head_remove(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) -> bool {
    let ext = pool.desc_ext();
    let head = match decode_head(h.get()) {
        Head::Empty => return false,
        Head::One(s) if s == slot => {
            h.set(0);
            return true;
        }
        Head::One(_) => return false,
        Head::Desc(d) => d,
    };
    let Some((_, d, i)) = find(head, slot, ext) else {
        return false;
    };
    let last = count(head) - 1;
    if !(d == head && i == last) {
        // Fill the hole first, then clear the source: a walker that reads
        // the cleared source (Acquire) then reads the hole, which it reaches
        // later in its bottom-up, head-to-tail order, and finds the entry.
        put(d.slot(i), ld(head.slot(last)));
    }
    put(head.slot(last), 0);
    set_count(head, last);
    if last == 0 {
        match decode_more(ld(head.more())) {
            More::Next(n) => h.set(encode_desc(n)),
            _ => h.set(0),
        }
        pool.free(head);
    }
    // Back to the single form when one spte is left.
    if let Head::Desc(d) = decode_head(h.get()) {
        if count(d) == 1 && decode_more(ld(d.more())) == More::Nulls(gfn) {
            let s = entry(d, 0).expect("a one-entry head keeps it in slot 0");
            h.set(encode_one(s));
            pool.free(d);
        }
    }
    true
}

/// Tail discipline (2013): append `slot` to the last descriptor.
pub(crate) fn tail_add(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) {
    let ext = pool.desc_ext();
    let mut d = match decode_head(h.get()) {
        Head::Empty => return h.set(encode_one(slot)),
        Head::One(old) if ext >= 2 => {
            let d = pool.alloc();
            put(d.slot(0), old + 1);
            put(d.slot(1), slot + 1);
            set_count(d, 2);
            put(d.more(), nulls(gfn));
            pool.publish(d);
            return h.set(encode_desc(d));
        }
        Head::One(old) => one_to_desc(pool, h, gfn, old),
        Head::Desc(d) => d,
    };
    while count(d) == ext {
        match decode_more(ld(d.more())) {
            More::Next(n) => d = n,
            _ => break,
        }
    }
    let c = count(d);
    if c < ext {
        put(d.slot(c), slot + 1);
        set_count(d, c + 1);
    } else {
        let n = pool.alloc();
        put(n.slot(0), slot + 1);
        set_count(n, 1);
        put(n.more(), nulls(gfn));
        pool.publish(n);
        put(d.more(), n.raw());
    }
}

/// Unlink the emptied descriptor `d` (whose predecessor is `prev`).
fn unlink(pool: &DescPool, h: &impl HeadCell, prev: Option<DescRef>, d: DescRef) {
    let more = ld(d.more());
    match (prev, decode_more(more)) {
        (None, More::Next(n)) => h.set(encode_desc(n)),
        (None, _) => h.set(0),
        (Some(p), _) => put(p.more(), more),
    }
    pool.free(d);
}

/// Tail discipline: remove `slot`. With `from_tail` false this is 2013's
/// `pte_list_desc_remove_entry` (the hole is filled with the last entry of the
/// same descriptor). With `from_tail` true the hole is filled with the last
/// entry of the *last* descriptor: an entry moves backwards, from a descriptor
/// a lockless walker has not reached yet to one it may have passed. That is
/// the `backward-move` injected bug.
pub(crate) fn tail_remove(
    pool: &DescPool,
    h: &impl HeadCell,
    slot: SlotId,
    from_tail: bool,
) -> bool {
    let ext = pool.desc_ext();
    let head = match decode_head(h.get()) {
        Head::Empty => return false,
        Head::One(s) if s == slot => {
            h.set(0);
            return true;
        }
        Head::One(_) => return false,
        Head::Desc(d) => d,
    };
    let Some((prev, d, i)) = find(head, slot, ext) else {
        return false;
    };
    let (src_prev, src) = if from_tail {
        let (mut p, mut t) = (None, head);
        while let More::Next(n) = decode_more(ld(t.more())) {
            p = Some(t);
            t = n;
        }
        (p, t)
    } else {
        (prev, d)
    };
    let j = count(src) - 1;
    if !(src == d && i == j) {
        put(d.slot(i), ld(src.slot(j)));
    }
    put(src.slot(j), 0);
    set_count(src, j);
    if j == 0 {
        unlink(pool, h, src_prev, src);
    }
    true
}

/// Any one entry of rmap `gfn` (the head descriptor's last), for zapping
/// an rmap one spte at a time as `kvm_unmap_rmapp` does.
pub(crate) fn first_entry(head_val: usize) -> Option<SlotId> {
    match decode_head(head_val) {
        Head::Empty => None,
        Head::One(s) => Some(s),
        Head::Desc(d) => {
            let c = count(d);
            entry(d, c.checked_sub(1)?)
        }
    }
}

/// Visit every entry of a chain whose writers are excluded (the caller
/// holds `mmu_lock` or the rmap lock). Returns the number visited.
pub(crate) fn walk_locked(head_val: usize, ext: usize, f: &mut dyn FnMut(SlotId)) -> u64 {
    let mut n = 0;
    let mut d = match decode_head(head_val) {
        Head::Empty => return 0,
        Head::One(s) => {
            f(s);
            return 1;
        }
        Head::Desc(d) => d,
    };
    loop {
        for i in 0..count(d).min(ext) {
            if let Some(s) = entry(d, i) {
                f(s);
                n += 1;
            }
        }
        match decode_more(ld(d.more())) {
            More::Next(next) => d = next,
            _ => return n,
        }
    }
}
