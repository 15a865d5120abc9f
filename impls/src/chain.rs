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
//! * [`Chain64`] (Linux 6.4, commit 141705b78381, "KVM: x86/mmu: Track tail
//!   count in pte_list_desc to optimize guest fork()"; still KVM's in 6.15):
//!   `pte_list_add` allocates a new head only when the head is full, so every
//!   tail is full, and gives it a `tail_count` (the entries behind it);
//!   `pte_list_desc_remove_entry` fills the hole with the head's last entry
//!   and frees an emptied head, moving the rmap head to its `more` (or to
//!   empty). It is the series' head discipline less one step: **an rmap in
//!   descriptor form never returns to the single form**; it goes back to
//!   the single form only by emptying first. Whether the 2013 walker survives
//!   it is the crate docs' "KVM today".
//! * [`TailChain`] (KVM in 2013, Linux 3.11's `pte_list_add` and
//!   `pte_list_desc_remove_entry`): add goes into the first descriptor that
//!   is not full (the walk from the head stops at the first one with a free
//!   last slot, which is the last descriptor only when all before it are
//!   full), remove fills the hole with the last entry of the *same*
//!   descriptor, an emptied descriptor is unlinked wherever it is. Correct
//!   under `mmu_lock`; whether the nulls walker survives it is a loom model
//!   (`designs::lockless::over_2013_remove`).
//! * [`FillFromTailChain`]: the tail discipline, but a remove fills the hole
//!   from the last entry of the *tail* descriptor, as the lockless series'
//!   commit message describes the remove: an entry moves backwards, from a
//!   descriptor a lockless walker has not reached yet to one it may have
//!   passed. The `fill-from-tail` injected bug (called `backward-move`
//!   before it was told apart from 2013's own remove).
//!
//! Every discipline keeps the two counts of Linux 6.4's descriptor
//! (`desc.rs`, "Descriptor layout"): `spte_count`, and `tail_count`, the
//! entries behind a descriptor. The head disciplines keep every tail full,
//! so a descriptor's `tail_count` is fixed when it becomes the head and
//! stays right; the tail discipline has no use for it and leaves it 0, so
//! there the packed word is `spte_count` itself (`tail_count_word`).
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
/// Linux 6.4's discipline (module doc).
pub(crate) struct Chain64;
/// KVM's 2013 tail discipline (module doc); with `FROM_TAIL`, its remove
/// fills a hole from the tail descriptor instead ([`FillFromTailChain`]).
pub(crate) struct TailChain<const FROM_TAIL: bool = false>;
/// The `fill-from-tail` bug (module doc).
pub(crate) type FillFromTailChain = TailChain<true>;

impl Chain for HeadChain {
    fn add(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) {
        head_add(pool, h, gfn, slot)
    }

    fn remove(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) -> bool {
        if !head_remove(pool, h, slot) {
            return false;
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

impl Chain for Chain64 {
    fn add(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) {
        head_add(pool, h, gfn, slot)
    }

    /// No step back to the single form: a head of one entry stays a
    /// descriptor until it empties.
    fn remove(pool: &DescPool, h: &impl HeadCell, _gfn: Gfn, slot: SlotId) -> bool {
        head_remove(pool, h, slot)
    }
}

/// Add `slot` as both head disciplines do: into the head if it has room,
/// else into a new head in front of it (Linux 6.4's `pte_list_add`: "tail
/// descriptors are always kept full"), whose `tail_count` is every entry
/// behind it.
fn head_add(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) {
    let Some(head) = add_to_single(pool, h, gfn, slot) else {
        return;
    };
    let v = ld(head.counts());
    let c = v & LOW;
    if c < pool.desc_ext() {
        put(&pool.slots(head)[c], slot + 1);
        // spte_count + 1, tail_count kept: one add to the packed word.
        head.counts().store(v + 1, Ordering::Relaxed);
    } else {
        let d = new_desc(pool, slot, head.raw(), (v >> HALF) + c);
        h.set(encode_desc(d));
    }
}

/// Remove `slot` as both head disciplines do (Linux 6.4's
/// `pte_list_remove` and `pte_list_desc_remove_entry`): from the single
/// form, or from the chain by filling its hole with the head's last entry,
/// freeing the head if that emptied it and moving the rmap head to the next
/// descriptor (or to empty). Returns whether `slot` was there.
fn head_remove(pool: &DescPool, h: &impl HeadCell, slot: SlotId) -> bool {
    let (head, at) = match locate(pool, h, slot) {
        Located::Desc(head, at) => (head, at),
        Located::Done(found) => return found,
    };
    let v = ld(head.counts());
    let last = (v & LOW) - 1;
    let source = &pool.slots(head)[last];
    if !(at.desc == head && at.index == last) {
        // Fill the hole first, then clear the source: a walker that reads
        // the cleared source (Acquire) then reads the hole, which it
        // reaches later in its bottom-up, head-to-tail order, and finds
        // the entry.
        put(&pool.slots(at.desc)[at.index], ld(source));
    }
    put(source, 0);
    // spte_count - 1, tail_count kept.
    head.counts().store(v - 1, Ordering::Relaxed);
    if last == 0 {
        match head.next(Ordering::Relaxed) {
            More::Next(n) => h.set(encode_desc(n)),
            _ => h.set(0),
        }
        pool.free(head);
    }
    true
}

impl<const FROM_TAIL: bool> Chain for TailChain<FROM_TAIL> {
    fn add(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) {
        tail_add(pool, h, gfn, slot)
    }

    fn remove(pool: &DescPool, h: &impl HeadCell, _gfn: Gfn, slot: SlotId) -> bool {
        tail_remove(pool, h, slot, FROM_TAIL)
    }
}

#[inline]
fn ld(a: &AtomicUsize) -> usize {
    a.load(Ordering::Relaxed)
}

/// Bits of the `counts` word below `tail_count` (`desc.rs`, "Descriptor
/// layout": the two `u32` of Linux 6.4's descriptor in one word).
const HALF: u32 = usize::BITS / 2;
const LOW: usize = (1 << HALF) - 1;

/// `spte_count` and `tail_count` of `d` (writer view).
#[inline]
fn counts(d: DescRef) -> (usize, usize) {
    let v = ld(d.counts());
    (v & LOW, v >> HALF)
}

/// `spte_count` of `d` (writer view).
#[inline]
fn count(d: DescRef) -> usize {
    counts(d).0
}

/// `spte_count` of `d` in a chain of the tail discipline, which keeps
/// `tail_count` 0: the whole word, with no mask to apply on every step of
/// the walk to the first non-full descriptor.
#[inline]
fn tail_count_word(d: DescRef) -> usize {
    let v = ld(d.counts());
    debug_assert!(v <= LOW, "a tail-discipline descriptor with a tail_count");
    v
}

#[inline]
fn set_counts(d: DescRef, spte_count: usize, tail_count: usize) {
    debug_assert!(spte_count <= LOW && tail_count <= LOW);
    d.counts()
        .store(spte_count | tail_count << HALF, Ordering::Relaxed)
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
    set_counts(d, 1 + both as usize, 0);
    put(d.more(), nulls(gfn));
    pool.publish(d);
    h.set(encode_desc(d));
    (!both).then_some(d)
}

/// A fresh descriptor holding `slot` alone, linked to `more` with
/// `tail_count` entries behind it, set up and published; the caller links it
/// into the chain.
fn new_desc(pool: &DescPool, slot: SlotId, more: usize, tail_count: usize) -> DescRef {
    let d = pool.alloc();
    put(&pool.slots(d)[0], slot + 1);
    set_counts(d, 1, tail_count);
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

/// Tail discipline: put `slot` into the first descriptor that is not full,
/// or append a descriptor after the last (Linux 3.11's `pte_list_add`).
fn tail_add(pool: &DescPool, h: &impl HeadCell, gfn: Gfn, slot: SlotId) {
    let Some(mut d) = add_to_single(pool, h, gfn, slot) else {
        return;
    };
    let ext = pool.desc_ext();
    while tail_count_word(d) == ext {
        match d.next(Ordering::Relaxed) {
            More::Next(n) => d = n,
            _ => break,
        }
    }
    let c = tail_count_word(d);
    if c < ext {
        put(&pool.slots(d)[c], slot + 1);
        set_counts(d, c + 1, 0);
    } else {
        let n = new_desc(pool, slot, nulls(gfn), 0);
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
    let j = tail_count_word(src) - 1;
    let source = &pool.slots(src)[j];
    if !(src == at.desc && at.index == j) {
        put(&pool.slots(at.desc)[at.index], ld(source));
    }
    put(source, 0);
    set_counts(src, j, 0);
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The chain of rmap `gfn` whose head word is `head`, checked against
    /// the head disciplines' invariants: every descriptor but the head is
    /// full, each descriptor's `tail_count` is the number of entries behind
    /// it, entries sit in slots `0..spte_count` and the chain ends in the
    /// rmap's own nulls. Returns the entries, head first.
    fn entries(pool: &DescPool, head: &AtomicUsize, gfn: Gfn) -> Vec<SlotId> {
        let h = DirectHead(head).head();
        let mut d = match h {
            Head::Empty => return vec![],
            Head::One(s) => return vec![s],
            Head::Desc(d) => d,
        };
        let mut per_desc = Vec::new();
        loop {
            let (c, tail) = counts(d);
            let slots: Vec<usize> = pool.slots(d).iter().map(ld).collect();
            assert!(c >= 1, "an empty descriptor is left in the chain");
            assert!(
                slots[..c].iter().all(|&v| v != 0),
                "a hole below spte_count"
            );
            assert!(
                slots[c..].iter().all(|&v| v == 0),
                "an entry above spte_count"
            );
            per_desc.push((c, tail, slots[..c].to_vec()));
            match d.next(Ordering::Relaxed) {
                More::Next(n) => d = n,
                More::Nulls(g) => {
                    assert_eq!(g, gfn, "the chain ends in another rmap's nulls");
                    break;
                }
                More::Init => panic!("a descriptor in the chain is being set up"),
            }
        }
        let mut behind = 0;
        for (i, (c, tail, _)) in per_desc.iter().enumerate().rev() {
            assert_eq!(*tail, behind, "descriptor {i}'s tail_count");
            if i > 0 {
                assert_eq!(*c, pool.desc_ext(), "tail descriptor {i} is not full");
            }
            behind += c;
        }
        per_desc
            .into_iter()
            .flat_map(|(_, _, s)| s)
            .map(|v| v - 1)
            .collect()
    }

    /// Random adds and removes on two rmaps sharing a tiny pool, against a
    /// set per rmap; `single_at_one` says whether an rmap of one spte must be
    /// in the single form (the series) or may keep its descriptor (6.4).
    fn churn<C: Chain>(single_at_one: bool) {
        for ext in [1, 2, 3, 14] {
            let pool = DescPool::new(ext, 2);
            let heads = [AtomicUsize::new(0), AtomicUsize::new(0)];
            let mut model: [Vec<SlotId>; 2] = [vec![], vec![]];
            let mut was_desc = [false; 2];
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let gfn = (x % 2) as usize;
                let slot = ((x >> 8) % 40) as SlotId * 2 + gfn;
                let h = DirectHead(&heads[gfn]);
                if let Some(i) = model[gfn].iter().position(|&s| s == slot) {
                    model[gfn].swap_remove(i);
                    assert!(C::remove(&pool, &h, gfn as Gfn, slot));
                } else {
                    model[gfn].push(slot);
                    C::add(&pool, &h, gfn as Gfn, slot);
                }
                let mut got = entries(&pool, &heads[gfn], gfn as Gfn);
                got.sort_unstable();
                let mut want = model[gfn].clone();
                want.sort_unstable();
                assert_eq!(got, want, "desc_ext {ext}: rmap {gfn}");
                let form = h.head();
                if single_at_one && want.len() == 1 {
                    assert!(
                        matches!(form, Head::One(_)),
                        "one spte not in the single form"
                    );
                }
                if !single_at_one && was_desc[gfn] {
                    assert!(
                        !matches!(form, Head::One(_)),
                        "desc_ext {ext}: a chain went back to the single form"
                    );
                }
                was_desc[gfn] = matches!(form, Head::Desc(_));
            }
        }
    }

    #[test]
    fn linux_6_4_chain_keeps_tails_full_counts_right_and_never_goes_single() {
        churn::<Chain64>(false);
    }

    #[test]
    fn series_head_chain_keeps_the_same_invariants_and_goes_single_at_one() {
        churn::<HeadChain>(true);
    }

    /// Three sptes added under Linux 6.4's chain at `desc_ext` 2,
    /// [D: 2] -> [E: 0 1]: the pool, the rmap head, and D.
    fn three_on_6_4() -> (DescPool, AtomicUsize, DescRef) {
        let pool = DescPool::new(2, 4);
        let head = AtomicUsize::new(0);
        for s in 0..3 {
            Chain64::add(&pool, &DirectHead(&head), 0, s);
        }
        let Head::Desc(d) = DirectHead(&head).head() else {
            panic!("three sptes make a chain")
        };
        (pool, head, d)
    }

    /// The checker above fails on a chain that breaks an invariant: a tail
    /// descriptor that is not full, and a wrong `tail_count`.
    #[test]
    #[should_panic(expected = "is not full")]
    fn the_chain_check_catches_a_tail_that_is_not_full() {
        let (pool, head, d) = three_on_6_4();
        // [D: 2] -> [E: 0 1]; empty E's slot 1 behind the discipline's back.
        let More::Next(e) = d.next(Ordering::Relaxed) else {
            panic!()
        };
        put(&pool.slots(e)[1], 0);
        set_counts(e, 1, 0);
        entries(&pool, &head, 0);
    }

    #[test]
    #[should_panic(expected = "tail_count")]
    fn the_chain_check_catches_a_wrong_tail_count() {
        let (pool, head, d) = three_on_6_4();
        set_counts(d, 1, 3);
        entries(&pool, &head, 0);
    }
}
