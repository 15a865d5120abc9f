//! Timestamps for latency histograms: the TSC through `quanta` where it is
//! invariant (a read is cheaper than a `std::time::Instant`, which matters
//! at one or two reads per operation), `Instant` otherwise. `quanta`
//! calibrates the TSC against the monotonic clock and falls back by itself
//! when the TSC is not usable.

use std::sync::OnceLock;

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// A raw timestamp: cheap to take, convert with [`delta_ns`].
#[inline]
pub fn now() -> u64 {
    clock().raw()
}

/// Nanoseconds between two raw timestamps.
#[inline]
pub fn delta_ns(start: u64, end: u64) -> u64 {
    clock().delta_as_nanos(start, end)
}

/// Whether the TSC is the source (an invariant TSC was found).
pub fn source() -> &'static str {
    if cfg!(any(target_arch = "x86", target_arch = "x86_64")) && tsc_invariant() {
        "tsc"
    } else {
        "monotonic"
    }
}

fn tsc_invariant() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.contains("constant_tsc") && s.contains("nonstop_tsc"))
        .unwrap_or(false)
}
