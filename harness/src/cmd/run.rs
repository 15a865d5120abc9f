//! `lab run`: one run of the simulated VM. A header before it (what runs
//! where), progress on stderr, the summary after it, a result file in
//! `--out`, and optionally a trace file.

use crate::cmd::args::{parse_impl, OutputArgs, VmArgs};
use crate::record::error::{LabError, LabResult, EXIT_INTERRUPTED, EXIT_OK, EXIT_VIOLATION};
use crate::record::result::RunResult;
use crate::render::terminal as output;
use crate::session::progress::Progress;
use crate::session::run::{execute, save, stop_flag};
use crate::session::trace::{self, TraceWriter};
use clap::Args;
use rmap_impls::ImplKind;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Implementation (see `lab list`).
    #[arg(long = "impl", default_value = "lockless", value_parser = parse_impl)]
    pub impl_kind: ImplKind,
    /// vCPU threads.
    #[arg(long, default_value_t = 4)]
    pub vcpus: u32,
    #[command(flatten)]
    pub vm: VmArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Print the result JSON on stdout instead of the summary table.
    #[arg(long)]
    pub json: bool,
    /// Write a Chrome trace-event file (open it in Perfetto or chrome://tracing).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Trace one operation in N of each kind (with everything inside it).
    #[arg(long, value_name = "N", default_value_t = trace::DEFAULT_SAMPLE_ONE_IN)]
    pub trace_sample: u32,
    /// Most events a trace file holds; later ones are dropped and counted.
    #[arg(long, value_name = "N", default_value_t = trace::DEFAULT_MAX_EVENTS)]
    pub trace_max_events: usize,
}

pub fn main(args: RunArgs) -> LabResult<i32> {
    let cfg = args.vm.to_config(args.impl_kind, args.vcpus)?;
    if args.trace_sample == 0 {
        return Err(LabError::usage("--trace-sample must be at least 1"));
    }
    let trace = args.trace.as_deref().map(|p| {
        TraceWriter::new(p)
            .sample_one_in(args.trace_sample)
            .max_events(args.trace_max_events)
            .process_name(&format!(
                "rmap-lab {} {}, {} vCPUs",
                cfg.impl_kind, cfg.workload, cfg.vcpus
            ))
            .other_data("impl", cfg.impl_kind.name().into())
    });
    stop_flag();
    if !args.json {
        output::run_header(&cfg);
    }
    let progress = Progress::new(args.out.no_progress);
    let (_report, result) = execute(
        &cfg,
        &args.out.perf,
        trace.as_ref(),
        &[],
        &progress,
        cfg.impl_kind.name(),
    )?;
    let path = save(&args.out.out, &result)?;
    let trace_summary =
        match (&trace, &args.trace) {
            (Some(t), Some(p)) => Some(t.finish().map_err(|e| {
                LabError::failed(format!("{}: cannot write trace: {e}", p.display()))
            })?),
            _ => None,
        };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).expect("a result always serialises")
        );
    } else {
        output::run_summary(&result);
        println!("result: {}", path.display());
        if let Some(t) = &trace_summary {
            println!(
                "trace:  {} ({} events{}, {:.1} MB, one operation in {} of each kind)",
                t.path.display(),
                t.events,
                if t.dropped > 0 {
                    format!(", {} dropped at the bound", t.dropped)
                } else {
                    String::new()
                },
                t.bytes as f64 / 1e6,
                args.trace_sample
            );
        }
    }
    Ok(exit_status(&result))
}

/// 1 when the oracle found a violation, else 130 (as for SIGINT) when the
/// run was interrupted, else 0.
fn exit_status(r: &RunResult) -> i32 {
    if !r.verdict.ok {
        EXIT_VIOLATION
    } else if r.interrupted {
        EXIT_INTERRUPTED
    } else {
        EXIT_OK
    }
}
