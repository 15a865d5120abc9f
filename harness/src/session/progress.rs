//! Progress bars on stderr (indicatif), hyperfine-style: one bar per run
//! with its phase and live rates, and, for sweeps, an overall bar above it.
//! Hidden when stderr is not a terminal or with `--no-progress`, so piped
//! and CI output stays clean. A caller that measures more than the run's
//! live counters (`lab profile`'s perf sampler) adds its figures to the bar
//! with [`Progress::set_detail`].

use crate::record::units::format_si;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rmap_workloads::{Config, Live};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Progress {
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    /// Shown after the run bar's own rates; cleared when a run starts.
    detail: Mutex<String>,
}

impl Progress {
    pub fn new(no_progress: bool) -> Progress {
        let show = !no_progress && std::io::stderr().is_terminal();
        Progress {
            multi: show.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            overall: None,
            detail: Mutex::new(String::new()),
        }
    }

    /// Add an overall bar of `total` runs (sweeps, checks).
    pub fn with_overall(mut self, total: u64, what: &str) -> Progress {
        if let Some(m) = &self.multi {
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

    /// One run of the overall bar is done.
    pub fn step(&self, msg: &str) {
        if let Some(b) = &self.overall {
            b.inc(1);
            b.set_message(msg.to_string());
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
            while Live::get(&live.phase) < 3 {
                std::thread::sleep(Duration::from_millis(20));
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
            let what = match phase {
                0 => "warmup",
                1 => "measuring",
                _ => "final round + oracle",
            };
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
