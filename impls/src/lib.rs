#![doc = include_str!("../README.md")]

mod chain;
mod desc;
mod primitive;
mod stats;

pub mod designs;
#[cfg(not(loom))]
pub mod floor;
pub mod lock;
pub mod observer;
pub mod rmap;
pub mod spte;

pub use desc::MAX_DESC_EXT;
pub use lock::LockKind;
pub use observer::{NoObserver, Observer};
pub use rmap::{MapOutcome, Rmap, RmapConfig};
pub use spte::{Gfn, SlotId, SpteTable};
pub use stats::{RestartReason, WalkStats};

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

    /// Known not to be correct, with the counterexample in one line (the
    /// crate docs write it out).
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
    let bug = bug.filter(|b| b.layer() == BugLayer::Rmap);
    use designs::{mmu_lock, rmap_lock, seqlock::SeqlockRmap, Correct, SeqNoRetry};
    Ok(match kind {
        ImplKind::MmuLock => Box::new(mmu_lock::MmuLockRmap::new(cfg)),
        ImplKind::Lockless => lockless::<false>(bug, cfg),
        ImplKind::LocklessGen => lockless::<true>(bug, cfg),
        ImplKind::Seqlock if bug == Some(Bug::SeqNoRetry) => {
            Box::new(SeqlockRmap::<SeqNoRetry>::new(cfg))
        }
        ImplKind::Seqlock => Box::new(SeqlockRmap::<Correct>::new(cfg)),
        ImplKind::RmapLock => Box::new(rmap_lock::RmapLockRmap::new(cfg)),
        #[cfg(not(loom))]
        ImplKind::ConcurrentMap => {
            Box::new(designs::concurrent_map::ConcurrentMapRmap::new(cfg.gfns))
        }
        #[cfg(loom)]
        ImplKind::ConcurrentMap => return Err(BuildError::Unavailable(kind)),
    })
}

/// `lockless` (`GEN` false) or `lockless-gen` (`GEN` true), or its twin
/// with an injected rmap bug: a walker deviation, or the backward-moving
/// chain discipline.
fn lockless<const GEN: bool>(bug: Option<Bug>, cfg: &RmapConfig) -> Box<dyn Rmap> {
    use chain::BackwardMoveChain;
    use designs::lockless::NullsRmap;
    use designs::{Correct, NoNullsCheck, SeqNoRetry, StaleHeadRestart, TopDownWalk};
    match bug {
        Some(Bug::BackwardMove) => Box::new(NullsRmap::<GEN, Correct, BackwardMoveChain>::new(cfg)),
        Some(Bug::NoNullsCheck) => Box::new(NullsRmap::<GEN, NoNullsCheck>::new(cfg)),
        Some(Bug::TopDownWalk) => Box::new(NullsRmap::<GEN, TopDownWalk>::new(cfg)),
        Some(Bug::StaleHeadRestart) => Box::new(NullsRmap::<GEN, StaleHeadRestart>::new(cfg)),
        Some(Bug::SeqNoRetry) => Box::new(NullsRmap::<true, SeqNoRetry>::new(cfg)),
        _ => Box::new(NullsRmap::<GEN, Correct>::new(cfg)),
    }
}
