//! The headline of a comparison: for each design against the baseline, the
//! few figures that matter ([`Figure::headline`]: guest progress, slow-fault
//! p99, walk cost, restarts; and lost writes), each as one sentence with a
//! 95% confidence interval, hyperfine's summary ("A ran 2.31 ± 0.08 times
//! faster than B") for a sweep.
//!
//! **Scopes.** A sweep over several workloads gets a headline per workload
//! (what dirty logging costs says nothing about `idle`). Inside a scope,
//! every other swept parameter (vCPUs, aliases, ...) is combined: the claim
//! for a design and a figure is the geometric mean, over the configurations
//! where both the design and the baseline ran, of the ratio of their
//! medians, with its bootstrap interval (`interval::geomean_interval`), and
//! the smallest and largest per-configuration ratio beside it, since a mean
//! over 1 to 32 vCPUs can hide that the gap grows with them.
//!
//! **Words.** A ratio is stated as a factor of at least 1, "2.31 ± 0.08
//! times higher" or "131 (98-160) times lower", with `±` when the interval
//! is about symmetric and the interval itself otherwise; "within noise"
//! when the interval holds 1; "one run each" when there is no interval. A
//! figure whose baseline is 0 (restarts of `mmu-lock`) has no ratio and is
//! stated as the values themselves. Lost writes come first, as counts: they
//! are a verdict, not a speed.

use super::figure::Figure;
use super::group::{follows_from, format_param, format_params, param, Params};
use super::interval::{geomean_interval, judge, median, Change, Interval};
use super::model::{Comparison, Row};
use crate::record::result::RunResult;
use crate::record::units::format_ratio;
use serde_json::Value;
use std::path::PathBuf;

/// One design and one figure, over a scope's configurations.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Claim {
    #[serde(rename = "impl")]
    pub impl_name: String,
    #[serde(skip)]
    pub figure: Figure,
    pub figure_id: String,
    /// Configurations combined.
    pub configs: usize,
    /// Fewest repeats of any side of any configuration.
    pub min_runs: usize,
    /// Geometric mean of the per-configuration ratios.
    pub ratio: Option<f64>,
    pub ratio_ci: Option<Interval>,
    pub change: Change,
    /// The smallest and largest per-configuration ratio, with where.
    pub lowest: Option<(f64, String)>,
    pub highest: Option<(f64, String)>,
    /// Without a ratio (the baseline's median is 0): the design's medians,
    /// smallest and largest, and the baseline's largest.
    pub values: Option<(f64, f64, f64)>,
}

/// Lost writes of one design in a scope.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Lost {
    #[serde(rename = "impl")]
    pub impl_name: String,
    pub lost_writes: u64,
    pub runs_losing: usize,
    pub runs: usize,
}

/// The headline of one workload (or of everything, when one ran).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Scope {
    /// What the scope's runs share: `workload=dirty-log`; empty for one
    /// scope.
    #[serde(serialize_with = "super::group::params_as_map")]
    pub params: Params,
    /// What the combined configurations vary in: `vcpus 1-32`.
    pub over: String,
    pub configs: usize,
    pub runs: usize,
    pub lost: Vec<Lost>,
    pub claims: Vec<Claim>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Headline {
    pub baseline: String,
    pub scopes: Vec<Scope>,
}

/// Keys that split a comparison into scopes.
const SCOPE_KEYS: [&str; 1] = ["workload"];

fn scope_of(row: &Row) -> Params {
    row.params
        .iter()
        .filter(|(k, _)| SCOPE_KEYS.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// The keys that tell a scope's configurations apart: those that vary
/// among `rows`, less those that follow from another (`mmu_lock` chosen by
/// `auto` from the vCPU count).
fn varying(c: &Comparison, rows: &[&Row]) -> Vec<String> {
    let params = || rows.iter().map(|r| &r.params);
    let vary: Vec<&String> = c
        .keys
        .iter()
        .filter(|k| !SCOPE_KEYS.contains(&k.as_str()))
        .filter(|k| {
            let first = rows.first().map(|r| param(&r.params, k));
            rows.iter().any(|r| Some(param(&r.params, k)) != first)
        })
        .collect();
    vary.iter()
        .enumerate()
        .filter(|(i, k)| {
            !vary.iter().enumerate().any(|(j, x)| {
                j != *i && follows_from(params(), x, k) && (!follows_from(params(), k, x) || j < *i)
            })
        })
        .map(|(_, k)| (*k).clone())
        .collect()
}

/// Where in its scope a row is: `vcpus=32`.
fn place(row: &Row, keys: &[String]) -> String {
    let p: Params = row
        .params
        .iter()
        .filter(|(k, _)| keys.contains(k))
        .cloned()
        .collect();
    format_params(&p)
}

/// `vcpus 1-32, aliases 1,4` for `keys` among `rows`.
fn over(keys: &[String], rows: &[&Row]) -> String {
    let mut parts = Vec::new();
    for k in keys {
        let mut vals: Vec<&Value> = rows.iter().map(|r| param(&r.params, k)).collect();
        vals.sort_by(|a, b| super::group::cmp_value(a, b));
        vals.dedup();
        let all_numbers = vals.iter().all(|v| v.is_number());
        let shown = if all_numbers && vals.len() > 1 {
            format!(
                "{}-{}",
                format_param(k, vals[0]),
                format_param(k, vals[vals.len() - 1])
            )
        } else {
            vals.iter()
                .map(|v| format_param(k, v))
                .collect::<Vec<_>>()
                .join(",")
        };
        parts.push(format!("{k} {shown}"));
    }
    parts.join(", ")
}

/// Scopes in the order of `lab list`'s workloads (dirty logging first:
/// what the lab is about), then any other by name.
fn scope_rank(p: &Params) -> (usize, String) {
    let w = param(p, "workload").as_str().unwrap_or("");
    (
        rmap_workloads::WorkloadKind::ALL
            .iter()
            .position(|k| k.name() == w)
            .unwrap_or(usize::MAX),
        w.to_string(),
    )
}

/// The headline of `c` (built from `runs`).
pub fn headline(c: &Comparison, runs: &[(PathBuf, RunResult)]) -> Headline {
    let mut scopes: Vec<Params> = Vec::new();
    for r in &c.rows {
        let s = scope_of(r);
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    scopes.sort_by_key(scope_rank);
    let figures: Vec<(usize, Figure)> = Figure::headline()
        .into_iter()
        .filter(|f| f.id != "lost_writes")
        .filter_map(|f| Some((c.figure_index(&f.id)?, f)))
        .collect();
    let scopes = scopes
        .into_iter()
        .map(|sp| {
            let rows: Vec<&Row> = c.rows.iter().filter(|r| scope_of(r) == sp).collect();
            let keys = varying(c, &rows);
            let mut configs: Vec<&Params> = rows.iter().map(|r| &r.params).collect();
            configs.dedup();
            let lost = c
                .impls
                .iter()
                .filter_map(|name| {
                    let idx: Vec<usize> = rows
                        .iter()
                        .filter(|r| &r.impl_name == name)
                        .flat_map(|r| r.run_indices.iter().copied())
                        .collect();
                    (!idx.is_empty()).then(|| Lost {
                        impl_name: name.clone(),
                        lost_writes: idx.iter().map(|&i| runs[i].1.verdict.lost_writes).sum(),
                        runs_losing: idx
                            .iter()
                            .filter(|&&i| runs[i].1.verdict.lost_writes > 0)
                            .count(),
                        runs: idx.len(),
                    })
                })
                .collect();
            let mut claims = Vec::new();
            for name in c.impls.iter().filter(|n| **n != c.baseline) {
                for (j, f) in &figures {
                    if let Some(cl) = claim(c, &rows, &keys, name, *j, f) {
                        claims.push(cl);
                    }
                }
            }
            Scope {
                over: over(&keys, &rows),
                configs: configs.len(),
                runs: rows.iter().map(|r| r.runs.len()).sum(),
                params: sp,
                lost,
                claims,
            }
        })
        .collect();
    Headline {
        baseline: c.baseline.clone(),
        scopes,
    }
}

fn claim(
    c: &Comparison,
    rows: &[&Row],
    keys: &[String],
    name: &str,
    j: usize,
    f: &Figure,
) -> Option<Claim> {
    let mut pairs = Vec::new();
    let mut per: Vec<(f64, String)> = Vec::new();
    let mut mine: Vec<f64> = Vec::new();
    let mut theirs: Vec<f64> = Vec::new();
    for r in rows.iter().filter(|r| r.impl_name == name) {
        let Some(b) = c.row(&c.baseline, &r.params) else {
            continue;
        };
        let (a, bv) = (&r.cells[j].values, &b.cells[j].values);
        let (Some(ma), Some(mb)) = (median(a), median(bv)) else {
            continue;
        };
        mine.push(ma);
        theirs.push(mb);
        if ma > 0.0 && mb > 0.0 {
            pairs.push((a.clone(), bv.clone()));
            per.push((ma / mb, place(r, keys)));
        }
    }
    if mine.is_empty() {
        return None;
    }
    let min_runs = pairs
        .iter()
        .map(|(a, b)| a.len().min(b.len()))
        .min()
        .unwrap_or(0);
    let fold = |pick: fn(f64, f64) -> bool| {
        per.iter()
            .fold(None::<&(f64, String)>, |acc, x| match acc {
                Some(a) if !pick(x.0, a.0) => Some(a),
                _ => Some(x),
            })
            .cloned()
    };
    let (lowest, highest) = (fold(|x, a| x < a), fold(|x, a| x > a));
    // Every configuration with a ratio, or none: a mean over some of them
    // would be a different claim.
    let combined = (pairs.len() == mine.len())
        .then(|| geomean_interval(&pairs))
        .flatten();
    let base = Claim {
        impl_name: name.to_string(),
        figure: f.clone(),
        figure_id: f.id.clone(),
        configs: mine.len(),
        min_runs,
        ratio: None,
        ratio_ci: None,
        change: Change::Unknown,
        lowest: None,
        highest: None,
        values: None,
    };
    Some(match combined {
        Some((ratio, ci)) => Claim {
            ratio: Some(ratio),
            ratio_ci: ci,
            change: judge(ratio, ci, f.better, 0.0),
            lowest: (per.len() > 1).then_some(lowest).flatten(),
            highest: (per.len() > 1).then_some(highest).flatten(),
            ..base
        },
        None => Claim {
            values: Some((
                mine.iter().copied().fold(f64::INFINITY, f64::min),
                mine.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                theirs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            )),
            ..base
        },
    })
}

/// A factor for people: three significant digits or so.
fn factor(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// `2.31 ± 0.08` when the interval is about symmetric around `f`, else
/// `131 (98-160)`.
fn with_interval(f: f64, lo: f64, hi: f64) -> String {
    let (dl, dh) = ((f - lo).max(0.0), (hi - f).max(0.0));
    let (small, big) = (dl.min(dh), dl.max(dh));
    if big <= 1.25 * small || big <= f * 0.005 {
        // Same decimals as the factor itself.
        let digits = if f >= 100.0 {
            0
        } else if f >= 10.0 {
            1
        } else {
            2
        };
        format!("{} ± {:.digits$}", factor(f), big)
    } else {
        let trim = |x: f64| {
            let s = factor(x);
            if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                s
            }
        };
        format!("{} ({}-{})", factor(f), trim(lo), trim(hi))
    }
}

impl Claim {
    /// The claim as one sentence, without the design's name: `slow fault
    /// p99 131 (98-250) times lower than mmu-lock (better); per
    /// configuration ...`. Within noise, it is the short form
    /// [`Claim::noise_phrase`]; without a ratio, [`Claim::values_phrase`].
    pub fn sentence(&self, baseline: &str) -> String {
        let Some(r) = self.ratio else {
            return self.values_phrase(baseline);
        };
        if self.change == Change::Noise {
            return format!("within noise of {baseline}: {}", self.noise_phrase());
        }
        let range = match (&self.lowest, &self.highest) {
            (Some((lo, at_lo)), Some((hi, at_hi))) => format!(
                "; per configuration {} at {at_lo} to {} at {at_hi}",
                format_ratio(*lo),
                format_ratio(*hi)
            ),
            _ => String::new(),
        };
        let (word, f, iv) = if r >= 1.0 {
            ("higher", r, self.ratio_ci.map(|c| (c.lo, c.hi)))
        } else {
            (
                "lower",
                1.0 / r,
                self.ratio_ci.map(|c| (1.0 / c.hi, 1.0 / c.lo)),
            )
        };
        let amount = match iv {
            Some((lo, hi)) => with_interval(f, lo, hi),
            None => factor(f),
        };
        let verdict = match self.change {
            Change::Better => " (better)",
            Change::Worse => " (worse)",
            _ => " (one run each: no interval)",
        };
        format!(
            "{} {amount} times {word} than {baseline}{verdict}{range}",
            self.figure.label
        )
    }

    /// `guest writes/s 1.04x (0.80x-1.35x)`: a ratio within noise, short.
    pub fn noise_phrase(&self) -> String {
        match (self.ratio, self.ratio_ci) {
            (Some(r), Some(ci)) => format!(
                "{} {} ({}-{})",
                self.figure.label,
                format_ratio(r),
                format_ratio(ci.lo),
                format_ratio(ci.hi)
            ),
            _ => self.figure.label.clone(),
        }
    }

    /// `restarts/1k walks 0 to 4.7e-5 (mmu-lock: 0, so no ratio)`.
    pub fn values_phrase(&self, baseline: &str) -> String {
        let (lo, hi, base) = self.values.unwrap_or((0.0, 0.0, 0.0));
        let u = self.figure.unit;
        let mine = if lo == hi {
            u.format(lo)
        } else {
            format!("{} to {}", u.format(lo), u.format(hi))
        };
        format!(
            "{} {mine} ({baseline}: {}, so no ratio)",
            self.figure.label,
            u.format(base)
        )
    }
}

/// A design's claims in a scope, as the lines a reader scans: one per
/// claim outside the noise (or without an interval), then the claims within
/// noise together on one line, then the figures without a ratio on one.
/// Each line comes with the change it states (`None` for the last two
/// kinds), for colour.
pub fn design_lines(claims: &[&Claim], baseline: &str) -> Vec<(Option<Change>, String)> {
    let mut out: Vec<(Option<Change>, String)> = claims
        .iter()
        .filter(|c| c.ratio.is_some() && c.change != Change::Noise)
        .map(|c| (Some(c.change), c.sentence(baseline)))
        .collect();
    let noise: Vec<String> = claims
        .iter()
        .filter(|c| c.ratio.is_some() && c.change == Change::Noise)
        .map(|c| c.noise_phrase())
        .collect();
    if !noise.is_empty() {
        out.push((
            Some(Change::Noise),
            format!("within noise of {baseline}: {}", noise.join(", ")),
        ));
    }
    let values: Vec<String> = claims
        .iter()
        .filter(|c| c.ratio.is_none())
        .map(|c| c.values_phrase(baseline))
        .collect();
    if !values.is_empty() {
        out.push((None, values.join("; ")));
    }
    out
}

impl Scope {
    /// The designs with claims, in order, each with its claims.
    pub fn designs(&self) -> Vec<(&str, Vec<&Claim>)> {
        let mut out: Vec<(&str, Vec<&Claim>)> = Vec::new();
        for c in &self.claims {
            match out.last_mut() {
                Some((name, v)) if *name == c.impl_name => v.push(c),
                _ => out.push((&c.impl_name, vec![c])),
            }
        }
        out
    }

    /// `dirty-log, 6 configurations (vcpus 1-32), 2 runs each`.
    pub fn title(&self) -> String {
        let name = self
            .params
            .iter()
            .map(|(k, v)| format_param(k, v))
            .collect::<Vec<_>>()
            .join(" ");
        let mut parts = Vec::new();
        if !name.is_empty() {
            parts.push(name);
        }
        parts.push(if self.over.is_empty() {
            format!("{} runs", self.runs)
        } else {
            format!(
                "geometric mean over {} configurations ({}), {} runs",
                self.configs, self.over, self.runs
            )
        });
        parts.join(": ")
    }

    /// The lost-writes sentence: `none of the 72 runs lost a write`, or who
    /// lost how many.
    pub fn lost_sentence(&self) -> String {
        let losing: Vec<&Lost> = self.lost.iter().filter(|l| l.lost_writes > 0).collect();
        if losing.is_empty() {
            return format!("lost writes: none in {} runs", self.runs);
        }
        let each: Vec<String> = losing
            .iter()
            .map(|l| {
                format!(
                    "{} lost {} in {} of {} runs",
                    l.impl_name, l.lost_writes, l.runs_losing, l.runs
                )
            })
            .collect();
        format!("lost writes: {}", each.join("; "))
    }
}

/// Whether a claim's direction is the figure's good one, for colour.
pub fn is_good(change: Change) -> Option<bool> {
    match change {
        Change::Better => Some(true),
        Change::Worse => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_plus_minus_or_a_range() {
        assert_eq!(with_interval(2.31, 2.23, 2.39), "2.31 ± 0.08");
        assert_eq!(with_interval(131.0, 98.0, 160.0), "131 ± 33");
        assert_eq!(with_interval(131.0, 98.0, 250.0), "131 (98-250)");
        assert_eq!(with_interval(1.5, 1.02, 1.6), "1.50 (1.02-1.6)");
        assert_eq!(factor(13968.2), "13968");
    }
}
