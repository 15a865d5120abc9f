#![doc = include_str!("../README.md")]

pub mod clock;
pub mod config;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod kvm;
pub mod metrics;
mod vm;

pub use config::{
    Config, ConfigError, Delay, Pattern, Perturbation, Regions, TlbFlush, WorkloadKind,
};
pub use metrics::{
    Counters, Live, LockName, Metric, RoleKind, METRIC_NAMES, PREEMPT_SAMPLE, RMAP_LOCK_SAMPLE,
};
pub use vm::{
    run, IntervalSample, LockHandoff, MissedSpte, NoProbe, Probe, RoundSample, RunReport, SpanKind,
    Verdict,
};
