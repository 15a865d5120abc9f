//! `lab compare A B ...`: result files side by side, with ratios against a
//! baseline implementation.
//!
//! The inputs are result files or directories searched recursively
//! (`results::load_all`). Runs are grouped by configuration (`group`): the
//! implementation plus every configuration key that differs between the
//! inputs; several runs of one group are repeats. For each group and each
//! figure (`figure`: guest writes/s, slow-fault p99, write-protect walk
//! p99, round p50, TLB-flush wait p99, restarts per 1,000 walks, lost
//! writes) the comparison (`model`) keeps the median and range over
//! repeats and the ratio to the baseline implementation's group at the same
//! parameters. `warnings` says where a ratio is within the noise of the
//! repeats, and `export` prints the result as a terminal table, markdown,
//! CSV or JSON (and as the HTML fragment of `lab plot`'s report).
//!
//! Where the inputs ran a dirty-logging workload and `idle` at otherwise
//! the same parameters, `interference` gives the vCPU slow-fault p99 and
//! guest-write ratios between the two (below the table, and in JSON).
//!
//! Other commands call [`compare`] on runs they already hold (the report,
//! `lab sweep`) and print with [`crate::render::export::by_name`] or [`export::html`].

pub mod figure;
pub mod group;
pub mod interference;
pub mod model;
pub mod series;
pub mod warnings;

pub use figure::Figure;
pub use model::{compare, Comparison, Options, Stats};

use crate::record::error::{LabError, LabResult};
use crate::record::result as results;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Result files, or directories searched recursively for them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Implementation the ratios are taken against [default: mmu-lock when
    /// present, else the first input's].
    #[arg(long, value_name = "IMPL")]
    pub baseline: Option<String>,
    /// Output format: table, markdown, csv or json.
    #[arg(long, default_value = "table", value_parser = parse_format)]
    pub format: String,
    /// Figures to show, comma-separated: writes, fault_slow_p99, wp_gfn_p99,
    /// round_p50, tlb_flush_p99, restarts, lost_writes, or METRIC:STAT
    /// (e.g. mmu_lock.wait:p99), throughput:KEY, counter:NAME [default: the
    /// seven key figures].
    #[arg(long, value_name = "SPEC", value_delimiter = ',', value_parser = Figure::parse)]
    pub metric: Vec<Figure>,
}

/// The runs in `paths` (files, or directories searched recursively); none
/// at all is a usage error. What `lab compare` and `lab plot` read.
pub fn load_inputs(paths: &[PathBuf]) -> LabResult<Vec<(PathBuf, crate::record::result::RunResult)>> {
    let runs = results::load_all(paths)?;
    if runs.is_empty() {
        return Err(LabError::usage(format!(
            "no result files in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(runs)
}

fn parse_format(s: &str) -> Result<String, String> {
    crate::render::export::by_name(s).map(|e| e.name.to_string())
}

pub fn main(args: CompareArgs) -> LabResult<i32> {
    let runs = load_inputs(&args.paths)?;
    let explicit = !args.metric.is_empty();
    let opts = Options {
        baseline: args.baseline,
        figures: if explicit {
            args.metric
        } else {
            Figure::defaults()
        },
    };
    let c = compare(&runs, &opts)?;
    let exporter = crate::render::export::by_name(&args.format).map_err(LabError::usage)?;
    print!("{}", (exporter.render)(&c));
    if explicit {
        for f in &c.missing {
            eprintln!("lab: warning: no input has '{}'", f.id);
        }
    }
    if !exporter.embeds_warnings {
        for w in &c.warnings {
            eprintln!("lab: warning: {w}");
        }
    }
    Ok(crate::record::error::EXIT_OK)
}
