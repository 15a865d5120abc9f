//! `lab profile --impl NAME[,NAME...] --vcpus N [--interval 100ms]`: a
//! profiling session. Each implementation runs once, one after
//! another, on the same workload, with the measured phase cut into
//! intervals (`Config::sample_interval`); at each interval every role's
//! perf counters and latency histograms are sampled, and the session is
//! written as time series with their charts.
//!
//! # How the samples are taken
//!
//! - **Counters**: [`sampler::Sampler`] is a `Probe` beside the run's
//!   `PerfSession` (`session::run::execute_with` lets the caller own the session).
//!   The VM's coordinator calls its probes' `interval` as each interval closes;
//!   it reads every live thread's counter groups and keeps the difference
//!   with the previous reading, per role and event, scaled for multiplexing
//!   as `perf stat` does.
//! - **Latency and operations**: each worker thread hands its interval's
//!   histograms and counters to the VM as it sees the interval change
//!   (`RunReport::intervals`); they are joined with the counters by interval
//!   index after the run ([`series::TimeSeries::build`]).
//!
//! An interval whose walker was inside one long round sees the round's
//! walks and pages in the interval where the round began, and none in the
//! next: rates of rare, long operations are lumpy at short intervals.
//!
//! # The session directory
//!
//! `<--out>/profile-<UTC stamp>/` (`results/profile-20261125T185344/`):
//!
//! | file | what |
//! | --- | --- |
//! | `session.json` | schema `rmap-lab/profile/v1`: the command line, implementations, vCPUs, interval, workload and its configuration, and per run its files, interval count, verdict and whether it was interrupted; rewritten after each run |
//! | `<impl>-<workload>-<N>v-<stamp>.json` | each run's result file (`rmap-lab/result/v1`), as `lab run` writes it, plus `sample_interval_s` |
//! | `<impl>.timeseries.json` | schema `rmap-lab/timeseries/v1`: per interval its operation counts and rates, every latency metric's summary (count, percentiles, and the histogram as in the result file), and per role and event the counter's value, rate per second and per operation |
//! | `<impl>.timeseries.csv` | the same, flat: one row per interval per role (below) |
//! | `plots/*.svg`, `plots/*.png` | the charts, one line per implementation (`render::plot::profile`) |
//!
//! `lab compare` and `lab plot` on the directory read the result files and
//! skip the others.
//!
//! # CSV columns
//!
//! One row per interval and role (`vcpu`, `walker` when the workload logs
//! dirty pages, `zapper` when it zaps), in this order; an empty cell is a
//! value that does not apply to the row's role or was not measured:
//!
//! - `index`: the interval, from 0; `t_s`: seconds into the measured phase
//!   at its end; `dt_s`: its length (operation rates divide by it);
//!   `perf_dt_s`: the wall time between the counter readings around it
//!   (counter rates divide by it); `impl`; `role`.
//! - for every perf event that counted on this machine, in `lab list`
//!   order: `<event>_per_s` (the role's threads together; `task-clock` is
//!   in ns per second, so 1e9 is one CPU busy) and `<event>_per_op` (per
//!   operation of the role: guest write, write-protect walk, zap).
//! - operations per second, each filled on its role's rows:
//!   `guest_writes_per_s`, `faults_fast_per_s`, `faults_slow_per_s` (vcpu);
//!   `walks_per_s`, `restarts_per_s`, `rounds_per_s`,
//!   `pages_harvested_per_s`, `tlb_flushes_per_s` (walker); `zaps_per_s`,
//!   `sptes_zapped_per_s` (zapper).
//! - for every latency metric (`vcpu.fault_slow`, `vcpu.fault_fast`,
//!   `vcpu.write`, `walker.wp_gfn`, `walker.round`, `walker.tlb_flush`,
//!   `zapper.zap`, `mmu_lock.wait`, `mmu_lock.hold`): `<metric>_count`,
//!   `<metric>_p50_ns`, `<metric>_p99_ns`, on the rows of the role the
//!   name starts with; `mmu_lock.*` merge every role's waits and holds and
//!   are repeated on every row.
//!
//! # Terminal
//!
//! The run's progress bar (stderr, only on a terminal, not with
//! `--no-progress`) shows the live rates and, refreshed at each interval,
//! each role's CPUs busy and context switches per second. Ctrl-C ends the
//! current run as `interrupted`, writes its result and time series, skips
//! the implementations not yet run, and still draws the charts. stdout gets
//! a table of medians over the intervals.

use crate::analysis::series::TimeSeries;
use crate::cmd::args::{parse_impl_list, ImplList, OutputArgs, VmArgs};
use crate::record::error::{LabError, LabResult, EXIT_OK, EXIT_VIOLATION};
use crate::record::result::{self as results, write_atomic, Part, RunResult};
use crate::record::units::{format_size, parse_duration};
use crate::render;
use crate::render::export::timeseries;
use crate::render::plot::profile as plots;
use crate::render::plot::{parse_formats, Formats};
use crate::session::perf::PerfSession;
use crate::session::progress::Progress;
use crate::session::run::{self, execute_with, stopped};
use crate::session::sampler::Sampler;
use clap::Args;
use rmap_workloads::Config;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most intervals one run may be cut into: each keeps its own histograms
/// until the run ends (about half a MiB per interval).
pub const MAX_INTERVALS: u64 = 1000;

#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// Implementations, run one after another: all, correct, or a list.
    #[arg(long = "impl", default_value = "lockless", value_parser = parse_impl_list)]
    pub impls: ImplList,
    /// vCPU threads.
    #[arg(long, default_value_t = 4)]
    pub vcpus: u32,
    /// Sampling interval: counters and latency are read each time one closes.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// Plot formats, comma-separated: svg, png.
    #[arg(long, default_value = "svg,png", value_parser = parse_formats)]
    pub format: Formats,
    #[command(flatten)]
    pub vm: VmArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// Check the flags and build each run's configuration.
fn plan(args: &ProfileArgs) -> LabResult<Vec<Config>> {
    let (iv, dur) = (args.interval, args.vm.duration);
    if iv.is_zero() {
        return Err(LabError::usage("--interval must be longer than 0"));
    }
    let mut cfgs: Vec<Config> = Vec::new();
    for &k in &args.impls.0 {
        if cfgs.iter().any(|c| c.impl_kind == k) {
            return Err(LabError::usage(format!(
                "--impl names '{k}' twice (a session runs each implementation once)"
            )));
        }
        let mut cfg = args.vm.to_config(k, args.vcpus)?;
        cfg.sample_interval = Some(iv);
        cfgs.push(cfg);
    }
    if iv > dur {
        return Err(LabError::usage(format!(
            "--interval {iv:?} is longer than --duration {dur:?}: no interval would close"
        )));
    }
    let n = dur.as_nanos().div_ceil(iv.as_nanos());
    if n > MAX_INTERVALS as u128 {
        return Err(LabError::usage(format!(
            "--interval {iv:?} cuts --duration {dur:?} into {n} intervals; at most {MAX_INTERVALS} \
             (each keeps its own histograms): use a longer --interval"
        )));
    }
    Ok(cfgs)
}

/// A new, empty `<out>/profile-<stamp>[-N]` directory.
fn session_dir(out: &Path) -> LabResult<PathBuf> {
    let (_, stamp) = results::utc_stamps(std::time::SystemTime::now());
    let base = format!("profile-{}", &stamp[..15]);
    std::fs::create_dir_all(out)
        .map_err(|e| LabError::failed(format!("{}: cannot create: {e}", out.display())))?;
    for n in 1.. {
        let dir = if n == 1 {
            out.join(&base)
        } else {
            out.join(format!("{base}-{n}"))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(LabError::failed(format!(
                    "{}: cannot create: {e}",
                    dir.display()
                )))
            }
        }
    }
    unreachable!("some suffix is free")
}

/// What `session.json` records of one run.
#[derive(serde::Serialize)]
struct RunEntry {
    #[serde(rename = "impl")]
    impl_name: &'static str,
    result: String,
    timeseries_json: String,
    timeseries_csv: String,
    intervals: usize,
    interrupted: bool,
    verdict_ok: bool,
    perf_events: Vec<&'static str>,
}

#[derive(serde::Serialize)]
struct Session {
    schema: &'static str,
    command: Vec<String>,
    impls: Vec<&'static str>,
    vcpus: u32,
    interval_s: f64,
    workload: &'static str,
    config: results::RunConfig,
    lab_version: &'static str,
    started_at: String,
    finished_at: Option<String>,
    interrupted: bool,
    runs: Vec<RunEntry>,
    plots: Vec<String>,
}

fn write_file(path: &Path, bytes: &[u8]) -> LabResult<()> {
    write_atomic(path, bytes)
        .map_err(|e| LabError::failed(format!("{}: cannot write: {e}", path.display())))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn main(args: ProfileArgs) -> LabResult<i32> {
    let cfgs = plan(&args)?;
    // A bad --perf list fails here, before anything is written.
    PerfSession::new(&args.out.perf).map_err(LabError::usage)?;
    let dir = session_dir(&args.out.out)?;
    run::stop_flag();
    let first = &cfgs[0];
    let names: Vec<&'static str> = cfgs.iter().map(|c| c.impl_kind.name()).collect();
    println!(
        "lab profile: {} on {}: {} vCPUs, {}, {} aliases, desc_ext {}, {:?} each (+{:?} warmup), sampled every {:?}",
        names.join(", "),
        first.workload,
        first.vcpus,
        format_size(first.mem_bytes),
        first.aliases,
        first.desc_ext,
        first.duration,
        first.warmup,
        args.interval
    );
    println!("session: {}", dir.display());

    let mut session = Session {
        schema: "rmap-lab/profile/v1",
        command: std::env::args().collect(),
        impls: names.clone(),
        vcpus: first.vcpus,
        interval_s: args.interval.as_secs_f64(),
        workload: first.workload.name(),
        config: run::config_json(first),
        lab_version: env!("CARGO_PKG_VERSION"),
        started_at: results::utc_now(),
        finished_at: None,
        interrupted: false,
        runs: Vec::new(),
        plots: Vec::new(),
    };
    let session_path = dir.join("session.json");
    let write_session = |s: &Session| {
        write_file(
            &session_path,
            &serde_json::to_vec_pretty(s).expect("a session always serialises"),
        )
    };
    write_session(&session)?;

    let progress = Progress::new(args.out.no_progress);
    let progress = if cfgs.len() > 1 {
        progress.with_overall(cfgs.len() as u64, "profile")
    } else {
        progress
    };
    let mut all: Vec<TimeSeries> = Vec::new();
    let mut results: Vec<RunResult> = Vec::new();
    for cfg in &cfgs {
        if stopped() {
            break;
        }
        let name = cfg.impl_kind.name();
        let perf = PerfSession::new(&args.out.perf).map_err(LabError::usage)?;
        let sampler = Sampler::new(&perf, &progress);
        let (report, mut result) = execute_with(cfg, &perf, None, &[&sampler], &progress, name)?;
        if let Part::Vm(d) = &mut result.detail {
            d.sample_interval_s = Some(args.interval.as_secs_f64());
        }
        let result_path = run::save(&dir, &result)?;
        let ts = TimeSeries::build(
            &report,
            &sampler.into_samples(),
            args.interval,
            file_name(&result_path),
        );
        let json = dir.join(format!("{name}.timeseries.json"));
        let csv = dir.join(format!("{name}.timeseries.csv"));
        write_file(&json, &timeseries::json(&ts))?;
        write_file(&csv, timeseries::csv(&ts).as_bytes())?;
        session.runs.push(RunEntry {
            impl_name: name,
            result: file_name(&result_path),
            timeseries_json: file_name(&json),
            timeseries_csv: file_name(&csv),
            intervals: ts.intervals.len(),
            interrupted: result.interrupted,
            verdict_ok: result.verdict.ok,
            perf_events: ts.events.clone(),
        });
        session.interrupted = result.interrupted;
        write_session(&session)?;
        progress.step(name);
        progress.println(&format!(
            "{name}: {} intervals{}{}",
            ts.intervals.len(),
            if result.interrupted {
                ", interrupted"
            } else {
                ""
            },
            if result.verdict.ok {
                String::new()
            } else {
                format!(
                    ", {} lost writes, {} rmaps inconsistent",
                    result.verdict.lost_writes, result.verdict.rmap_inconsistencies
                )
            }
        ));
        all.push(ts);
        results.push(result);
    }
    progress.finish();

    let plots_dir = dir.join("plots");
    let files = plots::render(&all, &plots_dir, &args.format.0)?;
    session.plots = files
        .iter()
        .filter_map(|f| f.strip_prefix(&dir).ok())
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    session.interrupted = stopped() || results.iter().any(|r| r.interrupted);
    session.finished_at = Some(results::utc_now());
    write_session(&session)?;

    print!("{}", render::profile::summary(&all));
    println!("(medians over the intervals of each run)");
    // Warnings every run shares once, the others with their run's name.
    let mut shown: Vec<&String> = Vec::new();
    for r in &results {
        for w in &r.warnings {
            if shown.contains(&w) {
                continue;
            }
            if results.iter().all(|o| o.warnings.contains(w)) {
                shown.push(w);
                println!("  ! {w}");
            } else if w.starts_with(&format!("{}:", r.impl_name)) {
                println!("  ! {w}");
            } else {
                println!("  ! {}: {w}", r.impl_name);
            }
        }
    }
    if session.interrupted {
        println!(
            "interrupted: {} of {} implementations ran",
            session.runs.len(),
            cfgs.len()
        );
    }
    println!("plots:   {} ({} files)", plots_dir.display(), files.len());
    println!("session: {}", dir.display());
    Ok(if results.iter().all(|r| r.verdict.ok) {
        EXIT_OK
    } else {
        EXIT_VIOLATION
    })
}
