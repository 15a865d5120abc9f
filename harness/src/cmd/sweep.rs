//! `lab sweep`: a matrix of runs into one directory, then its plots and
//! report.
//!
//! The matrix is implementations x vCPU counts x the listed values of
//! `--workload`, `--aliases` and `--desc-ext`, each run `--repeat` times.
//! Runs go in rounds of repeats (every configuration once, then every
//! configuration again), so that a slow drift of the machine spreads over
//! all configurations instead of biasing the ones that ran last.
//!
//! Each run's file name is derived from its configuration and repeat
//! (`<impl>-<workload>-a<aliases>-e<desc_ext>-<N>v-r<rep>.json`), so
//! `--resume` can skip the runs already written: it reads each existing
//! file and keeps it when it parses as a complete (not interrupted) result.
//! `sweep.json` records the matrix. At the end the directory's runs are
//! plotted into `<dir>/plots/` with `index.html`, and the comparison table
//! is printed.

use crate::analysis as compare;
use crate::cmd::args::{
    parse_count_list, parse_impl_list, CountList, ImplList, OutputArgs, Point, VmArgs,
};
use crate::record::error::{LabError, LabResult, EXIT_OK, EXIT_VIOLATION};
use crate::record::result::{self as results, write_atomic, RunResult};
use crate::render::plot::{self, parse_formats, Formats};
use crate::session::progress::Progress;
use crate::session::run::{execute, stopped};
use clap::Args;
use rmap_impls::ImplKind;
use rmap_workloads::Config;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Implementations: all, correct, or a list.
    #[arg(long = "impl", default_value = "all", value_parser = parse_impl_list)]
    pub impls: ImplList,
    /// vCPU counts.
    #[arg(long, default_value = "1,2,4,8,16,32", value_parser = parse_count_list)]
    pub vcpus: CountList,
    /// Runs of every configuration (seeds seed, seed+1, ...).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Skip runs whose result file is already in the directory.
    #[arg(long)]
    pub resume: bool,
    /// Sweep directory [default: results/sweep-<UTC stamp>].
    #[arg(long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Plot formats, comma-separated (svg, png), or none.
    #[arg(long, default_value = "svg,png", value_parser = parse_plot_formats)]
    pub format: Formats,
    /// Implementation the ratios are taken against [default: mmu-lock when present].
    #[arg(long, value_name = "IMPL")]
    pub baseline: Option<String>,
    #[command(flatten)]
    pub vm: VmArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

fn parse_plot_formats(s: &str) -> Result<Formats, String> {
    if s == "none" {
        Ok(Formats(Vec::new()))
    } else {
        parse_formats(s)
    }
}

/// One run of the matrix.
#[derive(Clone, Debug)]
pub struct Planned {
    pub cfg: Config,
    pub repeat: u32,
    pub file: PathBuf,
}

/// The file a run of the sweep is written to.
pub fn run_file(dir: &Path, impl_kind: ImplKind, vcpus: u32, p: Point, repeat: u32) -> PathBuf {
    dir.join(format!(
        "{}-{}-a{}-e{}-{}v-r{}.json",
        impl_kind.name(),
        p.workload.name(),
        p.aliases,
        p.desc_ext,
        vcpus,
        repeat
    ))
}

/// The whole matrix, validated, in run order (repeats outermost).
pub fn plan(args: &SweepArgs, dir: &Path) -> LabResult<Vec<Planned>> {
    if args.repeat == 0 {
        return Err(LabError::usage("--repeat must be at least 1"));
    }
    let mut v = Vec::new();
    for repeat in 0..args.repeat {
        for p in args.vm.points() {
            for &vcpus in &args.vcpus.0 {
                for &k in &args.impls.0 {
                    let mut cfg = args.vm.to_config_at(k, vcpus, p)?;
                    cfg.seed = cfg.seed.wrapping_add(repeat as u64);
                    v.push(Planned {
                        file: run_file(dir, k, vcpus, p, repeat),
                        cfg,
                        repeat,
                    });
                }
            }
        }
    }
    Ok(v)
}

/// Whether a run's file is already there and whole.
fn done(file: &Path) -> bool {
    RunResult::load(file).is_ok_and(|r| !r.interrupted)
}

pub fn main(args: SweepArgs) -> LabResult<i32> {
    let dir = args.dir.clone().unwrap_or_else(|| {
        let (_, stamp) = results::utc_stamps(std::time::SystemTime::now());
        args.out.out.join(format!("sweep-{}", &stamp[..15]))
    });
    if dir.exists() && !args.resume && std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some())
    {
        return Err(LabError::usage(format!(
            "{}: the sweep directory is not empty (use --resume to continue it, or another --dir)",
            dir.display()
        )));
    }
    let planned = plan(&args, &dir)?;
    let todo: Vec<&Planned> = planned
        .iter()
        .filter(|p| !(args.resume && done(&p.file)))
        .collect();
    std::fs::create_dir_all(&dir)
        .map_err(|e| LabError::failed(format!("{}: cannot create: {e}", dir.display())))?;
    write_manifest(&dir, &args, planned.len())?;
    crate::session::run::stop_flag();

    let oversub = planned
        .iter()
        .filter(|p| p.cfg.worker_threads() > crate::record::machine::online_cpus())
        .count();
    println!(
        "lab sweep: {} runs ({} to do{}) into {}",
        planned.len(),
        todo.len(),
        if args.resume {
            format!(", {} already there", planned.len() - todo.len())
        } else {
            String::new()
        },
        dir.display()
    );
    if oversub > 0 {
        println!(
            "  ! {oversub} of {} runs have more worker threads than the {} online CPUs: their lock waits and \
             TLB-flush waits measure the scheduler as much as the design (see each result's warnings)",
            planned.len(),
            crate::record::machine::online_cpus()
        );
    }
    let progress = Progress::new(args.out.no_progress).with_overall(todo.len() as u64, "sweep");
    let mut violations = 0;
    for p in &todo {
        if stopped() {
            break;
        }
        let label = format!("{} x{} r{}", p.cfg.impl_kind, p.cfg.vcpus, p.repeat);
        let (_report, result) = execute(&p.cfg, &args.out.perf, None, &[], &progress, &label)?;
        if stopped() && result.interrupted {
            // An interrupted run is kept under its own name so --resume
            // runs it again.
            let mut f = p.file.clone().into_os_string();
            f.push(".interrupted");
            result
                .save(Path::new(&f))
                .map_err(|e| LabError::failed(format!("cannot write result: {e}")))?;
            break;
        }
        result.save(&p.file).map_err(|e| {
            LabError::failed(format!("{}: cannot write result: {e}", p.file.display()))
        })?;
        if !result.verdict.ok {
            violations += 1;
            progress.println(&format!(
                "{label}: {} lost writes, {} rmaps inconsistent",
                result.verdict.lost_writes, result.verdict.rmap_inconsistencies
            ));
        }
        progress.step(&label);
    }
    progress.finish();
    if stopped() {
        println!(
            "interrupted: run `lab sweep --resume --dir {}` with the same flags to finish",
            dir.display()
        );
        return Ok(EXIT_OK);
    }

    let runs = crate::record::inputs::load_inputs(std::slice::from_ref(&dir))?;
    if !args.format.0.is_empty() {
        let report = plot::render_report(
            &runs,
            &dir.join("plots"),
            &args.format.0,
            args.baseline.as_deref(),
        )?;
        print!(
            "{}",
            crate::render::export::table::render(&report.comparison)
        );
        println!(
            "plots:  {} ({} charts)",
            dir.join("plots").display(),
            report.plots.len()
        );
        println!("report: {}", report.index.display());
    } else {
        let c = compare::compare(
            &runs,
            &compare::Options {
                baseline: args.baseline.clone(),
                ..Default::default()
            },
        )?;
        print!("{}", crate::render::export::table::render(&c));
    }
    if violations > 0 {
        println!("{violations} runs lost writes or left inconsistent rmaps");
        return Ok(EXIT_VIOLATION);
    }
    Ok(EXIT_OK)
}

fn write_manifest(dir: &Path, args: &SweepArgs, runs: usize) -> LabResult<()> {
    let m = serde_json::json!({
        "schema": "rmap-lab/sweep/v1",
        "impls": args.impls.0.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "vcpus": args.vcpus.0,
        "workloads": args.vm.workload.0.iter().map(|w| w.name()).collect::<Vec<_>>(),
        "aliases": args.vm.aliases.0,
        "desc_ext": args.vm.desc_ext.0,
        "repeat": args.repeat,
        "runs": runs,
        "written_at": results::utc_now(),
        "lab_version": env!("CARGO_PKG_VERSION"),
        "command": std::env::args().collect::<Vec<_>>(),
    });
    let path = dir.join("sweep.json");
    write_atomic(&path, &serde_json::to_vec_pretty(&m).expect("serialisable"))
        .map_err(|e| LabError::failed(format!("{}: cannot write: {e}", path.display())))
}
