//! The command line's manners, through the built binary: output paths
//! checked before a run starts, clap's hints kept in the one error line,
//! sizes read as their units say, one parser for `--impl` everywhere, and
//! the completion scripts and man page generated from the definitions.

mod common;

use common::{lab, stderr, stdout};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `lab run` with `args` for an hour: it must refuse before running. The
/// deadline is a guard against a run that started, not a timing: the check
/// takes milliseconds, the run would take an hour.
fn refused_before_the_run(args: &[&str]) -> String {
    let mut a = vec![
        "run",
        "--duration",
        "1h",
        "--warmup",
        "0s",
        "--mem",
        "4MiB",
        "--perf",
        "off",
    ];
    a.extend_from_slice(args);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(&a)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?}: still running: the path was not checked before the run");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    // The run never started: no header, no summary.
    assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
    assert!(!err.contains("File exists"), "{args:?}: {err}");
    err
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn bad_output_paths_fail_before_any_run_and_name_the_problem() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("notes.txt");
    std::fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();

    let e = refused_before_the_run(&["--out", f]);
    assert!(
        e.contains("--out") && e.contains("is a file, not a directory"),
        "{e}"
    );
    let under = file.join("results");
    let e = refused_before_the_run(&["--out", under.to_str().unwrap()]);
    assert!(e.contains("notes.txt is a file, not a directory"), "{e}");

    let out = d.path().join("out");
    let o = out.to_str().unwrap();
    let missing = d.path().join("nonexistent-dir").join("x.json");
    let e = refused_before_the_run(&["--out", o, "--trace", missing.to_str().unwrap()]);
    assert!(e.contains("--trace") && e.contains("does not exist"), "{e}");
    // Nothing made outside the directory asked for.
    assert!(!d.path().join("nonexistent-dir").exists());
    let e = refused_before_the_run(&["--out", o, "--trace", d.path().to_str().unwrap()]);
    assert!(e.contains("is a directory"), "{e}");
    let e = refused_before_the_run(&["--out", o, "--trace", &format!("{f}/t.json")]);
    assert!(e.contains("notes.txt is a file, not a directory"), "{e}");
    // No result anywhere, no probe file left behind: only the --out
    // directory asked for was made, and it is empty.
    assert_eq!(entries(d.path()), ["notes.txt", "out"]);
    assert!(entries(&out).is_empty());

    // The other commands check theirs the same way.
    for cmd in [
        vec!["sweep", "--vcpus", "1", "--duration", "1h", "--out", f],
        vec![
            "profile",
            "--duration",
            "1h",
            "--interval",
            "10s",
            "--out",
            f,
        ],
        vec![
            "check",
            "--duration",
            "1h",
            "--inject-bug",
            "skip-flush",
            "--out",
            f,
        ],
        vec!["plot", "--out", f, f],
    ] {
        let o = lab(&cmd);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(
            err.contains("is a file, not a directory")
                || err.contains("not an rmap-lab result")
                || err.contains("not JSON"),
            "{cmd:?}: {err}"
        );
    }
}

#[test]
fn clap_errors_keep_their_hints_and_point_to_the_command_help() {
    let o = lab(&["run", "--imp", "lockless"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("a similar argument exists: '--impl'"), "{err}");
    assert!(err.contains("see 'lab run --help'"), "{err}");

    let o = lab(&["compare"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("required arguments were not provided") && err.contains("<PATH>"),
        "{err}"
    );
    assert!(err.contains("see 'lab compare --help'"), "{err}");

    let o = lab(&["compare", "-1"]);
    let err = stderr(&o);
    assert!(err.contains("use '-- -1'"), "{err}");

    let o = lab(&["sweep", "--workload", "dirty-logs"]);
    let err = stderr(&o);
    assert!(err.contains("a similar value exists: 'dirty-log'"), "{err}");
    assert!(err.contains("see 'lab sweep --help'"), "{err}");
}

#[test]
fn one_impl_parser_everywhere_and_one_value_where_one_runs() {
    // The same names and spellings in every command.
    for cmd in ["run", "check", "sweep", "profile"] {
        let o = lab(&[cmd, "--impl", "lockfree"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains("invalid value 'lockfree' for '--impl <NAME>'"),
            "{cmd}: {err}"
        );
    }
    let o = lab(&["run", "--impl", "lockless,mmu-lock"]);
    assert!(
        stderr(&o).contains("--impl takes one value here (lab sweep runs several)"),
        "{}",
        stderr(&o)
    );
    let o = lab(&["run", "--impl", "all"]);
    assert!(
        stderr(&o).contains("--impl takes one value here"),
        "{}",
        stderr(&o)
    );
    let o = lab(&["run", "--vcpus", "1,2"]);
    assert!(
        stderr(&o).contains("--vcpus takes one value here"),
        "{}",
        stderr(&o)
    );
    // Image formats and text formats are two flags.
    let o = lab(&["plot", "--format", "svg", "x"]);
    assert_eq!(o.status.code(), Some(2));
    let o = lab(&["compare", "--image-format", "svg", "x"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn mb_is_a_million_bytes_and_a_bare_m_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let o = lab(&[
        "run",
        "--mem",
        "64MB",
        "--duration",
        "100ms",
        "--warmup",
        "0s",
        "--perf",
        "off",
        "--workload",
        "idle",
        "--vcpus",
        "1",
        "--json",
        "--no-progress",
        "--out",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["config"]["mem_bytes"], 64_000_000);
    let o = lab(&["run", "--mem", "64M"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ambiguous") && err.contains("MiB") && err.contains("MB"),
        "{err}"
    );
    // The result file's name carries the lab's one timestamp form.
    let name = entries(d.path()).pop().unwrap();
    let stamp = name
        .trim_start_matches("lockless-idle-1v-")
        .trim_end_matches(".json");
    assert_eq!(stamp.len(), "20261125T185344.120Z".len(), "{name}");
    assert!(
        stamp.as_bytes()[8] == b'T' && stamp.ends_with('Z'),
        "{name}"
    );
}

#[test]
fn completions_and_man_pages_are_generated() {
    for (shell, marker) in [
        ("bash", "_lab()"),
        ("zsh", "#compdef lab"),
        ("fish", "complete -c lab"),
    ] {
        let o = lab(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let s = stdout(&o);
        assert!(s.contains(marker), "{shell}: no {marker}");
        // Subcommands, flags, and the names a flag takes.
        for word in ["sweep", "image-format", "lockless-gen", "dirty-log"] {
            assert!(s.contains(word), "{shell}: no {word}");
        }
    }
    let o = lab(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));

    let man = stdout(&lab(&["man"]));
    assert!(man.contains(".TH lab 1"), "{man}");
    assert!(man.contains("sweep"), "{man}");
    let run = stdout(&lab(&["man", "run"]));
    assert!(run.contains(".TH lab-run 1"), "{run}");
    assert!(run.contains("\\-\\-trace"), "{run}");
    let o = lab(&["man", "frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no command 'frobnicate'"));
}
