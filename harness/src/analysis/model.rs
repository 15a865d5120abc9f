//! The comparison itself: groups of runs, each figure's median and range
//! over repeats, and its ratio to the baseline implementation at the same
//! parameters. Exporters and the HTML report only print a [`Comparison`].
//!
//! A ratio is `median(group) / median(baseline group)`, where the baseline
//! group is the baseline implementation's group with the same parameters
//! (every grouping key but the implementation). It is absent when there is
//! no such group, when either side has no value, or when the baseline's
//! median is zero (restarts of `mmu-lock`, which never restarts). Whether a
//! ratio above 1 is good depends on the figure ([`Figure::better`]).
//!
//! Each ratio carries its 95% confidence interval over the repeats of both
//! groups and what it says ([`Change`], `interval`): better or worse only
//! when the interval excludes 1, within noise otherwise, unknown without
//! repeats, and never judged for a figure that is not comparable across
//! designs. Renderers colour only better and worse. The headline
//! (`headline`) is built from the same cells.

use super::figure::Figure;
use super::group::{group_runs, mmu_lock_used, Params};
use super::interval::{judge, ratio_interval, Change, Interval};
use crate::record::error::{LabError, LabResult};
use crate::record::result::RunResult;
use std::path::PathBuf;

/// What to compare.
#[derive(Clone, Debug)]
pub struct Options {
    /// The implementation ratios are taken against; `None`: `mmu-lock` when
    /// present, else the first implementation of the inputs.
    pub baseline: Option<String>,
    /// The figures, in column order ([`Figure::defaults`] for the table).
    pub figures: Vec<Figure>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            baseline: None,
            figures: Figure::defaults(),
        }
    }
}

/// Median and range of one figure over the repeats of a group.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Runs that had a value.
    pub n: usize,
    /// The run-to-run spread, (max - min) / |median|: how far the figure
    /// moves between repeats (a headline figure should stay within 0.10
    /// over 5 repeats); absent for a median of 0.
    pub relative_spread: Option<f64>,
}

impl Stats {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Stats> {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let median = super::interval::median(&v)?;
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Stats {
            median,
            min,
            max,
            n: v.len(),
            relative_spread: (median != 0.0).then(|| (max - min) / median.abs()),
        })
    }
}

/// One figure of one row.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Cell {
    pub stats: Option<Stats>,
    /// Median over the baseline's median at the same parameters.
    pub ratio: Option<f64>,
    /// The ratio's 95% confidence interval over both groups' repeats.
    pub ratio_ci: Option<Interval>,
    /// What the ratio says (`None` on baseline rows and without a ratio).
    pub change: Option<Change>,
    /// The figure of each repeat that had it.
    #[serde(skip)]
    pub values: Vec<f64>,
}

/// One group: an implementation at one configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub impl_name: String,
    pub params: Params,
    /// The result files of the repeats.
    pub runs: Vec<PathBuf>,
    /// Indices of the repeats in the runs given to [`compare`].
    pub run_indices: Vec<usize>,
    pub is_baseline: bool,
    /// The baseline row with the same parameters exists.
    pub has_baseline: bool,
    /// One per figure of the comparison, in order.
    pub cells: Vec<Cell>,
    /// The `mmu_lock` kind an `auto` choice gave these runs
    /// (`group::mmu_lock_used`), which tables and plots mark.
    pub mmu_lock_used: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub baseline: String,
    /// Grouping keys, the row parameters' keys (see `group`).
    pub keys: Vec<String>,
    /// Configuration every input shares.
    pub common: Vec<(String, serde_json::Value)>,
    /// Implementations in display order.
    pub impls: Vec<String>,
    /// Figures that at least one run has, in the requested order.
    pub figures: Vec<Figure>,
    /// Requested figures no run has (dropped from the table).
    pub missing: Vec<Figure>,
    pub rows: Vec<Row>,
    /// Dirty logging over idle for the groups that ran both
    /// (`interference`).
    pub interference: Vec<super::interference::Interference>,
    /// Why some numbers are suspect (see `warnings`), by kind.
    pub warnings: Vec<super::warnings::Warning>,
    /// Each design against the baseline in a few sentences (`headline`).
    pub headline: super::headline::Headline,
}

impl Row {
    /// The median of `fig` over this row's repeats (`runs` as given to
    /// [`compare`]), or `None` when no repeat has a value.
    pub fn median(&self, fig: &Figure, runs: &[(PathBuf, RunResult)]) -> Option<f64> {
        let v: Vec<f64> = self
            .run_indices
            .iter()
            .filter_map(|&i| fig.value(&runs[i].1))
            .collect();
        Stats::of(&v).map(|s| s.median)
    }
}

impl Comparison {
    /// The row of `impl_name` at `params`.
    pub fn row(&self, impl_name: &str, params: &Params) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.impl_name == impl_name && &r.params == params)
    }

    /// The index of the figure `id` among [`Comparison::figures`].
    pub fn figure_index(&self, id: &str) -> Option<usize> {
        self.figures.iter().position(|f| f.id == id)
    }
}

/// Compare `runs` (see the module doc). An empty input, or a `--baseline`
/// no input ran, is a usage error.
pub fn compare(runs: &[(PathBuf, RunResult)], opts: &Options) -> LabResult<Comparison> {
    if runs.is_empty() {
        return Err(LabError::usage("no result files to compare"));
    }
    let names: Vec<&str> = runs.iter().map(|(_, r)| r.impl_name.as_str()).collect();
    let baseline = match &opts.baseline {
        Some(b) if names.contains(&b.as_str()) => b.clone(),
        Some(b) => {
            let mut present: Vec<&str> = names.clone();
            present.dedup();
            present.sort();
            present.dedup();
            return Err(LabError::usage(format!(
                "baseline '{b}' is not among the inputs (they ran: {})",
                present.join(", ")
            )));
        }
        None if names.contains(&"mmu-lock") => "mmu-lock".to_string(),
        None => names[0].to_string(),
    };
    let grouping = group_runs(runs, Some(&baseline));

    // Values per group and figure, then drop the figures nobody has.
    let values: Vec<Vec<Vec<f64>>> = grouping
        .groups
        .iter()
        .map(|g| {
            opts.figures
                .iter()
                .map(|f| {
                    g.runs
                        .iter()
                        .filter_map(|&i| f.value(&runs[i].1))
                        .filter(|v| v.is_finite())
                        .collect()
                })
                .collect()
        })
        .collect();
    let keep: Vec<bool> = (0..opts.figures.len())
        .map(|j| values.iter().any(|row| !row[j].is_empty()))
        .collect();
    let pick = |fs: &[Figure], want: bool| -> Vec<Figure> {
        fs.iter()
            .zip(&keep)
            .filter(|(_, k)| **k == want)
            .map(|(f, _)| f.clone())
            .collect()
    };
    let figures = pick(&opts.figures, true);
    let missing = pick(&opts.figures, false);
    let values: Vec<Vec<Vec<f64>>> = values
        .into_iter()
        .map(|row| {
            row.into_iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| v)
                .collect()
        })
        .collect();

    let base_index = |params: &Params| {
        grouping
            .groups
            .iter()
            .position(|g| g.impl_name == baseline && &g.params == params)
    };
    let rows: Vec<Row> = grouping
        .groups
        .iter()
        .enumerate()
        .map(|(gi, g)| {
            let b = base_index(&g.params).filter(|_| g.impl_name != baseline);
            let cells = values[gi]
                .iter()
                .enumerate()
                .map(|(j, v)| {
                    let stats = Stats::of(v);
                    let base = b.map(|b| &values[b][j]);
                    let base_stats = base.and_then(|v| Stats::of(v));
                    let ratio = match (stats, base_stats) {
                        (Some(s), Some(bs)) if bs.median != 0.0 => Some(s.median / bs.median),
                        _ => None,
                    };
                    let ratio_ci = ratio.and_then(|_| ratio_interval(v, base?));
                    let change = ratio.map(|r| {
                        if figures[j].comparable {
                            judge(r, ratio_ci, figures[j].better, 0.0)
                        } else {
                            Change::NotComparable
                        }
                    });
                    Cell {
                        stats,
                        ratio: if g.impl_name == baseline {
                            stats.filter(|s| s.median != 0.0).map(|_| 1.0)
                        } else {
                            ratio
                        },
                        ratio_ci,
                        change,
                        values: v.clone(),
                    }
                })
                .collect();
            Row {
                impl_name: g.impl_name.clone(),
                params: g.params.clone(),
                runs: g.runs.iter().map(|&i| runs[i].0.clone()).collect(),
                run_indices: g.runs.clone(),
                is_baseline: g.impl_name == baseline,
                has_baseline: base_index(&g.params).is_some(),
                cells,
                mmu_lock_used: mmu_lock_used(runs, &g.runs),
            }
        })
        .collect();

    let mut c = Comparison {
        baseline,
        keys: grouping.keys,
        common: grouping.common,
        impls: grouping.impls,
        figures,
        missing,
        interference: super::interference::pairs(&rows, runs),
        rows,
        warnings: Vec::new(),
        headline: super::headline::Headline {
            baseline: String::new(),
            scopes: Vec::new(),
        },
    };
    c.warnings = super::warnings::warnings(&c, runs);
    c.headline = super::headline::headline(&c, runs);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_take_the_median_of_repeats() {
        let s = Stats::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        // Even count: the mean of the middle two; non-finite values ignored.
        let s = Stats::of(&[4.0, 1.0, f64::NAN, 2.0, 10.0]).unwrap();
        assert_eq!((s.median, s.n, s.max - s.min), (3.0, 4, 9.0));
        assert_eq!(s.relative_spread, Some(3.0));
        assert!(Stats::of(&[]).is_none());
    }
}
