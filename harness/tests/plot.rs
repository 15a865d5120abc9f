//! `lab plot` on a hand-made sweep: every plot is valid SVG (parsed as XML,
//! with every implementation in its legend) and valid PNG (decoded, 800x500,
//! in the implementations' colours), and `index.html` links every plot.

mod common;
mod fixture;

use common::{lab, stderr, stdout};
use fixture::Run;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const IMPLS: [&str; 3] = ["mmu-lock", "lockless-gen", "seqlock"];
/// `mmu-lock`'s colour in every plot (plot::style).
const MMU_LOCK_RGB: [u8; 3] = [0x4d, 0x4d, 0x4d];

/// Three implementations at 1, 2, 4 and 8 vCPUs, two repeats each, with
/// rounds over time and perf counters for two roles.
pub fn sweep(dir: &Path) {
    for (k, name) in IMPLS.iter().enumerate() {
        for vcpus in [1u32, 2, 4, 8] {
            for seed in [1u64, 2] {
                let mut r = Run::new(name, vcpus);
                let f = (k + 1) as f64 * (seed as f64 * 0.05 + 1.0);
                r.seed = seed;
                r.writes_per_s = 1.0e6 * vcpus as f64 * f;
                r.fault_slow = Some((1_000 * vcpus as u64, 5_000 * vcpus as u64 * (k as u64 + 1)));
                r.restarts = if *name == "mmu-lock" {
                    0
                } else {
                    100 * vcpus as u64 * seed
                };
                r.rounds = (0..50)
                    .map(|i| {
                        [
                            i as f64 * 0.2,
                            4.0e6 + (k as f64) * 1.0e6 + (i % 7) as f64 * 2.0e5,
                            1000.0,
                        ]
                    })
                    .collect();
                r.perf = vec![
                    ("vcpu", "task-clock", 900.0 * f),
                    ("vcpu", "context-switches", 0.01 * f),
                    ("walker", "task-clock", 2_000.0 * f),
                ];
                r.write(dir, &format!("{name}-v{vcpus}-s{seed}"));
            }
        }
    }
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn plot(args: &[&str]) -> String {
    let mut a = vec!["plot"];
    a.extend_from_slice(args);
    let o = lab(&a);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn every_plot_is_valid_svg_and_png_with_every_implementation() {
    let d = tempfile::tempdir().unwrap();
    sweep(d.path());
    let out = d.path().join("report");
    plot(&[d.path().to_str().unwrap(), "--out", out.to_str().unwrap()]);

    let svgs = files_with(&out, "svg");
    let pngs = files_with(&out, "png");
    let stems = |v: &[PathBuf]| -> BTreeSet<String> {
        v.iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(stems(&svgs), stems(&pngs));
    // The plots this data allows, by kind.
    let names = stems(&svgs);
    for expected in [
        "writes-vs-vcpus",
        "fault_slow_p99-vs-vcpus",
        "restarts-vs-vcpus",
        "latency-vcpu-fault_slow-vcpus1",
        "latency-walker-wp_gfn-vcpus8",
        "latency-walker-round-vcpus2",
        "latency-walker-tlb_flush-vcpus4",
        "rounds-vcpus4",
        "perf-vcpu-vcpus1",
        "perf-walker-vcpus8",
    ] {
        assert!(names.contains(expected), "no {expected} in {names:?}");
    }
    // aliases and desc_ext did not vary: nothing against them.
    assert!(!names.iter().any(|n| n.contains("-vs-aliases")));
    // 3 sweep charts, 4 metrics x 4 vCPU counts, 4 round charts, 2 roles x 4.
    assert_eq!(names.len(), 3 + 16 + 4 + 8, "{names:?}");

    for svg in &svgs {
        let text = std::fs::read_to_string(svg).unwrap();
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{}: not XML: {e}", svg.display()));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let texts: BTreeSet<&str> = doc
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .map(str::trim)
            .collect();
        for name in IMPLS {
            assert!(
                texts
                    .iter()
                    .any(|t| *t == name || t.starts_with(&format!("{name} ("))),
                "{}: no legend entry for {name} in {texts:?}",
                svg.display()
            );
        }
        assert!(
            text.to_ascii_uppercase().contains("#4D4D4D"),
            "{}: mmu-lock's colour is not used",
            svg.display()
        );
    }

    // An event the machine lacks is never drawn.
    let perf = std::fs::read_to_string(out.join("perf-walker-vcpus8.svg")).unwrap();
    assert!(perf.contains("task-clock") && !perf.contains("cycles"));

    for png_path in &pngs {
        let bytes = std::fs::read(png_path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", png_path.display());
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(
            (info.width, info.height),
            (800, 500),
            "{}",
            png_path.display()
        );
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let px: Vec<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
        assert!(
            px.iter().any(|p| *p == MMU_LOCK_RGB),
            "{}: mmu-lock's colour is not drawn",
            png_path.display()
        );
        // Text was drawn with the bundled font: dark pixels that are not the
        // grey of mmu-lock's line exist (tick labels, title).
        assert!(px.iter().any(|p| p.iter().all(|c| *c < 0x30)));
    }
}

/// Every `href` and `src` of the page.
fn links(html: &str) -> Vec<String> {
    let mut v = Vec::new();
    for attr in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').unwrap();
            v.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    v
}

#[test]
fn index_html_links_every_plot_and_run_with_relative_links() {
    let d = tempfile::tempdir().unwrap();
    sweep(d.path());
    // Default output: plots/ inside the sweep directory.
    let said = plot(&[d.path().to_str().unwrap()]);
    let out = d.path().join("plots");
    let index = out.join("index.html");
    assert!(said.contains(&index.display().to_string()), "{said}");
    let html = std::fs::read_to_string(&index).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("http://") && !html.contains("https://"));

    let links = links(&html);
    let local: Vec<&String> = links.iter().filter(|l| !l.starts_with('#')).collect();
    for l in &local {
        assert!(!l.starts_with('/'), "absolute link {l}");
        assert!(out.join(l).exists(), "link {l} leads nowhere");
    }
    for f in std::fs::read_dir(&out).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".svg") || name.ends_with(".png") {
            assert!(local.iter().any(|l| **l == name), "{name} is not linked");
        }
    }
    // Every result file is linked, from the plots directory.
    assert!(local.iter().any(|l| *l == "../mmu-lock-v8-s2.json"));
    assert_eq!(
        local.iter().filter(|l| l.ends_with(".json")).count(),
        IMPLS.len() * 4 * 2
    );
    // The comparison table: lockless-gen at 8 vCPUs writes 2x mmu-lock.
    assert!(html.contains("<table class=\"cmp\">"));
    assert!(html.contains("2.00x"), "no ratio in the report");
    // Every section has its id for the navigation.
    for id in ["comparison", "sweep", "latency", "rounds", "perf", "runs"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no section {id}");
        assert!(links.iter().any(|l| *l == format!("#{id}")));
    }
}

#[test]
fn formats_are_chosen_and_a_bare_run_still_gets_a_report() {
    let d = tempfile::tempdir().unwrap();
    let mut r = Run::new("mmu-lock", 2);
    r.fault_slow = None;
    r.wp_gfn = None;
    r.round = None;
    r.tlb_flush = Some((100, 900));
    let f = r.write(d.path(), "one");
    let out = d.path().join("o");
    plot(&[
        f.to_str().unwrap(),
        "--format",
        "png",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(files_with(&out, "svg").is_empty());
    let pngs = files_with(&out, "png");
    assert_eq!(pngs.len(), 1, "{pngs:?}");
    assert!(pngs[0].ends_with("latency-walker-tlb_flush.png"));
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(links(&html)
        .iter()
        .any(|l| l == "latency-walker-tlb_flush.png"));

    // Nothing to draw at all: no plots, still a report with the table.
    let mut bare = Run::new("seqlock", 1);
    bare.fault_slow = None;
    bare.wp_gfn = None;
    bare.round = None;
    bare.tlb_flush = None;
    let d2 = tempfile::tempdir().unwrap();
    bare.write(d2.path(), "bare");
    let said = plot(&[d2.path().to_str().unwrap()]);
    assert!(said.starts_with("no plots"), "{said}");
    let html = std::fs::read_to_string(d2.path().join("plots/index.html")).unwrap();
    assert!(html.contains("<td>seqlock</td>"));

    let o = lab(&["plot", "--format", "gif", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown image format 'gif'"), "{err}");
}
