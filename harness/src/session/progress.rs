//! Progress on stderr, hyperfine-style, in one of three forms:
//!
//! - **On a terminal**: indicatif bars, one per run with its phase and live
//!   rates, and for sweeps an overall bar above it.
//! - **Otherwise** (a CI log, a pipe, a file): plain lines, so a long
//!   command is never silent for minutes. Each finished run of a sweep,
//!   check or profile prints one line (what ran, how long it took, how many
//!   are left and about how long they will take), and a run still going
//!   prints a line every [`PLAIN_EVERY`] since the last one.
//! - **With `--no-progress`**: nothing.
//!
//! A caller that measures more than the run's live counters (`lab
//! profile`'s perf sampler) adds its figures to the bar with
//! [`Progress::set_detail`].

use crate::record::units::format_si;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rmap_workloads::{Config, Live};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A run still going prints a plain line this often.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// The plain lines' state.
struct Plain {
    /// The command, first word of every line (`lab sweep`).
    what: String,
    total: u64,
    done: u64,
    started: Instant,
    /// When the current run started, and when the last line was printed.
    run_started: Instant,
    last_line: Instant,
}

pub struct Progress {
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    plain: Option<Mutex<Plain>>,
    /// Shown after the run bar's own rates; cleared when a run starts.
    detail: Mutex<String>,
}

/// A duration for a progress line, to the second (`2m 5s`, `40s`).
fn human(d: Duration) -> String {
    let secs = d.as_secs_f64().round() as i64;
    format!("{:#}", jiff::SignedDuration::from_secs(secs.max(0)))
}

impl Progress {
    /// Bars when stderr is a terminal, plain lines when it is not,
    /// nothing with `no_progress`. `command` starts each plain line.
    pub fn new(no_progress: bool, command: &str) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let now = Instant::now();
        Progress {
            multi: (!no_progress && terminal)
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            overall: None,
            plain: (!no_progress && !terminal).then(|| {
                Mutex::new(Plain {
                    what: command.to_string(),
                    total: 0,
                    done: 0,
                    started: now,
                    run_started: now,
                    last_line: now,
                })
            }),
            detail: Mutex::new(String::new()),
        }
    }

    fn plain(&self) -> Option<std::sync::MutexGuard<'_, Plain>> {
        self.plain
            .as_ref()
            .map(|p| p.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Count `total` runs (sweeps, checks, profiles): an overall bar on a
    /// terminal (when there is more than one), a line per finished run
    /// otherwise.
    pub fn with_overall(mut self, total: u64, what: &str) -> Progress {
        if let Some(mut p) = self.plain() {
            p.total = total;
        }
        if let Some(m) = self.multi.as_ref().filter(|_| total > 1) {
            let bar = m.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>10} [{bar:30.green/white}] {pos}/{len} {msg} (eta {eta})",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(what.to_string());
            self.overall = Some(bar);
        }
        self
    }

    /// One run of the overall count is done.
    pub fn step(&self, msg: &str) {
        if let Some(b) = &self.overall {
            b.inc(1);
            b.set_message(msg.to_string());
        }
        if let Some(mut p) = self.plain() {
            p.done += 1;
            let now = Instant::now();
            let left = p.total.saturating_sub(p.done);
            let eta = if left > 0 && p.done > 0 {
                let per = now.duration_since(p.started).as_secs_f64() / p.done as f64;
                format!(
                    ", {left} to go, about {}",
                    human(Duration::from_secs_f64(per * left as f64))
                )
            } else {
                String::new()
            };
            eprintln!(
                "{}: {}/{} done: {msg} in {}{eta}",
                p.what,
                p.done,
                p.total,
                human(now.duration_since(p.run_started))
            );
            p.last_line = now;
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.overall {
            b.finish_and_clear();
        }
    }

    /// Print a line above the bars (or on stderr when there are none).
    pub fn println(&self, line: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// More figures for the run bar, after its own rates (any thread; the
    /// bar shows the latest at its next refresh).
    pub fn set_detail(&self, detail: String) {
        *self.detail.lock().unwrap_or_else(|e| e.into_inner()) = detail;
    }

    fn detail(&self) -> String {
        self.detail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Follow one run until its `Live::phase` reaches 3 (done).
    pub fn follow(&self, cfg: &Config, live: &Live, label: &str) {
        self.set_detail(String::new());
        let Some(m) = &self.multi else {
            if let Some(mut p) = self.plain() {
                p.run_started = Instant::now();
            }
            while Live::get(&live.phase) < 3 {
                std::thread::sleep(Duration::from_millis(20));
                if let Some(mut p) = self.plain() {
                    let now = Instant::now();
                    if now.duration_since(p.last_line) >= PLAIN_EVERY {
                        let of = if p.total > 0 {
                            format!(" ({}/{} done)", p.done, p.total)
                        } else {
                            String::new()
                        };
                        eprintln!(
                            "{}: {label}: {}, {} in{of}",
                            p.what,
                            phase_name(Live::get(&live.phase)),
                            human(now.duration_since(p.run_started))
                        );
                        p.last_line = now;
                    }
                }
            }
            return;
        };
        let total_ms = (cfg.warmup + cfg.duration).as_millis() as u64;
        let bar = m.add(ProgressBar::new(total_ms.max(1)));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>14} [{bar:30.cyan/blue}] {elapsed:>4} {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        let t0 = Instant::now();
        let mut last = (Instant::now(), 0u64, 0u64);
        loop {
            let phase = Live::get(&live.phase);
            if phase >= 3 {
                break;
            }
            let writes = Live::get(&live.guest_writes);
            let walks = Live::get(&live.walks);
            let now = Instant::now();
            let dt = now.duration_since(last.0).as_secs_f64().max(1e-3);
            let wps = (writes - last.1) as f64 / dt;
            let walks_ps = (walks - last.2) as f64 / dt;
            last = (now, writes, walks);
            let what = phase_name(phase);
            bar.set_position((t0.elapsed().as_millis() as u64).min(total_ms));
            let detail = self.detail();
            bar.set_message(format!(
                "{what}: {}/s writes, {}/s walks, {} rounds, {} restarts{}{detail}",
                format_si(wps),
                format_si(walks_ps),
                Live::get(&live.rounds),
                Live::get(&live.restarts),
                if detail.is_empty() { "" } else { " | " },
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    }
}

/// What a run is doing in `Live::phase`.
fn phase_name(phase: u64) -> &'static str {
    match phase {
        0 => "warmup",
        1 => "measuring",
        _ => "final round + oracle",
    }
}
