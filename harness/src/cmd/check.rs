//! `lab check`: the correctness torture. Runs implementations over
//! workloads and vCPU counts, short, perturbed, with every write-protect
//! walk checked for a missed spte and every round by the migration oracle,
//! and exits 1 when any run missed an spte, lost a write or left an rmap
//! inconsistent. A run ends at its first violation.
//!
//! The defaults are tuned to make races likely rather than to be
//! representative: the `torture` workload (the flaw's shape) and
//! `dirty-log`, a small memslot (many vCPUs on few pages), small rmaps
//! (three aliases, `desc_ext` 2), frequent zaps, perturbation at 5% of a
//! walker's perturbation points and 0.5% of the others, and short runs. With `--inject-bug NAME` it runs the
//! bug's twin of every requested design the bug applies to; with `--impl
//! lockless` (and no bug) the faithful design. Either way it records in
//! `<out>/bugs-reached.json` which checks caught it on this machine and the
//! median time to the first detection, which `lab list` then reports.

use crate::cmd::args::{impl_parser, impls, ImplSel, VmArgs, RESULTS_DIR};
use crate::record::check::{record_bug, CheckRow, FLAW_KEY};
use crate::record::error::{LabError, LabResult, EXIT_OK, EXIT_VIOLATION};
use crate::record::outputs;
use crate::render;
use crate::session::perf::PerfSpec;
use crate::session::progress::Progress;
use crate::session::run::{execute, stopped};
use clap::Args;
use rmap_impls::ImplKind;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(
    mut_arg("workload", |a| a.default_value("torture,dirty-log")),
    mut_arg("duration", |a| a.default_value("2s")),
    mut_arg("warmup", |a| a.default_value("100ms")),
    mut_arg("mem", |a| a.default_value("8MiB")),
    mut_arg("aliases", |a| a.default_value("3")),
    mut_arg("desc_ext", |a| a.default_value("2")),
    mut_arg("zap_rate", |a| a.default_value("20000")),
    mut_arg("hot_gfns", |a| a.default_value("4")),
    mut_arg("perturb", |a| a.default_value("5%")),
)]
pub struct CheckArgs {
    /// Implementations: correct (every design but lockless), all, or a list.
    #[arg(long = "impl", value_name = "NAME", default_value = "correct", value_delimiter = ',', value_parser = impl_parser())]
    pub impls: Vec<ImplSel>,
    /// vCPU counts to run each implementation at.
    #[arg(long, value_name = "N", default_value = "2,8", value_delimiter = ',')]
    pub vcpus: Vec<u32>,
    /// Runs of each (implementation, workload, vCPUs), with seeds seed, seed+1, ...
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: u32,
    #[command(flatten)]
    pub vm: VmArgs,
    /// Directory `bugs-reached.json` is kept in [default: results].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No progress on stderr: neither the bar (on a terminal) nor the plain
    /// progress lines (otherwise).
    #[arg(long)]
    pub no_progress: bool,
    /// Print the outcome as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn main(args: CheckArgs) -> LabResult<i32> {
    let bug = args.vm.inject_bug;
    let designs: Vec<ImplKind> = match bug {
        Some(b) => {
            let v: Vec<ImplKind> = impls(&args.impls)
                .into_iter()
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
        None => impls(&args.impls),
    };
    if args.repeat == 0 {
        return Err(LabError::usage("--repeat must be at least 1"));
    }
    // Validate every configuration before running any.
    let mut plan = Vec::new();
    for &k in &designs {
        for p in args.vm.points() {
            for &v in &args.vcpus {
                for r in 0..args.repeat {
                    let mut cfg = args.vm.to_config_at(k, v, p)?;
                    cfg.seed = cfg.seed.wrapping_add(r as u64);
                    cfg.spte_check = true;
                    cfg.stop_on_violation = true;
                    cfg.min_rounds = 1;
                    plan.push(cfg);
                }
            }
        }
    }
    // What the runs measure, for `lab list`: the bug's twins, or the flaw
    // of the faithful design.
    let key = match bug {
        Some(b) => Some(b.name()),
        None if designs == [ImplKind::Lockless] => Some(FLAW_KEY),
        None => None,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(RESULTS_DIR));
    if key.is_some() {
        outputs::prepare_dir("--out", &out)?;
    }
    crate::session::run::stop_flag();
    let progress =
        Progress::new(args.no_progress, "lab check").with_overall(plan.len() as u64, "check");
    let mut rows = Vec::new();
    for cfg in &plan {
        if stopped() {
            break;
        }
        let label = format!("{} {} x{}", cfg.impl_kind, cfg.workload, cfg.vcpus);
        let (report, _result) = execute(cfg, &PerfSpec::Off, None, &[], &progress, &label)?;
        let c = &report.counters;
        let v = &report.verdict;
        let row = CheckRow {
            impl_name: cfg.impl_kind.name().into(),
            workload: cfg.workload.name().into(),
            vcpus: cfg.vcpus,
            seed: cfg.seed,
            rounds_checked: v.rounds_checked,
            lost_writes: v.lost_writes,
            missed_sptes: v.sptes_checked.then_some(v.missed_sptes),
            rmap_inconsistencies: v.rmap_inconsistencies,
            restarts: c.walk.total_restarts(),
            walks: c.walk.walks,
            first_violation_s: report.first_violation.map(|d| d.as_secs_f64()),
            perturbed: cfg.perturb.is_some(),
            interrupted: report.interrupted,
            inconclusive: v.ok()
                && !report.interrupted
                && cfg.dirty_logging()
                && v.rounds_checked == 0,
            ok: v.ok(),
        };
        progress.step(&format!("{label}: {}", row.verdict()));
        rows.push(row);
    }
    progress.finish();
    if let Some(key) = key {
        if !stopped() && !rows.is_empty() {
            let cap = (args.vm.duration + args.vm.warmup).as_secs_f64();
            let argv: Vec<String> = std::env::args().skip(1).collect();
            record_bug(&out, key, &rows, cap, format!("lab {}", argv.join(" ")))?;
        }
    }
    let failed = rows.iter().filter(|r| !r.ok).count();
    let inconclusive = rows.iter().filter(|r| r.inconclusive).count();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "inject_bug": bug.map(|b| b.name()),
                "workloads": args.vm.points().iter().map(|p| p.workload.name()).collect::<Vec<_>>(),
                "perturb": (args.vm.perturb > 0.0).then_some(args.vm.perturb),
                "runs": rows,
                "median_detection_s": crate::record::check::median_detection(&rows),
                "ok": failed == 0 && inconclusive == 0,
            })
        );
    } else {
        print!(
            "{}",
            render::check::table(
                &rows,
                bug,
                args.vm.duration,
                args.vm.mem,
                args.vm.perturb,
                stopped()
            )
        );
    }
    Ok(if failed == 0 && inconclusive == 0 {
        EXIT_OK
    } else {
        EXIT_VIOLATION
    })
}
