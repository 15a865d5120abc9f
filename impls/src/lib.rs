//! # rmap-impls
//!
//! KVM's x86 shadow MMU keeps, for every guest frame (gfn), a reverse map
//! (rmap): the list of shadow PTEs (sptes) that map it. Dirty logging walks
//! it to write-protect every spte of every dirty gfn while vCPUs keep
//! faulting. This crate holds the model (spte slots, rmap heads,
//! descriptors, a type-stable descriptor pool), one [`Rmap`] trait, and the
//! competing designs:
//!
//! | [`ImplKind`] | module |
//! |---|---|
//! | `mmu-lock` | [`designs::mmu_lock`]: 2013 upstream, everything under `mmu_lock` |
//! | `lockless` | [`designs::lockless`]: the 2013 series, faithful, flaw included |
//! | `lockless-gen` | [`designs::lockless`]: the same, with a per-descriptor sequence count |
//! | `seqlock` | [`designs::seqlock`]: per-rmap sequence count, optimistic walk |
//! | `rmap-lock` | [`designs::rmap_lock`]: Linux 6.15's lock bit in the rmap head |
//! | `concurrent-map` | [`designs::concurrent_map`]: dashmap from gfn to its sptes |
//!
//! No I/O, no clocks, no threads of its own: callers observe operations
//! through [`Observer`]. Build with `RUSTFLAGS="--cfg loom"` to put every
//! atomic under the loom model checker (`tests/loom.rs`).

mod chain;
mod desc;
mod primitive;

pub mod designs;
pub mod lock;
pub mod observer;
pub mod rmap;
pub mod spte;

pub use desc::MAX_DESC_EXT;
pub use lock::LockKind;
pub use observer::{NoObserver, Observer};
pub use rmap::{MapOutcome, RestartReason, Rmap, WalkStats};
pub use spte::{Gfn, SlotId, SpteTable};

use std::fmt;

/// The designs, by their CLI names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImplKind {
    MmuLock,
    Lockless,
    LocklessGen,
    Seqlock,
    RmapLock,
    ConcurrentMap,
}

impl ImplKind {
    pub const ALL: [ImplKind; 6] = [
        ImplKind::MmuLock,
        ImplKind::Lockless,
        ImplKind::LocklessGen,
        ImplKind::Seqlock,
        ImplKind::RmapLock,
        ImplKind::ConcurrentMap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ImplKind::MmuLock => "mmu-lock",
            ImplKind::Lockless => "lockless",
            ImplKind::LocklessGen => "lockless-gen",
            ImplKind::Seqlock => "seqlock",
            ImplKind::RmapLock => "rmap-lock",
            ImplKind::ConcurrentMap => "concurrent-map",
        }
    }

    pub fn from_name(s: &str) -> Option<ImplKind> {
        ImplKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// One line for `lab list`.
    pub fn description(self) -> &'static str {
        match self {
            ImplKind::MmuLock => "2013 upstream: add, remove and walk under one VM-wide mmu_lock; the dirty-log round holds it for a whole --wp-batch",
            ImplKind::Lockless => "the 2013 lockless series, faithful: nulls-terminated chain of type-stable descriptors, walker without mmu_lock",
            ImplKind::LocklessGen => "lockless repaired: a per-descriptor sequence count, odd during setup, checked before the slots and after the more link",
            ImplKind::Seqlock => "writers bump a per-rmap sequence count under mmu_lock; the walker walks optimistically, retries, then write-protects",
            ImplKind::RmapLock => "Linux 6.15: bit 1 of the rmap head is a lock; writers hold mmu_lock and it, the walker only the rmap lock",
            ImplKind::ConcurrentMap => "a general-purpose concurrent map (dashmap) from gfn to its spte slots; no mmu_lock at all",
        }
    }

    /// Known not to be correct (DESIGN §1), with the counterexample.
    pub fn flaw(self) -> Option<&'static str> {
        match self {
            ImplKind::Lockless => Some("FLAWED: misses an spte present for the whole walk when its walker's descriptor is freed, the rmap drops to the single-spte form, and the same descriptor is reused for the same rmap (the walker then reads its own nulls and stops); see lockless-gen"),
            _ => None,
        }
    }

    /// Every design except `lockless`.
    pub fn correct() -> impl Iterator<Item = ImplKind> {
        ImplKind::ALL.into_iter().filter(|k| k.flaw().is_none())
    }
}

impl fmt::Display for ImplKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an injected bug lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BugLayer {
    /// In the rmap implementation (this crate).
    Rmap,
    /// In the simulated VM (`rmap-workloads`).
    Workload,
}

/// Deliberately broken twins of the correct designs. Rmap bugs are const
/// generic parameters of their implementation, so a normal build compiles
/// none of their branches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bug {
    BackwardMove,
    NoNullsCheck,
    TopDownWalk,
    StaleHeadRestart,
    DirtyBeforeRmap,
    SkipFlush,
    SeqNoRetry,
}

impl Bug {
    pub const ALL: [Bug; 7] = [
        Bug::BackwardMove,
        Bug::NoNullsCheck,
        Bug::TopDownWalk,
        Bug::StaleHeadRestart,
        Bug::DirtyBeforeRmap,
        Bug::SkipFlush,
        Bug::SeqNoRetry,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::BackwardMove => "backward-move",
            Bug::NoNullsCheck => "no-nulls-check",
            Bug::TopDownWalk => "top-down-walk",
            Bug::StaleHeadRestart => "stale-head-restart",
            Bug::DirtyBeforeRmap => "dirty-before-rmap",
            Bug::SkipFlush => "skip-flush",
            Bug::SeqNoRetry => "seq-no-retry",
        }
    }

    pub fn from_name(s: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| b.name() == s)
    }

    pub fn layer(self) -> BugLayer {
        match self {
            Bug::DirtyBeforeRmap | Bug::SkipFlush => BugLayer::Workload,
            _ => BugLayer::Rmap,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Bug::BackwardMove => "lockless walker over tail-append chains whose remove fills a hole from the last descriptor: an entry moves behind the walker",
            Bug::NoNullsCheck => "the walker stops at any nulls marker, also one of another rmap (seed case 3.c.2 undetected)",
            Bug::TopDownWalk => "the walker reads a descriptor from slot 0 upwards, so a forward move passes it by",
            Bug::StaleHeadRestart => "a restart starts again from the head value read before the first pass (Linux commit c87a124a5d5e)",
            Bug::DirtyBeforeRmap => "the slow fault marks the gfn dirty before adding the spte to the rmap",
            Bug::SkipFlush => "the dirty-log round copies pages before the remote TLB flush completes",
            Bug::SeqNoRetry => "the walker reads the sequence count but never retries when it was odd or moved",
        }
    }

    /// The designs this bug can be injected into.
    pub fn applies_to(self) -> &'static [ImplKind] {
        use ImplKind::*;
        match self {
            Bug::BackwardMove | Bug::NoNullsCheck | Bug::TopDownWalk | Bug::StaleHeadRestart => {
                &[Lockless, LocklessGen]
            }
            Bug::SeqNoRetry => &[Seqlock, LocklessGen],
            Bug::DirtyBeforeRmap | Bug::SkipFlush => &ImplKind::ALL,
        }
    }

    /// Which of the lab's checks catch it (each is a test that expects the
    /// violation).
    pub fn caught_by(self) -> &'static str {
        match self {
            Bug::BackwardMove | Bug::TopDownWalk => "model checker (tests/loom.rs: entry_moved_under_walker) and stress test (tests/stress.rs)",
            Bug::NoNullsCheck | Bug::StaleHeadRestart => "model checker (tests/loom.rs: case 3.c.2) and stress test (tests/stress.rs)",
            Bug::SeqNoRetry => "model checker (tests/loom.rs: recycled_through_single_form, on seqlock and lockless-gen) and stress test on seqlock (on lockless-gen it is lockless's own flaw, which only the model checker reaches)",
            Bug::DirtyBeforeRmap | Bug::SkipFlush => "migration oracle (lab check; harness/tests/run.rs)",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything needed to build an rmap for one memslot.
#[derive(Clone, Debug)]
pub struct RmapConfig {
    pub gfns: u64,
    /// spte references per descriptor, 1..=[`MAX_DESC_EXT`].
    pub desc_ext: usize,
    pub mmu_lock: LockKind,
    /// Descriptors per pool page.
    pub page_descs: usize,
}

impl RmapConfig {
    pub fn new(gfns: u64, desc_ext: usize, mmu_lock: LockKind) -> Self {
        RmapConfig {
            gfns,
            desc_ext,
            mmu_lock,
            page_descs: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    DescExt(usize),
    NoGfns,
    BugNotApplicable(Bug, ImplKind),
    Unavailable(ImplKind),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::DescExt(n) => {
                write!(f, "desc_ext {n} is out of range (1..={MAX_DESC_EXT})")
            }
            BuildError::NoGfns => write!(f, "the memslot has no gfns"),
            BuildError::BugNotApplicable(b, k) => {
                let to: Vec<_> = b.applies_to().iter().map(|k| k.name()).collect();
                write!(
                    f,
                    "bug '{b}' does not apply to '{k}' (it applies to: {})",
                    to.join(", ")
                )
            }
            BuildError::Unavailable(k) => write!(f, "'{k}' is not available in this build"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Build one design, optionally with an injected bug.
pub fn build(
    kind: ImplKind,
    cfg: &RmapConfig,
    bug: Option<Bug>,
) -> Result<Box<dyn Rmap>, BuildError> {
    if !(1..=MAX_DESC_EXT).contains(&cfg.desc_ext) {
        return Err(BuildError::DescExt(cfg.desc_ext));
    }
    if cfg.gfns == 0 {
        return Err(BuildError::NoGfns);
    }
    if let Some(b) = bug {
        if !b.applies_to().contains(&kind) {
            return Err(BuildError::BugNotApplicable(b, kind));
        }
    }
    let rmap_bug = bug.filter(|b| b.layer() == BugLayer::Rmap);
    let (g, e, l, p) = (cfg.gfns, cfg.desc_ext, cfg.mmu_lock, cfg.page_descs);
    Ok(match kind {
        ImplKind::MmuLock => Box::new(designs::mmu_lock::MmuLockRmap::new(g, e, l, p)),
        ImplKind::Lockless => designs::lockless::build(false, rmap_bug, g, e, l, p),
        ImplKind::LocklessGen => designs::lockless::build(true, rmap_bug, g, e, l, p),
        ImplKind::Seqlock if rmap_bug == Some(Bug::SeqNoRetry) => {
            Box::new(designs::seqlock::SeqlockRmap::<true>::new(g, e, l, p))
        }
        ImplKind::Seqlock => Box::new(designs::seqlock::SeqlockRmap::<false>::new(g, e, l, p)),
        ImplKind::RmapLock => Box::new(designs::rmap_lock::RmapLockRmap::new(g, e, l, p)),
        #[cfg(not(loom))]
        ImplKind::ConcurrentMap => Box::new(designs::concurrent_map::ConcurrentMapRmap::new(g)),
        #[cfg(loom)]
        ImplKind::ConcurrentMap => return Err(BuildError::Unavailable(kind)),
    })
}
