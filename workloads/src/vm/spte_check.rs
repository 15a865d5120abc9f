//! The missed-spte check ([`SpteCheck`]): after every write-protect walk, an
//! spte of a walked gfn that is writable although no fault made it writable
//! since before the walk is a *missed spte*: the walk left it writable. Why
//! that is sound (a correct design never produces one) and what
//! [`FaultGens`] are for is in the crate docs ([the missed-spte
//! check](crate#the-missed-spte-check)).

use super::dirty_log::DirtyLog;
use super::tlb::Vcpus;
use rmap_impls::spte::{is_present, is_writable};
use rmap_impls::{Gfn, SpteTable};
use std::sync::atomic::{AtomicU64, Ordering};

/// Per spte slot, the faults that may make it writable: how many are in
/// flight (the high half of the word) and how many ever began (the low
/// half). A fault enters before it can set W and leaves after it marked the
/// gfn dirty (check mode only). A word that is equal at two reads and shows
/// no fault in flight at the first says: no fault on this spte was in
/// flight at any time between the reads. (One odd/even count would not: two
/// vCPUs faulting on one spte at once make it even while both are in
/// flight.)
pub(crate) struct FaultGens {
    gens: Box<[AtomicU64]>,
}

/// One fault in flight, in a [`FaultGens`] word.
const IN_FLIGHT: u64 = 1 << 32;

impl FaultGens {
    pub(crate) fn new(slots: usize) -> Self {
        FaultGens {
            gens: (0..slots).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// A fault on `slot` may make it writable from now on. SeqCst: the
    /// check's read of the word, after its read of the spte, must see this
    /// change if it saw the W the fault set (crate docs).
    #[inline]
    pub(crate) fn begin(&self, slot: usize) {
        self.gens[slot].fetch_add(IN_FLIGHT + 1, Ordering::SeqCst);
    }

    /// ... and has marked the gfn dirty. SeqCst: as `begin`.
    #[inline]
    pub(crate) fn end(&self, slot: usize) {
        self.gens[slot].fetch_sub(IN_FLIGHT, Ordering::SeqCst);
    }

    #[inline]
    fn read(&self, slot: usize) -> u64 {
        // SeqCst: as `begin`.
        self.gens[slot].load(Ordering::SeqCst)
    }
}

/// One missed spte, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissedSpte {
    pub gfn: Gfn,
    pub alias: u32,
    /// The dirty-log round whose walk missed it (0: the first).
    pub round: u64,
    /// Whether the gfn was logged anyway when the check ran (dirty, or a
    /// fault in flight on it, through another spte): if not, nothing would
    /// log the writes through this one.
    pub logged: bool,
}

/// How many missed sptes a report keeps.
const KEEP: usize = 16;

/// The walker's check, across rounds.
#[derive(Default)]
pub(crate) struct SpteCheck {
    /// Per walked gfn and alias, its [`FaultGens`] word before the walks.
    before: Vec<u64>,
    pub(crate) missed: u64,
    pub(crate) examples: Vec<MissedSpte>,
}

impl SpteCheck {
    /// Just before the write-protect walk of `gfns`.
    pub(crate) fn before_walks(&mut self, gfns: &[Gfn], sptes: &SpteTable, gens: &FaultGens) {
        self.before.clear();
        for &g in gfns {
            for a in 0..sptes.aliases() {
                self.before.push(gens.read(sptes.slot_id(a, g)));
            }
        }
    }

    /// Right after the walk of `gfns` returned, in round `round`: count the
    /// sptes it left writable. Returns how many it found.
    pub(crate) fn after_walks(
        &mut self,
        gfns: &[Gfn],
        round: u64,
        sptes: &SpteTable,
        gens: &FaultGens,
        vcpus: &Vcpus,
        dirty: &DirtyLog,
    ) -> u64 {
        let aliases = sptes.aliases() as usize;
        let mut found = 0;
        for (i, &g) in gfns.iter().enumerate() {
            for a in 0..aliases {
                let slot = sptes.slot_id(a as u32, g);
                // The spte first, then the fault count (crate docs).
                let spte = sptes.slot(slot).load(Ordering::SeqCst);
                if !(is_present(spte) && is_writable(spte)) {
                    continue;
                }
                let before = self.before[i * aliases + a];
                if before >= IN_FLIGHT || gens.read(slot) != before {
                    continue; // a fault may have set W since the walk began
                }
                found += 1;
                if self.examples.len() < KEEP {
                    // In flight first, then the dirty bit, as the oracle.
                    let logged = vcpus.fault_in_flight(g) || dirty.is_dirty(g);
                    self.examples.push(MissedSpte {
                        gfn: g,
                        alias: a as u32,
                        round,
                        logged,
                    });
                }
            }
        }
        self.missed += found;
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmap_impls::spte::make_spte;

    /// Hand-made cases: a writable spte that no fault touched is missed; one
    /// whose fault is in flight, or ran during the walk, is not; neither is
    /// a write-protected or absent one.
    #[test]
    fn only_a_writable_spte_no_fault_touched_is_missed() {
        let sptes = SpteTable::new(4, 3);
        let gens = FaultGens::new(12);
        let (vcpus, dirty) = (Vcpus::new(1), DirtyLog::new(4));
        let mut c = SpteCheck::default();
        let slot = |a| sptes.slot_id(a, 2);
        sptes.install(slot(0), make_spte(2, true)); // left writable: missed
        sptes.install(slot(1), make_spte(2, true)); // its fault is in flight
        sptes.install(slot(2), make_spte(2, false)); // write-protected
        gens.begin(slot(1));
        c.before_walks(&[1, 2], &sptes, &gens);
        assert_eq!(c.after_walks(&[1, 2], 5, &sptes, &gens, &vcpus, &dirty), 1);
        assert_eq!(
            c.examples,
            [MissedSpte {
                gfn: 2,
                alias: 0,
                round: 5,
                logged: false
            }]
        );
        // A fault that starts and ends during the walk excuses the spte.
        c.before_walks(&[2], &sptes, &gens);
        gens.begin(slot(0));
        gens.end(slot(0));
        assert_eq!(c.after_walks(&[2], 6, &sptes, &gens, &vcpus, &dirty), 0);
        // Two faults on one spte at once, in flight when the walk begins,
        // one of them still when it ends: excused (an odd/even count would
        // read even twice here).
        gens.begin(slot(0));
        gens.begin(slot(0));
        c.before_walks(&[2], &sptes, &gens);
        gens.end(slot(0));
        assert_eq!(c.after_walks(&[2], 6, &sptes, &gens, &vcpus, &dirty), 0);
        gens.end(slot(0));
        // Logged through another spte: still missed, and said so.
        dirty.mark(2);
        c.before_walks(&[2], &sptes, &gens);
        assert_eq!(c.after_walks(&[2], 7, &sptes, &gens, &vcpus, &dirty), 1);
        assert!(c.examples[1].logged);
        assert_eq!(c.missed, 2);
    }
}
