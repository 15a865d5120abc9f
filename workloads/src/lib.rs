//! # rmap-workloads
//!
//! The simulated VM that drives any [`rmap_impls::Rmap`]: one memslot of
//! `gfns` guest frames, `aliases` address spaces, vCPU threads doing guest
//! writes with fast and slow faults, a zapper doing mmu-notifier
//! invalidations, a migration thread running dirty-log rounds (harvest,
//! write-protect, remote TLB flush, copy), and the pre-copy migration oracle
//! that turns every write-protect walk that missed an spte into a counted
//! lost write. See DESIGN.md §3 and §5.
//!
//! This crate knows nothing of the CLI or of output formats: `rmap-lab`
//! builds a [`Config`], calls [`run`], and renders the [`RunReport`].

pub mod clock;
pub mod config;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod kvm;
pub mod metrics;
mod vm;

pub use config::{Config, ConfigError, Pattern, Regions, WorkloadKind};
pub use metrics::{Counters, Live, Metric, RoleKind, METRIC_NAMES};
pub use vm::{run, IntervalSample, NoProbe, Probe, RoundSample, RunReport, SpanKind, Verdict};
