//! Timestamps for latency histograms.
//!
//! `quanta` decides the source: the TSC where the CPU has an invariant TSC
//! and `rdtscp` (it calibrates the TSC against the monotonic clock), the
//! monotonic clock otherwise. The lab does not guess that choice a second
//! time: [`source`] asks which counter `quanta`'s own raw reading matches.
//!
//! Where `quanta` reads the TSC, every lab timestamp is a *fenced* TSC read,
//! `lfence; rdtsc; lfence`: the first fence waits for everything before it
//! to complete, the second keeps what follows from starting before the read,
//! so a span of a few tens of nanoseconds (a guest write, a write-protect
//! walk of one gfn, an uncontended lock hold) measures its own instructions
//! rather than whatever the out-of-order core overlapped with an unfenced
//! `rdtsc`. On the monotonic clock (a vDSO `clock_gettime`, ordered by the
//! kernel), a read costs tens of nanoseconds and spans of that size cannot
//! be resolved; [`info`] says what a read costs and resolves, and every
//! result carries it next to each histogram.

use std::sync::OnceLock;

/// The clock a run reads, measured once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockInfo {
    /// `tsc`, `cntvct` (the ARM system counter) or `monotonic`: what
    /// `quanta` chose.
    pub source: &'static str,
    /// Timestamps are fenced TSC reads (`lfence; rdtsc; lfence`).
    pub fenced: bool,
    /// The smallest non-zero difference between two back-to-back reads, in
    /// nanoseconds: no span shorter than this is told from zero.
    pub resolution_ns: f64,
    /// What one read costs, in nanoseconds (the mean over back-to-back
    /// reads): a timed span includes about one read.
    pub read_ns: f64,
}

struct State {
    clock: quanta::Clock,
    /// `quanta` reads the TSC: read it ourselves, fenced.
    tsc: bool,
}

static STATE: OnceLock<State> = OnceLock::new();
static INFO: OnceLock<ClockInfo> = OnceLock::new();

#[inline]
fn state() -> &'static State {
    STATE.get_or_init(|| {
        let clock = quanta::Clock::new();
        let tsc = quanta_reads_the_tsc(&clock);
        State { clock, tsc }
    })
}

/// Whether `clock.raw()` is the TSC: a raw reading taken between two TSC
/// reads lies between them (three times in a row). A monotonic-clock value
/// (nanoseconds since boot) falls inside a window of a few dozen TSC ticks
/// only by coincidence, never three times.
#[cfg(target_arch = "x86_64")]
fn quanta_reads_the_tsc(clock: &quanta::Clock) -> bool {
    (0..3).all(|_| {
        // SAFETY: `rdtsc` is available on every x86-64 CPU.
        let a = unsafe { core::arch::x86_64::_rdtsc() };
        let r = clock.raw();
        // SAFETY: as above.
        let b = unsafe { core::arch::x86_64::_rdtsc() };
        a <= r && r <= b
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn quanta_reads_the_tsc(_: &quanta::Clock) -> bool {
    false
}

/// A raw timestamp: cheap to take, convert with [`delta_ns`]. A fenced TSC
/// read where `quanta` uses the TSC (see the module doc).
#[inline]
pub fn now() -> u64 {
    let s = state();
    #[cfg(target_arch = "x86_64")]
    if s.tsc {
        use core::arch::x86_64::{_mm_lfence, _rdtsc};
        // SAFETY: `lfence` (SSE2) and `rdtsc` are available on every x86-64
        // CPU; they only read the counter and order instructions.
        return unsafe {
            _mm_lfence();
            let t = _rdtsc();
            _mm_lfence();
            t
        };
    }
    s.clock.raw()
}

/// Nanoseconds between two raw timestamps (0 when `end` is not after
/// `start`).
#[inline]
pub fn delta_ns(start: u64, end: u64) -> u64 {
    state().clock.delta_as_nanos(start, end)
}

/// The source `quanta` chose: `tsc`, `cntvct` or `monotonic`.
pub fn source() -> &'static str {
    if state().tsc {
        "tsc"
    } else if cfg!(all(target_arch = "aarch64", not(target_os = "ios"))) {
        "cntvct"
    } else {
        "monotonic"
    }
}

/// The clock's source, fencing, resolution and read cost, measured on the
/// first call (about a millisecond).
pub fn info() -> ClockInfo {
    *INFO.get_or_init(|| {
        const READS: usize = 20_000;
        let mut smallest = u64::MAX;
        let first = now();
        let mut last = first;
        for _ in 0..READS {
            let t = now();
            let d = delta_ns(last, t);
            if d > 0 {
                smallest = smallest.min(d);
            }
            last = t;
        }
        ClockInfo {
            source: source(),
            fenced: state().tsc,
            resolution_ns: if smallest == u64::MAX {
                0.0
            } else {
                smallest as f64
            },
            read_ns: delta_ns(first, last) as f64 / READS as f64,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The label is what `quanta` reads: on the TSC, a raw reading lies
    /// between two `rdtsc`s; on the monotonic clock it is the nanoseconds
    /// `CLOCK_MONOTONIC` gives.
    #[test]
    fn the_label_names_the_counter_quanta_reads() {
        let raw = state().clock.raw();
        match source() {
            #[cfg(target_arch = "x86_64")]
            "tsc" => {
                // SAFETY: `rdtsc` is available on every x86-64 CPU.
                let later = unsafe { core::arch::x86_64::_rdtsc() };
                assert!(raw <= later && later - raw < 1 << 32, "{raw} {later}");
            }
            "monotonic" => {
                let mut ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: `ts` is a valid, writable timespec.
                assert_eq!(
                    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
                    0
                );
                let mono = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
                assert!(raw <= mono && mono - raw < 1_000_000_000, "{raw} {mono}");
            }
            other => assert_eq!(other, "cntvct"),
        }
    }

    #[test]
    fn reads_move_forward_and_the_clock_is_measured() {
        let a = now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = now();
        let d = delta_ns(a, b);
        assert!((2_000_000..2_000_000_000).contains(&d), "{d} ns");
        assert_eq!(delta_ns(b, a), 0);
        let i = info();
        assert!(i.resolution_ns > 0.0 && i.read_ns > 0.0, "{i:?}");
        assert!(i.resolution_ns < 1_000_000.0, "{i:?}");
        assert_eq!(i.fenced, i.source == "tsc");
    }
}
