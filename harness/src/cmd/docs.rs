//! `lab completions SHELL` and `lab man [COMMAND]`: the command line's own
//! description, generated from the clap definitions so they never drift.
//!
//! - Completions (`clap_complete`): `lab completions bash > ~/.local/share/bash-completion/completions/lab`,
//!   `lab completions zsh > ~/.zfunc/_lab`, `lab completions fish > ~/.config/fish/completions/lab.fish`.
//!   Flags that take names (`--impl`, `--workload`, `--inject-bug`,
//!   `--image-format`, ...) complete to them.
//! - Man pages (`clap_mangen`): `lab man > lab.1` for the overview,
//!   `lab man run > lab-run.1` for one command; read with `man ./lab.1`.
//!
//! `main` hands each the top-level `clap::Command` (commands do not import
//! `main`).

use crate::record::error::{LabError, LabResult, EXIT_OK};
use clap::Args;
use std::io::Write;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// A command's page (run, sweep, ...) instead of the overview.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

fn write_out(bytes: &[u8]) -> LabResult<i32> {
    std::io::stdout()
        .write_all(bytes)
        .map_err(|e| LabError::failed(format!("cannot write to stdout: {e}")))?;
    Ok(EXIT_OK)
}

pub fn completions(args: CompletionsArgs, mut cmd: clap::Command) -> LabResult<i32> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "lab", &mut out);
    write_out(&out)
}

pub fn man(args: ManArgs, cmd: clap::Command) -> LabResult<i32> {
    let page = match &args.command {
        None => cmd,
        Some(name) => {
            let names: Vec<String> = cmd
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            let sub = cmd.find_subcommand(name).cloned().ok_or_else(|| {
                LabError::usage(format!(
                    "no command '{name}' (one of: {})",
                    names.join(", ")
                ))
            })?;
            // The page is `lab-run(1)`, as git and cargo name theirs.
            let page_name: &'static str = Box::leak(format!("lab-{name}").into_boxed_str());
            sub.name(page_name)
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| LabError::failed(format!("cannot render the man page: {e}")))?;
    write_out(&out)
}
