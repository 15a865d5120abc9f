//! `lab`: the rmap-lab command line. `main` parses the command line and
//! hands it to the subcommand's module, which returns an exit status or a
//! one-line error.
//!
//! # Layers
//!
//! The code sits in five folders, one job each, top to bottom:
//!
//! | folder | what it holds | may import |
//! | --- | --- | --- |
//! | `cmd/` | one file per subcommand: its clap arguments and the glue that calls the layers below; `cmd/args.rs` holds the flags several commands share (`VmArgs`, `OutputArgs`) and is not a command | `render`, `analysis`, `session`, `record`, and `cmd/args.rs` |
//! | `render/` | what a user reads: terminal tables and summaries, the comparison's exports (table, markdown, CSV, JSON, HTML), the time-series files, plots and the HTML report, a calibration's summary | `analysis`, `session`, `record` |
//! | `analysis/` | the model of a comparison: grouping runs by configuration, the figures and their statistics (`Stats`), ratios, the interference ratio, the warnings about noisy numbers; a profile's time series | `session`, `record` |
//! | `session/` | running the simulated VM with probes attached: perf counters, traces, profile sampling, the progress bar, Ctrl-C; the run's report turned into a result record | `record` |
//! | `record/` | what is kept and read back: the result file (`rmap-lab/result/v1`) and its machine description, warnings about a run, finding result files, `bugs-reached.json`, units and their parsing, errors and exit statuses | nothing above it |
//!
//! The rule: a layer imports only the layers below it, never one above,
//! and no command imports another command (what two commands share moves
//! down to the layer it belongs to). `tests/layers.rs` checks it on every
//! `crate::` and `super::` path of the sources. The crates follow the same
//! rule: `rmap-lab` -> `rmap-workloads` -> `rmap-impls`.

mod analysis;
mod cmd;
mod record;
mod render;
mod session;

use clap::{Parser, Subcommand};
use cmd::{calibrate, check, compare, list, plot, profile, run, sweep};
use record::error::{EXIT_OK, EXIT_USAGE};

/// A laboratory for KVM reverse-map (rmap) designs: latency, restarts and
/// counters under a simulated VM, and a migration oracle that counts every
/// write a write-protect walk let slip.
#[derive(Parser, Debug)]
#[command(
    name = "lab",
    version,
    about,
    propagate_version = true,
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Implementations, workloads, injectable bugs and this machine's perf events.
    List(list::ListArgs),
    /// One run: progress on stderr, a summary on stdout, a result file in results/.
    Run(run::RunArgs),
    /// The correctness torture: the migration oracle over designs and vCPU counts.
    Check(check::CheckArgs),
    /// A matrix of runs into one directory, then its plots.
    Sweep(sweep::SweepArgs),
    /// Side-by-side table of results with ratios against a baseline.
    Compare(compare::CompareArgs),
    /// Plots and an HTML report from result files or a sweep directory.
    Plot(plot::PlotArgs),
    /// A profiling session: counters and latency sampled at intervals, per role.
    Profile(profile::ProfileArgs),
    /// Measure the host kernel's own dirty logging on a real VM (/dev/kvm).
    Calibrate(calibrate::CalibrateArgs),
}

fn main() {
    // Die quietly on a closed pipe (`lab list | head`), as Unix tools do,
    // instead of panicking in println!.
    // SAFETY: restoring the default disposition of SIGPIPE before any
    // thread exists; no handler of ours is replaced.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    std::process::exit(
                        if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                            EXIT_USAGE
                        } else {
                            EXIT_OK
                        },
                    );
                }
                _ => {
                    // One line: clap's first line, without the usage block.
                    let text = e.render().to_string();
                    let line = text.lines().next().unwrap_or("invalid arguments").trim();
                    let line = line.strip_prefix("error: ").unwrap_or(line);
                    eprintln!("lab: {line} (see 'lab --help')");
                    std::process::exit(EXIT_USAGE);
                }
            }
        }
    };
    let status = match cli.command {
        Command::List(a) => list::main(a),
        Command::Run(a) => run::main(a),
        Command::Check(a) => check::main(a),
        Command::Sweep(a) => sweep::main(a),
        Command::Compare(a) => compare::main(a),
        Command::Plot(a) => plot::main(a),
        Command::Profile(a) => profile::main(a),
        Command::Calibrate(a) => calibrate::main(a),
    };
    match status {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("lab: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
