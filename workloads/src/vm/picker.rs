//! Which gfns the guest touches: a vCPU's next gfn under `Config::pattern`
//! and `Config::regions` ([`GfnPicker`]), and the hot set of `churn` and
//! `torture` ([`hot_gfns`]), which the walker, the zapper and the oracle work
//! on too.

use crate::config::{Config, Pattern, Regions};
use rand::rngs::SmallRng;
use rand::Rng;
use rmap_impls::Gfn;

/// Which gfn a vCPU touches next.
pub(crate) struct GfnPicker {
    base: u64,
    len: u64,
    pattern: Pattern,
    /// `churn`, `torture`: only these gfns.
    hot: Option<Vec<Gfn>>,
    cursor: u64,
    /// Zipf(1) over `len`: H(len) - Euler's gamma, and a multiplier that
    /// spreads ranks over the region (a bijection mod `len`).
    zipf_h: f64,
    spread: u64,
}

const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl GfnPicker {
    pub(crate) fn new(cfg: &Config, vcpu: u32) -> Self {
        let gfns = cfg.gfns();
        let (base, len) = match cfg.regions {
            Regions::Shared => (0, gfns),
            Regions::Partitioned => {
                let per = (gfns / cfg.vcpus as u64).max(1);
                let base = (vcpu as u64 * per).min(gfns - 1);
                (base, per.min(gfns - base))
            }
        };
        let hot = cfg.workload.hot().then(|| hot_gfns(cfg));
        let mut spread = 0x9E37_79B9_7F4A_7C15 % len.max(1);
        while len > 1 && (spread == 0 || gcd(spread, len) != 1) {
            spread += 1;
        }
        GfnPicker {
            base,
            len,
            pattern: cfg.pattern,
            hot,
            cursor: vcpu as u64 * 7919,
            zipf_h: (len as f64).ln() + 0.5 / len as f64,
            spread: spread.max(1),
        }
    }

    #[inline]
    pub(crate) fn next(&mut self, rng: &mut SmallRng) -> Gfn {
        if let Some(hot) = &self.hot {
            return hot[rng.gen_range(0..hot.len())];
        }
        let off = match self.pattern {
            Pattern::Uniform => rng.gen_range(0..self.len),
            Pattern::Sequential => {
                self.cursor = self.cursor.wrapping_add(1);
                self.cursor % self.len
            }
            Pattern::Zipf => {
                // Inverse of H(k) ~ ln k + gamma: rank k has probability
                // about 1/(k H(len)).
                let u: f64 = rng.gen();
                let k = (u * (self.zipf_h + EULER_GAMMA) - EULER_GAMMA).exp() as u64;
                let rank = k.clamp(1, self.len) - 1;
                ((rank as u128 * self.spread as u128) % self.len as u128) as u64
            }
        };
        self.base + off
    }
}

/// The hot gfns of `churn` and `torture`, spread over the memslot.
pub(crate) fn hot_gfns(cfg: &Config) -> Vec<Gfn> {
    let gfns = cfg.gfns();
    let n = cfg.hot_gfns.min(gfns).max(1);
    (0..n).map(|k| k * (gfns / n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WorkloadKind;
    use rand::SeedableRng;

    fn cfg(pattern: Pattern, regions: Regions) -> Config {
        Config {
            mem_bytes: 1000 * 4096,
            vcpus: 4,
            pattern,
            regions,
            ..Config::default()
        }
    }

    #[test]
    fn picks_stay_in_the_region() {
        let mut rng = SmallRng::seed_from_u64(1);
        for pattern in [Pattern::Uniform, Pattern::Zipf, Pattern::Sequential] {
            let c = cfg(pattern, Regions::Partitioned);
            let mut p = GfnPicker::new(&c, 2);
            for _ in 0..5000 {
                let g = p.next(&mut rng);
                assert!((500..750).contains(&g), "{pattern:?} picked {g}");
            }
        }
    }

    #[test]
    fn zipf_is_skewed_and_uniform_is_not() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut share_of_top_page = |pattern| {
            let mut p = GfnPicker::new(&cfg(pattern, Regions::Shared), 0);
            let mut counts = vec![0u32; 1000];
            for _ in 0..100_000 {
                counts[p.next(&mut rng) as usize] += 1;
            }
            *counts.iter().max().unwrap() as f64 / 100_000.0
        };
        // Zipf(1) over 1000 pages: the top page takes 1/H(1000), about 13%.
        assert!(share_of_top_page(Pattern::Zipf) > 0.08);
        assert!(share_of_top_page(Pattern::Uniform) < 0.01);
    }

    #[test]
    fn churn_touches_only_hot_gfns() {
        let c = Config {
            workload: WorkloadKind::Churn,
            hot_gfns: 4,
            ..cfg(Pattern::Uniform, Regions::Shared)
        };
        let hot = hot_gfns(&c);
        assert_eq!(hot, vec![0, 250, 500, 750]);
        let mut rng = SmallRng::seed_from_u64(3);
        let mut p = GfnPicker::new(&c, 1);
        for _ in 0..1000 {
            assert!(hot.contains(&p.next(&mut rng)));
        }
    }
}
