//! The dirty log ([`DirtyLog`]): the memslot's dirty bitmap, one bit per
//! gfn, set by the fault paths and fetched and cleared by the walker's round
//! (see [the dirty-log round](crate#the-dirty-log-round) in the crate docs).

use rmap_impls::Gfn;
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(test)]
thread_local! {
    /// RMWs the calling thread's marks made (tests only).
    static MARK_RMWS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The dirty bitmap of the memslot.
pub(crate) struct DirtyLog {
    words: Box<[AtomicU64]>,
}

impl DirtyLog {
    pub(crate) fn new(gfns: u64) -> Self {
        DirtyLog {
            words: (0..gfns.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// `mark_page_dirty`: set the gfn's bit with one unconditional atomic
    /// OR, as Linux 3.10's `mark_page_dirty_in_slot` does with `set_bit_le`
    /// (Linux 6.1's still does, for a memslot with a bitmap rather than a
    /// dirty ring). A test before the set would skip the RMW when it reads
    /// the bit already set, and would rely on that read not being stale
    /// against a harvest's swap: an argument about x86-TSO, not about the
    /// memory model the code is written against.
    ///
    /// SeqCst: the oracle reads a vCPU's in-flight fault gfn and then this
    /// bit, and the fault withdraws its gfn only after this OR
    /// ([`super::tlb::Vcpus::fault_end`], SeqCst). In the single total order
    /// of those SeqCst operations, an oracle read that finds the fault
    /// withdrawn comes after the withdrawal, hence after this OR, so its
    /// read of the bit sees the mark, unless a harvest swapped it out in
    /// between; the walker is the only harvester and the oracle runs on it
    /// after its round's copy, so that harvest was this round's, and the
    /// round copied the page after the snapshot the check compares with (the
    /// [oracle](crate#the-migration-oracle)). The OR is one RMW in that
    /// order: no swap can fall between a test and a set.
    #[inline]
    pub(crate) fn mark(&self, gfn: Gfn) {
        let w = &self.words[(gfn / 64) as usize];
        w.fetch_or(1u64 << (gfn % 64), Ordering::SeqCst);
        #[cfg(test)]
        MARK_RMWS.with(|n| n.set(n.get() + 1));
    }

    /// Whether `gfn` is dirty now (the oracle).
    #[inline]
    pub(crate) fn is_dirty(&self, gfn: Gfn) -> bool {
        self.words[(gfn / 64) as usize].load(Ordering::SeqCst) & (1u64 << (gfn % 64)) != 0
    }

    /// Fetch and clear the whole bitmap, appending the dirty gfns to `out`
    /// in ascending order. SeqCst swap: every mark is either harvested here
    /// or left for the next round, never lost between the read and the clear.
    pub(crate) fn harvest(&self, out: &mut Vec<Gfn>) {
        for (i, w) in self.words.iter().enumerate() {
            if w.load(Ordering::SeqCst) == 0 {
                continue;
            }
            let mut bits = w.swap(0, Ordering::SeqCst);
            while bits != 0 {
                let b = bits.trailing_zeros() as u64;
                out.push(i as u64 * 64 + b);
                bits &= bits - 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// The mark is one RMW whether or not the bit is already set.
    #[test]
    fn the_mark_is_unconditional() {
        let d = DirtyLog::new(128);
        let rmws = || MARK_RMWS.with(|n| n.get());
        let before = rmws();
        d.mark(70);
        d.mark(70);
        d.mark(70);
        assert_eq!(rmws() - before, 3, "a mark on a set bit skipped its RMW");
        assert!(d.is_dirty(70));
    }

    #[test]
    fn harvest_fetches_and_clears_every_mark_once() {
        let d = DirtyLog::new(200);
        for g in [0, 5, 63, 64, 130, 199, 5] {
            d.mark(g);
        }
        assert!(d.is_dirty(130) && !d.is_dirty(131));
        let mut out = Vec::new();
        d.harvest(&mut out);
        assert_eq!(out, vec![0, 5, 63, 64, 130, 199]);
        out.clear();
        d.harvest(&mut out);
        assert!(out.is_empty(), "a harvested mark is gone");
    }

    /// Markers mark gfns that share bitmap words with each other while one
    /// thread harvests over and over. A marker marks a gfn again only once
    /// its last mark was reported, so marks never merge in one bit, and at
    /// the end (after a last harvest) every gfn must have been reported
    /// exactly as many times as it was marked: a mark lost between the read
    /// and the clear leaves a gfn short, a mark reported twice leaves it
    /// over. Returns how many gfns were off.
    ///
    /// A marker gives a gfn up once two harvests have completed since its
    /// mark without reporting it: the second of them started after the
    /// mark, so it must have taken the mark (or the first did). This ends
    /// the run when a broken harvest loses marks, and needs no clock.
    fn gfns_not_reported_once_per_mark(harvest: fn(&DirtyLog, &mut Vec<Gfn>)) -> usize {
        const MARKERS: u64 = 2;
        // 16 bitmap words, each shared by both markers: at any time some of
        // a word's gfns are reported and about to be marked again.
        const GFNS: u64 = 1024;
        const MARKS: u64 = 5_000; // per marker
        let d = DirtyLog::new(GFNS);
        let reported: Vec<AtomicU64> = (0..GFNS).map(|_| AtomicU64::new(0)).collect();
        // Harvests completed, reports included.
        let harvests = AtomicU64::new(0);
        let done = AtomicBool::new(false);
        let harvest_and_report = |out: &mut Vec<Gfn>| {
            harvest(&d, out);
            for &g in out.iter() {
                // Release: pairs with the marker's Acquire; a marker that
                // sees the report marks again after the clear that took it.
                reported[g as usize].fetch_add(1, Ordering::Release);
            }
            out.clear();
            // SeqCst: one order with the markers' marks and their reads of
            // the count (see the doc above).
            harvests.fetch_add(1, Ordering::SeqCst);
        };
        let marks: Vec<u64> = std::thread::scope(|s| {
            let markers: Vec<_> = (0..MARKERS)
                .map(|m| {
                    let (d, reported, harvests) = (&d, &reported, &harvests);
                    s.spawn(move || {
                        let mine: Vec<usize> = (m as usize..GFNS as usize)
                            .step_by(MARKERS as usize)
                            .collect();
                        let mut marks = vec![0u64; GFNS as usize];
                        // Per gfn: the harvest count read just after its
                        // last mark, or None once given up.
                        let mut marked_at = vec![Some(0u64); GFNS as usize];
                        let (mut made, mut given_up) = (0, 0);
                        while made < MARKS && given_up < mine.len() {
                            // Read before the reports below: a harvest
                            // counted here has its reports visible there.
                            let done = harvests.load(Ordering::SeqCst);
                            for &g in &mine {
                                let Some(h0) = marked_at[g] else { continue };
                                let r = reported[g].load(Ordering::Acquire);
                                if r == marks[g] {
                                    d.mark(g as Gfn);
                                    marks[g] += 1;
                                    made += 1;
                                    marked_at[g] = Some(harvests.load(Ordering::SeqCst));
                                } else if done >= h0 + 2 {
                                    marked_at[g] = None;
                                    given_up += 1;
                                }
                            }
                        }
                        marks
                    })
                })
                .collect();
            s.spawn(|| {
                let mut out = Vec::new();
                // The last harvest, after the join, takes what is left.
                while !done.load(Ordering::Relaxed) {
                    harvest_and_report(&mut out);
                }
            });
            let per_marker: Vec<Vec<u64>> =
                markers.into_iter().map(|h| h.join().unwrap()).collect();
            done.store(true, Ordering::Relaxed);
            (0..GFNS as usize)
                .map(|g| per_marker.iter().map(|m| m[g]).sum())
                .collect()
        });
        harvest_and_report(&mut Vec::new());
        (0..GFNS as usize)
            .filter(|&g| reported[g].load(Ordering::Relaxed) != marks[g])
            .count()
    }

    #[test]
    fn concurrent_marks_are_harvested_exactly_once() {
        assert_eq!(gfns_not_reported_once_per_mark(DirtyLog::harvest), 0);
    }

    /// The check above is not blind: a harvest that reads a word and then
    /// stores 0, instead of swapping, loses the marks that land in between
    /// (its window is widened here by a yield).
    #[test]
    fn a_harvest_that_reads_then_clears_loses_marks() {
        fn read_then_clear(d: &DirtyLog, out: &mut Vec<Gfn>) {
            for (i, w) in d.words.iter().enumerate() {
                let mut bits = w.load(Ordering::SeqCst);
                if bits == 0 {
                    continue;
                }
                std::thread::yield_now();
                w.store(0, Ordering::SeqCst);
                while bits != 0 {
                    out.push(i as u64 * 64 + bits.trailing_zeros() as u64);
                    bits &= bits - 1;
                }
            }
        }
        // Whether a mark lands in the window is up to the scheduler: on a
        // loaded 2-core machine about 5 runs in 6 lose marks, so 20 runs
        // all missing would take a one-in-10^15 machine.
        let lost = (0..20).any(|_| gfns_not_reported_once_per_mark(read_then_clear) > 0);
        assert!(
            lost,
            "a harvest with a window between read and clear lost no mark"
        );
    }
}
