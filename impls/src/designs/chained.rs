//! The one writer path: [`ChainRmap`] implements [`Rmap`] once for every
//! design that keeps an rmap as a head word plus a chain of descriptors (all
//! but `concurrent-map`). A design is three choices, each a type parameter:
//!
//! * its **walker** ([`Walker`]): what a write-protect batch holds
//!   ([`Batch`]: `mmu_lock`, an epoch pin, nothing) and how it walks one
//!   rmap;
//! * its **section** ([`Section`]): what a writer does around a change of one
//!   rmap besides holding `mmu_lock` (nothing, bump a per-rmap sequence
//!   count, take the rmap's lock bit), and the head cell it writes through
//!   (the head word itself, or a value the unlock publishes);
//! * its **chain discipline** ([`Chain`]): where an add goes and how a
//!   remove fills its hole (`chain.rs`).
//!
//! | design | walker | section | chain (default; `--chain` picks the other) |
//! |---|---|---|---|
//! | `mmu-lock` | `UnderMmuLock` | [`Direct`] | `TailChain` (or `Chain64`) |
//! | `lockless`, `lockless-gen` | `Nulls` | [`Direct`] | `HeadChain` (or `Chain64`) |
//! | `lockless-6.4` | `Nulls` | [`Direct`] | `Chain64` only |
//! | `seqlock` | `SeqWalker` | `SeqCount` | `HeadChain` (or `Chain64`) |
//! | `rmap-lock` | `UnderRmapLock` | `RmapLockBit` | `Chain64` (or `HeadChain`) |
//!
//! Every writer holds `mmu_lock` for a whole `map`, `unmap` or `zap`, as
//! KVM's do, and opens the section of each rmap it changes inside it. So a
//! design file holds only its walker and, if it has one, its section.
//!
//! The observer an operation gets reaches every part: `mmu_lock` reports its
//! waits and holds (`lock.rs`), a section and a walker get it too
//! (`rmap-lock` reports its bit lock from `open`, `close` and `walk`, an
//! optimistic walker its failed passes).
//! Aging ([`Rmap::age`]) is the walk again, over a range of gfns, with the
//! Accessed bit test-and-cleared on each spte visited, inside the same
//! [`Batch`] as a write-protect batch: `mmu_lock` for the whole range
//! (`mmu-lock`, KVM until Linux 6.14), nothing but each rmap's lock
//! (`rmap-lock`, Linux 6.15), or an epoch pin (the optimistic walkers).
//!
//! Where coming work plugs in:
//!
//! * a new chain discipline is one more [`Chain`] (`chain.rs`), combined with
//!   any walker in a type alias: `NullsRmap<false, Correct, NewChain>` asks
//!   whether the 2013 walker survives it;
//! * a new `mmu_lock` kind lives in `lock.rs` alone;
//! * work a write-protect batch must do before it lets go of what it holds
//!   is the `end` of [`Rmap::write_protect_then`] below: `mmu-lock` runs it
//!   inside `mmu_lock`, at the end of the batch body (the dirty-log round's
//!   remote TLB flush, as in Linux 3.10), the others after their walks,
//!   outside any lock and after the epoch pin.

use crate::chain::{first_entry, Chain, DirectHead, HeadCell};
use crate::desc::DescPool;
use crate::lock::MmuLock;
use crate::observer::{NoObserver, Observer};
use crate::perturb::{PerturbPoint, Points, Unperturbed};
use crate::primitive::AtomicUsize;
use crate::rmap::{age_each, write_protect_each, BatchEnd, MapOutcome, Rmap, RmapConfig};
use crate::spte::{is_present, Gfn, SlotId, SpteTable};
use crate::stats::{AgeStats, WalkStats};
use std::marker::PhantomData;
use std::ops::Range;

/// What every chain design keeps: one head word per gfn, the descriptor
/// pool, and `mmu_lock`.
pub(crate) struct Chains {
    heads: Box<[AtomicUsize]>,
    pub(crate) pool: DescPool,
    pub(crate) mmu_lock: MmuLock,
}

impl Chains {
    /// The head word of rmap `gfn`.
    #[inline]
    pub(crate) fn head(&self, gfn: Gfn) -> &AtomicUsize {
        &self.heads[gfn as usize]
    }
}

/// What a writer does around a change of one rmap, inside `mmu_lock`.
pub(crate) trait Section: Send + Sync + Sized {
    /// Where the chain algorithms write the head while the section is open:
    /// the head word itself ([`DirectHead`]), or a value that `close`
    /// publishes (`PendingHead`).
    type Cell<'a>: HeadCell
    where
        Self: 'a;
    /// What `close` needs besides the cell.
    type Open<'a>
    where
        Self: 'a;

    fn new(gfns: u64) -> Self;

    /// Open rmap `gfn`'s section; `head` is its head word. A section that
    /// takes a lock reports it to `obs`.
    fn open<'a>(
        &'a self,
        head: &'a AtomicUsize,
        gfn: Gfn,
        obs: &mut dyn Observer,
    ) -> (Self::Cell<'a>, Self::Open<'a>);

    /// Close it, publishing what the cell holds.
    fn close(&self, cell: Self::Cell<'_>, open: Self::Open<'_>, obs: &mut dyn Observer);
}

/// No section: the writer changes the head word directly (`mmu-lock`, whose
/// walkers hold `mmu_lock` too, and the lockless designs, whose walkers
/// validate what they read instead).
pub(crate) struct Direct;

impl Section for Direct {
    type Cell<'a> = DirectHead<'a>;
    type Open<'a> = ();

    fn new(_gfns: u64) -> Self {
        Direct
    }

    #[inline]
    fn open<'a>(
        &'a self,
        head: &'a AtomicUsize,
        _gfn: Gfn,
        _obs: &mut dyn Observer,
    ) -> (DirectHead<'a>, ()) {
        (DirectHead(head), ())
    }

    #[inline]
    fn close(&self, _cell: DirectHead<'_>, _open: (), _obs: &mut dyn Observer) {}
}

/// What a walker holds across a batch of walks.
pub(crate) enum Batch {
    /// `mmu_lock`, for the whole batch.
    MmuLock,
    /// An epoch pin, the lockless walkers' RCU read section: no pool page a
    /// walk reaches is freed before it ends (`desc.rs`, "Type stability").
    Pinned,
    /// Nothing: each walk takes what it needs.
    Nothing,
}

/// How a design walks.
pub(crate) trait Walker<S: Section>: 'static {
    /// The design's CLI name.
    const NAME: &'static str;
    /// What a batch of walks holds.
    const BATCH: Batch;
    /// Reads the descriptors' sequence counts (`lockless-gen`): only then
    /// does the pool keep them (`DescPool::with_seq`).
    const READS_DESC_SEQ: bool = false;

    /// Walk rmap `gfn` inside a batch, calling `f` on each spte slot, with
    /// the guarantee of the [`Rmap`] trait; `p` is the design's perturbation
    /// points (`perturb.rs`); report locks taken and failed passes to `obs`.
    fn walk(
        c: &Chains,
        section: &S,
        p: &impl Points,
        gfn: Gfn,
        f: &mut impl FnMut(SlotId),
        obs: &mut dyn Observer,
    ) -> WalkStats;
}

/// A chain design: walker `W`, section `S`, chain discipline `C`, and its
/// perturbation points `P` (none, unless a torture asks: `perturb.rs`).
/// `INSTALL_FIRST` is the `install-before-add` injected bug: `map` installs
/// the spte before it adds it to the rmap, as Linux 3.10's `mmu_set_spte`
/// does under `mmu_lock` (a type parameter, so a correct build compiles
/// none of it).
pub(crate) struct ChainRmap<W, S, C, P = Unperturbed, const INSTALL_FIRST: bool = false> {
    pub(crate) chains: Chains,
    pub(crate) section: S,
    perturb: P,
    /// The design's CLI name: the walker's, unless [`ChainRmap::named`].
    name: &'static str,
    design: PhantomData<fn() -> (W, C)>,
}

impl<W: Walker<S>, S: Section, C: Chain, P: Points, const INSTALL_FIRST: bool>
    ChainRmap<W, S, C, P, INSTALL_FIRST>
{
    pub(crate) fn new(cfg: &RmapConfig) -> Self
    where
        P: Default,
    {
        Self::with_points(cfg, P::default())
    }

    pub(crate) fn with_points(cfg: &RmapConfig, perturb: P) -> Self {
        ChainRmap {
            chains: Chains {
                heads: (0..cfg.gfns).map(|_| AtomicUsize::new(0)).collect(),
                pool: DescPool::new(cfg.desc_ext, cfg.page_descs).with_seq(W::READS_DESC_SEQ),
                mmu_lock: MmuLock::new(cfg.mmu_lock),
            },
            section: S::new(cfg.gfns),
            perturb,
            name: W::NAME,
            design: PhantomData,
        }
    }

    /// Call the design `name` (`lockless-6.4` is `lockless`'s walker over
    /// another chain, under a name of its own).
    pub(crate) fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Loom models only: defer the reuse of freed descriptors until no
    /// walker is pinned, instead of handing them out at once (`desc.rs`).
    #[cfg(loom)]
    pub(crate) fn with_deferred_reuse(mut self, exhausted: crate::desc::Exhausted) -> Self {
        self.chains.pool.defer_reuse(exhausted);
        self
    }

    /// Run `change` on rmap `gfn` inside its section; the caller holds
    /// `mmu_lock`.
    #[inline]
    fn change<'a, R>(
        &'a self,
        gfn: Gfn,
        obs: &mut dyn Observer,
        change: impl FnOnce(&S::Cell<'a>) -> R,
    ) -> R {
        let (cell, open) = self.section.open(self.chains.head(gfn), gfn, obs);
        self.perturb.at(PerturbPoint::WriterSection);
        let r = change(&cell);
        self.section.close(cell, open, obs);
        r
    }

    /// Run `body`, a batch of walks, holding what the walker needs across
    /// it (`W::BATCH`); `body` gets `obs` back.
    #[inline]
    fn batch<R>(&self, obs: &mut dyn Observer, body: impl FnOnce(&mut dyn Observer) -> R) -> R {
        match W::BATCH {
            Batch::MmuLock => self.chains.mmu_lock.with(obs, body),
            Batch::Pinned => {
                let _pinned = self.chains.pool.pin();
                body(obs)
            }
            Batch::Nothing => body(obs),
        }
    }
}

impl<W: Walker<S>, S: Section, C: Chain, P: Points, const INSTALL_FIRST: bool>
    ChainRmap<W, S, C, P, INSTALL_FIRST>
{
    /// `write_protect_then` with its `end` known at compile time, so that
    /// a plain `write_protect` (an empty `end`) pays nothing for it.
    #[inline]
    fn protect_batch(
        &self,
        sptes: &SpteTable,
        gfns: &[Gfn],
        obs: &mut dyn Observer,
        mut end: impl FnMut(&WalkStats, &mut dyn Observer),
    ) -> WalkStats {
        let walks = |obs: &mut dyn Observer| {
            write_protect_each(sptes, gfns, obs, |gfn, p, obs| {
                W::walk(
                    &self.chains,
                    &self.section,
                    &self.perturb,
                    gfn,
                    &mut |s| p.protect(s),
                    obs,
                )
            })
        };
        match W::BATCH {
            // The end of the batch body, inside `mmu_lock`.
            Batch::MmuLock => self.batch(obs, |obs| {
                let st = walks(obs);
                end(&st, obs);
                st
            }),
            // After the walks, outside any lock (and the pin).
            Batch::Pinned | Batch::Nothing => {
                let st = self.batch(obs, walks);
                end(&st, obs);
                st
            }
        }
    }
}

impl<W: Walker<S>, S: Section, C: Chain, P: Points, const INSTALL_FIRST: bool> Rmap
    for ChainRmap<W, S, C, P, INSTALL_FIRST>
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn map(
        &self,
        sptes: &SpteTable,
        gfn: Gfn,
        slot: SlotId,
        spte: u64,
        obs: &mut dyn Observer,
    ) -> MapOutcome {
        let pool = &self.chains.pool;
        self.chains.mmu_lock.with(obs, |obs| {
            if is_present(sptes.load(slot)) {
                return MapOutcome::AlreadyPresent;
            }
            if INSTALL_FIRST {
                sptes.install(slot, spte);
                self.perturb.at(PerturbPoint::MapBetweenAddAndInstall);
                self.change(gfn, obs, |h| C::add(pool, h, gfn, slot));
                return MapOutcome::Mapped;
            }
            // Add, then install: every present spte is in its rmap, which
            // the walkers that do not hold `mmu_lock` rely on (`Rmap::map`).
            self.change(gfn, obs, |h| C::add(pool, h, gfn, slot));
            self.perturb.at(PerturbPoint::MapBetweenAddAndInstall);
            sptes.install(slot, spte);
            MapOutcome::Mapped
        })
    }

    fn unmap(&self, sptes: &SpteTable, gfn: Gfn, slot: SlotId, obs: &mut dyn Observer) -> bool {
        let pool = &self.chains.pool;
        self.chains.mmu_lock.with(obs, |obs| {
            let present = is_present(sptes.clear(slot));
            if present {
                let found = self.change(gfn, obs, |h| C::remove(pool, h, gfn, slot));
                debug_assert!(found, "present spte missing from rmap {gfn}");
            }
            present
        })
    }

    fn zap(&self, sptes: &SpteTable, gfns: Range<Gfn>, obs: &mut dyn Observer) -> u64 {
        let pool = &self.chains.pool;
        self.chains.mmu_lock.with(obs, |obs| {
            let mut zapped = 0;
            for gfn in gfns {
                self.change(gfn, obs, |h| {
                    while let Some(s) = first_entry(pool, h.head()) {
                        sptes.clear(s);
                        C::remove(pool, h, gfn, s);
                        zapped += 1;
                        self.perturb.at(PerturbPoint::WriterSection);
                    }
                });
            }
            zapped
        })
    }

    fn write_protect(&self, sptes: &SpteTable, gfns: &[Gfn], obs: &mut dyn Observer) -> WalkStats {
        self.protect_batch(sptes, gfns, obs, |_, _| {})
    }

    fn write_protect_then(
        &self,
        sptes: &SpteTable,
        gfns: &[Gfn],
        obs: &mut dyn Observer,
        end: &mut BatchEnd<'_>,
    ) -> WalkStats {
        self.protect_batch(sptes, gfns, obs, end)
    }

    fn walk(&self, gfn: Gfn, mut f: &mut dyn FnMut(SlotId)) -> WalkStats {
        self.batch(&mut NoObserver, |obs| {
            W::walk(&self.chains, &self.section, &self.perturb, gfn, &mut f, obs)
        })
    }

    fn age(&self, sptes: &SpteTable, gfns: Range<Gfn>, obs: &mut dyn Observer) -> AgeStats {
        self.batch(obs, |obs| {
            age_each(sptes, gfns, |gfn, f| {
                W::walk(
                    &self.chains,
                    &self.section,
                    &self.perturb,
                    gfn,
                    &mut |s| f(s),
                    obs,
                )
            })
        })
    }

    #[cfg(not(loom))]
    fn reclaim(&self) {
        self.chains.pool.reclaim();
    }

    fn descs_in_use(&self) -> usize {
        self.chains.pool.in_use()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::observer::Observer;
    use crate::spte::{make_spte, Gfn, SpteTable};
    use crate::stats::WalkStats;
    use crate::{build, ImplKind, LockKind, RmapConfig};

    /// Every event an operation reports, in order.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Observer for Log {
        fn lock_wait(&mut self) {
            self.0.push("mmu_lock wait".into());
        }
        fn lock_acquired(&mut self) {
            self.0.push("mmu_lock held".into());
        }
        fn lock_released(&mut self) {
            self.0.push("mmu_lock released".into());
        }
        fn rmap_lock_wait(&mut self, gfn: Gfn) {
            self.0.push(format!("rmap_lock {gfn} wait"));
        }
        fn rmap_lock_acquired(&mut self) {
            self.0.push("rmap_lock held".into());
        }
        fn rmap_lock_released(&mut self) {
            self.0.push("rmap_lock released".into());
        }
        fn gfn_walked(&mut self, gfn: Gfn, _: &WalkStats) {
            self.0.push(format!("walked {gfn}"));
        }
    }

    fn log(events: &[&str]) -> Vec<String> {
        events.iter().map(|e| e.to_string()).collect()
    }

    /// gfn 0 holds two sptes, gfn 1 none.
    fn setup(kind: ImplKind) -> (Box<dyn crate::Rmap>, SpteTable) {
        let r = build(kind, &RmapConfig::new(2, 3, LockKind::Spin), None).unwrap();
        let t = SpteTable::new(2, 2);
        for a in 0..2 {
            r.map(
                &t,
                0,
                t.slot_id(a, 0),
                make_spte(0, true),
                &mut Log::default(),
            );
        }
        (r, t)
    }

    /// `write_protect_then` runs its `end` inside `mmu_lock` for `mmu-lock`
    /// (the flush under the lock, as in Linux 3.10) and after the walks for
    /// every other design.
    #[test]
    fn the_end_of_a_batch_runs_under_mmu_lock_only_for_mmu_lock() {
        for kind in ImplKind::ALL {
            let (r, t) = setup(kind);
            let mut obs = Log::default();
            let st = r.write_protect_then(&t, &[0, 1], &mut obs, &mut |st, obs| {
                assert_eq!(st.protected, 2, "{kind}: end gets the batch's stats");
                obs.gfn_walked(99, st);
            });
            assert_eq!(st.protected, 2);
            let events: Vec<&str> = obs.0.iter().map(|s| s.as_str()).collect();
            let expected: &[&str] = match kind {
                ImplKind::MmuLock => &[
                    "mmu_lock wait",
                    "mmu_lock held",
                    "walked 0",
                    "walked 1",
                    "walked 99",
                    "mmu_lock released",
                ],
                ImplKind::RmapLock => &[
                    "rmap_lock 0 wait",
                    "rmap_lock held",
                    "rmap_lock released",
                    "walked 0",
                    "walked 1",
                    "walked 99",
                ],
                _ => &["walked 0", "walked 1", "walked 99"],
            };
            assert_eq!(events, expected, "{kind}");
        }
    }

    /// `rmap-lock` reports its bit lock from a writer's section inside
    /// `mmu_lock`, and not for an rmap that was empty (never locked).
    #[test]
    fn rmap_lock_reports_its_bit_lock_from_writers() {
        let (r, t) = setup(ImplKind::RmapLock);
        let mut obs = Log::default();
        r.map(&t, 1, t.slot_id(0, 1), make_spte(1, true), &mut obs);
        r.map(&t, 1, t.slot_id(1, 1), make_spte(1, true), &mut obs);
        assert_eq!(
            obs.0,
            log(&[
                "mmu_lock wait",
                "mmu_lock held",
                "mmu_lock released",
                "mmu_lock wait",
                "mmu_lock held",
                "rmap_lock 1 wait",
                "rmap_lock held",
                "rmap_lock released",
                "mmu_lock released",
            ]),
            "the first map found gfn 1 empty: no bit lock"
        );
        let mut other = Log::default();
        let (m, t) = setup(ImplKind::LocklessGen);
        m.map(&t, 1, t.slot_id(0, 1), make_spte(1, true), &mut other);
        m.map(&t, 1, t.slot_id(1, 1), make_spte(1, true), &mut other);
        assert!(
            other.0.iter().all(|e| e.starts_with("mmu_lock")),
            "only rmap-lock has a bit lock: {:?}",
            other.0
        );
    }
}
