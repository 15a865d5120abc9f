//! `seqlock`: writers (under `mmu_lock`) bump a per-rmap sequence count,
//! odd while they change the rmap; the walker reads the count, walks the
//! type-stable chain optimistically, reads the count again, and retries when
//! it was odd or moved (restart reason `rmap-seq`).
//!
//! **Write-protect happens after validation.** The walker first collects the
//! spte slots into a local buffer, validates, and only then clears W on
//! them. A walk that read a recycled descriptor may have collected slots of
//! another gfn; write-protecting those would be harmless for correctness
//! (clearing W on an MMU-writable spte only costs a spurious fast fault) but
//! it would cost real vCPUs real faults and make the `protected` count lie.
//! Collecting first costs a copy of at most one chain, which is cheap next
//! to the cmpxchgs.
//!
//! The chain itself uses the *head* discipline of `chain.rs`. A walk over a
//! chain that is being rewritten can in principle follow recycled
//! descriptors in a cycle, so the walker rechecks the count every
//! [`SEQ_RECHECK_DESCS`] descriptors: if it moved, the pass is abandoned;
//! if not, everything read so far is consistent and the pass goes on (a
//! quiescent chain may be longer than the bound: `--desc-ext 1` with 65
//! aliases, or `--desc-ext 3` with 193).
//!
//! Ordering: every store a walker may read is Release and every walker load
//! is Acquire (as in `lockless.rs`), so a walker that read any store of an
//! update in progress also reads that update's odd count on its recheck.

use crate::chain::{self, DirectHead, HeadCell};
use crate::desc::{decode_head, decode_more, slot_entry, DescPool, Head, More};
use crate::lock::{LockKind, MmuLock};
use crate::observer::Observer;
use crate::primitive::{pin, spin_hint, AtomicU64, AtomicUsize, Ordering};
use crate::rmap::{MapOutcome, RestartReason, Rmap, WalkStats};
use crate::spte::{is_present, Gfn, SlotId, SpteTable};
use std::ops::Range;

/// A walk rechecks the count after this many descriptors.
const SEQ_RECHECK_DESCS: usize = 64;

pub struct SeqlockRmap<const NO_RETRY: bool> {
    heads: Box<[AtomicUsize]>,
    seqs: Box<[AtomicU64]>,
    pool: DescPool,
    mmu_lock: MmuLock,
}

/// Slots collected by one optimistic pass (inline for short chains).
struct SlotBuf {
    inline: [usize; 64],
    n: usize,
    spill: Vec<usize>,
}

impl SlotBuf {
    fn new() -> Self {
        SlotBuf {
            inline: [0; 64],
            n: 0,
            spill: Vec::new(),
        }
    }
    fn clear(&mut self) {
        self.n = 0;
        self.spill.clear();
    }
    fn push(&mut self, v: usize) {
        if self.n < self.inline.len() {
            self.inline[self.n] = v;
            self.n += 1;
        } else {
            self.spill.push(v);
        }
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.inline[..self.n]
            .iter()
            .chain(self.spill.iter())
            .copied()
    }
}

impl<const NO_RETRY: bool> SeqlockRmap<NO_RETRY> {
    pub fn new(gfns: u64, desc_ext: usize, lock: LockKind, page_descs: usize) -> Self {
        SeqlockRmap {
            heads: (0..gfns).map(|_| AtomicUsize::new(0)).collect(),
            seqs: (0..gfns).map(|_| AtomicU64::new(0)).collect(),
            pool: DescPool::new(desc_ext, page_descs),
            mmu_lock: MmuLock::new(lock),
        }
    }

    /// Run `change` on rmap `gfn` inside its write section; the caller holds
    /// `mmu_lock`.
    fn write_section<R>(&self, gfn: Gfn, change: impl FnOnce(&DirectHead<'_>) -> R) -> R {
        let seq = &self.seqs[gfn as usize];
        // Relaxed load: only writers change it, under mmu_lock.
        let s = seq.load(Ordering::Relaxed);
        // Release (odd): any walker that reads a store made inside this
        // section (all Release) also reads this odd count on its recheck.
        seq.store(s + 1, Ordering::Release);
        let r = change(&DirectHead(&self.heads[gfn as usize]));
        // Release (even): pairs with the walker's Acquire first read.
        seq.store(s + 2, Ordering::Release);
        r
    }

    /// Collect rmap `gfn` optimistically into `buf`, having read the count
    /// `s1`; true when the pass reached the chain's end (false: it met a
    /// descriptor in setup, or the count moved at a recheck).
    fn collect(&self, gfn: Gfn, s1: u64, buf: &mut SlotBuf) -> bool {
        let ext = self.pool.desc_ext();
        // Acquire: pairs with the Release head stores of the writers.
        let mut d = match decode_head(self.heads[gfn as usize].load(Ordering::Acquire)) {
            Head::Empty => return true,
            Head::One(s) => {
                buf.push(s);
                return true;
            }
            Head::Desc(d) => d,
        };
        let mut descs = 0;
        loop {
            descs += 1;
            for i in 0..ext {
                // Acquire: pairs with the writers' Release slot stores.
                if let Some(s) = slot_entry(d.slot(i).load(Ordering::Acquire)) {
                    buf.push(s);
                }
            }
            // Acquire: pairs with the Release stores of `more`.
            match decode_more(d.more().load(Ordering::Acquire)) {
                More::Next(n) => d = n,
                More::Nulls(_) => return true,
                More::Init => return false,
            }
            // Acquire, after the Acquire loads of the pass so far: if any
            // of them read a store of a write section, this reads its odd
            // count or later (the same argument as the final recheck).
            if descs % SEQ_RECHECK_DESCS == 0
                && self.seqs[gfn as usize].load(Ordering::Acquire) != s1
            {
                return false;
            }
        }
    }

    fn walk_seq(&self, gfn: Gfn, f: &mut impl FnMut(SlotId)) -> WalkStats {
        let seq = &self.seqs[gfn as usize];
        let mut stats = WalkStats {
            walks: 1,
            ..WalkStats::default()
        };
        let mut buf = SlotBuf::new();
        loop {
            // Acquire: pairs with the Release even store closing a write
            // section: the chain it left is visible.
            let s1 = seq.load(Ordering::Acquire);
            if s1 & 1 == 1 && !NO_RETRY {
                stats.restart(RestartReason::RmapSeq);
                spin_hint();
                continue;
            }
            buf.clear();
            let complete = self.collect(gfn, s1, &mut buf);
            // Acquire, after the Acquire loads of the pass.
            let s2 = seq.load(Ordering::Acquire);
            if (s1 != s2 || !complete) && !NO_RETRY {
                stats.restart(RestartReason::RmapSeq);
                spin_hint();
                continue;
            }
            for s in buf.iter() {
                stats.visited += 1;
                f(s);
            }
            return stats;
        }
    }
}

impl<const NO_RETRY: bool> Rmap for SeqlockRmap<NO_RETRY> {
    fn name(&self) -> &'static str {
        "seqlock"
    }

    fn map(
        &self,
        sptes: &SpteTable,
        gfn: Gfn,
        slot: SlotId,
        spte: u64,
        obs: &mut dyn Observer,
    ) -> MapOutcome {
        let g = self.mmu_lock.lock(obs);
        let out = if is_present(sptes.load(slot)) {
            MapOutcome::AlreadyPresent
        } else {
            sptes.install(slot, spte);
            self.write_section(gfn, |h| chain::head_add(&self.pool, h, gfn, slot));
            MapOutcome::Mapped
        };
        self.mmu_lock.unlock(g, obs);
        out
    }

    fn unmap(&self, sptes: &SpteTable, gfn: Gfn, slot: SlotId, obs: &mut dyn Observer) -> bool {
        let g = self.mmu_lock.lock(obs);
        let present = is_present(sptes.clear(slot));
        if present {
            self.write_section(gfn, |h| chain::head_remove(&self.pool, h, gfn, slot));
        }
        self.mmu_lock.unlock(g, obs);
        present
    }

    fn zap(&self, sptes: &SpteTable, gfns: Range<Gfn>, obs: &mut dyn Observer) -> u64 {
        let g = self.mmu_lock.lock(obs);
        let mut n = 0;
        for gfn in gfns {
            n += self.write_section(gfn, |h| {
                let mut n = 0;
                while let Some(s) = chain::first_entry(h.get()) {
                    sptes.clear(s);
                    chain::head_remove(&self.pool, h, gfn, s);
                    n += 1;
                }
                n
            });
        }
        self.mmu_lock.unlock(g, obs);
        n
    }

    fn write_protect(&self, sptes: &SpteTable, gfns: &[Gfn], obs: &mut dyn Observer) -> WalkStats {
        let _guard = pin();
        let mut total = WalkStats::default();
        for &gfn in gfns {
            let mut protected = 0;
            let mut st = self.walk_seq(gfn, &mut |s| protected += sptes.write_protect(s) as u64);
            st.protected = protected;
            obs.gfn_walked(gfn, &st);
            total.add(&st);
        }
        total
    }

    fn walk(&self, gfn: Gfn, f: &mut dyn FnMut(SlotId)) -> WalkStats {
        let _guard = pin();
        self.walk_seq(gfn, &mut |s| f(s))
    }

    #[cfg(not(loom))]
    fn reclaim(&self) {
        self.pool.reclaim();
    }

    fn descs_in_use(&self) -> usize {
        self.pool.in_use()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::observer::NoObserver;
    use crate::spte::make_spte;

    #[test]
    fn quiescent_walk_of_a_chain_longer_than_the_recheck_bound_completes() {
        let n = 2 * SEQ_RECHECK_DESCS as u32 + 1;
        let r = SeqlockRmap::<false>::new(1, 1, LockKind::Park, 4);
        let t = SpteTable::new(1, n);
        for a in 0..n {
            r.map(&t, 0, t.slot_id(a, 0), make_spte(0, true), &mut NoObserver);
        }
        let mut buf = SlotBuf::new();
        // Before the fix the pass gave up at the bound and the walk retried
        // forever on a chain nobody was changing.
        // Relaxed: this test is single-threaded.
        let s1 = r.seqs[0].load(Ordering::Relaxed);
        assert!(
            r.collect(0, s1, &mut buf),
            "the pass must reach the chain's end"
        );
        assert_eq!(buf.iter().count(), n as usize);
        let st = r.walk(0, &mut |_| {});
        assert_eq!((st.visited, st.total_restarts()), (n as u64, 0));
    }
}
