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
//! * an observer of `rmap-lock`'s bit lock reports from that design's section
//!   (`open` and `close`) and its walker's `walk`: `map`, `unmap`, `zap` and
//!   `write_protect` below hold the observer where they call them, so each
//!   would pass it on;
//! * work a write-protect batch must do before it lets go of what it holds
//!   (a remote TLB flush under `mmu_lock`) goes at the end of the batch body
//!   in [`Rmap::write_protect`] below, which `batch` runs inside `mmu_lock`
//!   for `mmu-lock` and outside any lock for the others.

use crate::chain::{first_entry, Chain, DirectHead, HeadCell};
use crate::desc::DescPool;
use crate::lock::MmuLock;
use crate::observer::{NoObserver, Observer};
use crate::primitive::AtomicUsize;
use crate::rmap::{age_each, write_protect_each, MapOutcome, Rmap, RmapConfig};
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

    /// Open rmap `gfn`'s section; `head` is its head word.
    fn open<'a>(&'a self, head: &'a AtomicUsize, gfn: Gfn) -> (Self::Cell<'a>, Self::Open<'a>);

    /// Close it, publishing what the cell holds.
    fn close(&self, cell: Self::Cell<'_>, open: Self::Open<'_>);
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
    fn open<'a>(&'a self, head: &'a AtomicUsize, _gfn: Gfn) -> (DirectHead<'a>, ()) {
        (DirectHead(head), ())
    }

    #[inline]
    fn close(&self, _cell: DirectHead<'_>, _open: ()) {}
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

    /// Walk rmap `gfn` inside a batch, calling `f` on each spte slot, with
    /// the guarantee of the [`Rmap`] trait.
    fn walk(c: &Chains, section: &S, gfn: Gfn, f: &mut impl FnMut(SlotId)) -> WalkStats;
}

/// A chain design: walker `W`, section `S`, chain discipline `C`.
pub(crate) struct ChainRmap<W, S, C> {
    pub(crate) chains: Chains,
    pub(crate) section: S,
    /// The design's CLI name: the walker's, unless [`ChainRmap::named`].
    name: &'static str,
    design: PhantomData<fn() -> (W, C)>,
}

impl<W: Walker<S>, S: Section, C: Chain> ChainRmap<W, S, C> {
    pub(crate) fn new(cfg: &RmapConfig) -> Self {
        ChainRmap {
            chains: Chains {
                heads: (0..cfg.gfns).map(|_| AtomicUsize::new(0)).collect(),
                pool: DescPool::new(cfg.desc_ext, cfg.page_descs),
                mmu_lock: MmuLock::new(cfg.mmu_lock),
            },
            section: S::new(cfg.gfns),
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
    pub(crate) fn with_deferred_reuse(mut self) -> Self {
        self.chains.pool.defer_reuse();
        self
    }

    /// Run `change` on rmap `gfn` inside its section; the caller holds
    /// `mmu_lock`.
    #[inline]
    fn change<'a, R>(&'a self, gfn: Gfn, change: impl FnOnce(&S::Cell<'a>) -> R) -> R {
        let (cell, open) = self.section.open(self.chains.head(gfn), gfn);
        let r = change(&cell);
        self.section.close(cell, open);
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

impl<W: Walker<S>, S: Section, C: Chain> Rmap for ChainRmap<W, S, C> {
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
        self.chains.mmu_lock.with(obs, |_| {
            if is_present(sptes.load(slot)) {
                return MapOutcome::AlreadyPresent;
            }
            sptes.install(slot, spte);
            self.change(gfn, |h| C::add(pool, h, gfn, slot));
            MapOutcome::Mapped
        })
    }

    fn unmap(&self, sptes: &SpteTable, gfn: Gfn, slot: SlotId, obs: &mut dyn Observer) -> bool {
        let pool = &self.chains.pool;
        self.chains.mmu_lock.with(obs, |_| {
            let present = is_present(sptes.clear(slot));
            if present {
                let found = self.change(gfn, |h| C::remove(pool, h, gfn, slot));
                debug_assert!(found, "present spte missing from rmap {gfn}");
            }
            present
        })
    }

    fn zap(&self, sptes: &SpteTable, gfns: Range<Gfn>, obs: &mut dyn Observer) -> u64 {
        let pool = &self.chains.pool;
        self.chains.mmu_lock.with(obs, |_| {
            let mut zapped = 0;
            for gfn in gfns {
                self.change(gfn, |h| {
                    while let Some(s) = first_entry(pool, h.head()) {
                        sptes.clear(s);
                        C::remove(pool, h, gfn, s);
                        zapped += 1;
                    }
                });
            }
            zapped
        })
    }

    fn write_protect(&self, sptes: &SpteTable, gfns: &[Gfn], obs: &mut dyn Observer) -> WalkStats {
        self.batch(obs, |obs| {
            write_protect_each(sptes, gfns, obs, |gfn, p| {
                W::walk(&self.chains, &self.section, gfn, &mut |s| p.protect(s))
            })
        })
    }

    fn walk(&self, gfn: Gfn, mut f: &mut dyn FnMut(SlotId)) -> WalkStats {
        self.batch(&mut NoObserver, |_| {
            W::walk(&self.chains, &self.section, gfn, &mut f)
        })
    }

    fn age(&self, sptes: &SpteTable, gfns: Range<Gfn>, obs: &mut dyn Observer) -> AgeStats {
        self.batch(obs, |_| {
            age_each(sptes, gfns, |gfn, f| {
                W::walk(&self.chains, &self.section, gfn, &mut |s| f(s))
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
