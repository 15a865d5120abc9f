#![doc = include_str!("../README.md")]

pub mod clock;
pub mod config;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod kvm;
pub mod metrics;
mod vm;

pub use config::{Config, ConfigError, Delay, Pattern, Perturbation, Regions, WorkloadKind};
pub use metrics::{Counters, Live, Metric, RoleKind, METRIC_NAMES};
pub use vm::{
    run, IntervalSample, MissedSpte, NoProbe, Probe, RoundSample, RunReport, SpanKind, Verdict,
};
