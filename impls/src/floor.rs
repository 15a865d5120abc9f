//! The benchmarks' floor: [`ArrayRmap`], an [`Rmap`] that is not a design.
//!
//! Each gfn's sptes sit in a fixed slice of one array, and a walk is a plain
//! loop over it: no chain, no lock, no pin, no validation. Everything else
//! is what the designs have: it is called through `dyn Rmap`, and its
//! write-protect runs the same per-gfn loop (`rmap::write_protect_each`:
//! the [`WalkStats`], the observer call, the cmpxchg per spte). So a design's
//! walk over the floor's is the price of its rmap and its synchronisation,
//! not of the harness around them.
//!
//! It keeps no promise to concurrent callers: every word is an atomic, so
//! concurrent use is memory-safe, but a walk racing a writer may miss an
//! spte and two writers of one gfn may lose an update. `build` does not
//! know it; the benchmarks make it with [`ArrayRmap::new`].

use crate::observer::Observer;
use crate::primitive::{AtomicUsize, Ordering};
use crate::rmap::{age_each, write_protect_each, MapOutcome, Rmap};
use crate::spte::{is_present, Gfn, SlotId, SpteTable};
use crate::stats::{AgeStats, WalkStats};
use std::ops::Range;

/// Up to `per_gfn` sptes per gfn in one array (module doc).
pub struct ArrayRmap {
    per_gfn: usize,
    /// gfn `g`'s sptes are `slots[g * per_gfn..][..counts[g]]`.
    slots: Box<[AtomicUsize]>,
    counts: Box<[AtomicUsize]>,
}

impl ArrayRmap {
    /// Room for `per_gfn` sptes in each of `gfns` rmaps.
    pub fn new(gfns: u64, per_gfn: usize) -> Self {
        ArrayRmap {
            per_gfn,
            slots: (0..gfns as usize * per_gfn)
                .map(|_| AtomicUsize::new(0))
                .collect(),
            counts: (0..gfns).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// gfn `gfn`'s slots in use. Relaxed throughout: no promise to
    /// concurrent callers (module doc).
    #[inline]
    fn of(&self, gfn: Gfn) -> &[AtomicUsize] {
        let n = self.counts[gfn as usize].load(Ordering::Relaxed);
        &self.slots[gfn as usize * self.per_gfn..][..n]
    }

    #[inline]
    fn visit(&self, gfn: Gfn, f: &mut impl FnMut(SlotId)) -> WalkStats {
        let slots = self.of(gfn);
        for s in slots {
            f(s.load(Ordering::Relaxed));
        }
        WalkStats {
            visited: slots.len() as u64,
            ..WalkStats::one_walk()
        }
    }
}

impl Rmap for ArrayRmap {
    fn name(&self) -> &'static str {
        "floor"
    }

    fn map(
        &self,
        sptes: &SpteTable,
        gfn: Gfn,
        slot: SlotId,
        spte: u64,
        _obs: &mut dyn Observer,
    ) -> MapOutcome {
        if is_present(sptes.load(slot)) {
            return MapOutcome::AlreadyPresent;
        }
        let n = self.of(gfn).len();
        assert!(
            n < self.per_gfn,
            "the floor holds {} sptes per gfn",
            self.per_gfn
        );
        sptes.install(slot, spte);
        self.slots[gfn as usize * self.per_gfn + n].store(slot, Ordering::Relaxed);
        self.counts[gfn as usize].store(n + 1, Ordering::Relaxed);
        MapOutcome::Mapped
    }

    fn unmap(&self, sptes: &SpteTable, gfn: Gfn, slot: SlotId, _obs: &mut dyn Observer) -> bool {
        if !is_present(sptes.clear(slot)) {
            return false;
        }
        let slots = self.of(gfn);
        if let Some(i) = slots.iter().position(|s| s.load(Ordering::Relaxed) == slot) {
            let last = slots.len() - 1;
            slots[i].store(slots[last].load(Ordering::Relaxed), Ordering::Relaxed);
            self.counts[gfn as usize].store(last, Ordering::Relaxed);
        }
        true
    }

    fn zap(&self, sptes: &SpteTable, gfns: Range<Gfn>, _obs: &mut dyn Observer) -> u64 {
        let mut zapped = 0;
        for gfn in gfns {
            for s in self.of(gfn) {
                sptes.clear(s.load(Ordering::Relaxed));
                zapped += 1;
            }
            self.counts[gfn as usize].store(0, Ordering::Relaxed);
        }
        zapped
    }

    fn age(&self, sptes: &SpteTable, gfns: Range<Gfn>, _obs: &mut dyn Observer) -> AgeStats {
        age_each(sptes, gfns, |gfn, f| self.visit(gfn, &mut |s| f(s)))
    }

    fn write_protect(&self, sptes: &SpteTable, gfns: &[Gfn], obs: &mut dyn Observer) -> WalkStats {
        write_protect_each(sptes, gfns, obs, |gfn, p, _| {
            self.visit(gfn, &mut |s| p.protect(s))
        })
    }

    fn walk(&self, gfn: Gfn, f: &mut dyn FnMut(SlotId)) -> WalkStats {
        self.visit(gfn, &mut |s| f(s))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::observer::NoObserver;
    use crate::spte::make_spte;

    #[test]
    fn the_floor_walks_what_was_mapped_and_protects_it() {
        let (r, t) = (ArrayRmap::new(2, 3), SpteTable::new(2, 3));
        for a in 0..3 {
            let out = r.map(&t, 1, t.slot_id(a, 1), make_spte(1, true), &mut NoObserver);
            assert_eq!(out, MapOutcome::Mapped);
        }
        assert!(r.unmap(&t, 1, t.slot_id(0, 1), &mut NoObserver));
        let mut seen = Vec::new();
        r.walk(1, &mut |s| seen.push(s));
        seen.sort();
        assert_eq!(seen, [t.slot_id(1, 1), t.slot_id(2, 1)]);
        let st = r.write_protect(&t, &[0, 1], &mut NoObserver);
        assert_eq!((st.walks, st.visited, st.protected), (2, 2, 2));
        assert_eq!(r.zap(&t, 0..2, &mut NoObserver), 2);
        assert_eq!(r.walk(1, &mut |_| {}).visited, 0);
    }
}
