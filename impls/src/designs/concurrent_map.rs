//! `concurrent-map`: the design a userspace developer would reach for, a
//! general-purpose concurrent hash map from gfn to the set of its spte slots.
//!
//! **Which crate, and why: `dashmap`.** It is the most used concurrent map in
//! Rust (a sharded `RwLock<HashMap>`), well kept, and its entry API gives a
//! per-shard write lock that we use as the per-gfn writer exclusion, so there
//! is no VM-wide `mmu_lock` at all: a slow fault installs its spte and adds it
//! to the set under the shard lock, a zap clears sptes under it, and the
//! write-protect walk reads the set under the shard's read lock. Lock-free
//! alternatives (papaya, scc) trade that simplicity for memory reclamation
//! of their own; the point of this row is the ordinary choice and its costs:
//! hashing on every operation, a heap `Vec` per gfn, and walkers that can
//! wait behind a fault on an unrelated gfn of the same shard.

use crate::observer::Observer;
use crate::perturb::{PerturbPoint, Points};
use crate::rmap::{age_each, write_protect_each, MapOutcome, Rmap};
use crate::spte::{is_present, Gfn, SlotId, SpteTable};
use crate::stats::{AgeStats, WalkStats};
use dashmap::DashMap;
use std::ops::Range;

/// The map, with perturbation points `P` (`perturb.rs`).
pub(crate) struct ConcurrentMapRmap<P> {
    map: DashMap<Gfn, Vec<SlotId>>,
    perturb: P,
}

impl<P: Points> ConcurrentMapRmap<P> {
    pub(crate) fn new(gfns: u64, perturb: P) -> Self {
        ConcurrentMapRmap {
            map: DashMap::with_capacity(gfns.min(1 << 20) as usize),
            perturb,
        }
    }

    /// The walk of both `walk` and `write_protect`, holding the shard's read
    /// lock throughout.
    fn visit(&self, gfn: Gfn, f: &mut impl FnMut(SlotId)) -> WalkStats {
        let mut st = WalkStats::one_walk();
        if let Some(set) = self.map.get(&gfn) {
            self.perturb.at(PerturbPoint::WalkBetweenDescs);
            for &s in set.iter() {
                st.visited += 1;
                f(s);
                self.perturb.at(PerturbPoint::WalkInDesc);
            }
        }
        st
    }
}

impl<P: Points> Rmap for ConcurrentMapRmap<P> {
    fn name(&self) -> &'static str {
        "concurrent-map"
    }

    fn map(
        &self,
        sptes: &SpteTable,
        gfn: Gfn,
        slot: SlotId,
        spte: u64,
        obs: &mut dyn Observer,
    ) -> MapOutcome {
        let _ = obs; // no mmu_lock: the shard lock is the map's own business
        let mut set = self.map.entry(gfn).or_default();
        let out = if is_present(sptes.load(slot)) {
            MapOutcome::AlreadyPresent
        } else {
            // Add, then install (`Rmap::map`); inside the shard lock a
            // walker cannot tell, but the fast fault, which takes no lock,
            // could.
            set.push(slot);
            self.perturb.at(PerturbPoint::MapBetweenAddAndInstall);
            sptes.install(slot, spte);
            MapOutcome::Mapped
        };
        drop(set);
        out
    }

    fn unmap(&self, sptes: &SpteTable, gfn: Gfn, slot: SlotId, obs: &mut dyn Observer) -> bool {
        let _ = obs;
        let Some(mut set) = self.map.get_mut(&gfn) else {
            return false;
        };
        let present = is_present(sptes.clear(slot));
        self.perturb.at(PerturbPoint::WriterSection);
        if present {
            if let Some(i) = set.iter().position(|&s| s == slot) {
                set.swap_remove(i);
            }
        }
        drop(set);
        present
    }

    fn zap(&self, sptes: &SpteTable, gfns: Range<Gfn>, obs: &mut dyn Observer) -> u64 {
        let mut n = 0;
        for gfn in gfns {
            if let Some(mut set) = self.map.get_mut(&gfn) {
                for s in set.drain(..) {
                    sptes.clear(s);
                    n += 1;
                }
            }
        }
        let _ = obs;
        n
    }

    fn write_protect(&self, sptes: &SpteTable, gfns: &[Gfn], obs: &mut dyn Observer) -> WalkStats {
        write_protect_each(sptes, gfns, obs, |gfn, p, _| {
            self.visit(gfn, &mut |s| p.protect(s))
        })
    }

    fn walk(&self, gfn: Gfn, mut f: &mut dyn FnMut(SlotId)) -> WalkStats {
        self.visit(gfn, &mut f)
    }

    /// Each gfn under its shard's read lock, as the write-protect walk.
    fn age(&self, sptes: &SpteTable, gfns: Range<Gfn>, obs: &mut dyn Observer) -> AgeStats {
        let _ = obs;
        age_each(sptes, gfns, |gfn, f| self.visit(gfn, &mut |s| f(s)))
    }
}
