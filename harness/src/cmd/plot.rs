//! `lab plot PATH... [--format svg,png] [--out DIR]`: plots and an HTML
//! report from result files or a sweep directory (`render::plot` draws
//! them).
//!
//! **Where the output goes.** `--out DIR`, or by default a `plots/`
//! directory beside the inputs: inside the directory when one directory is
//! given (`lab plot results/sweep-x` writes `results/sweep-x/plots/`), next
//! to the file when files are given (`results/a.json` ->
//! `results/plots/`), and in the deepest directory that holds all inputs
//! when they are spread out. Plot files of earlier runs in that directory
//! are overwritten by name, never deleted; `index.html` links only what
//! this run wrote.

use crate::record::error::{LabResult, EXIT_OK};
use crate::record::inputs::load_inputs;
use crate::render::plot::{parse_formats, render_report, Formats};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Result files, or directories searched recursively for them (a sweep
    /// directory).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Image formats, comma-separated: svg, png.
    #[arg(long, default_value = "svg,png", value_parser = parse_formats)]
    pub format: Formats,
    /// Output directory [default: plots/ beside the inputs].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Implementation the report's ratios are taken against [default:
    /// mmu-lock when present, else the first input's].
    #[arg(long, value_name = "IMPL")]
    pub baseline: Option<String>,
}

/// The default output directory for `inputs` (see the module doc).
pub fn default_out_dir(inputs: &[PathBuf]) -> PathBuf {
    let dirs: Vec<PathBuf> = inputs
        .iter()
        .map(|p| {
            let d = if p.is_dir() {
                p.clone()
            } else {
                p.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            if d.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                d
            }
        })
        .collect();
    let mut common = dirs.first().cloned().unwrap_or_else(|| PathBuf::from("."));
    for d in &dirs[1..] {
        while !d.starts_with(&common) {
            if !common.pop() || common.as_os_str().is_empty() {
                common = PathBuf::from(".");
                break;
            }
        }
    }
    common.join("plots")
}

pub fn main(args: PlotArgs) -> LabResult<i32> {
    let runs = load_inputs(&args.paths)?;
    let out = args.out.unwrap_or_else(|| default_out_dir(&args.paths));
    let report = render_report(&runs, &out, &args.format.0, args.baseline.as_deref())?;
    let files: usize = report.plots.iter().map(|p| p.files.len()).sum();
    let formats: Vec<&str> = args.format.0.iter().map(|f| f.ext()).collect();
    if report.plots.is_empty() {
        println!(
            "no plots: the {} runs have no latency histograms, sweep, rounds or perf counters to draw",
            runs.len()
        );
    } else {
        println!(
            "{} plots ({}, {files} files) from {} runs in {}",
            report.plots.len(),
            formats.join(", "),
            runs.len(),
            out.display()
        );
    }
    println!("report: {}", report.index.display());
    for w in &report.comparison.warnings {
        eprintln!("lab: warning: {w}");
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_output_is_plots_beside_the_inputs() {
        let d = tempfile::tempdir().unwrap();
        let sweep = d.path().join("sweep");
        std::fs::create_dir_all(sweep.join("a")).unwrap();
        assert_eq!(
            default_out_dir(std::slice::from_ref(&sweep)),
            sweep.join("plots")
        );
        let f = sweep.join("a").join("r.json");
        std::fs::write(&f, "{}").unwrap();
        assert_eq!(
            default_out_dir(std::slice::from_ref(&f)),
            sweep.join("a").join("plots")
        );
        // Spread out: the deepest directory holding them all.
        assert_eq!(default_out_dir(&[f, sweep.clone()]), sweep.join("plots"));
        assert_eq!(
            default_out_dir(&[PathBuf::from("r.json")]),
            PathBuf::from("./plots")
        );
    }
}
