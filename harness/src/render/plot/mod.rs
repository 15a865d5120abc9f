//! Plots and the HTML report from result files (`lab plot`, `lab sweep`).
//!
//! Reading only result records, it groups the runs the
//! way `lab compare` does (one [`Comparison`] serves the report's table and
//! the sweep charts), plans every plot the data allows, renders them in
//! parallel (rayon; each plot is independent) and writes `index.html`
//! linking them. The pieces:
//!
//! | module | job |
//! | --- | --- |
//! | `style` | the bundled font, one colour per implementation, sizes, axis scales and ticks |
//! | `line`, `bars` | the two chart kinds, as data ([`LineChart`], [`BarChart`]) drawn on any plotters backend |
//! | `latency` | percentile curves per metric, x in nines |
//! | `sweep` | writes/s, slow-fault p99 and restarts against vCPUs; restarts and walk p99 against chain length |
//! | `rounds` | round time over a run |
//! | `perf` | perf counters per operation per role |
//! | `report` | `index.html`: the plots, the comparison table, the runs' configuration |
//!
//! Each plot is written as `NAME.svg` and/or `NAME.png` (800x500) with
//! `record::result::write_atomic`; the PNG is drawn in memory and encoded with the
//! `png` crate. A plot is planned only when the inputs have its data.
//!
//! Entry points for other commands: [`render_report`] (plots and
//! `index.html`: `lab plot`, `lab sweep`), and
//! [`write_chart`] with [`time_series`] (`lab profile`'s counter rates and
//! p99 over time).

mod bars;
mod latency;
mod line;
mod perf;
pub mod profile;
pub mod report;
mod rounds;
pub mod style;
mod sweep;

pub use bars::BarChart;
pub use line::{time_series, Axis, LineChart};

use crate::analysis::group::{format_param, format_params, Params};
use crate::analysis::{self as compare, Comparison};
use crate::record::error::{LabError, LabResult};
use crate::record::result::{write_atomic, RunResult};
use plotters::coord::Shift;
use plotters::prelude::*;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// An image format (`--image-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Format {
    /// Vector, for the HTML report and a README.
    Svg,
    /// 800x500 bitmap.
    Png,
}

impl Format {
    pub fn ext(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }
}

/// `--image-format`'s values, sorted and without duplicates.
pub fn formats(v: &[Format]) -> Vec<Format> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// A chart of either kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Plot {
    Line(LineChart),
    Bars(BarChart),
}

impl From<LineChart> for Plot {
    fn from(c: LineChart) -> Plot {
        Plot::Line(c)
    }
}

impl From<BarChart> for Plot {
    fn from(c: BarChart) -> Plot {
        Plot::Bars(c)
    }
}

impl Plot {
    /// The chart's title.
    pub fn title(&self) -> &str {
        match self {
            Plot::Line(c) => &c.title,
            Plot::Bars(c) => &c.title,
        }
    }

    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        match self {
            Plot::Line(c) => c.draw(root),
            Plot::Bars(c) => c.draw(root),
        }
    }

    /// The SVG document of this plot.
    pub fn to_svg(&self) -> Result<String, String> {
        let mut s = String::new();
        {
            let root = SVGBackend::with_string(&mut s, style::SIZE).into_drawing_area();
            self.draw(&root)?;
        }
        Ok(s)
    }

    /// The PNG file of this plot, drawn in memory.
    pub fn to_png(&self) -> Result<Vec<u8>, String> {
        let (w, h) = style::SIZE;
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            self.draw(&root)?;
        }
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()
            .and_then(|mut wr| wr.write_image_data(&rgb))
            .map_err(|e| format!("PNG encoding failed: {e}"))?;
        Ok(out)
    }
}

/// Write `plot` as `dir/NAME.EXT` for each format (atomically); the paths
/// written, in `formats` order.
pub fn write_chart(
    plot: &Plot,
    dir: &Path,
    name: &str,
    formats: &[Format],
) -> LabResult<Vec<PathBuf>> {
    let mut out = Vec::new();
    for &f in formats {
        let path = dir.join(format!("{name}.{}", f.ext()));
        let bytes = match f {
            Format::Svg => plot.to_svg().map(String::into_bytes),
            Format::Png => plot.to_png(),
        }
        .map_err(|e| LabError::failed(format!("{}: {e}", path.display())))?;
        write_atomic(&path, &bytes)
            .map_err(|e| LabError::failed(format!("{}: cannot write: {e}", path.display())))?;
        out.push(path);
    }
    Ok(out)
}

/// The report's sections, in page order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    Sweep,
    Latency,
    Rounds,
    Perf,
}

impl Section {
    pub fn id(self) -> &'static str {
        match self {
            Section::Sweep => "sweep",
            Section::Latency => "latency",
            Section::Rounds => "rounds",
            Section::Perf => "perf",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Section::Sweep => "Against the swept parameters",
            Section::Latency => "Latency percentiles",
            Section::Rounds => "Dirty-log rounds over time",
            Section::Perf => "Perf counters per operation",
        }
    }
}

/// A plot to draw: where it goes in the report (its section, and its group
/// there: the parameters it is drawn at, `workload=dirty-log vcpus=8`,
/// empty for none), its file name (without extension) and the chart.
#[derive(Clone, Debug)]
pub struct Planned {
    pub section: Section,
    pub group: String,
    pub name: String,
    pub title: String,
    pub plot: Plot,
}

impl Planned {
    /// `chart` drawn at parameter set `params`, one of `sets`: grouped under
    /// the parameters, named `stem` and the set's [`slug`], titled as the
    /// chart is.
    pub(crate) fn at(
        section: Section,
        params: &Params,
        sets: usize,
        stem: &str,
        chart: impl Into<Plot>,
    ) -> Planned {
        let plot = chart.into();
        Planned {
            section,
            group: format_params(params),
            name: format!("{stem}{}", slug(params, sets)),
            title: plot.title().to_string(),
            plot,
        }
    }
}

/// A plot drawn: its files, one per format.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub section: Section,
    pub group: String,
    pub name: String,
    pub title: String,
    pub files: Vec<PathBuf>,
}

/// What [`render_report`] wrote.
#[derive(Clone, Debug)]
pub struct Report {
    pub plots: Vec<Rendered>,
    pub index: PathBuf,
    pub comparison: Comparison,
}

/// The distinct parameter sets of the comparison's rows, in row order.
pub(crate) fn param_sets(c: &Comparison) -> Vec<Params> {
    let mut v: Vec<Params> = Vec::new();
    for r in &c.rows {
        if !v.contains(&r.params) {
            v.push(r.params.clone());
        }
    }
    v
}

/// A file-name-safe version of `s`.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `-vcpus8-aliases4` for a plot of one parameter set among `count`; empty
/// when there is only one.
pub(crate) fn slug(params: &Params, count: usize) -> String {
    if count < 2 {
        return String::new();
    }
    params
        .iter()
        .map(|(k, v)| format!("-{}{}", sanitize(k), sanitize(&format_param(k, v))))
        .collect()
}

/// Every plot the runs have data for.
pub fn plan_all(runs: &[(PathBuf, RunResult)], c: &Comparison) -> LabResult<Vec<Planned>> {
    let mut v = sweep::plan(c);
    v.extend(latency::plan(runs, c)?);
    v.extend(rounds::plan(runs, c));
    v.extend(perf::plan(runs, c));
    v.iter_mut().for_each(|p| p.name = file_stem(&p.name));
    Ok(v)
}

/// Longest file stem a plot gets (file systems stop at 255 bytes).
const MAX_STEM: usize = 100;

/// A plot's file stem: its name sanitised, and when that is too long (runs
/// from producers with many differing config keys), cut and made unique by
/// a hash of the whole name (FNV-1a, stable across builds).
pub(crate) fn file_stem(name: &str) -> String {
    let s = sanitize(name);
    if s.len() <= MAX_STEM {
        return s;
    }
    let hash = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{hash:016x}", &s[..MAX_STEM - 17])
}

/// Draw `planned` into `out_dir` in parallel.
pub fn render_planned(
    planned: &[Planned],
    out_dir: &Path,
    formats: &[Format],
) -> LabResult<Vec<Rendered>> {
    if formats.is_empty() {
        return Err(LabError::usage("no image format given (svg, png)"));
    }
    style::ensure_font().map_err(LabError::failed)?;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| LabError::failed(format!("{}: cannot create: {e}", out_dir.display())))?;
    planned
        .par_iter()
        .map(|p| {
            Ok(Rendered {
                section: p.section,
                group: p.group.clone(),
                name: p.name.clone(),
                title: p.title.clone(),
                files: write_chart(&p.plot, out_dir, &p.name, formats)?,
            })
        })
        .collect()
}

/// Plots and `index.html` in `out_dir`: what `lab plot` and `lab sweep`
/// write.
pub fn render_report(
    runs: &[(PathBuf, RunResult)],
    out_dir: &Path,
    formats: &[Format],
    opts: &compare::Options,
) -> LabResult<Report> {
    let c = compare::compare(runs, opts)?;
    let planned = plan_all(runs, &c)?;
    let plots = render_planned(&planned, out_dir, formats)?;
    let index = report::write_report(runs, &c, &plots, out_dir)?;
    Ok(Report {
        plots,
        index,
        comparison: c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_plot_names_are_cut_and_stay_distinct() {
        let a = file_stem(&format!("writes-{}", "k".repeat(300)));
        let b = file_stem(&format!("writes-{}x", "k".repeat(300)));
        assert!(a.len() <= MAX_STEM && b.len() <= MAX_STEM);
        assert_ne!(a, b);
        assert!(a.starts_with("writes-k"));
        assert_eq!(file_stem("latency vcpus=2"), "latency_vcpus_2");
    }

    #[test]
    fn image_formats_are_sorted_and_unique() {
        assert_eq!(
            formats(&[Format::Png, Format::Svg, Format::Png]),
            vec![Format::Svg, Format::Png]
        );
    }
}
