//! The harness's layering rule, checked: every source file lives in a layer
//! folder (`main.rs` aside), a layer imports only the layers below it, and
//! no command imports another command. The layers and the rule are
//! described in the crate doc (`src/main.rs`).
//!
//! The check reads the sources as text: every `crate::` path, grouped
//! imports (`crate::{a, b::c}`) included, and every `super::` path resolved
//! from the file's module, comments left out.

use std::path::{Path, PathBuf};

/// Top to bottom.
const LAYERS: [&str; 5] = ["cmd", "render", "analysis", "session", "record"];

/// Files of `cmd/` that are not commands: shared flags and the module list.
const CMD_SHARED: [&str; 2] = ["args", "mod"];

/// The text of `src` without `//` comments (doc comments included) and
/// `/* */` comments; strings are kept as they are.
fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let b = src.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            out.push(c as char);
            if c == b'\\' && i + 1 < b.len() {
                out.push(b[i + 1] as char);
                i += 2;
                continue;
            }
            in_str = c != b'"';
            i += 1;
        } else if c == b'"' {
            in_str = true;
            out.push('"');
            i += 1;
        } else if src[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if src[i..].starts_with("/*") {
            i = src[i..].find("*/").map_or(b.len(), |e| i + e + 2);
        } else {
            out.push(c as char);
            i += 1;
        }
    }
    out
}

/// The paths a file names that begin with `prefix` (`crate::` or
/// `super::`), each as its segments after the prefix, with `{...}` groups
/// expanded into one path per item.
fn paths_after(src: &str, prefix: &str) -> Vec<Vec<String>> {
    fn ident(s: &[u8], mut i: usize) -> (String, usize) {
        let start = i;
        while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
            i += 1;
        }
        (String::from_utf8_lossy(&s[start..i]).into_owned(), i)
    }
    fn skip_ws(s: &[u8], mut i: usize) -> usize {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    }
    /// Parse a path tree at `i`: `a::b::{c, d::e}`; push every full path.
    fn tree(s: &[u8], i: usize, head: &[String], out: &mut Vec<Vec<String>>) -> usize {
        let mut i = skip_ws(s, i);
        let mut path = head.to_vec();
        loop {
            if i < s.len() && s[i] == b'{' {
                i += 1;
                loop {
                    i = skip_ws(s, i);
                    if i >= s.len() || s[i] == b'}' {
                        return i + 1;
                    }
                    i = tree(s, i, &path, out);
                    i = skip_ws(s, i);
                    if i < s.len() && s[i] == b',' {
                        i += 1;
                    }
                }
            }
            let (name, j) = ident(s, i);
            if name.is_empty() {
                // `*` or the end of the path.
                if !path.is_empty() {
                    out.push(path);
                }
                return if i < s.len() && s[i] == b'*' {
                    i + 1
                } else {
                    i
                };
            }
            path.push(name);
            i = j;
            if s[i..].starts_with(b"::") {
                i += 2;
            } else {
                out.push(path);
                // `as alias`
                let k = skip_ws(s, i);
                if s[k..].starts_with(b"as ") {
                    let (_, e) = ident(s, skip_ws(s, k + 3));
                    return e;
                }
                return i;
            }
        }
    }
    let s = src.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(k) = src[from..].find(prefix) {
        let at = from + k;
        from = at + prefix.len();
        // A whole word: not `foo_crate::` or `self::super::`.
        if at > 0 && (s[at - 1].is_ascii_alphanumeric() || s[at - 1] == b'_') {
            continue;
        }
        if prefix == "super::" && at >= 2 && &s[at - 2..at] == b"::" {
            continue;
        }
        let mut supers = 1;
        let mut i = from;
        if prefix == "super::" {
            while src[i..].starts_with("super::") {
                supers += 1;
                i += "super::".len();
            }
            from = i;
        }
        let mut paths = Vec::new();
        tree(s, i, &[], &mut paths);
        for mut p in paths {
            if prefix == "super::" {
                p.insert(0, format!("{supers}"));
            }
            out.push(p);
        }
    }
    out
}

/// The module path of a source file relative to `src/`:
/// `render/export/csv.rs` -> `[render, export, csv]`, `render/mod.rs` ->
/// `[render]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut m: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if m.last().is_some_and(|l| l == "mod") {
        m.pop();
    }
    m
}

/// Every way `src` (the file at `rel` under `src/`) breaks the rule, one
/// line each.
fn violations(rel: &Path, src: &str) -> Vec<String> {
    let me = module_of(rel);
    let Some(my_layer) = LAYERS
        .iter()
        .position(|l| me.first().map(String::as_str) == Some(l))
    else {
        return if me == ["main"] {
            Vec::new()
        } else {
            vec![format!(
                "{}: not in a layer folder ({})",
                rel.display(),
                LAYERS.join(", ")
            )]
        };
    };
    let code = strip_comments(src);
    let mut targets: Vec<Vec<String>> = paths_after(&code, "crate::");
    for p in paths_after(&code, "super::") {
        let ups: usize = p[0].parse().expect("a count of supers");
        // `super` of a file module is its parent; a path that climbs inside
        // the file's own folder stays in its layer.
        let base = me.len().saturating_sub(ups);
        let mut abs = me[..base].to_vec();
        abs.extend(p[1..].iter().cloned());
        targets.push(abs);
    }
    let mut out = Vec::new();
    for t in targets {
        let Some(layer) = LAYERS
            .iter()
            .position(|l| t.first().map(String::as_str) == Some(l))
        else {
            continue;
        };
        let path = t.join("::");
        if layer < my_layer {
            out.push(format!(
                "{}: {} imports crate::{path}, a layer above it",
                rel.display(),
                LAYERS[my_layer]
            ));
        } else if layer == 0 && my_layer == 0 {
            let (Some(mine), Some(theirs)) = (me.get(1), t.get(1)) else {
                continue;
            };
            if mine != theirs && !CMD_SHARED.contains(&theirs.as_str()) && theirs != "*" {
                out.push(format!(
                    "{}: the command {mine} imports the command {theirs} (crate::{path})",
                    rel.display()
                ));
            }
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src/ is readable") {
        let p = e.expect("a directory entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_layer_imports_only_layers_below_it_and_no_command_another() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    assert!(files.len() > 40, "found only {} source files", files.len());
    let mut bad = Vec::new();
    let mut seen = [0usize; LAYERS.len()];
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        if let Some(i) = LAYERS.iter().position(|l| rel.starts_with(l)) {
            seen[i] += 1;
        }
        bad.extend(violations(rel, &std::fs::read_to_string(f).unwrap()));
    }
    assert!(bad.is_empty(), "layering rule broken:\n{}", bad.join("\n"));
    assert!(seen.iter().all(|&n| n > 0), "a layer has no file: {seen:?}");
}

#[test]
fn the_check_catches_an_upward_import_and_a_command_importing_a_command() {
    let v = |rel: &str, src: &str| violations(Path::new(rel), src);
    // Allowed: downward, within a layer, shared flags, a test's `super::*`.
    assert!(v(
        "cmd/run.rs",
        "use crate::cmd::args::VmArgs;\nuse crate::session::run::execute;\nmod tests { use super::*; }"
    )
    .is_empty());
    assert!(v(
        "render/export/csv.rs",
        "use super::format_ratio;\nuse crate::analysis::model::Row;"
    )
    .is_empty());
    // Upward, in every form a path can take.
    assert_eq!(
        v("record/result.rs", "use crate::cmd::args::online_cpus;").len(),
        1
    );
    assert_eq!(
        v(
            "session/run.rs",
            "let x = crate::render::terminal::Table::new(&[]);"
        )
        .len(),
        1
    );
    assert_eq!(
        v(
            "analysis/model.rs",
            "use crate::{record::result::RunResult, render::export};"
        )
        .len(),
        1
    );
    assert_eq!(
        v(
            "analysis/mod.rs",
            "use crate::{\n    record::{error::LabError, units},\n    render::export as e,\n};"
        )
        .len(),
        1
    );
    assert_eq!(v("record/mod.rs", "use super::session::run;").len(), 1);
    assert_eq!(
        v(
            "analysis/export/x.rs",
            "use super::super::super::cmd::args;"
        )
        .len(),
        1
    );
    // A command importing a command, by crate path and by super path.
    assert_eq!(
        v("cmd/list.rs", "use crate::cmd::check::load_bugs_reached;").len(),
        1
    );
    assert_eq!(
        v("cmd/sweep.rs", "use super::plot::default_out_dir;").len(),
        1
    );
    // Comments do not count; a file outside the layers does.
    assert!(v(
        "record/units.rs",
        "//! see crate::cmd::args\n/* crate::render */"
    )
    .is_empty());
    assert_eq!(v("calibrate/mod.rs", "").len(), 1);
    assert!(v("main.rs", "use crate::cmd::run;").is_empty());
}
