//! The simulated VM. What it models, and why, is in the crate docs
//! ([the simulated VM](crate#the-simulated-vm)); this module is its source,
//! one file per job.
//!
//! A module imports only the modules above it in this table (and the
//! crate's `config`, `metrics` and `clock`); none imports the coordinator
//! or this file, which only declares and re-exports.
//!
//! | module | what it is | imports |
//! |---|---|---|
//! | [`memory`] | guest pages (versions) and the migration destination | - |
//! | [`dirty_log`] | the memslot's dirty bitmap: mark, harvest | - |
//! | [`tlb`] | vCPU modes, faults in flight, the remote TLB flush | - |
//! | [`probe`] | the public [`Probe`] trait and [`SpanKind`] | - |
//! | [`perturb`] | a perturbed run's delays, per thread from the seed | - |
//! | [`picker`] | which gfn a vCPU touches next; the hot gfns of `churn` and `torture` | - |
//! | [`oracle`] | the migration oracle, the quiescent rmap check | `memory`, `dirty_log`, `tlb` |
//! | [`spte_check`] | the missed-spte check and the faults' counts it reads | `dirty_log`, `tlb` |
//! | [`report`] | the public [`RunReport`], [`Verdict`] and samples | `spte_check` |
//! | [`shared`] | what every thread of a run shares; the run's phase | `memory`, `dirty_log`, `tlb`, `perturb`, `spte_check`, `probe`, `report` |
//! | [`worker`] | one thread's measurement state (histograms, counters, traces; the rmap's `Observer`) | `shared`, `probe` |
//! | [`fault`] | the fast and the slow fault | `worker`, `probe` |
//! | [`vcpu`] | the vCPU thread: guest accesses | `fault`, `picker`, `worker` |
//! | [`walker`] | the walker thread: dirty-log rounds | `oracle`, `spte_check`, `memory`, `worker`, `probe`, `report` |
//! | [`zapper`] | the zapper thread: mmu-notifier invalidations | `picker`, `worker`, `probe` |
//! | [`aging`] | the aging thread: passes of `clear_young` over the memslot | `worker` |
//! | [`coordinator`] | [`run`]: build, start, phases, stop, final round, checks | any |

mod aging;
mod coordinator;
mod dirty_log;
mod fault;
mod memory;
mod oracle;
mod perturb;
mod picker;
mod probe;
mod report;
mod shared;
mod spte_check;
mod tlb;
mod vcpu;
mod walker;
mod worker;
mod zapper;

pub use coordinator::run;
pub use probe::{LockHandoff, NoProbe, Probe, SpanKind};
pub use report::{IntervalSample, MissedSpte, RoundSample, RunReport, Verdict};
