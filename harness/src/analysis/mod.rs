//! The comparison model behind `lab compare`, `lab plot` and `lab sweep`:
//! result records side by side, with ratios against a baseline
//! implementation, and a profile's time series (`series`).
//!
//! Runs are grouped by configuration (`group`): the
//! implementation plus every configuration key that differs between the
//! inputs; several runs of one group are repeats. For each group and each
//! figure (`figure`: guest writes/s, slow-fault p99, write-protect walk
//! p99, round p50, TLB-flush wait p99, restarts per 1,000 walks, lost
//! writes) the comparison (`model`) keeps the median and range over
//! repeats and the ratio to the baseline implementation's group at the same
//! parameters. `warnings` says where a ratio is within the noise of the
//! repeats; `render::export` prints the result as a terminal table,
//! markdown, CSV or JSON (and as the HTML fragment of `lab plot`'s report).
//!
//! Where the inputs ran a dirty-logging workload and `idle` at otherwise
//! the same parameters and `mmu_lock` kind, `interference` gives guest
//! progress between the two: the `vcpu.pass` ratio and the guest writes per
//! vCPU CPU-second ratio, with the walker's CPUs (below the table, and in
//! JSON). `warnings` also flags rows offered a different zap load than
//! their baseline.
//!
//! Every ratio carries a 95% confidence interval over the repeats and a
//! verdict (`interval`): better, worse, within noise. `headline` states
//! each design against the baseline in a few sentences with those
//! intervals, and `against` compares a sweep with an older one of the same
//! configurations (criterion's saved baselines), figure by figure.
//!
//! Commands call [`compare`] on the runs they hold and print with
//! `render::export`.

pub mod against;
pub mod figure;
pub mod group;
pub mod headline;
pub mod interference;
pub mod interval;
pub mod model;
pub mod series;
pub mod warnings;

pub use figure::Figure;
pub use model::{compare, Comparison, Options, Stats};
