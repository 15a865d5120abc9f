//! `lab compare A B ...`: result files side by side, with ratios against a
//! baseline implementation, headline first (the model is `analysis`, the
//! formats `render::export`).
//!
//! `lab compare NEW --against OLD` compares a sweep with an older one of the
//! same configurations instead (`analysis::against`): per figure improved,
//! regressed or within noise, with `--fail-on-regression` for scripts.

use crate::analysis::against::{against, Verdict};
use crate::analysis::{compare, Figure, Options};
use crate::record::error::{LabError, LabResult, EXIT_OK, EXIT_REGRESSION};
use crate::record::inputs::load_inputs;
use crate::render::export::{self, TextFormat};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Result files, or directories searched recursively for them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Compare PATH (new) with these results (old) of the same
    /// configurations, figure by figure, instead of designs with each other.
    #[arg(long, value_name = "OLD", num_args = 1.., action = clap::ArgAction::Append)]
    pub against: Vec<PathBuf>,
    /// With --against: exit 1 when any figure regressed.
    #[arg(long, requires = "against")]
    pub fail_on_regression: bool,
    /// With --against: a change smaller than this is within noise, whatever
    /// its interval (percent).
    #[arg(long, value_name = "PCT", default_value_t = 5.0, requires = "against")]
    pub noise_threshold: f64,
    /// Implementation the ratios are taken against [default: mmu-lock when
    /// present, else the first input's].
    #[arg(long, value_name = "IMPL", conflicts_with = "against")]
    pub baseline: Option<String>,
    /// How the comparison is printed.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = TextFormat::Table)]
    pub format: TextFormat,
    /// Every warning's details (and with --against every figure), not one
    /// line per kind.
    #[arg(long)]
    pub verbose: bool,
    /// Figures to show, comma-separated: writes, fault_slow_p99, wp_gfn_p99,
    /// round_p50, tlb_flush_p99, restarts, lost_writes, aging_pass_p50, or
    /// METRIC:STAT (e.g. mmu_lock.wait:p99), throughput:KEY, counter:NAME
    /// [default: the key figures the runs have].
    #[arg(long, value_name = "SPEC", value_delimiter = ',', value_parser = Figure::parse)]
    pub metric: Vec<Figure>,
}

pub fn main(args: CompareArgs) -> LabResult<i32> {
    let runs = load_inputs(&args.paths)?;
    let explicit = !args.metric.is_empty();
    let figures = if explicit {
        args.metric.clone()
    } else {
        Figure::defaults()
    };
    if !args.against.is_empty() {
        if !(0.0..100.0).contains(&args.noise_threshold) {
            return Err(LabError::usage(format!(
                "--noise-threshold {} is not a percentage below 100",
                args.noise_threshold
            )));
        }
        let old = load_inputs(&args.against)?;
        let a = against(&runs, &old, &figures, args.noise_threshold / 100.0)?;
        print!("{}", export::against::render(&a, args.format, args.verbose));
        if !args.format.embeds_warnings() {
            for w in &a.warnings {
                eprintln!("lab: warning: {w}");
            }
        }
        let regressed = a.count(Verdict::Regressed);
        return Ok(if args.fail_on_regression && regressed > 0 {
            EXIT_REGRESSION
        } else {
            EXIT_OK
        });
    }
    let opts = Options {
        baseline: args.baseline,
        figures,
    };
    let c = compare(&runs, &opts)?;
    print!("{}", args.format.render(&c, args.verbose));
    if explicit {
        for f in &c.missing {
            eprintln!("lab: warning: no input has '{}'", f.id);
        }
    }
    if !args.format.embeds_warnings() {
        for w in export::stderr_lines(&c, args.verbose) {
            eprintln!("{w}");
        }
    }
    Ok(EXIT_OK)
}
