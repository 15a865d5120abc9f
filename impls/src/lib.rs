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
pub mod perturb;
pub mod rmap;
pub mod spte;

#[cfg(loom)]
pub use desc::Exhausted;
pub use desc::MAX_DESC_EXT;
pub use lock::LockKind;
pub use observer::{NoObserver, Observer};
pub use perturb::{Perturb, PerturbPoint};
pub use rmap::{BatchEnd, MapOutcome, Rmap, RmapConfig};
pub use spte::{Gfn, SlotId, SpteTable};
pub use stats::{RestartReason, WalkStats};

use std::fmt;
use std::sync::Arc;

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
    /// The remove the lockless series' commit message describes: a hole is
    /// filled from the tail descriptor (not 2013's remove, which fills it
    /// from the same descriptor).
    FillFromTail,
    NoNullsCheck,
    TopDownWalk,
    StaleHeadRestart,
    DirtyBeforeRmap,
    SkipFlush,
    SeqNoRetry,
}

impl Bug {
    pub const ALL: [Bug; 7] = [
        Bug::FillFromTail,
        Bug::NoNullsCheck,
        Bug::TopDownWalk,
        Bug::StaleHeadRestart,
        Bug::DirtyBeforeRmap,
        Bug::SkipFlush,
        Bug::SeqNoRetry,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::FillFromTail => "fill-from-tail",
            Bug::NoNullsCheck => "no-nulls-check",
            Bug::TopDownWalk => "top-down-walk",
            Bug::StaleHeadRestart => "stale-head-restart",
            Bug::DirtyBeforeRmap => "dirty-before-rmap",
            Bug::SkipFlush => "skip-flush",
            Bug::SeqNoRetry => "seq-no-retry",
        }
    }

    /// The bug by its CLI name; `backward-move`, the old name of
    /// `fill-from-tail`, is still understood (and listed nowhere).
    pub fn from_name(s: &str) -> Option<Bug> {
        if s == "backward-move" {
            return Some(Bug::FillFromTail);
        }
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
            Bug::FillFromTail => "lockless walker over tail-append chains whose remove fills a hole from the tail descriptor (the series' commit message; 2013's own remove fills it from the same descriptor): an entry moves behind the walker",
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
            Bug::FillFromTail | Bug::NoNullsCheck | Bug::TopDownWalk | Bug::StaleHeadRestart => {
                &[Lockless, LocklessGen]
            }
            Bug::SeqNoRetry => &[Seqlock, LocklessGen],
            Bug::DirtyBeforeRmap | Bug::SkipFlush => &ImplKind::ALL,
        }
    }

    /// Which of the lab's checks catch it (each is a test that expects the
    /// violation; `lab list` adds what `lab check` measured on the machine).
    pub fn caught_by(self) -> &'static str {
        match self {
            Bug::FillFromTail | Bug::TopDownWalk => "model checker (tests/loom.rs: entry_moved_under_walker), stress test (tests/stress.rs), and lab check's missed-spte check (torture workload)",
            Bug::NoNullsCheck | Bug::StaleHeadRestart => "model checker (tests/loom.rs: case 3.c.2), stress test (tests/stress.rs), and lab check's missed-spte check (torture workload)",
            Bug::SeqNoRetry => "model checker (tests/loom.rs: recycled_through_single_form, on seqlock and lockless-gen), stress test on seqlock, and lab check's missed-spte check on both (torture workload; on lockless-gen it is lockless's own flaw)",
            Bug::DirtyBeforeRmap | Bug::SkipFlush => "migration oracle (lab check; workloads/tests/oracle.rs, harness/tests/run.rs)",
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

/// Build one design, optionally with an injected bug; unperturbed.
pub fn build(
    kind: ImplKind,
    cfg: &RmapConfig,
    bug: Option<Bug>,
) -> Result<Box<dyn Rmap>, BuildError> {
    build_with(kind, cfg, bug, None)
}

/// Build one design, optionally with an injected bug, and with `perturb`
/// called at every perturbation point (`perturb.rs`) when it is given.
/// Without it a correct design is its unperturbed build, whose points
/// compile to nothing; a bug twin is always its perturbed build, with a hook
/// that does nothing unless one is given.
pub fn build_with(
    kind: ImplKind,
    cfg: &RmapConfig,
    bug: Option<Bug>,
    perturb: Option<Arc<dyn Perturb>>,
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
    use designs::lockless::NullsRmap;
    use designs::{mmu_lock, rmap_lock, seqlock::SeqlockRmap, Correct, SeqNoRetry};
    use perturb::{Perturbed, Unperturbed};
    // A correct design `$design`, whose points are `$p`: its unperturbed
    // build, or its perturbed twin.
    macro_rules! twin {
        ($p:ident => $design:ty) => {
            match perturb {
                None => {
                    type $p = Unperturbed;
                    Box::new(<$design>::new(cfg)) as Box<dyn Rmap>
                }
                Some(hook) => {
                    type $p = Perturbed;
                    Box::new(<$design>::with_points(cfg, Perturbed::new(Some(hook))))
                }
            }
        };
    }
    Ok(match kind {
        ImplKind::MmuLock => twin!(P => mmu_lock::MmuLockRmap<P>),
        ImplKind::Lockless if bug.is_none() => {
            twin!(P => NullsRmap<false, Correct, chain::HeadChain, P>)
        }
        ImplKind::LocklessGen if bug.is_none() => {
            twin!(P => NullsRmap<true, Correct, chain::HeadChain, P>)
        }
        ImplKind::Lockless => lockless_twin::<false>(bug, cfg, Perturbed::new(perturb)),
        ImplKind::LocklessGen => lockless_twin::<true>(bug, cfg, Perturbed::new(perturb)),
        ImplKind::Seqlock if bug == Some(Bug::SeqNoRetry) => {
            Box::new(SeqlockRmap::<SeqNoRetry, Perturbed>::with_points(
                cfg,
                Perturbed::new(perturb),
            ))
        }
        ImplKind::Seqlock => twin!(P => SeqlockRmap<Correct, P>),
        ImplKind::RmapLock => twin!(P => rmap_lock::RmapLockRmap<P>),
        #[cfg(not(loom))]
        ImplKind::ConcurrentMap => match perturb {
            None => Box::new(designs::concurrent_map::ConcurrentMapRmap::new(
                cfg.gfns,
                Unperturbed,
            )),
            Some(hook) => Box::new(designs::concurrent_map::ConcurrentMapRmap::new(
                cfg.gfns,
                Perturbed::new(Some(hook)),
            )),
        },
        #[cfg(loom)]
        ImplKind::ConcurrentMap => return Err(BuildError::Unavailable(kind)),
    })
}

/// The twin of `lockless` (`GEN` false) or `lockless-gen` (`GEN` true) with
/// an injected rmap bug: a walker deviation, or the chain discipline that
/// fills a hole from the tail. Always perturbed (`perturb.rs`).
fn lockless_twin<const GEN: bool>(
    bug: Option<Bug>,
    cfg: &RmapConfig,
    p: perturb::Perturbed,
) -> Box<dyn Rmap> {
    use chain::{FillFromTailChain, HeadChain};
    use designs::lockless::NullsRmap;
    use designs::{Correct, NoNullsCheck, SeqNoRetry, StaleHeadRestart, TopDownWalk};
    use perturb::Perturbed;
    type Twin<const G: bool, D, C = HeadChain> = NullsRmap<G, D, C, Perturbed>;
    match bug {
        Some(Bug::FillFromTail) => {
            Box::new(Twin::<GEN, Correct, FillFromTailChain>::with_points(cfg, p))
        }
        Some(Bug::NoNullsCheck) => Box::new(Twin::<GEN, NoNullsCheck>::with_points(cfg, p)),
        Some(Bug::TopDownWalk) => Box::new(Twin::<GEN, TopDownWalk>::with_points(cfg, p)),
        Some(Bug::StaleHeadRestart) => Box::new(Twin::<GEN, StaleHeadRestart>::with_points(cfg, p)),
        Some(Bug::SeqNoRetry) => Box::new(Twin::<true, SeqNoRetry>::with_points(cfg, p)),
        _ => unreachable!("a correct design is built by `build_with`"),
    }
}
