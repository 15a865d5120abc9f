//! `lab compare A B ...`: result files side by side, with ratios against a
//! baseline implementation (the model is `analysis`, the formats
//! `render::export`).

use crate::analysis::{compare, Figure, Options};
use crate::record::error::{LabError, LabResult, EXIT_OK};
use crate::record::inputs::load_inputs;
use crate::render::export;
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
    /// round_p50, tlb_flush_p99, restarts, lost_writes, aging_pass_p50, or
    /// METRIC:STAT (e.g. mmu_lock.wait:p99), throughput:KEY, counter:NAME
    /// [default: the key figures the runs have].
    #[arg(long, value_name = "SPEC", value_delimiter = ',', value_parser = Figure::parse)]
    pub metric: Vec<Figure>,
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
    let exporter = export::by_name(&args.format).map_err(LabError::usage)?;
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
    Ok(EXIT_OK)
}
