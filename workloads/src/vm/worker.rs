//! One thread's measurement state ([`Worker`]): its histograms and
//! counters, the run phase it last saw, its trace sampling state, and the
//! [`Observer`] through which an rmap implementation reports `mmu_lock`
//! waits, holds and walked gfns.
//!
//! Measuring must not distort what it measures. A thread reads one shared
//! word per operation (the run's phase and interval, a Relaxed load of a
//! line that changes a few times a second); with latency recording off it
//! reads no clock at all; lock-holder preemption is sampled (one hold in
//! [`PREEMPT_SAMPLE`] pays two `getrusage` calls).

use super::probe::{LockHandoff, SpanKind};
use super::shared::{LockTrace, Phase, Shared};
use crate::clock;
use crate::metrics::{Counters, LiveField, Metric, Recorder, RoleKind};
use rmap_impls::{Gfn, Observer, RestartReason, WalkStats};
use std::sync::atomic::Ordering;

/// One `mmu_lock` hold in this many has its thread's involuntary context
/// switches read before and after.
pub(crate) const PREEMPT_SAMPLE: u64 = 64;

/// Live progress is published every this many operations.
const LIVE_BATCH: u64 = 256;

/// One traced operation kind's sampling counter.
#[derive(Default)]
struct TraceState {
    every: u64,
    seen: [u64; SpanKind::ALL.len()],
    /// The operation being timed is traced: trace what happens inside it.
    active: bool,
}

/// What a worker hands back when it ends.
pub(crate) struct WorkerResult {
    pub(crate) rec: Recorder,
    pub(crate) counters: Counters,
    pub(crate) lock_holds_sampled: u64,
    pub(crate) lock_holder_preempted: u64,
}

pub(crate) struct Worker<'a> {
    pub(crate) ctx: &'a Shared<'a>,
    pub(crate) role: RoleKind,
    pub(crate) index: u32,
    /// Latency of the current interval (or of the whole measured phase).
    rec: Recorder,
    /// Intervals already handed over, merged (only when sampling).
    rec_done: Recorder,
    pub(crate) counters: Counters,
    counters_done: Counters,
    /// Read clocks at all (latency recording on, or tracing).
    pub(crate) timing: bool,
    measuring: bool,
    interval: u64,
    trace: TraceState,
    // Observer state.
    lock_wait_start: u64,
    lock_hold_start: u64,
    last_gfn_ts: u64,
    lock_holds: u64,
    nivcsw_at_acquire: Option<i64>,
    /// This thread's current `mmu_lock` wait is traced, and counted in
    /// `LockTrace::traced_waiters` until its hold ends.
    traced_wait: bool,
    /// The hold in progress when that wait began (`LockTrace::hold_word`).
    hold_at_wait: u64,
    pub(crate) lock_holds_sampled: u64,
    pub(crate) lock_holder_preempted: u64,
    live_pending: [u64; LiveField::COUNT],
}

impl<'a> Worker<'a> {
    pub(crate) fn new(ctx: &'a Shared<'a>, role: RoleKind, index: u32) -> Self {
        let record = ctx.cfg.record_latency;
        let every = ctx.probe.trace_sample().map(|n| n.max(1) as u64);
        Worker {
            ctx,
            role,
            index,
            rec: Recorder::new(record),
            rec_done: Recorder::new(record && ctx.cfg.sample_interval.is_some()),
            counters: Counters::default(),
            counters_done: Counters::default(),
            timing: record || every.is_some(),
            measuring: false,
            interval: 0,
            trace: TraceState {
                every: every.unwrap_or(0),
                ..TraceState::default()
            },
            lock_wait_start: 0,
            lock_hold_start: 0,
            last_gfn_ts: 0,
            lock_holds: 0,
            nivcsw_at_acquire: None,
            traced_wait: false,
            hold_at_wait: 0,
            lock_holds_sampled: 0,
            lock_holder_preempted: 0,
            live_pending: [0; LiveField::COUNT],
        }
    }

    /// Look at the run's phase before an operation. Returns false when the
    /// worker must stop. Entering the measured phase drops what warmup
    /// recorded; a new interval hands the last one over.
    #[inline]
    pub(crate) fn poll(&mut self) -> bool {
        let (phase, interval) = self.ctx.phase();
        match phase {
            Phase::Stop => false,
            Phase::Warmup => true,
            Phase::Measure => {
                if !self.measuring {
                    self.measuring = true;
                    self.rec.reset();
                    self.counters = Counters::default();
                    self.interval = interval;
                } else if interval != self.interval {
                    self.hand_over_interval();
                    self.interval = interval;
                }
                true
            }
        }
    }

    pub(crate) fn measuring(&self) -> bool {
        self.measuring
    }

    /// Give the current interval's histograms and counters to the run's
    /// per-interval table and start a new interval.
    fn hand_over_interval(&mut self) {
        if self.ctx.cfg.sample_interval.is_none() {
            return;
        }
        self.ctx
            .intervals
            .add(self.interval, &self.rec, &self.counters);
        self.rec_done.merge(&self.rec);
        self.rec.reset();
        self.counters_done.add(&self.counters);
        self.counters = Counters::default();
    }

    /// The thread ends: everything it measured.
    pub(crate) fn finish(mut self) -> WorkerResult {
        let (mut rec, mut counters) = if self.ctx.cfg.sample_interval.is_some() && self.measuring {
            self.hand_over_interval();
            (self.rec_done, self.counters_done)
        } else {
            (self.rec, self.counters)
        };
        if !self.measuring {
            rec.reset();
            counters = Counters::default();
        }
        WorkerResult {
            rec,
            counters,
            lock_holds_sampled: self.lock_holds_sampled,
            lock_holder_preempted: self.lock_holder_preempted,
        }
    }

    #[inline]
    pub(crate) fn now(&self) -> u64 {
        if self.timing {
            clock::now()
        } else {
            0
        }
    }

    /// Record `m` from `start` to now; returns now.
    #[inline]
    pub(crate) fn record_since(&mut self, m: Metric, start: u64) -> u64 {
        if !self.timing {
            return 0;
        }
        let end = clock::now();
        self.rec.record(m, clock::delta_ns(start, end));
        end
    }

    /// Whether to trace the next operation of `kind` (and what it contains).
    #[inline]
    pub(crate) fn trace_begin(&mut self, kind: SpanKind) -> bool {
        if self.trace.every == 0 {
            return false;
        }
        let n = &mut self.trace.seen[kind as usize];
        *n += 1;
        self.trace.active = *n % self.trace.every == 1 % self.trace.every;
        self.trace.active
    }

    /// Emit a span of `kind` from raw timestamps, if the operation is traced.
    #[inline]
    pub(crate) fn span(&mut self, kind: SpanKind, start: u64, end: u64, arg: u64) {
        if self.trace.active {
            let t0 = clock::delta_ns(self.ctx.t_start, start);
            self.ctx.probe.span(
                self.role,
                self.index,
                kind,
                t0,
                clock::delta_ns(start, end),
                arg,
            );
        }
    }

    pub(crate) fn trace_end(&mut self) {
        self.trace.active = false;
    }

    /// When tracing, a counter track's value at raw time `at`.
    #[inline]
    pub(crate) fn trace_counter(&self, name: &'static str, key: &'static str, at: u64, value: f64) {
        if self.trace.every != 0 {
            let t = clock::delta_ns(self.ctx.t_start, at);
            self.ctx.probe.counter(name, key, t, value);
        }
    }

    /// Tracing: one more thread waits for `mmu_lock`.
    #[cold]
    fn trace_lock_wait(&mut self) {
        let t = &self.ctx.lock_trace;
        // Relaxed: trace annotations; nothing is published through them.
        t.waiters.fetch_add(1, Ordering::Relaxed);
        if self.trace.active {
            t.traced_waiters.fetch_add(1, Ordering::Relaxed);
            self.traced_wait = true;
            // Relaxed, without the lock: the hold in progress (or 0);
            // `trace_lock_acquired` only uses it to tell whether the wait
            // was behind the hold it reports.
            self.hold_at_wait = t.current.load(Ordering::Relaxed);
        }
    }

    /// Tracing: this thread holds `mmu_lock` since raw time `now`; a traced
    /// wait reports the hold it waited for last, if that hold was in
    /// progress when the wait began or began during it (a lock taken at
    /// once waited for nobody).
    #[cold]
    fn trace_lock_acquired(&mut self, now: u64) {
        let t = &self.ctx.lock_trace;
        let now_ns = clock::delta_ns(self.ctx.t_start, now);
        // Relaxed: `last` is written and read here under mmu_lock, whose
        // acquisition (the lock's Acquire) orders this swap after the
        // previous holder's (made before its Release). `current` is a hint
        // for waiters, cleared by this thread when its hold ends.
        let mine = LockTrace::hold_word(self.role, self.index, now_ns);
        let prev = t.last.swap(mine, Ordering::Relaxed);
        t.current.store(mine, Ordering::Relaxed);
        // Relaxed: a count for the trace.
        t.waiters.fetch_sub(1, Ordering::Relaxed);
        if !self.traced_wait {
            return;
        }
        let wait_start_ns = clock::delta_ns(self.ctx.t_start, self.lock_wait_start);
        if let Some((role, index, hold_start_ns)) = LockTrace::hold_of(prev) {
            let waited = prev == self.hold_at_wait || hold_start_ns >= wait_start_ns;
            if waited && (role, index) != (self.role, self.index) {
                let h = LockHandoff {
                    wait_start_ns,
                    acquired_ns: now_ns,
                    holder_role: role,
                    holder_index: index,
                    hold_start_ns,
                };
                self.ctx.probe.lock_handoff(self.role, self.index, h);
            }
        }
    }

    /// Tracing: this thread's hold of `mmu_lock`, from the raw times
    /// `start` to `end`, has ended. While another thread's traced wait is
    /// pending, every hold goes in the trace (a waiter's arrow starts from
    /// its holder's hold).
    #[cold]
    fn trace_lock_released(&mut self, start: u64, end: u64) {
        let t = &self.ctx.lock_trace;
        let t0 = clock::delta_ns(self.ctx.t_start, start);
        let mine = LockTrace::hold_word(self.role, self.index, t0);
        // Relaxed: a hint for waiters; cleared only if no later hold has
        // replaced it (the lock is already released here).
        let _ = t
            .current
            .compare_exchange(mine, 0, Ordering::Relaxed, Ordering::Relaxed);
        // Relaxed: a count for the trace.
        let others = t.traced_waiters.load(Ordering::Relaxed) - self.traced_wait as u64;
        if !self.trace.active && others > 0 {
            self.ctx.probe.span(
                self.role,
                self.index,
                SpanKind::LockHold,
                t0,
                clock::delta_ns(start, end),
                0,
            );
        }
        if self.traced_wait {
            t.traced_waiters.fetch_sub(1, Ordering::Relaxed);
            self.traced_wait = false;
        }
    }

    /// A batch of write-protect walks starts now (the first gfn's time runs
    /// from here, or from the lock acquisition for designs that lock).
    #[inline]
    pub(crate) fn walks_begin(&mut self) {
        self.last_gfn_ts = self.now();
    }

    /// Count `n` for the progress display, published in batches.
    #[inline]
    pub(crate) fn live(&mut self, f: LiveField, n: u64) {
        let p = &mut self.live_pending[f as usize];
        *p += n;
        // Rare events (rounds, zaps) are published at once.
        if *p >= LIVE_BATCH || matches!(f, LiveField::Rounds | LiveField::Zaps) {
            self.ctx.live.add(self.ctx.live.field(f), *p);
            *p = 0;
        }
    }
}

/// Involuntary context switches of the calling thread so far.
fn thread_nivcsw() -> Option<i64> {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is a valid, writable rusage; RUSAGE_THREAD reports on
    // the calling thread only.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr()) };
    // SAFETY: getrusage filled it on success (and it was zeroed before).
    (rc == 0).then(|| unsafe { ru.assume_init() }.ru_nivcsw)
}

impl Observer for Worker<'_> {
    #[inline]
    fn lock_wait(&mut self) {
        self.lock_wait_start = self.now();
        if self.trace.every != 0 {
            self.trace_lock_wait();
        }
    }

    #[inline]
    fn lock_acquired(&mut self) {
        let now = self.now();
        if self.timing {
            self.rec
                .record(Metric::LockWait, clock::delta_ns(self.lock_wait_start, now));
            self.span(SpanKind::LockWait, self.lock_wait_start, now, 0);
        }
        self.lock_hold_start = now;
        self.last_gfn_ts = now;
        if self.trace.every != 0 {
            self.trace_lock_acquired(now);
        }
        self.lock_holds += 1;
        if self.lock_holds.is_multiple_of(PREEMPT_SAMPLE) {
            self.nivcsw_at_acquire = thread_nivcsw();
        }
    }

    #[inline]
    fn lock_released(&mut self) {
        if self.timing {
            let now = clock::now();
            self.rec
                .record(Metric::LockHold, clock::delta_ns(self.lock_hold_start, now));
            self.span(SpanKind::LockHold, self.lock_hold_start, now, 0);
            if self.trace.every != 0 {
                self.trace_lock_released(self.lock_hold_start, now);
            }
        }
        self.counters.mmu_lock_holds += 1;
        if let Some(before) = self.nivcsw_at_acquire.take() {
            if let Some(after) = thread_nivcsw() {
                self.lock_holds_sampled += 1;
                self.lock_holder_preempted += (after > before) as u64;
            }
        }
    }

    #[inline]
    fn gfn_walked(&mut self, gfn: Gfn, stats: &WalkStats) {
        if !self.timing {
            return;
        }
        let now = clock::now();
        self.rec
            .record(Metric::WpGfn, clock::delta_ns(self.last_gfn_ts, now));
        if self.trace.active {
            self.span(SpanKind::WpGfn, self.last_gfn_ts, now, gfn);
            let at = clock::delta_ns(self.ctx.t_start, now);
            for r in RestartReason::ALL {
                for _ in 0..stats.restarts[r as usize].min(8) {
                    self.ctx
                        .probe
                        .restart(self.role, self.index, at, r.name(), gfn);
                }
            }
        }
        self.last_gfn_ts = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nivcsw_is_readable_and_monotonic() {
        let a = thread_nivcsw().expect("getrusage(RUSAGE_THREAD) works on Linux");
        let b = thread_nivcsw().unwrap();
        assert!(b >= a);
    }
}
