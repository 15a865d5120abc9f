//! `lab compare NEW --against OLD`: a sweep against an older one of the
//! same configurations (two commits, two machines), criterion's saved
//! baselines for the lab.
//!
//! **Matching.** A run's configuration is its implementation, workload and
//! every `config` key (as `group` reads it, `seed` and the output keys
//! aside). Only keys both sides know take part: a key only one side has (a
//! parameter a newer lab added) is listed in [`Against::ignored_keys`] and
//! left out, so an old sweep still matches a new one. Runs with equal
//! values are repeats of one configuration; a configuration present on one
//! side only is counted, not compared.
//!
//! **Per figure** ([`Figure::defaults`] or `--metric`): the medians over
//! repeats on both sides, their ratio (new over old) with its 95% bootstrap
//! interval (`interval`), and a [`Verdict`]: *regressed* or *improved* when
//! the interval excludes 1 and the change is at least the noise threshold
//! (criterion's two tests; 5% by default), *within noise* otherwise. With
//! one run on a side there is no interval, and the threshold alone decides
//! (said in the change's note). Lost writes are a verdict: any where there
//! were none is a regression whatever the numbers. A figure whose old
//! median is 0 has no ratio: within noise unless it is lost writes.

use super::figure::Figure;
use super::group::{cmp_params, config_map, format_params, impl_order, Params};
use super::interval::{judge, ratio_interval, Change, Interval};
use super::model::Stats;
use crate::record::error::{LabError, LabResult};
use crate::record::result::RunResult;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// What happened to one figure of one configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Regressed,
    Improved,
    WithinNoise,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::WithinNoise => "within noise",
        }
    }
}

/// One figure of one matched configuration.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FigureChange {
    #[serde(rename = "impl")]
    pub impl_name: String,
    #[serde(skip)]
    pub params: Params,
    pub figure: String,
    #[serde(skip)]
    pub label: String,
    #[serde(skip)]
    pub unit: super::figure::Unit,
    pub old: Stats,
    pub new: Stats,
    /// New median over old median.
    pub ratio: Option<f64>,
    pub ratio_ci: Option<Interval>,
    pub verdict: Verdict,
    /// Why the verdict is what it is, when it is not the interval's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The whole comparison of two sweeps.
#[derive(Clone, Debug, PartialEq)]
pub struct Against {
    /// Keys that tell the matched configurations apart (`vcpus` always).
    pub keys: Vec<String>,
    /// Config keys only one side has, left out of the matching.
    pub ignored_keys: Vec<String>,
    pub new_runs: usize,
    pub old_runs: usize,
    /// Configurations on both sides, and on one side only.
    pub matched: usize,
    pub only_new: usize,
    pub only_old: usize,
    /// The noise threshold, a fraction (0.05 for 5%).
    pub threshold: f64,
    pub changes: Vec<FigureChange>,
    pub warnings: Vec<String>,
}

impl Against {
    pub fn count(&self, v: Verdict) -> usize {
        self.changes.iter().filter(|c| c.verdict == v).count()
    }

    /// `vcpus=8 workload=dirty-log` for a change, with the shown keys.
    pub fn place(&self, c: &FigureChange) -> String {
        let p: Params = c
            .params
            .iter()
            .filter(|(k, _)| self.keys.contains(k))
            .cloned()
            .collect();
        format_params(&p)
    }
}

/// A configuration: implementation and the matched keys' values.
type Key = (String, Params);

fn groups(runs: &[(PathBuf, RunResult)], keys: &BTreeSet<String>) -> Vec<(Key, Vec<usize>)> {
    let mut out: Vec<(Key, Vec<usize>)> = Vec::new();
    for (i, (_, r)) in runs.iter().enumerate() {
        let m = config_map(r);
        let params: Params = keys
            .iter()
            .map(|k| (k.clone(), m.get(k).cloned().unwrap_or(Value::Null)))
            .collect();
        let key = (r.impl_name.clone(), params);
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(i),
            None => out.push((key, vec![i])),
        }
    }
    out
}

fn key_set(runs: &[(PathBuf, RunResult)]) -> BTreeSet<String> {
    runs.iter()
        .flat_map(|(_, r)| config_map(r).into_keys())
        .collect()
}

/// Compare `new` with `old` on `figures`, `threshold` a fraction.
pub fn against(
    new: &[(PathBuf, RunResult)],
    old: &[(PathBuf, RunResult)],
    figures: &[Figure],
    threshold: f64,
) -> LabResult<Against> {
    let (kn, ko) = (key_set(new), key_set(old));
    let keys: BTreeSet<String> = kn.intersection(&ko).cloned().collect();
    let ignored_keys: Vec<String> = kn.symmetric_difference(&ko).cloned().collect();
    let (gn, go) = (groups(new, &keys), groups(old, &keys));
    let mut matched: Vec<(&Key, &Vec<usize>, &Vec<usize>)> = gn
        .iter()
        .filter_map(|(k, n)| go.iter().find(|(ko, _)| ko == k).map(|(_, o)| (k, n, o)))
        .collect();
    if matched.is_empty() {
        return Err(LabError::usage(format!(
            "no configuration of the {} new runs is among the {} old ones (compared on: {})",
            new.len(),
            old.len(),
            keys.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let order = impl_order(matched.iter().map(|(k, _, _)| k.0.as_str()), None);
    let rank = |n: &str| order.iter().position(|o| o == n).unwrap_or(usize::MAX);
    matched.sort_by(|a, b| cmp_params(&a.0 .1, &b.0 .1).then(rank(&a.0 .0).cmp(&rank(&b.0 .0))));

    // Keys whose values differ among the matched configurations.
    let shown: Vec<String> = keys
        .iter()
        .filter(|k| {
            let vals: Vec<&Value> = matched
                .iter()
                .filter_map(|(key, _, _)| key.1.iter().find(|(kk, _)| kk == *k).map(|(_, v)| v))
                .collect();
            k.as_str() == "vcpus" || vals.windows(2).any(|w| w[0] != w[1])
        })
        .cloned()
        .collect();

    let mut changes = Vec::new();
    for ((impl_name, params), n_idx, o_idx) in &matched {
        for f in figures {
            let vals = |runs: &[(PathBuf, RunResult)], idx: &[usize]| -> Vec<f64> {
                idx.iter()
                    .filter_map(|&i| f.value(&runs[i].1))
                    .filter(|v| v.is_finite())
                    .collect()
            };
            let (nv, ov) = (vals(new, n_idx), vals(old, o_idx));
            let (Some(ns), Some(os)) = (Stats::of(&nv), Stats::of(&ov)) else {
                continue;
            };
            let ratio = (os.median != 0.0).then(|| ns.median / os.median);
            let ci = ratio.and_then(|_| ratio_interval(&nv, &ov));
            let (verdict, note) = if f.id == "lost_writes" {
                match (os.median > 0.0, ns.median > 0.0, ns.max > 0.0) {
                    (false, _, true) => (
                        Verdict::Regressed,
                        Some("writes lost where none were".to_string()),
                    ),
                    (true, false, false) => (
                        Verdict::Improved,
                        Some("no write lost any more".to_string()),
                    ),
                    _ => verdict_of(ratio, ci, f, threshold),
                }
            } else {
                verdict_of(ratio, ci, f, threshold)
            };
            changes.push(FigureChange {
                impl_name: impl_name.clone(),
                params: params.clone(),
                figure: f.id.clone(),
                label: f.label.clone(),
                unit: f.unit,
                old: os,
                new: ns,
                ratio,
                ratio_ci: ci,
                verdict,
                note,
            });
        }
    }

    let mut warnings = Vec::new();
    let machines = |runs: &[(PathBuf, RunResult)]| -> BTreeSet<String> {
        runs.iter()
            .map(|(_, r)| format!("{} ({})", r.machine.hostname, r.machine.cpu_model))
            .collect()
    };
    let (mn, mo) = (machines(new), machines(old));
    if mn != mo {
        warnings.push(format!(
            "the two sides ran on different machines (new: {}; old: {}): the changes include the machines'",
            mn.into_iter().collect::<Vec<_>>().join(", "),
            mo.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if !ignored_keys.is_empty() {
        warnings.push(format!(
            "configuration keys only one side has, left out of the matching: {}",
            ignored_keys.join(", ")
        ));
    }
    Ok(Against {
        keys: shown,
        ignored_keys,
        new_runs: new.len(),
        old_runs: old.len(),
        matched: matched.len(),
        only_new: gn.len() - matched.len(),
        only_old: go
            .iter()
            .filter(|(k, _)| !gn.iter().any(|(kn, _)| kn == k))
            .count(),
        threshold,
        changes,
        warnings,
    })
}

fn verdict_of(
    ratio: Option<f64>,
    ci: Option<Interval>,
    f: &Figure,
    threshold: f64,
) -> (Verdict, Option<String>) {
    let Some(r) = ratio else {
        return (
            Verdict::WithinNoise,
            Some("the old median is 0: no ratio".into()),
        );
    };
    let (change, note) = match judge(r, ci, f.better, threshold) {
        Change::Unknown => {
            // No interval: the threshold alone decides.
            let c = if (r - 1.0).abs() < threshold {
                Change::Noise
            } else {
                judge(r, Some(Interval { lo: r, hi: r }), f.better, threshold)
            };
            (
                c,
                Some("one run on a side: no interval, the threshold alone".into()),
            )
        }
        c => (c, None),
    };
    let v = match change {
        Change::Better => Verdict::Improved,
        Change::Worse => Verdict::Regressed,
        _ => Verdict::WithinNoise,
    };
    (v, note)
}
