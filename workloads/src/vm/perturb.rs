//! Perturbation ([`Perturber`]): the delays of a perturbed run, in the
//! manner of rcutorture's fuzzed delays (see [perturbation](crate#perturbation)
//! in the crate docs). The rmap under test calls [`Perturber`] at its named
//! points through `rmap_impls::Perturb` (its perturbed build); the fault
//! paths call it at their own point, between making an spte writable and
//! marking the gfn dirty ([`Perturber::fault_before_mark`]).
//!
//! Each thread draws from its own generator, seeded from the run's seed and
//! the thread's role and index ([`seed_thread`]), so a seed fixes which
//! points a thread delays at and for how long (not how threads interleave).

use crate::clock;
use crate::config::{Delay, Perturbation};
use crate::metrics::RoleKind;
use rmap_impls::{Perturb, PerturbPoint};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

thread_local! {
    /// This thread's generator state (xorshift64*; never 0).
    static RNG: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
}

/// Seed this thread's generator for a run with `seed`, as `role` `index`.
pub(crate) fn seed_thread(seed: u64, role: RoleKind, index: u32) {
    let mixed = seed
        .wrapping_mul(0x2545_F491_4F6C_DD1D)
        .wrapping_add(((role as u64) << 32 | index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    RNG.with(|r| r.set(mixed | 1));
}

/// The next number of this thread's generator.
#[inline]
fn next() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// The delays of one perturbed run.
pub(crate) struct Perturber {
    /// A walker's point delays when the generator's next number is below
    /// this; a writer's or a fault's, below the other.
    walker_threshold: u64,
    writer_threshold: u64,
    delay: Delay,
    max_ns: u64,
    /// Delays taken, all threads (a delay is slow: one shared add is noise).
    delays: AtomicU64,
}

/// The generator's threshold for a probability.
fn threshold(rate: f64) -> u64 {
    (rate.clamp(0.0, 1.0) * u64::MAX as f64) as u64
}

impl Perturber {
    pub(crate) fn new(p: &Perturbation) -> Self {
        Perturber {
            walker_threshold: threshold(p.rate),
            writer_threshold: threshold(p.writer_rate),
            delay: p.delay,
            max_ns: p.max.as_nanos().min(u64::MAX as u128) as u64,
            delays: AtomicU64::new(0),
        }
    }

    /// Delays taken so far.
    pub(crate) fn delays(&self) -> u64 {
        // Relaxed: a count read once the threads are joined.
        self.delays.load(Ordering::Relaxed)
    }

    /// A fault path, between making an spte writable (and, for a slow
    /// fault, adding it to the rmap) and marking its gfn dirty.
    #[inline]
    pub(crate) fn fault_before_mark(&self) {
        self.maybe_delay(self.writer_threshold);
    }

    #[inline]
    fn maybe_delay(&self, threshold: u64) {
        if next() >= threshold {
            return;
        }
        // Relaxed: a count, read after the join.
        self.delays.fetch_add(1, Ordering::Relaxed);
        let r = next();
        let kind = match self.delay {
            Delay::Mix => [Delay::Spin, Delay::Yield, Delay::Sleep][(r % 3) as usize],
            d => d,
        };
        let ns = (r >> 2) % self.max_ns.max(1) + 1;
        match kind {
            Delay::Spin => {
                let t0 = clock::now();
                while clock::delta_ns(t0, clock::now()) < ns {
                    std::hint::spin_loop();
                }
            }
            Delay::Yield => std::thread::yield_now(),
            Delay::Sleep | Delay::Mix => std::thread::sleep(Duration::from_nanos(ns)),
        }
    }
}

impl Perturb for Perturber {
    #[inline]
    fn at(&self, point: PerturbPoint) {
        match point {
            PerturbPoint::WalkInDesc | PerturbPoint::WalkBetweenDescs => {
                self.maybe_delay(self.walker_threshold)
            }
            PerturbPoint::WriterSection | PerturbPoint::MapBetweenAddAndInstall => {
                self.maybe_delay(self.writer_threshold)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perturber(rate: f64) -> Perturber {
        Perturber::new(&Perturbation {
            rate,
            writer_rate: rate,
            delay: Delay::Yield,
            max: Duration::from_micros(1),
        })
    }

    /// The share of points that delay is the rate (within 3 standard
    /// deviations over 100 000 points), and a seed fixes the choices.
    #[test]
    fn a_point_delays_at_the_rate_and_a_seed_repeats_the_choices() {
        let p = perturber(0.05);
        seed_thread(7, RoleKind::Walker, 0);
        for _ in 0..100_000 {
            p.at(PerturbPoint::WalkInDesc);
        }
        let n = p.delays() as f64;
        let sd = (100_000.0 * 0.05 * 0.95f64).sqrt();
        assert!((n - 5_000.0).abs() < 3.0 * sd, "{n} delays");
        let choices = |seed| {
            seed_thread(seed, RoleKind::Vcpu, 3);
            (0..64).map(|_| next()).collect::<Vec<_>>()
        };
        assert_eq!(choices(11), choices(11));
        assert_ne!(choices(11), choices(12));
    }

    #[test]
    fn rate_one_always_delays() {
        let p = perturber(1.0);
        for _ in 0..1000 {
            p.fault_before_mark();
        }
        assert_eq!(p.delays(), 1000);
    }
}
