//! Confidence intervals for ratios of medians, and what a ratio says.
//!
//! Every ratio the lab prints (a design against the baseline, a sweep
//! against an older one) is a ratio of medians over repeats. Its 95%
//! confidence interval comes from the bootstrap: resample each side's
//! repeats with replacement, take the ratio of the resampled medians, and
//! keep the 2.5th and 97.5th percentiles of [`RESAMPLES`] such ratios. The
//! generator has a fixed seed, so the same files give the same interval on
//! every machine and in every command. With two repeats a side the
//! interval is about the range of the ratios the repeats allow: wide, and
//! honest about it. With one run on either side there is no interval.
//!
//! Several configurations at once (the headline: one design against the
//! baseline over every vCPU count of a sweep) combine as the geometric mean
//! of their ratios, bootstrapped the same way, every configuration
//! resampled in every round.
//!
//! [`judge`] turns a ratio and its interval into a [`Change`], as criterion
//! does for its baselines: within noise when the interval holds 1, or when
//! the change is below a noise threshold; otherwise better or worse by the
//! figure's direction.

use super::figure::Better;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Bootstrap rounds per interval.
pub const RESAMPLES: usize = 2000;

/// The generator's seed: every interval is reproducible.
const SEED: u64 = 0x726d_6170_2d6c_6162; // "rmap-lab"

/// A 95% confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// What a ratio says about a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Outside the noise, in the figure's good direction.
    Better,
    /// Outside the noise, in the bad direction.
    Worse,
    /// The interval holds 1, or the change is below the noise threshold.
    Noise,
    /// No interval (a side ran once): nothing can be said about noise.
    Unknown,
    /// The figure is not comparable across designs (round p50): never
    /// judged.
    NotComparable,
}

pub fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn resample_median(rng: &mut SmallRng, v: &[f64], buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend((0..v.len()).map(|_| v[rng.gen_range(0..v.len())]));
    median(buf).unwrap_or(f64::NAN)
}

/// The 2.5th and 97.5th percentiles of `v` (sorted in place); `None` when
/// any value is not finite.
fn percentiles(v: &mut [f64]) -> Option<Interval> {
    if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    Some(Interval {
        lo: at(0.025),
        hi: at(0.975),
    })
}

/// The 95% interval of `median(a) / median(b)`; `None` when either side
/// has fewer than two values, or a resampled `b` has a median of 0.
pub fn ratio_interval(a: &[f64], b: &[f64]) -> Option<Interval> {
    geomean_interval(&[(a.to_vec(), b.to_vec())]).and_then(|(_, i)| i)
}

/// The geometric mean over `pairs` of `median(a) / median(b)`, and its 95%
/// interval; `None` when some pair has no positive finite ratio. The
/// interval is `None` when every pair ran once on some side, or a resample
/// has no positive finite ratio.
pub fn geomean_interval(pairs: &[(Vec<f64>, Vec<f64>)]) -> Option<(f64, Option<Interval>)> {
    let point = geomean(pairs.iter().map(|(a, b)| Some(median(a)? / median(b)?)))?;
    if pairs.iter().all(|(a, b)| a.len() < 2 || b.len() < 2) {
        return Some((point, None));
    }
    let mut rng = SmallRng::seed_from_u64(SEED);
    let mut buf = Vec::new();
    let mut rounds = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        let g = geomean(pairs.iter().map(|(a, b)| {
            let x = resample_median(&mut rng, a, &mut buf);
            let y = resample_median(&mut rng, b, &mut buf);
            Some(x / y)
        }));
        rounds.push(g.unwrap_or(f64::NAN));
    }
    Some((point, percentiles(&mut rounds)))
}

/// The geometric mean of the ratios; `None` when any is not a positive
/// finite number.
fn geomean(ratios: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut sum = 0.0;
    let mut n = 0usize;
    for r in ratios {
        let r = r?;
        if !(r.is_finite() && r > 0.0) {
            return None;
        }
        sum += r.ln();
        n += 1;
    }
    (n > 0).then(|| (sum / n as f64).exp())
}

/// What `ratio` (new over old, or design over baseline) with `ci` says for
/// a figure whose good direction is `better`: noise when the interval holds
/// 1 or `|ratio - 1|` is below `threshold` (a fraction: 0.05 for 5%).
pub fn judge(ratio: f64, ci: Option<Interval>, better: Better, threshold: f64) -> Change {
    let Some(ci) = ci else {
        return Change::Unknown;
    };
    if ci.contains(1.0) || (ratio - 1.0).abs() < threshold {
        return Change::Noise;
    }
    match (better, ratio > 1.0) {
        (Better::Higher, true) | (Better::Lower, false) => Change::Better,
        _ => Change::Worse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_holds_the_ratio_and_shrinks_with_agreement() {
        let i = ratio_interval(&[2.0, 2.2, 2.4], &[1.0, 1.1, 1.2]).unwrap();
        assert!(i.contains(2.0), "{i:?}");
        assert!(i.lo > 1.5 && i.hi < 2.5, "{i:?}");
        // Identical repeats: a zero-width interval.
        let i = ratio_interval(&[3.0, 3.0], &[1.5, 1.5]).unwrap();
        assert_eq!((i.lo, i.hi), (2.0, 2.0));
        // One run on a side: no interval.
        assert!(ratio_interval(&[2.0], &[1.0, 1.1]).is_none());
        // Reproducible.
        assert_eq!(
            ratio_interval(&[1.0, 1.3, 0.9], &[1.0, 1.1]),
            ratio_interval(&[1.0, 1.3, 0.9], &[1.0, 1.1])
        );
    }

    #[test]
    fn overlapping_repeats_are_noise_and_separated_ones_are_not() {
        // 1.2 and 1.4 against 1.0 and 1.5: the interval holds 1.
        let i = ratio_interval(&[1.2, 1.4], &[1.0, 1.5]);
        assert_eq!(judge(1.04, i, Better::Higher, 0.0), Change::Noise);
        // 10.0 and 10.2 against 1.0 and 9.0: every resample is above 1.
        let i = ratio_interval(&[10.0, 10.2], &[1.0, 9.0]);
        assert!(i.unwrap().lo > 1.0, "{i:?}");
        assert_eq!(judge(2.02, i, Better::Higher, 0.0), Change::Better);
        assert_eq!(judge(2.02, i, Better::Lower, 0.0), Change::Worse);
        // Outside the interval but under the threshold: noise.
        let i = Some(Interval { lo: 1.01, hi: 1.03 });
        assert_eq!(judge(1.02, i, Better::Lower, 0.05), Change::Noise);
        assert_eq!(judge(1.02, None, Better::Lower, 0.05), Change::Unknown);
    }

    #[test]
    fn the_geometric_mean_combines_configurations() {
        let pairs = vec![
            (vec![2.0, 2.0], vec![1.0, 1.0]),
            (vec![8.0, 8.0], vec![1.0, 1.0]),
        ];
        let (g, i) = geomean_interval(&pairs).unwrap();
        let i = i.unwrap();
        assert!((g - 4.0).abs() < 1e-12);
        assert!((i.lo - 4.0).abs() < 1e-12 && (i.hi - 4.0).abs() < 1e-12);
        assert!(geomean_interval(&[(vec![1.0], vec![0.0, 0.0])]).is_none());
        assert_eq!(
            geomean_interval(&[(vec![2.0], vec![1.0])]),
            Some((2.0, None))
        );
    }
}
