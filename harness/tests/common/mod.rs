//! A runner for the built `lab` binary, for every integration test.

use std::process::Output;

/// Run the built `lab` with `args`.
pub fn lab(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .output()
        .expect("the lab binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
