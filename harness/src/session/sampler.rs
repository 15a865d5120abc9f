//! The interval probe of `lab profile`: at each interval the VM's
//! coordinator closes, read every role's perf counters
//! ([`PerfSession::snapshot`]) and keep the difference with the previous
//! reading ([`PerfSnapshot::since`], raw counts and times differenced, then
//! scaled for multiplexing), with the wall time between the two readings.
//!
//! The first reading is taken in `measure_start`, right after the perf
//! session itself reset its baselines to the start of the measured phase
//! (`Probes` calls its probes in order and `session::run::execute_with` puts the session
//! first), so the intervals add up to what the run's result file reports
//! for the measured phase, less the few microseconds between the last
//! interval and the threads' stop.
//!
//! Each reading also refreshes the progress bar's detail with the interval's
//! CPU use and context switches per role.

use crate::record::units::format_si;
use crate::session::perf::{PerfSession, PerfSnapshot};
use crate::session::progress::Progress;
use rmap_workloads::{Probe, RoleKind};
use std::sync::Mutex;
use std::time::Instant;

/// The counters of one interval, per role.
#[derive(Clone, Debug)]
pub struct CounterSample {
    /// The VM's interval index (0-based, the first of the measured phase).
    pub index: u64,
    /// Seconds into the measured phase at the end of the interval.
    pub t_s: f64,
    /// Wall time between this reading and the previous one.
    pub wall_s: f64,
    /// What each role's counters counted in between (supported events).
    pub delta: PerfSnapshot,
}

#[derive(Default)]
struct State {
    prev: PerfSnapshot,
    prev_at: Option<Instant>,
    samples: Vec<CounterSample>,
}

/// A [`Probe`] that samples `perf` at each interval.
pub struct Sampler<'a> {
    perf: &'a PerfSession,
    progress: &'a Progress,
    state: Mutex<State>,
}

impl<'a> Sampler<'a> {
    pub fn new(perf: &'a PerfSession, progress: &'a Progress) -> Sampler<'a> {
        Sampler {
            perf,
            progress,
            state: Mutex::new(State::default()),
        }
    }

    /// The samples, in interval order.
    pub fn into_samples(self) -> Vec<CounterSample> {
        self.state
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .samples
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The live view's counter figures: CPUs busy and context switches per
/// second of the vCPUs and the walker (the zapper's are in the files).
pub fn live_detail(s: &CounterSample) -> String {
    let secs = s.wall_s.max(1e-9);
    s.delta
        .roles
        .iter()
        .filter(|(role, _)| matches!(role, RoleKind::Vcpu | RoleKind::Walker))
        .filter_map(|(role, evs)| {
            let mut parts = Vec::new();
            if let Some(ns) = evs.get("task-clock").and_then(|c| c.scaled()) {
                parts.push(format!("{:.2} CPU", ns / secs / 1e9));
            }
            if let Some(n) = evs.get("context-switches").and_then(|c| c.scaled()) {
                parts.push(format!("{} cs/s", format_si(n / secs)));
            }
            (!parts.is_empty()).then(|| format!("{} {}", role.name(), parts.join(", ")))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Probe for Sampler<'_> {
    fn measure_start(&self) {
        let snap = self.perf.snapshot();
        let mut st = self.lock();
        st.prev = snap;
        st.prev_at = Some(Instant::now());
    }

    fn interval(&self, index: u64, t_s: f64) {
        let snap = self.perf.snapshot();
        let now = Instant::now();
        let mut st = self.lock();
        // Without `measure_start` (never the case in a VM run) the interval
        // runs from the start of the measured phase.
        let wall_s = st
            .prev_at
            .map_or(t_s, |at| now.duration_since(at).as_secs_f64());
        let sample = CounterSample {
            index,
            t_s,
            wall_s,
            delta: snap.since(&st.prev),
        };
        st.prev = snap;
        st.prev_at = Some(now);
        self.progress.set_detail(live_detail(&sample));
        st.samples.push(sample);
    }
}
