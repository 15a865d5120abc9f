//! What the two optimistic walkers (`lockless`'s nulls walker and
//! `seqlock`'s) share: the buffer that holds the slots a pass read until the
//! pass is validated, and the named ways an injected bug departs from a
//! correct walker.

use crate::desc::MAX_DESC_EXT;
use crate::spte::SlotId;
use crate::stats::WalkStats;
use std::mem::MaybeUninit;

/// How a walker departs from the correct one: one predicate per step of the
/// walk, each false for the correct walker, so that a correct build compiles
/// none of the deviations (they are constants of a type parameter).
pub(crate) trait Deviation: 'static {
    /// `no-nulls-check`: any nulls marker ends the walk, also another
    /// rmap's (seed case 3.c.2 goes undetected).
    const STOPS_AT_ANY_NULLS: bool = false;
    /// `top-down-walk`: a descriptor's slots are read from slot 0 upwards,
    /// so a forward move can pass the walker by.
    const READS_TOP_DOWN: bool = false;
    /// `stale-head-restart`: a restart starts again from the head read
    /// before the first pass (Linux commit c87a124a5d5e fixed a walker whose
    /// compiler kept the head in a register across the restart).
    const RESTARTS_FROM_STALE_HEAD: bool = false;
    /// `seq-no-retry`: the sequence count is read but never acted on.
    const IGNORES_SEQ: bool = false;
    /// Not a bug but the crate docs' open question: read a descriptor's
    /// `more` link *before* its slots, without a sequence count.
    const READS_MORE_FIRST: bool = false;
    /// A weaker repair the crate docs say fails: on reaching its own nulls,
    /// read the head again and start over if it changed since the pass began
    /// (ABA: it may name the same descriptor in a new life).
    const RECHECKS_HEAD_AT_END: bool = false;
    /// A weaker repair the crate docs say fails: the sequence count taken as
    /// a generation bumped once per reuse (at allocation), compared before
    /// the slots and after `more`, with no "in setup" state: a walker that
    /// read the new generation may still read stale slots.
    const SEQ_IS_A_GENERATION: bool = false;
}

/// The correct walker.
pub(crate) struct Correct;
impl Deviation for Correct {}

/// One type per deviation, each setting its one predicate.
macro_rules! deviations {
    ($($name:ident sets $predicate:ident;)*) => {
        $(
            pub(crate) struct $name;
            impl Deviation for $name {
                const $predicate: bool = true;
            }
        )*
    };
}

deviations! {
    NoNullsCheck sets STOPS_AT_ANY_NULLS;
    TopDownWalk sets READS_TOP_DOWN;
    StaleHeadRestart sets RESTARTS_FROM_STALE_HEAD;
    SeqNoRetry sets IGNORES_SEQ;
    MoreFirst sets READS_MORE_FIRST;
    HeadRecheck sets RECHECKS_HEAD_AT_END;
    GenerationOnce sets SEQ_IS_A_GENERATION;
}

/// Slots before the buffer spills to the heap: a whole descriptor at the
/// largest `desc_ext`, so the nulls walker, which buffers one descriptor at
/// a time, never spills.
const INLINE: usize = MAX_DESC_EXT;

/// The spte slots one pass of an optimistic walk read, kept until the pass
/// is validated (a pass over a recycled descriptor may have read another
/// rmap's slots, which must not be visited).
///
/// The inline array is not initialised: a walk writes each entry it reads
/// and reads back only those. A zeroed `[0usize; 64]` per walk was a 512-byte
/// `memset`, a call into libc paid before the head was even read, by empty
/// rmaps and single sptes too. Now a walk costs one stack store per spte it
/// buffers and nothing else: an empty or single-spte rmap touches no buffer
/// word, and nothing calls into libc unless a seqlock pass collects more than
/// [`INLINE`] sptes and spills.
pub(crate) struct SlotBuf {
    inline: [MaybeUninit<SlotId>; INLINE],
    /// `inline[..n]` is initialised.
    n: usize,
    spill: Vec<SlotId>,
}

impl SlotBuf {
    #[inline]
    pub(crate) fn new() -> Self {
        SlotBuf {
            inline: [const { MaybeUninit::uninit() }; INLINE],
            n: 0,
            spill: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn clear(&mut self) {
        self.n = 0;
        self.spill.clear();
    }

    #[inline]
    pub(crate) fn push(&mut self, s: SlotId) {
        match self.inline.get_mut(self.n) {
            Some(cell) => {
                cell.write(s);
                self.n += 1;
            }
            None => self.spill.push(s),
        }
    }

    /// Visit what the pass read, counting each visit.
    #[inline]
    pub(crate) fn visit(&self, stats: &mut WalkStats, f: &mut impl FnMut(SlotId)) {
        // SAFETY: `inline[..n]` was written by `push` since the last `clear`
        // (the field's invariant), and `MaybeUninit<SlotId>` has the layout
        // of `SlotId`.
        let inline =
            unsafe { std::slice::from_raw_parts(self.inline.as_ptr().cast::<SlotId>(), self.n) };
        for &s in inline.iter().chain(&self.spill) {
            stats.visited += 1;
            f(s);
        }
    }

    /// How many slots are buffered.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn len(&self) -> usize {
        self.n + self.spill.len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn buffer_keeps_order_across_the_spill_and_clears() {
        let mut buf = SlotBuf::new();
        let n = INLINE + 3;
        (0..n).for_each(|s| buf.push(s));
        assert_eq!(buf.len(), n);
        let (mut seen, mut st) = (Vec::new(), WalkStats::default());
        buf.visit(&mut st, &mut |s| seen.push(s));
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
        assert_eq!(st.visited, n as u64);
        buf.clear();
        buf.push(7);
        seen.clear();
        buf.visit(&mut st, &mut |s| seen.push(s));
        assert_eq!(seen, [7], "a clear forgets inline and spilled slots");
    }
}
