//! What a calibration's write-protect figure measured, told from KVM's own
//! statistics ([`super::stats`]).
//!
//! A dirty-log round write-protects the harvested gfns by walking each one's
//! rmap and clearing W in every spte it finds (`KVM_CLEAR_DIRTY_LOG` in
//! manual-protect mode, `KVM_GET_DIRTY_LOG` otherwise; Linux 6.1 to 6.18,
//! `kvm_mmu_write_protect_pt_masked` on the shadow MMU). The time of a round
//! is the time of those rmap walks only if the rmaps hold sptes. Whether
//! they do is not a property of the kernel alone but of the host and the
//! guest: on `kvm_pvm` a guest's CPL 0 is emulated and gets no sptes at all
//! ([`super::guest`], module doc), and then a round only scans and clears
//! the bitmap. So every calibration says which it measured:
//!
//! - `pages_4k` (VM, instant) at the start of each round: the 4 KiB leaf
//!   sptes the VM holds, each one an rmap entry. Against the round's dirty
//!   pages it says whether each dirty gfn *could* have an spte to protect
//!   (the count is VM-wide: the setup memslot's few sptes are in it).
//! - `pf_fixed` (vCPUs) in the pass after a round: a round that really
//!   write-protected makes the next pass's first write to every page fault.
//!   This is the evidence that the protection happened. (`pf_fixed` counts
//!   every fault fixed, the lockless ones in `pf_fast` included: Linux 6.1,
//!   `kvm_mmu_do_page_fault`. On shadow paging 6.1 has no lockless path,
//!   `FNAME(page_fault)` takes `mmu_lock`, so `pf_fast` stays 0.)
//! - `insn_emulation` and `mmu_pte_write` per page over the passes: how the
//!   guest's writes reached KVM when they did not fault.

use super::stats::Delta;

/// What the lockstep rounds' write-protect step had to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Every round began with at least as many 4 KiB sptes as it had dirty
    /// pages: the round's time includes an rmap walk per dirty gfn.
    RmapWalk,
    /// Some rounds began with fewer 4 KiB sptes than dirty pages (but some):
    /// the figure mixes rmap walks with bitmap handling.
    Partial,
    /// No leaf spte of any size when the rounds ran: nothing to walk, so the
    /// figure is bitmap handling (and the TLB-flush request), not rmap walks.
    BitmapOnly,
    /// No statistics (a kernel before 5.14, or the files could not be read),
    /// or no round ran.
    Unknown,
}

impl Work {
    pub fn name(self) -> &'static str {
        match self {
            Work::RmapWalk => "rmap-walk",
            Work::Partial => "partial",
            Work::BitmapOnly => "bitmap-only",
            Work::Unknown => "unknown",
        }
    }
}

/// One lockstep round and the pass before it, as the statistics saw them.
#[derive(Clone, Copy, Debug)]
pub struct RoundEvidence<'a> {
    pub dirty_pages: u64,
    /// Pages the guest wrote in the pass before the round.
    pub written_pages: u64,
    /// KVM's statistics over that pass and over the round.
    pub pass: &'a Delta,
    pub round: &'a Delta,
}

/// What the write-protect figure measured, and the numbers that say so.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteProtect {
    pub work: Work,
    /// Rounds with statistics.
    pub rounds: usize,
    /// Fewest and most 4 KiB leaf sptes of the VM at the start of a round.
    pub sptes_4k_min: u64,
    pub sptes_4k_max: u64,
    /// Most 2 MiB + 1 GiB leaf sptes at the start of a round.
    pub sptes_huge_max: u64,
    /// Most dirty pages in a round.
    pub dirty_pages_max: u64,
    /// Faults KVM fixed (`pf_fixed`, the lockless ones included) in the
    /// passes that followed a round, and the pages those passes wrote.
    pub refaults: u64,
    pub refault_pages: u64,
    /// Over every pass: pages written, instructions KVM emulated
    /// (`insn_emulation`), writes KVM saw as emulated (`mmu_pte_write`).
    pub pass_pages: u64,
    pub emulated_insns: u64,
    pub emulated_writes: u64,
}

impl WriteProtect {
    /// Emulated guest instructions per page written (0 when no pass ran).
    pub fn emulated_insns_per_page(&self) -> f64 {
        per(self.emulated_insns, self.pass_pages)
    }

    pub fn emulated_writes_per_page(&self) -> f64 {
        per(self.emulated_writes, self.pass_pages)
    }

    /// Write faults per page in the passes after a round: about 1 when the
    /// rounds write-protected every page.
    pub fn refaults_per_page(&self) -> f64 {
        per(self.refaults, self.refault_pages)
    }

    /// Whether the figure may be set beside a simulated rmap walk.
    pub fn is_rmap_walk(&self) -> bool {
        self.work == Work::RmapWalk
    }
}

fn per(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// Tell what the rounds measured from their evidence, in round order.
pub fn assess(rounds: &[RoundEvidence]) -> WriteProtect {
    let mut w = WriteProtect {
        work: Work::Unknown,
        rounds: 0,
        sptes_4k_min: u64::MAX,
        sptes_4k_max: 0,
        sptes_huge_max: 0,
        dirty_pages_max: 0,
        refaults: 0,
        refault_pages: 0,
        pass_pages: 0,
        emulated_insns: 0,
        emulated_writes: 0,
    };
    let (mut all_covered, mut any_spte) = (true, false);
    for (k, r) in rounds.iter().enumerate() {
        let Some((sptes_4k, _)) = r.round.level("pages_4k") else {
            continue;
        };
        let huge = ["pages_2m", "pages_1g"]
            .iter()
            .filter_map(|n| r.round.level(n))
            .map(|(before, _)| before)
            .sum::<u64>();
        w.rounds += 1;
        w.sptes_4k_min = w.sptes_4k_min.min(sptes_4k);
        w.sptes_4k_max = w.sptes_4k_max.max(sptes_4k);
        w.sptes_huge_max = w.sptes_huge_max.max(huge);
        w.dirty_pages_max = w.dirty_pages_max.max(r.dirty_pages);
        all_covered &= sptes_4k >= r.dirty_pages;
        any_spte |= sptes_4k + huge > 0;
        w.pass_pages += r.written_pages;
        w.emulated_insns += r.pass.count("insn_emulation");
        w.emulated_writes += r.pass.count("mmu_pte_write");
        if k > 0 {
            w.refaults += r.pass.count("pf_fixed");
            w.refault_pages += r.written_pages;
        }
    }
    if w.rounds == 0 {
        w.sptes_4k_min = 0;
        return w;
    }
    w.work = match (any_spte, all_covered) {
        (false, _) => Work::BitmapOnly,
        (true, true) => Work::RmapWalk,
        (true, false) => Work::Partial,
    };
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kvm::stats::Change;

    /// A pass with `faults` fixed faults and `insns` emulated instructions,
    /// and a round that began with `sptes` 4 KiB sptes.
    fn evidence(sptes: u64, faults: u64, insns: u64) -> (Delta, Delta) {
        let mut pass = Delta::default();
        pass.vcpus.counts.insert("pf_fixed".into(), faults);
        pass.vcpus.counts.insert("pf_fast".into(), 0);
        pass.vcpus.counts.insert("insn_emulation".into(), insns);
        pass.vm.counts.insert("mmu_pte_write".into(), insns / 4);
        let mut round = Delta {
            vm: Change::default(),
            vcpus: Change::default(),
        };
        round.vm.levels.insert("pages_4k".into(), (sptes, sptes));
        round.vm.levels.insert("pages_2m".into(), (0, 0));
        round.vm.levels.insert("pages_1g".into(), (0, 0));
        (pass, round)
    }

    fn assess_runs(runs: &[(Delta, Delta)], dirty: u64) -> WriteProtect {
        let ev: Vec<_> = runs
            .iter()
            .map(|(pass, round)| RoundEvidence {
                dirty_pages: dirty,
                written_pages: dirty,
                pass,
                round,
            })
            .collect();
        assess(&ev)
    }

    #[test]
    fn sptes_for_every_dirty_page_are_an_rmap_walk() {
        // What a CPL 3 guest on kvm_pvm shows: 1024 data sptes + 8 setup
        // ones, the first pass (INITIALLY_SET) without faults, every later
        // pass faulting once per page.
        let runs = [
            evidence(1032, 0, 0),
            evidence(1032, 1024, 0),
            evidence(1032, 1024, 0),
        ];
        let w = assess_runs(&runs, 1024);
        assert_eq!(w.work, Work::RmapWalk);
        assert!(w.is_rmap_walk());
        assert_eq!(
            (w.rounds, w.sptes_4k_min, w.dirty_pages_max),
            (3, 1032, 1024)
        );
        assert_eq!((w.refaults, w.refault_pages), (2048, 2048));
        assert_eq!(w.refaults_per_page(), 1.0);
        assert_eq!(w.emulated_insns_per_page(), 0.0);
    }

    #[test]
    fn no_sptes_is_bitmap_handling() {
        // What a CPL 0 guest on kvm_pvm shows: no spte ever, every
        // instruction emulated (4 per page), one emulated write per page.
        let runs = [evidence(0, 0, 4096), evidence(0, 0, 4096)];
        let w = assess_runs(&runs, 1024);
        assert_eq!(w.work, Work::BitmapOnly);
        assert!(!w.is_rmap_walk());
        assert_eq!(w.emulated_insns_per_page(), 4.0);
        assert_eq!(w.emulated_writes_per_page(), 1.0);
        assert_eq!(w.refaults, 0);
    }

    #[test]
    fn too_few_sptes_in_one_round_is_partial() {
        let runs = [evidence(1032, 0, 0), evidence(100, 1024, 0)];
        let w = assess_runs(&runs, 1024);
        assert_eq!(w.work, Work::Partial);
        assert_eq!((w.sptes_4k_min, w.sptes_4k_max), (100, 1032));
    }

    #[test]
    fn without_statistics_nothing_is_claimed() {
        let (empty, none) = (Delta::default(), Delta::default());
        let w = assess(&[RoundEvidence {
            dirty_pages: 1024,
            written_pages: 1024,
            pass: &empty,
            round: &none,
        }]);
        assert_eq!(w.work, Work::Unknown);
        assert_eq!(w.rounds, 0);
        assert_eq!(assess(&[]).work, Work::Unknown);
    }
}
