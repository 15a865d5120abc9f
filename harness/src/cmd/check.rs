//! `lab check`: the correctness torture. Runs the migration
//! oracle over implementations and vCPU counts, short, and exits 1 when any
//! run lost a write or left an rmap inconsistent.
//!
//! The defaults are tuned to make races likely rather than to be
//! representative: a small memslot (many vCPUs on few pages), frequent zaps
//! (many slow faults, hence rmap adds and removes under the walkers), and
//! short runs. With `--inject-bug NAME` it runs the bug's twin of every
//! requested design the bug applies to, and records in
//! `<out>/bugs-reached.json` whether the oracle caught it on this machine,
//! which `lab list` then reports.

use crate::cmd::args::{parse_count_list, parse_impl_list, CountList, ImplList, VmArgs};
use crate::record::check::{record_bug, CheckRow};
use crate::record::error::{LabError, LabResult, EXIT_OK, EXIT_VIOLATION};
use crate::render;
use crate::session::perf::PerfSpec;
use crate::session::progress::Progress;
use crate::session::run::{execute, stopped};
use clap::Args;
use rmap_impls::ImplKind;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(
    mut_arg("duration", |a| a.default_value("2s")),
    mut_arg("warmup", |a| a.default_value("100ms")),
    mut_arg("mem", |a| a.default_value("8MiB")),
    mut_arg("zap_rate", |a| a.default_value("20000")),
)]
pub struct CheckArgs {
    /// Implementations: correct (every design but lockless), all, or a list.
    #[arg(long = "impl", default_value = "correct", value_parser = parse_impl_list)]
    pub impls: ImplList,
    /// vCPU counts to run each implementation at.
    #[arg(long, default_value = "2,8", value_parser = parse_count_list)]
    pub vcpus: CountList,
    /// Runs of each (implementation, vCPUs) pair, with seeds seed, seed+1, ...
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    #[command(flatten)]
    pub vm: VmArgs,
    /// Where `bugs-reached.json` is kept.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// No progress bar on stderr.
    #[arg(long)]
    pub no_progress: bool,
    /// Print the outcome as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn main(args: CheckArgs) -> LabResult<i32> {
    let bug = args.vm.inject_bug;
    let impls: Vec<ImplKind> = match bug {
        Some(b) => {
            let v: Vec<ImplKind> = args
                .impls
                .0
                .iter()
                .copied()
                .filter(|k| b.applies_to().contains(k))
                .collect();
            if v.is_empty() {
                let to: Vec<_> = b.applies_to().iter().map(|k| k.name()).collect();
                return Err(LabError::usage(format!(
                    "bug '{b}' applies to none of the requested implementations (it applies to: {})",
                    to.join(", ")
                )));
            }
            v
        }
        None => args.impls.0.clone(),
    };
    if args.repeat == 0 {
        return Err(LabError::usage("--repeat must be at least 1"));
    }
    // Validate every configuration before running any.
    let mut plan = Vec::new();
    for &k in &impls {
        for &v in &args.vcpus.0 {
            for r in 0..args.repeat {
                let mut cfg = args.vm.to_config(k, v)?;
                cfg.seed = cfg.seed.wrapping_add(r as u64);
                plan.push(cfg);
            }
        }
    }
    crate::session::run::stop_flag();
    let progress = Progress::new(args.no_progress).with_overall(plan.len() as u64, "check");
    let mut rows = Vec::new();
    for cfg in &plan {
        if stopped() {
            break;
        }
        let label = format!("{} x{}", cfg.impl_kind, cfg.vcpus);
        let (report, _result) = execute(cfg, &PerfSpec::Off, None, &[], &progress, &label)?;
        let c = &report.counters;
        let row = CheckRow {
            impl_name: cfg.impl_kind.name().into(),
            vcpus: cfg.vcpus,
            seed: cfg.seed,
            rounds_checked: report.verdict.rounds_checked,
            lost_writes: report.verdict.lost_writes,
            rmap_inconsistencies: report.verdict.rmap_inconsistencies,
            restarts: c.walk.total_restarts(),
            walks: c.walk.walks,
            interrupted: report.interrupted,
            ok: report.verdict.ok(),
        };
        progress.step(&format!(
            "{label}: {}",
            if row.ok { "ok" } else { "LOST WRITES" }
        ));
        rows.push(row);
    }
    progress.finish();
    if let Some(b) = bug {
        if !stopped() {
            record_bug(&args.out, b, &rows)?;
        }
    }
    let failed = rows.iter().filter(|r| !r.ok).count();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "inject_bug": bug.map(|b| b.name()),
                "workload": args.vm.point()?.workload.name(),
                "runs": rows,
                "ok": failed == 0,
            })
        );
    } else {
        print!(
            "{}",
            render::check::table(
                &rows,
                bug,
                args.vm.point().map(|p| p.workload.name()).unwrap_or("?"),
                args.vm.duration,
                args.vm.mem,
                stopped()
            )
        );
    }
    Ok(if failed == 0 { EXIT_OK } else { EXIT_VIOLATION })
}
