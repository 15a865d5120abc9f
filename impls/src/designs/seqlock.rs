//! `seqlock`: writers (under `mmu_lock`) bump a per-rmap sequence count,
//! odd while they change the rmap (the section, `SeqCount`); the walker
//! reads the count, walks the type-stable chain optimistically, reads the
//! count again, and retries when it was odd or moved (restart reason
//! `rmap-seq`).
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
//! The chain itself uses the head discipline of `chain.rs` (or Linux 6.4's,
//! `--chain 6.4`). A walk over a
//! chain that is being rewritten can in principle follow recycled
//! descriptors in a cycle, so the walker rechecks the count every
//! `SEQ_RECHECK_DESCS` descriptors: if it moved, the pass is abandoned;
//! if not, everything read so far is consistent and the pass goes on (a
//! quiescent chain may be longer than the bound: `--desc-ext 1` with 65
//! aliases, or `--desc-ext 3` with 193).
//!
//! Ordering: every store a walker may read is Release and every walker load
//! is Acquire (as in `lockless.rs`), so a walker that read any store made
//! inside a write section also reads that section's odd count, or a later
//! one, on its recheck: the odd store precedes every store of the section
//! in its writer.

use super::chained::{Batch, ChainRmap, Chains, Section, Walker};
use super::optimistic::{Deviation, SlotBuf};
use crate::chain::{DirectHead, HeadChain};
use crate::desc::{decode_head, slot_entry, Head, More};
use crate::observer::Observer;
use crate::perturb::{PerturbPoint, Points, Unperturbed};
use crate::primitive::{spin_hint, AtomicU64, AtomicUsize, Ordering};
use crate::spte::{Gfn, SlotId};
use crate::stats::{RestartReason, WalkStats};
use std::marker::PhantomData;

/// `seqlock`, with walker deviation `D` (the correct walker is `Correct`),
/// over chain discipline `C` (the series' head discipline unless `--chain`
/// says otherwise), with perturbation points `P`.
pub(crate) type SeqlockRmap<D, C = HeadChain, P = Unperturbed, const INSTALL_FIRST: bool = false> =
    ChainRmap<SeqWalker<D>, SeqCount, C, P, INSTALL_FIRST>;

/// A walk rechecks the count after this many descriptors.
const SEQ_RECHECK_DESCS: usize = 64;

/// The writer's section: one sequence count per rmap, odd while a writer
/// changes the rmap.
pub(crate) struct SeqCount {
    seqs: Box<[AtomicU64]>,
}

/// An open section: the count to make even again.
pub(crate) struct Odd<'a> {
    seq: &'a AtomicU64,
    even: u64,
}

impl Section for SeqCount {
    type Cell<'a> = DirectHead<'a>;
    type Open<'a> = Odd<'a>;

    fn new(gfns: u64) -> Self {
        SeqCount {
            seqs: (0..gfns).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn open<'a>(
        &'a self,
        head: &'a AtomicUsize,
        gfn: Gfn,
        _obs: &mut dyn Observer,
    ) -> (DirectHead<'a>, Odd<'a>) {
        let seq = &self.seqs[gfn as usize];
        let even = seq.load(Ordering::Relaxed);
        // Release, as every store a walker may read (module doc): pairs with
        // the walker's Acquire loads of the count, which retry on odd.
        seq.store(even + 1, Ordering::Release);
        (DirectHead(head), Odd { seq, even })
    }

    fn close(&self, _cell: DirectHead<'_>, odd: Odd<'_>, _obs: &mut dyn Observer) {
        // Release (even): pairs with the walker's Acquire first read; a
        // walker that reads this count sees the chain the section left.
        odd.seq.store(odd.even + 2, Ordering::Release);
    }
}

/// The optimistic walker; `D` is the correct walker (`Correct`) or the
/// `seq-no-retry` bug.
pub(crate) struct SeqWalker<D>(PhantomData<D>);

impl<D: Deviation> Walker<SeqCount> for SeqWalker<D> {
    const NAME: &'static str = "seqlock";
    const BATCH: Batch = Batch::Pinned;

    #[inline]
    fn walk(
        c: &Chains,
        counts: &SeqCount,
        p: &impl Points,
        gfn: Gfn,
        f: &mut impl FnMut(SlotId),
        obs: &mut dyn Observer,
    ) -> WalkStats {
        let seq = &counts.seqs[gfn as usize];
        let mut stats = WalkStats::one_walk();
        let mut buf = SlotBuf::new();
        while let Err(why) = Self::pass(c, seq, p, gfn, &mut buf) {
            stats.restart(why);
            obs.walk_pass_failed();
            spin_hint();
        }
        buf.visit(&mut stats, f);
        stats
    }
}

impl<D: Deviation> SeqWalker<D> {
    /// One optimistic pass: read the count, collect the chain into `buf`,
    /// read the count again.
    fn pass(
        c: &Chains,
        seq: &AtomicU64,
        p: &impl Points,
        gfn: Gfn,
        buf: &mut SlotBuf,
    ) -> Result<(), RestartReason> {
        // Acquire: pairs with the Release even store that closes a write
        // section: the chain it left is visible.
        let s1 = seq.load(Ordering::Acquire);
        if s1 & 1 == 1 && !D::IGNORES_SEQ {
            return Err(RestartReason::RmapSeq);
        }
        buf.clear();
        p.at(PerturbPoint::WalkBetweenDescs);
        let complete = Self::collect(c, gfn, seq, s1, p, buf);
        // Acquire, as every walker load (pairs with the count stores of
        // `open` and `close`). After the loads of the pass in program order,
        // it reads the odd count of any section whose store the pass read
        // (module doc), or a later count.
        let s2 = seq.load(Ordering::Acquire);
        if (s1 != s2 || !complete) && !D::IGNORES_SEQ {
            return Err(RestartReason::RmapSeq);
        }
        Ok(())
    }

    /// Collect rmap `gfn` optimistically into `buf`, having read the count
    /// `s1`; true when the pass reached the chain's end (false: it met a
    /// descriptor in setup, or the count moved at a recheck).
    fn collect(
        c: &Chains,
        gfn: Gfn,
        seq: &AtomicU64,
        s1: u64,
        p: &impl Points,
        buf: &mut SlotBuf,
    ) -> bool {
        // Acquire: pairs with the writers' Release head stores.
        let v = c.head(gfn).load(Ordering::Acquire);
        // SAFETY: read from an rmap head while pinned (`Batch::Pinned`),
        // which keeps every descriptor reached from it allocated (`desc.rs`).
        let mut d = match unsafe { decode_head(v) } {
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
            for slot in c.pool.slots(d) {
                // Acquire: pairs with the writers' Release slot stores.
                if let Some(s) = slot_entry(slot.load(Ordering::Acquire)) {
                    buf.push(s);
                }
                p.at(PerturbPoint::WalkInDesc);
            }
            // Acquire: pairs with the Release stores of `more`.
            match d.next(Ordering::Acquire) {
                More::Next(n) => d = n,
                More::Nulls(_) => return true,
                More::Init => return false,
            }
            p.at(PerturbPoint::WalkBetweenDescs);
            // Acquire, after the Acquire loads of the pass so far: if any
            // of them read a store of a write section, this reads its odd
            // count or later (the same argument as the final recheck).
            if descs % SEQ_RECHECK_DESCS == 0 && seq.load(Ordering::Acquire) != s1 {
                return false;
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::designs::Correct;
    use crate::lock::LockKind;
    use crate::observer::NoObserver;
    use crate::rmap::{Rmap, RmapConfig};
    use crate::spte::{make_spte, SpteTable};

    #[test]
    fn quiescent_walk_of_a_chain_longer_than_the_recheck_bound_completes() {
        let n = 2 * SEQ_RECHECK_DESCS as u32 + 1;
        let cfg = RmapConfig {
            page_descs: 4,
            ..RmapConfig::new(1, 1, LockKind::Park)
        };
        let r = SeqlockRmap::<Correct>::new(&cfg);
        let t = SpteTable::new(1, n);
        for a in 0..n {
            r.map(&t, 0, t.slot_id(a, 0), make_spte(0, true), &mut NoObserver);
        }
        let mut buf = SlotBuf::new();
        // Before the fix the pass gave up at the bound and the walk retried
        // forever on a chain nobody was changing.
        let seq = &r.section.seqs[0];
        let s1 = seq.load(Ordering::Relaxed);
        assert!(
            SeqWalker::<Correct>::collect(&r.chains, 0, seq, s1, &Unperturbed, &mut buf),
            "the pass must reach the chain's end"
        );
        assert_eq!(buf.len(), n as usize);
        let st = r.walk(0, &mut |_| {});
        assert_eq!((st.visited, st.total_restarts()), (n as u64, 0));
    }
}
