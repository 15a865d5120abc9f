//! The pre-copy migration oracle (DESIGN §3) and the quiescent rmap check.
//!
//! **Per round.** Just before a round harvests the dirty log, the oracle
//! snapshots every source page's version. After the round's copy, every
//! destination page must be at least as new as that snapshot, unless the
//! page is logged for a later round. A write that got through a writable
//! spte the walk missed is never logged, so it shows up here, in the round
//! after it happened, as a page behind its snapshot: a **lost write**. The
//! oracle counts it, then settles the destination to the snapshot so that
//! one miss is counted once.
//!
//! "Logged for a later round" means: the page's dirty bit is set now, or a
//! vCPU is between making an spte of the page writable and marking it dirty
//! (the fault path installs or fixes the spte, adds it to the rmap, and only
//! then marks: another vCPU may write through the new spte before the mark).
//! The oracle reads the in-flight fault gfns *before* the dirty bit, all
//! SeqCst, and the fault path sets its gfn before the spte and clears it
//! after the mark, also SeqCst. So if the oracle sees no fault in flight, the
//! fault (if any) had cleared its gfn, hence marked, before that read, and
//! the dirty-bit read that follows sees the mark.
//!
//! **At the end.** The vCPUs stop, one final round runs, and the destination
//! must equal the source page for page; each difference is a lost write too
//! (one the per-round check could not attribute yet).
//!
//! **Quiescent consistency.** With nothing running, every rmap must hold
//! exactly the present sptes that map its gfn: nothing missing, nothing
//! extra, no duplicates.

use super::memory::{DirtyLog, GuestMemory};
use super::tlb::Vcpus;
use rmap_impls::spte::is_present;
use rmap_impls::{Gfn, Rmap, SpteTable};

/// The gfns the oracle looks at: every page, or the few a workload writes.
pub(crate) enum Pages {
    All(u64),
    Some(Vec<Gfn>),
}

impl Pages {
    fn for_each(&self, mut f: impl FnMut(usize, Gfn)) {
        match self {
            Pages::All(n) => (0..*n).enumerate().for_each(|(i, g)| f(i, g)),
            Pages::Some(v) => v.iter().enumerate().for_each(|(i, &g)| f(i, g)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Pages::All(n) => *n as usize,
            Pages::Some(v) => v.len(),
        }
    }
}

/// How many lost-write gfns a report keeps.
const KEEP_GFNS: usize = 16;

pub(crate) struct Oracle {
    pages: Pages,
    snapshot: Vec<u64>,
    pub(crate) lost_writes: u64,
    pub(crate) lost_gfns: Vec<Gfn>,
    pub(crate) rounds_checked: u64,
}

impl Oracle {
    pub(crate) fn new(pages: Pages) -> Self {
        let n = pages.len();
        Oracle {
            pages,
            snapshot: vec![0; n],
            lost_writes: 0,
            lost_gfns: Vec::new(),
            rounds_checked: 0,
        }
    }

    fn lost(&mut self, gfn: Gfn) {
        self.lost_writes += 1;
        if self.lost_gfns.len() < KEEP_GFNS && !self.lost_gfns.contains(&gfn) {
            self.lost_gfns.push(gfn);
        }
    }

    /// Just before the harvest.
    pub(crate) fn before_harvest(&mut self, mem: &GuestMemory) {
        let snap = &mut self.snapshot;
        self.pages.for_each(|i, g| snap[i] = mem.version(g));
    }

    /// After the round's copy.
    pub(crate) fn after_copy(&mut self, mem: &GuestMemory, dirty: &DirtyLog, vcpus: &Vcpus) {
        let mut behind = Vec::new();
        self.pages.for_each(|i, g| {
            if mem.copied(g) < self.snapshot[i] {
                behind.push((i, g));
            }
        });
        for (i, g) in behind {
            // In-flight first, then the dirty bit: see the module doc.
            if vcpus.fault_in_flight(g) || dirty.is_dirty(g) {
                continue;
            }
            self.lost(g);
            mem.settle(g, self.snapshot[i]);
        }
        self.rounds_checked += 1;
    }

    /// After the final round, with every vCPU stopped.
    pub(crate) fn final_check(&mut self, mem: &GuestMemory) {
        let mut lost = Vec::new();
        self.pages.for_each(|_, g| {
            if mem.copied(g) != mem.version(g) {
                lost.push(g);
            }
        });
        for g in lost {
            self.lost(g);
        }
    }
}

/// Compare every rmap with the present sptes that map its gfn; the number of
/// gfns whose rmap is wrong. Only valid when nothing else runs.
pub(crate) fn rmap_inconsistencies(rmap: &dyn Rmap, sptes: &SpteTable) -> u64 {
    let mut bad = 0;
    let mut seen = Vec::new();
    let mut want = Vec::new();
    for g in 0..sptes.gfns() {
        seen.clear();
        rmap.walk(g, &mut |s| seen.push(s));
        want.clear();
        want.extend(
            (0..sptes.aliases())
                .map(|a| sptes.slot_id(a, g))
                .filter(|&s| is_present(sptes.load(s))),
        );
        seen.sort_unstable();
        if seen != want {
            bad += 1;
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_behind_the_snapshot_and_unlogged_is_lost() {
        let mem = GuestMemory::new(8);
        let dirty = DirtyLog::new(8);
        let vcpus = Vcpus::new(1);
        let mut o = Oracle::new(Pages::All(8));
        // Page 3 was written and logged, page 5 written and not logged,
        // page 6 written by a fault still in flight.
        for g in [3, 5, 6] {
            mem.guest_write(g);
        }
        dirty.mark(3);
        vcpus.fault_begin(0, 6);
        o.before_harvest(&mem);
        let mut h = Vec::new();
        dirty.harvest(&mut h);
        for &g in &h {
            mem.copy(g);
        }
        o.after_copy(&mem, &dirty, &vcpus);
        assert_eq!(o.lost_writes, 1);
        assert_eq!(o.lost_gfns, vec![5]);
        // Counted once: the next round does not count page 5 again.
        o.before_harvest(&mem);
        o.after_copy(&mem, &dirty, &vcpus);
        assert_eq!(o.lost_writes, 1);
        // The in-flight fault ends without its page being copied: the final
        // comparison finds page 6.
        vcpus.fault_end(0);
        o.final_check(&mem);
        assert_eq!(o.lost_writes, 2);
        assert_eq!(o.lost_gfns, vec![5, 6]);
    }
}
