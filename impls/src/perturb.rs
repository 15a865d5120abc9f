//! Perturbation points: named places in the walkers and the writer path where
//! a *perturbed* build calls out, so that a torture can widen race windows a
//! few loads wide with delays (rcutorture's fuzzed delays). This crate has no
//! clock and no threads of its own, so it only names the points and calls
//! the caller's [`Perturb`] hook; the workloads decide, from a seed, whether
//! and how long to wait at each call.
//!
//! A design takes its points as a type parameter ([`Points`]), like an
//! injected bug: [`Unperturbed`] is zero-sized and its `at` is empty and
//! always inlined, so a measurement build compiles every point to nothing;
//! [`Perturbed`] holds the hook and calls it through one dynamic call. Only
//! the correct designs have both twins; an injected-bug twin exists only
//! perturbed (it is a check build, never measured), with a hook that does
//! nothing when the caller gives none. That keeps the number of
//! monomorphised designs at twice the correct ones plus one per bug, not the
//! product of designs, bugs and perturbation.

use std::sync::Arc;

/// Where a perturbed design calls its [`Perturb`] hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PerturbPoint {
    /// A walker, between two loads of one descriptor: its sequence count,
    /// its slots, its `more` link (the optimistic walkers; the counterexample
    /// lives between the last slot and `more`).
    WalkInDesc,
    /// A walker, between the head and the first descriptor and between two
    /// descriptors; for a walker that holds a lock, just after it took it.
    WalkBetweenDescs,
    /// A writer inside an rmap's section (holding `mmu_lock`, and the rmap
    /// lock for `rmap-lock`), before each change of the chain.
    WriterSection,
    /// A slow fault (`Rmap::map`), between adding the spte to the rmap and
    /// installing it: a walker meanwhile finds an rmap entry whose spte is
    /// not present (in the `install-before-add` twin, between the install
    /// and the add: the window that bug opens).
    MapBetweenAddAndInstall,
}

impl PerturbPoint {
    pub const ALL: [PerturbPoint; 4] = [
        PerturbPoint::WalkInDesc,
        PerturbPoint::WalkBetweenDescs,
        PerturbPoint::WriterSection,
        PerturbPoint::MapBetweenAddAndInstall,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PerturbPoint::WalkInDesc => "walk-in-desc",
            PerturbPoint::WalkBetweenDescs => "walk-between-descs",
            PerturbPoint::WriterSection => "writer-section",
            PerturbPoint::MapBetweenAddAndInstall => "map-between-add-and-install",
        }
    }
}

/// The caller's hook: called at every point a perturbed design passes, on
/// the thread that passes it. It may delay (spin, yield, sleep) or return
/// at once; it must not call back into the rmap.
pub trait Perturb: Send + Sync {
    fn at(&self, point: PerturbPoint);
}

/// A design's perturbation points, as a type parameter.
pub(crate) trait Points: Send + Sync + 'static {
    fn at(&self, point: PerturbPoint);
}

/// No perturbation: every point compiles to nothing.
#[derive(Default)]
pub(crate) struct Unperturbed;

impl Points for Unperturbed {
    #[inline(always)]
    fn at(&self, _: PerturbPoint) {}
}

/// Every point calls the hook.
pub(crate) struct Perturbed(Arc<dyn Perturb>);

/// The hook of a bug twin built without one.
struct NoDelay;

impl Perturb for NoDelay {
    fn at(&self, _: PerturbPoint) {}
}

impl Perturbed {
    pub(crate) fn new(hook: Option<Arc<dyn Perturb>>) -> Self {
        Perturbed(hook.unwrap_or_else(|| Arc::new(NoDelay)))
    }
}

impl Points for Perturbed {
    #[inline]
    fn at(&self, point: PerturbPoint) {
        self.0.at(point)
    }
}
