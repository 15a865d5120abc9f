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
pub use stats::{AgeStats, RestartReason, WalkStats};

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
    Lockless64,
}

impl ImplKind {
    pub const ALL: [ImplKind; 7] = [
        ImplKind::MmuLock,
        ImplKind::Lockless,
        ImplKind::LocklessGen,
        ImplKind::Seqlock,
        ImplKind::RmapLock,
        ImplKind::ConcurrentMap,
        ImplKind::Lockless64,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ImplKind::MmuLock => "mmu-lock",
            ImplKind::Lockless => "lockless",
            ImplKind::LocklessGen => "lockless-gen",
            ImplKind::Seqlock => "seqlock",
            ImplKind::RmapLock => "rmap-lock",
            ImplKind::ConcurrentMap => "concurrent-map",
            ImplKind::Lockless64 => "lockless-6.4",
        }
    }

    pub fn from_name(s: &str) -> Option<ImplKind> {
        ImplKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// One line for `lab list`: what the design is, with the kernel version
    /// or commit each statement describes.
    pub fn description(self) -> &'static str {
        match self {
            ImplKind::MmuLock => "KVM in 2013 (Linux 3.11): add, remove and walk under one VM-wide mmu_lock; the dirty-log round holds it for a whole --wp-batch; aging holds it for a whole range, as KVM did until 6.14",
            ImplKind::Lockless => "the 2013 lockless series (Xiao Guangrong, not merged), faithful to its algorithm with the barriers as review asked (smp_wmb before publishing, rcu_dereference on the walk), not the posted patch's: nulls-terminated chain of type-stable descriptors, walker without mmu_lock; its nulls names the gfn where the series used the rmap head's address",
            ImplKind::LocklessGen => "lockless repaired (the lab's, not a kernel's): a per-descriptor sequence count, odd during setup, checked before the slots and after the more link",
            ImplKind::Seqlock => "the lab's: writers bump a per-rmap sequence count under mmu_lock; the walker walks optimistically, retries, then write-protects",
            ImplKind::RmapLock => "Linux 6.15's rmap lock (bit 1 of the rmap head, \"KVM: x86/mmu: Age sptes locklessly\") applied to write-protect, which 6.15 does not do (its dirty log still write-protects under mmu_lock); writers hold mmu_lock and it, the walker and aging only the rmap lock",
            ImplKind::ConcurrentMap => "a general-purpose concurrent map (dashmap) from gfn to its spte slots; no mmu_lock at all",
            ImplKind::Lockless64 => "the 2013 series' walker unchanged over Linux 6.4's chain (an rmap never returns to the single-spte form): no sequence count, and the model checker finds no miss; a lockless write-protect KVM could take today (the lab's, not merged anywhere)",
        }
    }

    /// The chain discipline the design uses unless `--chain` says otherwise
    /// (`None`: the design keeps no chains).
    pub fn default_chain(self) -> Option<ChainKind> {
        match self {
            ImplKind::MmuLock | ImplKind::Lockless | ImplKind::LocklessGen | ImplKind::Seqlock => {
                Some(ChainKind::Y2013)
            }
            ImplKind::RmapLock | ImplKind::Lockless64 => Some(ChainKind::Linux64),
            ImplKind::ConcurrentMap => None,
        }
    }

    /// The chain disciplines the design can be built over: both for a chain
    /// design, none for `concurrent-map`, and only 6.4's for `lockless-6.4`,
    /// which is named by its chain (over the 2013 one it is `lockless`).
    pub fn chains(self) -> &'static [ChainKind] {
        match self {
            ImplKind::ConcurrentMap => &[],
            ImplKind::Lockless64 => &[ChainKind::Linux64],
            _ => &ChainKind::ALL,
        }
    }

    /// What `chain` means for this design, in one line for `lab list`.
    pub fn chain_description(self, chain: ChainKind) -> &'static str {
        match (self, chain) {
            (ImplKind::MmuLock, ChainKind::Y2013) => "KVM's in 2013 (Linux 3.11): add into the first non-full descriptor, fill a hole from the same descriptor, unlink an emptied one",
            (_, ChainKind::Y2013) => "the 2013 series': new descriptors at the head, fill a hole from the head, back to the single-spte form at one spte",
            (_, ChainKind::Linux64) => "Linux 6.4's (commit 141705b78381, still KVM's in 6.15): a new head only when the head is full, fill a hole from the head, free an emptied head; never back to the single-spte form",
        }
    }

    /// Known not to be correct, with the counterexample in one line (the
    /// crate docs write it out).
    pub fn flaw(self) -> Option<&'static str> {
        match self {
            ImplKind::Lockless => Some("FLAWED: misses an spte present for the whole walk when its walker's descriptor is freed, the rmap drops to the single-spte form, and the same descriptor is reused for the same rmap (the walker then reads its own nulls and stops); see lockless-gen, and lockless-6.4 for the same walker over a chain without that form"),
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

/// A chain discipline (`--chain`): how writers add to and remove from an
/// rmap's chain of descriptors (`chain.rs` has the algorithms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChainKind {
    /// The design's 2013 discipline: KVM's (Linux 3.11) for `mmu-lock`, the
    /// lockless series' head discipline for the others.
    Y2013,
    /// Linux 6.4's (commit 141705b78381), KVM's still in 6.15.
    Linux64,
}

impl ChainKind {
    pub const ALL: [ChainKind; 2] = [ChainKind::Y2013, ChainKind::Linux64];

    pub fn name(self) -> &'static str {
        match self {
            ChainKind::Y2013 => "2013",
            ChainKind::Linux64 => "6.4",
        }
    }

    pub fn from_name(s: &str) -> Option<ChainKind> {
        ChainKind::ALL.into_iter().find(|c| c.name() == s)
    }
}

impl fmt::Display for ChainKind {
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
    InstallBeforeAdd,
}

impl Bug {
    pub const ALL: [Bug; 8] = [
        Bug::FillFromTail,
        Bug::NoNullsCheck,
        Bug::TopDownWalk,
        Bug::StaleHeadRestart,
        Bug::DirtyBeforeRmap,
        Bug::SkipFlush,
        Bug::SeqNoRetry,
        Bug::InstallBeforeAdd,
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
            Bug::InstallBeforeAdd => "install-before-add",
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
            Bug::InstallBeforeAdd => "the slow fault installs the spte before adding it to the rmap (Linux 3.10's order, safe only under mmu_lock): another vCPU's fast fault can make a read fault's spte writable and mark the gfn before the add, and a walk without mmu_lock misses it",
        }
    }

    /// The designs this bug can be injected into.
    pub fn applies_to(self) -> &'static [ImplKind] {
        use ImplKind::*;
        match self {
            Bug::FillFromTail => &[Lockless, LocklessGen],
            Bug::NoNullsCheck | Bug::TopDownWalk | Bug::StaleHeadRestart => {
                &[Lockless, LocklessGen, Lockless64]
            }
            Bug::SeqNoRetry => &[Seqlock, LocklessGen],
            // Every chain design whose walker does not hold `mmu_lock`.
            Bug::InstallBeforeAdd => &[Lockless, LocklessGen, Lockless64, Seqlock, RmapLock],
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
            Bug::InstallBeforeAdd => "model checker (tests/loom.rs: map_order, a fast fault against a read fault's map) and lab check's missed-spte check (torture and churn workloads; workloads/tests/torture.rs)",
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
    /// The design has no such chain discipline (`ImplKind::chains`).
    ChainNotApplicable(ImplKind, ChainKind),
    /// `fill-from-tail` is a chain discipline of its own.
    ChainWithBug(Bug),
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
            BuildError::ChainNotApplicable(ImplKind::ConcurrentMap, _) => {
                write!(f, "'concurrent-map' keeps no descriptor chains, so --chain does not apply to it")
            }
            BuildError::ChainNotApplicable(ImplKind::Lockless64, c) => write!(
                f,
                "'lockless-6.4' is the 2013 walker over the 6.4 chain; over the {c} chain it is 'lockless'"
            ),
            BuildError::ChainNotApplicable(k, c) => write!(f, "'{k}' has no {c} chain"),
            BuildError::ChainWithBug(b) => write!(
                f,
                "bug '{b}' is a chain discipline of its own, so it takes no --chain"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// Build one design, optionally with an injected bug, over the chain
/// discipline `cfg.chain` (the design's [`ImplKind::default_chain`] when
/// `None`); unperturbed.
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
    if let Some(c) = cfg.chain {
        if !kind.chains().contains(&c) {
            return Err(BuildError::ChainNotApplicable(kind, c));
        }
        if bug == Some(Bug::FillFromTail) {
            return Err(BuildError::ChainWithBug(Bug::FillFromTail));
        }
    }
    let bug = bug.filter(|b| b.layer() == BugLayer::Rmap);
    let Some(chain) = cfg.chain.or(kind.default_chain()) else {
        #[cfg(not(loom))]
        return Ok(match perturb {
            None => Box::new(designs::concurrent_map::ConcurrentMapRmap::new(
                cfg.gfns,
                perturb::Unperturbed,
            )),
            Some(hook) => Box::new(designs::concurrent_map::ConcurrentMapRmap::new(
                cfg.gfns,
                perturb::Perturbed::new(Some(hook)),
            )),
        });
        #[cfg(loom)]
        return Err(BuildError::Unavailable(kind));
    };
    Ok(match chain {
        ChainKind::Y2013 => on_chain::<chain::HeadChain, chain::TailChain>(kind, cfg, bug, perturb),
        ChainKind::Linux64 => on_chain::<chain::Chain64, chain::Chain64>(kind, cfg, bug, perturb),
    })
}

/// A chain design over chain discipline `C` (`mmu-lock` over `Tail`, which
/// differs from `C` for the 2013 disciplines only): a correct design's
/// unperturbed build, or its perturbed twin when `perturb` is given; or the
/// twin with an injected rmap bug, always perturbed.
fn on_chain<C: chain::Chain, Tail: chain::Chain>(
    kind: ImplKind,
    cfg: &RmapConfig,
    bug: Option<Bug>,
    perturb: Option<Arc<dyn Perturb>>,
) -> Box<dyn Rmap> {
    use designs::lockless::NullsRmap;
    use designs::{mmu_lock, rmap_lock, seqlock::SeqlockRmap, Correct, SeqNoRetry};
    use perturb::{Perturbed, Unperturbed};
    // The design's CLI name (`lockless-6.4` is `lockless`'s walker under a
    // name of its own).
    let name = kind.name();
    // A correct design `$design`, whose points are `$p`: its unperturbed
    // build, or its perturbed twin.
    macro_rules! twin {
        ($p:ident => $design:ty) => {
            match perturb {
                None => {
                    type $p = Unperturbed;
                    Box::new(<$design>::new(cfg).named(name)) as Box<dyn Rmap>
                }
                Some(hook) => {
                    type $p = Perturbed;
                    Box::new(<$design>::with_points(cfg, Perturbed::new(Some(hook))).named(name))
                }
            }
        };
    }
    // The `install-before-add` twin of design `$design`, perturbed.
    macro_rules! install_first {
        ($design:ty) => {
            Box::new(<$design>::with_points(cfg, Perturbed::new(perturb)).named(name))
                as Box<dyn Rmap>
        };
    }
    if bug == Some(Bug::InstallBeforeAdd) {
        return match kind {
            ImplKind::Lockless | ImplKind::Lockless64 => {
                install_first!(NullsRmap<false, Correct, C, Perturbed, true>)
            }
            ImplKind::LocklessGen => install_first!(NullsRmap<true, Correct, C, Perturbed, true>),
            ImplKind::Seqlock => install_first!(SeqlockRmap<Correct, C, Perturbed, true>),
            ImplKind::RmapLock => install_first!(rmap_lock::RmapLockRmap<C, Perturbed, true>),
            _ => unreachable!("install-before-add applies to the walkers without mmu_lock"),
        };
    }
    match kind {
        ImplKind::MmuLock => twin!(P => mmu_lock::MmuLockRmap<Tail, P>),
        ImplKind::Lockless | ImplKind::Lockless64 if bug.is_none() => {
            twin!(P => NullsRmap<false, Correct, C, P>)
        }
        ImplKind::LocklessGen if bug.is_none() => twin!(P => NullsRmap<true, Correct, C, P>),
        ImplKind::Lockless | ImplKind::Lockless64 => {
            lockless_twin::<false, C>(bug, cfg, Perturbed::new(perturb), name)
        }
        ImplKind::LocklessGen => lockless_twin::<true, C>(bug, cfg, Perturbed::new(perturb), name),
        ImplKind::Seqlock if bug == Some(Bug::SeqNoRetry) => {
            Box::new(SeqlockRmap::<SeqNoRetry, C, Perturbed>::with_points(
                cfg,
                Perturbed::new(perturb),
            ))
        }
        ImplKind::Seqlock => twin!(P => SeqlockRmap<Correct, C, P>),
        ImplKind::RmapLock => twin!(P => rmap_lock::RmapLockRmap<C, P>),
        ImplKind::ConcurrentMap => unreachable!("concurrent-map keeps no chains"),
    }
}

/// The twin of `lockless` (`GEN` false) or `lockless-gen` (`GEN` true) over
/// chain discipline `C` with an injected rmap bug: a walker deviation, or
/// the chain discipline that fills a hole from the tail. Always perturbed
/// (`perturb.rs`). Named `name`.
fn lockless_twin<const GEN: bool, C: chain::Chain>(
    bug: Option<Bug>,
    cfg: &RmapConfig,
    p: perturb::Perturbed,
    name: &'static str,
) -> Box<dyn Rmap> {
    use chain::FillFromTailChain;
    use designs::lockless::NullsRmap;
    use designs::{Correct, NoNullsCheck, SeqNoRetry, StaleHeadRestart, TopDownWalk};
    use perturb::Perturbed;
    type Twin<const G: bool, D, C> = NullsRmap<G, D, C, Perturbed>;
    match bug {
        Some(Bug::FillFromTail) => {
            Box::new(Twin::<GEN, Correct, FillFromTailChain>::with_points(cfg, p).named(name))
        }
        Some(Bug::NoNullsCheck) => {
            Box::new(Twin::<GEN, NoNullsCheck, C>::with_points(cfg, p).named(name))
        }
        Some(Bug::TopDownWalk) => {
            Box::new(Twin::<GEN, TopDownWalk, C>::with_points(cfg, p).named(name))
        }
        Some(Bug::StaleHeadRestart) => {
            Box::new(Twin::<GEN, StaleHeadRestart, C>::with_points(cfg, p).named(name))
        }
        Some(Bug::SeqNoRetry) => {
            Box::new(Twin::<true, SeqNoRetry, C>::with_points(cfg, p).named(name))
        }
        _ => unreachable!("a correct design is built by `on_chain`"),
    }
}
