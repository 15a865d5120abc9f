//! `lab sweep` end to end: the matrix of result files, its manifest, plots and
//! report, and `--resume` running only what is missing.

mod common;

use common::{lab, stderr, stdout};
use std::path::Path;
use std::time::SystemTime;

/// The arguments of a `lab sweep` into `dir` as every test here runs one
/// (short warmups, a small VM, no perf counters), then `args`.
fn sweep_args<'a>(dir: &'a Path, args: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "sweep",
        "--warmup",
        "50ms",
        "--mem",
        "4MiB",
        "--perf",
        "off",
        "--out",
        dir.to_str().unwrap(),
    ];
    a.extend_from_slice(args);
    a
}

/// A sweep of two implementations at 1 and 2 vCPUs, SVG plots, no progress
/// lines, then `extra`.
fn sweep(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--impl",
        "mmu-lock,lockless-gen",
        "--vcpus",
        "1,2",
        "--duration",
        "200ms",
        "--image-format",
        "svg",
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    lab(&sweep_args(dir, &args))
}

fn results(dir: &Path) -> Vec<(String, SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("sweep.json"))
        .map(|p| {
            let t = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), t)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_sweep_writes_its_matrix_and_resume_runs_only_what_is_missing() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("s");
    let o = sweep(&dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("4 runs (4 to do)"), "{}", stdout(&o));
    let first = results(&dir);
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "lockless-gen-dirty-log-a4-e3-1v-r0.json",
            "lockless-gen-dirty-log-a4-e3-2v-r0.json",
            "mmu-lock-dirty-log-a4-e3-1v-r0.json",
            "mmu-lock-dirty-log-a4-e3-2v-r0.json",
        ]
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(manifest["runs"], 4);
    assert!(dir.join("plots/index.html").exists());
    // The comparison table is printed with mmu-lock as the baseline.
    assert!(stdout(&o).contains("vs mmu-lock") || stdout(&o).contains("mmu-lock's median"));

    // Without --resume a non-empty directory is refused.
    let o = sweep(&dir, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));

    // Remove one result and corrupt another: --resume redoes those two only.
    std::fs::remove_file(dir.join("mmu-lock-dirty-log-a4-e3-2v-r0.json")).unwrap();
    std::fs::write(dir.join("lockless-gen-dirty-log-a4-e3-1v-r0.json"), "{").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let o = sweep(&dir, &["--resume"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("4 runs (2 to do, 2 already there)"),
        "{}",
        stdout(&o)
    );
    let second = results(&dir);
    assert_eq!(second.len(), 4);
    for ((n1, t1), (n2, t2)) in first.iter().zip(&second) {
        assert_eq!(n1, n2);
        let redone = n1 == "mmu-lock-dirty-log-a4-e3-2v-r0.json"
            || n1 == "lockless-gen-dirty-log-a4-e3-1v-r0.json";
        assert_eq!(
            t1 != t2,
            redone,
            "{n1}: rewritten only if it was missing or corrupt"
        );
    }
    let fixed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("lockless-gen-dirty-log-a4-e3-1v-r0.json")).unwrap(),
    )
    .expect("the corrupt result was run again");
    assert_eq!(fixed["schema"], "rmap-lab/result/v1");
}

/// With stderr not a terminal (a CI log), a sweep prints a plain line per
/// finished run as it goes, not only at the end.
#[test]
fn progress_lines_appear_while_a_sweep_runs_when_stderr_is_not_a_terminal() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("s");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(sweep_args(
            &dir,
            &[
                "--impl",
                "mmu-lock",
                "--vcpus",
                "1",
                "--repeat",
                "3",
                "--duration",
                "1s",
                "--no-plots",
            ],
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines
        .next()
        .expect("a progress line")
        .expect("readable stderr");
    // The first run is done and two are left: the sweep is still running.
    assert!(
        first.starts_with("lab sweep: 1/3 done: mmu-lock x1 r0 in "),
        "{first}"
    );
    assert!(first.contains("2 to go, about "), "{first}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the line came only at the end"
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.starts_with("lab sweep: 3/3 done: mmu-lock x1 r2")),
        "{rest:?}"
    );
    // --no-progress: nothing.
    let o = sweep(&d.path().join("quiet"), &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!stderr(&o).contains("done:"), "{}", stderr(&o));
}
