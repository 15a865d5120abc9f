//! The HTML report, `index.html` beside the plots, in the manner of
//! criterion's: one page that opens from the file system with no server,
//! so every link is relative, the CSS is inline, and there are no scripts
//! and no external fonts or images.
//!
//! It holds, in order: what was compared (runs, implementations, the
//! baseline); the comparison table of `lab compare` with its warnings; the
//! plots by section, each image linking its own file and every format of
//! it; and the configuration of the runs: the keys they share, then a row
//! per run with a link to its result file, the keys that differ, its
//! verdict, duration, machine and the run's own warnings.

use super::{Rendered, Section};
use crate::analysis::group::{config_map, format_param, format_params};
use crate::analysis::Comparison;
use crate::record::error::{LabError, LabResult};
use crate::record::result::{write_atomic, RunResult};
use crate::render::export::html::{self, escape};
use std::path::{Component, Path, PathBuf};

const CSS: &str = "
body { font-family: 'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ccc; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; vertical-align: top; text-align: left; }
th { background: #f4f4f4; }
td.num { text-align: right; white-space: nowrap; }
tr.base td { background: #fafafa; }
.ratio { font-weight: bold; } .better { color: #2a7a2a; } .worse { color: #b22; }
.range { color: #777; font-size: 0.85em; }
.note { color: #555; font-size: 0.9em; }
ul.warnings li { color: #8a5a00; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; }
code { background: #f4f4f4; padding: 0 0.2em; }
";

/// `path` relative to `base`, with `/` separators (for an `href`).
pub fn relative(path: &Path, base: &Path) -> String {
    let abs = |p: &Path| -> PathBuf {
        p.canonicalize().unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    let (p, b) = (abs(path), abs(base));
    let pc: Vec<Component> = p.components().collect();
    let bc: Vec<Component> = b.components().collect();
    let common = pc.iter().zip(&bc).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), bc.len() - common).collect();
    parts.extend(
        pc[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// Percent-encode a relative path for a URL, keeping `/`.
pub fn url_path(rel: &str) -> String {
    let mut o = String::new();
    for b in rel.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

fn file_link(path: &Path, out_dir: &Path, text: &str) -> String {
    format!(
        "<a href=\"{}\">{}</a>",
        escape(&url_path(&relative(path, out_dir))),
        escape(text)
    )
}

/// The page for `runs`, compared as `c`, with `plots` (in `out_dir`).
pub fn render(
    runs: &[(PathBuf, RunResult)],
    c: &Comparison,
    plots: &[Rendered],
    out_dir: &Path,
) -> String {
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    o.push_str("<title>rmap-lab report</title>\n<style>");
    o.push_str(CSS);
    o.push_str("</style>\n</head>\n<body>\n<h1>rmap-lab report</h1>\n");

    let mut dates: Vec<&str> = runs.iter().map(|(_, r)| r.started_at.as_str()).collect();
    dates.sort();
    o.push_str(&format!(
        "<p>{} runs of {} ({} configurations); baseline <code>{}</code>; started {}{}. Written by <code>lab plot</code> {}.</p>\n",
        runs.len(),
        c.impls.iter().map(|i| format!("<code>{}</code>", escape(i))).collect::<Vec<_>>().join(", "),
        super::param_sets(c).len(),
        escape(&c.baseline),
        escape(dates.first().copied().unwrap_or("?")),
        match dates.last() {
            Some(l) if dates.len() > 1 && Some(l) != dates.first() => format!(" to {}", escape(l)),
            _ => String::new(),
        },
        escape(env!("CARGO_PKG_VERSION")),
    ));

    let mut sections: Vec<Section> = plots.iter().map(|p| p.section).collect();
    sections.sort();
    sections.dedup();
    o.push_str("<nav><a href=\"#comparison\">Comparison</a>");
    for s in &sections {
        o.push_str(&format!(
            "<a href=\"#{}\">{}</a>",
            s.id(),
            escape(s.title())
        ));
    }
    o.push_str("<a href=\"#runs\">Runs</a></nav>\n");

    o.push_str("<h2 id=\"comparison\">Comparison</h2>\n");
    o.push_str(&html::render(c));

    for s in &sections {
        o.push_str(&format!(
            "<h2 id=\"{}\">{}</h2>\n",
            s.id(),
            escape(s.title())
        ));
        for p in plots.iter().filter(|p| p.section == *s) {
            let shown = p
                .files
                .iter()
                .find(|f| f.extension().is_some_and(|e| e == "svg"))
                .or(p.files.first());
            let Some(shown) = shown else { continue };
            let href = escape(&url_path(&relative(shown, out_dir)));
            o.push_str(&format!(
                "<figure id=\"{}\"><a href=\"{href}\"><img src=\"{href}\" alt=\"{}\" width=\"800\" height=\"500\"></a>\n<figcaption>{} &middot; ",
                escape(&p.name),
                escape(&p.title),
                escape(&p.title)
            ));
            let links: Vec<String> = p
                .files
                .iter()
                .map(|f| {
                    let ext = f
                        .extension()
                        .map(|e| e.to_string_lossy().to_uppercase())
                        .unwrap_or_default();
                    file_link(f, out_dir, &ext)
                })
                .collect();
            o.push_str(&links.join(" "));
            o.push_str("</figcaption></figure>\n");
        }
    }
    if plots.is_empty() {
        o.push_str("<p class=\"note\">No plots: the runs have no latency histograms, sweep, rounds or perf counters to draw.</p>\n");
    }

    o.push_str("<h2 id=\"runs\">Runs</h2>\n");
    if let Some(common) = (!c.common.is_empty()).then_some(&c.common) {
        o.push_str("<p>Configuration every run shares:</p>\n<table class=\"config\">\n");
        for (k, v) in common.iter().filter(|(k, _)| !c.keys.contains(k)) {
            o.push_str(&format!(
                "<tr><th>{}</th><td>{}</td></tr>\n",
                escape(k),
                escape(&format_param(k, v))
            ));
        }
        o.push_str("</table>\n");
    }
    o.push_str("<table class=\"runs\">\n<thead><tr><th>result file</th><th>impl</th><th>configuration</th><th>seed</th><th>started</th><th>duration</th><th>verdict</th><th>machine</th><th>warnings</th></tr></thead>\n<tbody>\n");
    for (path, r) in runs {
        let m = config_map(r);
        let params: Vec<(String, serde_json::Value)> = c
            .keys
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    m.get(k).cloned().unwrap_or(serde_json::Value::Null),
                )
            })
            .collect();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let verdict = if r.verdict.ok {
            "ok".to_string()
        } else {
            format!(
                "{} lost writes, {} rmap inconsistencies",
                r.verdict.lost_writes, r.verdict.rmap_inconsistencies
            )
        };
        let mach = &r.machine;
        o.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{:.1} s{}</td><td>{}</td><td>{} ({} CPUs, {}, kernel {}){}</td><td>{}</td></tr>\n",
            file_link(path, out_dir, &name),
            escape(&r.impl_name),
            escape(&format_params(&params)),
            r.config.seed,
            escape(&r.started_at),
            r.duration_s,
            if r.interrupted { " (interrupted)" } else { "" },
            escape(&verdict),
            escape(&mach.hostname),
            mach.online_cpus,
            escape(&mach.cpu_model),
            escape(&mach.kernel),
            if mach.oversubscribed { "; oversubscribed" } else { "" },
            r.warnings.iter().map(|w| escape(w)).collect::<Vec<_>>().join("<br>"),
        ));
    }
    o.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    o
}

/// Write `index.html` into `out_dir` (atomically); its path.
pub fn write_report(
    runs: &[(PathBuf, RunResult)],
    c: &Comparison,
    plots: &[Rendered],
    out_dir: &Path,
) -> LabResult<PathBuf> {
    let path = out_dir.join("index.html");
    write_atomic(&path, render(runs, c, plots, out_dir).as_bytes())
        .map_err(|e| LabError::failed(format!("{}: cannot write: {e}", path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links_climb_out_of_the_plot_directory() {
        let base = Path::new("/tmp/x/results/plots");
        assert_eq!(
            relative(Path::new("/tmp/x/results/a.json"), base),
            "../a.json"
        );
        assert_eq!(
            relative(Path::new("/tmp/x/results/plots/p.svg"), base),
            "p.svg"
        );
        assert_eq!(
            relative(Path::new("/tmp/y/b.json"), base),
            "../../../y/b.json"
        );
        assert_eq!(url_path("a b/c#d.json"), "a%20b/c%23d.json");
    }
}
