//! One thread's measurement state ([`Worker`]): its histograms and
//! counters, the run phase it last saw, its trace sampling state, and the
//! [`Observer`] through which an rmap implementation reports lock waits and
//! holds (`mmu_lock`, `rmap-lock`'s bit lock), failed optimistic passes and
//! walked gfns.
//!
//! The worker knows its role, so each lock wait and hold goes to the
//! histogram of its lock and role (`mmu_lock.wait.vcpu`, ...,
//! `rmap_lock.hold.zapper`); `mmu_lock.wait` and `mmu_lock.hold` get every
//! role's too, the merge the result schema requires.
//!
//! Measuring must not distort what it measures. A thread reads one shared
//! word per operation (the run's phase and interval, a Relaxed load of a
//! line that changes a few times a second); with latency recording off it
//! reads no clock at all; `rmap-lock`'s bit lock, taken for every gfn a
//! walker walks, is timed one acquisition in [`RMAP_LOCK_SAMPLE`]; and
//! lock-holder preemption is sampled ([`PreemptSample`]: one `mmu_lock`
//! acquisition in [`PREEMPT_SAMPLE`] of the measured phase pays two
//! `getrusage` calls, both outside the critical section).

use super::probe::{LockHandoff, SpanKind};
use super::shared::{LockTrace, Phase, Shared};
use crate::clock;
use crate::metrics::{
    Counters, LiveField, LockName, Metric, Recorder, RoleKind, PREEMPT_SAMPLE, RMAP_LOCK_SAMPLE,
};
use rmap_impls::{Gfn, Observer, RestartReason, WalkStats};
use std::sync::atomic::Ordering;

/// Lock-holder preemption, sampled: one `mmu_lock` acquisition in
/// [`PREEMPT_SAMPLE`] of the measured phase has its thread's involuntary
/// context switches read just before it asks for the lock and just after it
/// released it, and counts as *descheduled* when the count moved.
///
/// No read happens inside the critical section (a syscall there would
/// lengthen the very hold it samples), so what is counted is "involuntarily
/// descheduled between asking for the lock and releasing it": during the
/// wait or the hold. The kernel's `mmu_lock` holder and its spinning waiters
/// both run with preemption disabled, so neither can happen to them
/// (`rmap_impls::lock`): on a machine with more worker threads than CPUs
/// this counts a cost of running the lock in userspace.
pub(crate) struct PreemptSample {
    /// The thread's involuntary context switches so far (`getrusage`; a
    /// fake in tests).
    read: fn() -> Option<i64>,
    /// Acquisitions asked for since the measured phase began.
    asked: u64,
    /// The count read before the current sampled acquisition.
    before: Option<i64>,
    /// Sampled acquisitions, and those descheduled while waiting or holding.
    pub(crate) sampled: u64,
    pub(crate) descheduled: u64,
}

impl PreemptSample {
    fn new(read: fn() -> Option<i64>) -> Self {
        PreemptSample {
            read,
            asked: 0,
            before: None,
            sampled: 0,
            descheduled: 0,
        }
    }

    /// The measured phase begins: forget the warmup.
    fn restart(&mut self) {
        *self = PreemptSample::new(self.read);
    }

    /// About to ask for the lock (before the wait is timed).
    #[inline]
    fn asking(&mut self) {
        self.asked += 1;
        if self.asked.is_multiple_of(PREEMPT_SAMPLE) {
            self.before = (self.read)();
        }
    }

    /// The lock was released (after the hold was timed).
    #[inline]
    fn released(&mut self) {
        if let Some(before) = self.before.take() {
            if let Some(after) = (self.read)() {
                self.sampled += 1;
                self.descheduled += (after > before) as u64;
            }
        }
    }
}

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
    pub(crate) role: RoleKind,
    pub(crate) rec: Recorder,
    pub(crate) counters: Counters,
    /// CPU time the thread used in the measured phase (user and system,
    /// `getrusage(RUSAGE_THREAD)` at its first measured operation and at
    /// its end), in nanoseconds; 0 if it never measured.
    pub(crate) cpu_ns: u64,
    /// The zapper: the raw time its open-loop schedule started in the
    /// measured phase (see `zapper`).
    pub(crate) zap_schedule_origin: Option<u64>,
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
    rec_done: Option<Recorder>,
    pub(crate) counters: Counters,
    counters_done: Counters,
    /// Read clocks at all (latency recording on, or tracing).
    pub(crate) timing: bool,
    measuring: bool,
    /// The measured phase began at the last `poll`, and the role's loop has
    /// not yet asked ([`Worker::measure_began`]).
    measure_began: bool,
    /// Thread CPU time at the first measured operation, nanoseconds.
    cpu_at_measure: u64,
    interval: u64,
    trace: TraceState,
    // Observer state.
    lock_wait_start: u64,
    lock_hold_start: u64,
    last_gfn_ts: u64,
    preempt: PreemptSample,
    /// This thread's current `mmu_lock` wait is traced, and counted in
    /// `LockTrace::traced_waiters` until its hold ends.
    traced_wait: bool,
    /// The hold in progress when that wait began (`LockTrace::hold_word`).
    hold_at_wait: u64,
    /// `rmap-lock` bit-lock acquisitions begun, the one in progress is timed
    /// ([`RMAP_LOCK_SAMPLE`]), and its wait and hold starts.
    rmap_locks: u64,
    rmap_lock_timed: bool,
    rmap_lock_wait_start: u64,
    rmap_lock_hold_start: u64,
    /// When the current walk's last failed pass ended (0: none failed).
    pass_failed_ts: Option<u64>,
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
            rec: Recorder::default(),
            rec_done: ctx.cfg.sample_interval.map(|_| Recorder::default()),
            counters: Counters::default(),
            counters_done: Counters::default(),
            timing: record || every.is_some(),
            measuring: false,
            measure_began: false,
            cpu_at_measure: 0,
            interval: 0,
            trace: TraceState {
                every: every.unwrap_or(0),
                ..TraceState::default()
            },
            lock_wait_start: 0,
            lock_hold_start: 0,
            last_gfn_ts: 0,
            preempt: PreemptSample::new(thread_nivcsw),
            traced_wait: false,
            hold_at_wait: 0,
            rmap_locks: 0,
            rmap_lock_timed: false,
            rmap_lock_wait_start: 0,
            rmap_lock_hold_start: 0,
            pass_failed_ts: None,
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
                    self.measure_began = true;
                    self.cpu_at_measure = thread_cpu_ns().unwrap_or(0);
                    self.rec.reset();
                    self.counters = Counters::default();
                    self.preempt.restart();
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

    /// Whether the measured phase began since the last call: true once, at
    /// the role loop's first measured operation (the vCPU restarts its
    /// pass there, the zapper its schedule).
    #[inline]
    pub(crate) fn measure_began(&mut self) -> bool {
        std::mem::take(&mut self.measure_began)
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
        if let Some(done) = &mut self.rec_done {
            done.merge(&self.rec);
        }
        self.rec.reset();
        self.counters_done.add(&self.counters);
        self.counters = Counters::default();
    }

    /// The thread ends: everything it measured.
    pub(crate) fn finish(mut self, zap_schedule_origin: Option<u64>) -> WorkerResult {
        let cpu_ns = if self.measuring {
            thread_cpu_ns()
                .unwrap_or(0)
                .saturating_sub(self.cpu_at_measure)
        } else {
            0
        };
        let (mut rec, mut counters) = if self.rec_done.is_some() && self.measuring {
            self.hand_over_interval();
            let done = self.rec_done.take().expect("sampling keeps a recorder");
            (done, self.counters_done)
        } else {
            (self.rec, self.counters)
        };
        if !self.measuring {
            rec.reset();
            counters = Counters::default();
            self.preempt.restart();
        }
        WorkerResult {
            role: self.role,
            rec,
            counters,
            cpu_ns,
            zap_schedule_origin,
            lock_holds_sampled: self.preempt.sampled,
            lock_holder_preempted: self.preempt.descheduled,
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

    /// Record `m` from `start` to `end` (raw timestamps from [`Self::now`]).
    #[inline]
    pub(crate) fn record_span(&mut self, m: Metric, start: u64, end: u64) {
        if self.timing {
            self.rec.record(m, clock::delta_ns(start, end));
        }
    }

    /// Record a lock wait or hold of `ns` in its lock's histogram for this
    /// worker's role, and `mmu_lock`'s in the all-roles merge too.
    #[inline]
    fn record_lock(&mut self, lock: LockName, hold: bool, ns: u64) {
        let (by_role, merged) = if hold {
            (Metric::lock_hold(lock, self.role), Metric::LockHold)
        } else {
            (Metric::lock_wait(lock, self.role), Metric::LockWait)
        };
        self.rec.record(by_role, ns);
        if lock == LockName::MmuLock {
            self.rec.record(merged, ns);
        }
    }

    /// Record `ns` nanoseconds of `m`, when latency recording is on.
    #[inline]
    pub(crate) fn record_ns(&mut self, m: Metric, ns: u64) {
        if self.timing {
            self.rec.record(m, ns);
        }
    }

    /// Record `ns` nanoseconds of `m` whether latency recording is on or
    /// not (`vcpu.pass`, which the caller times with its own clock reads).
    #[inline]
    pub(crate) fn record_always(&mut self, m: Metric, ns: u64) {
        self.rec.record(m, ns);
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

/// The calling thread's resource usage so far.
fn thread_rusage() -> Option<libc::rusage> {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is a valid, writable rusage; RUSAGE_THREAD reports on
    // the calling thread only.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr()) };
    // SAFETY: getrusage filled it on success (and it was zeroed before).
    (rc == 0).then(|| unsafe { ru.assume_init() })
}

/// Involuntary context switches of the calling thread so far.
fn thread_nivcsw() -> Option<i64> {
    thread_rusage().map(|ru| ru.ru_nivcsw)
}

/// CPU time (user and system) of the calling thread so far, nanoseconds.
fn thread_cpu_ns() -> Option<u64> {
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    thread_rusage().map(|ru| ns(ru.ru_utime) + ns(ru.ru_stime))
}

impl Observer for Worker<'_> {
    #[inline]
    fn lock_wait(&mut self) {
        // The preemption sample's read comes first, outside the timed wait.
        if self.measuring {
            self.preempt.asking();
        }
        self.lock_wait_start = self.now();
        if self.trace.every != 0 {
            self.trace_lock_wait();
        }
    }

    #[inline]
    fn lock_acquired(&mut self) {
        let now = self.now();
        if self.timing {
            let ns = clock::delta_ns(self.lock_wait_start, now);
            self.record_lock(LockName::MmuLock, false, ns);
            self.span(SpanKind::LockWait, self.lock_wait_start, now, 0);
        }
        self.lock_hold_start = now;
        self.last_gfn_ts = now;
        if self.trace.every != 0 {
            self.trace_lock_acquired(now);
        }
    }

    #[inline]
    fn lock_released(&mut self) {
        if self.timing {
            let now = clock::now();
            let ns = clock::delta_ns(self.lock_hold_start, now);
            self.record_lock(LockName::MmuLock, true, ns);
            self.span(SpanKind::LockHold, self.lock_hold_start, now, 0);
            if self.trace.every != 0 {
                self.trace_lock_released(self.lock_hold_start, now);
            }
        }
        self.counters.mmu_lock_holds += 1;
        // After the release and its timestamp: outside the critical section.
        self.preempt.released();
    }

    #[inline]
    fn rmap_lock_wait(&mut self, _gfn: Gfn) {
        self.rmap_locks += 1;
        self.rmap_lock_timed = self.timing && self.rmap_locks.is_multiple_of(RMAP_LOCK_SAMPLE);
        if self.rmap_lock_timed {
            self.rmap_lock_wait_start = clock::now();
        }
    }

    #[inline]
    fn rmap_lock_acquired(&mut self) {
        if self.rmap_lock_timed {
            let now = clock::now();
            let ns = clock::delta_ns(self.rmap_lock_wait_start, now);
            self.record_lock(LockName::RmapLock, false, ns);
            self.rmap_lock_hold_start = now;
        }
    }

    #[inline]
    fn rmap_lock_released(&mut self) {
        if std::mem::take(&mut self.rmap_lock_timed) {
            let ns = clock::delta_ns(self.rmap_lock_hold_start, clock::now());
            self.record_lock(LockName::RmapLock, true, ns);
        }
    }

    #[inline]
    fn walk_pass_failed(&mut self) {
        if self.timing {
            self.pass_failed_ts = Some(clock::now());
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
        if let Some(failed) = self.pass_failed_ts.take() {
            self.rec
                .record(Metric::WpRetry, clock::delta_ns(self.last_gfn_ts, failed));
        }
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
    use crate::config::Config;
    use crate::metrics::Live;
    use crate::vm::probe::NoProbe;
    use rmap_impls::{ImplKind, LockKind, RmapConfig};
    use std::cell::RefCell;

    thread_local! {
        /// The fake counter: its value, and a log of what happened when.
        static FAKE: RefCell<(i64, Vec<&'static str>)> = const { RefCell::new((0, Vec::new())) };
    }

    fn fake_nivcsw() -> Option<i64> {
        FAKE.with(|f| {
            let mut f = f.borrow_mut();
            f.1.push("read");
            Some(f.0)
        })
    }

    fn note(what: &'static str) {
        FAKE.with(|f| f.borrow_mut().1.push(what));
    }

    /// One `mmu_lock` acquisition as `MmuLock::with` reports it; the fake
    /// counter moves while the lock is held when `descheduled`.
    fn hold(w: &mut Worker<'_>, descheduled: bool) {
        note("asking");
        w.lock_wait();
        note("acquired");
        w.lock_acquired();
        if descheduled {
            FAKE.with(|f| f.borrow_mut().0 += 1);
        }
        note("releasing");
        w.lock_released();
        note("released");
    }

    /// One acquisition in 64 of the measured phase is sampled, warmup ones
    /// are not, and the counter is read only before the wait or after the
    /// release, never in between.
    #[test]
    fn preemption_samples_one_measured_acquisition_in_64_outside_the_lock() {
        let cfg = Config {
            impl_kind: ImplKind::MmuLock,
            mem_bytes: 64 << 10,
            vcpus: 1,
            ..Config::default()
        };
        let rmap = rmap_impls::build(
            cfg.impl_kind,
            &RmapConfig::new(cfg.gfns(), cfg.desc_ext, LockKind::Spin),
            None,
        )
        .unwrap();
        let live = Live::default();
        let ctx = Shared::new(&cfg, &*rmap, None, &live, &NoProbe);
        let mut w = Worker::new(&ctx, RoleKind::Vcpu, 0);
        w.preempt = PreemptSample::new(fake_nivcsw);

        assert!(w.poll());
        for _ in 0..1000 {
            hold(&mut w, true);
        }
        ctx.set_phase(Phase::Measure, 0);
        assert!(w.poll() && w.measuring());
        // Every third acquisition is descheduled.
        for i in 0..6400 {
            hold(&mut w, i % 3 == 0);
        }
        let r = w.finish(None);
        assert_eq!(r.lock_holds_sampled, 6400 / PREEMPT_SAMPLE);
        // The 64th, 128th, ... (i = 63, 127, ...): i % 3 == 0 for a third.
        let expected = (1..=100u64).filter(|k| (64 * k - 1) % 3 == 0).count() as u64;
        assert_eq!(r.lock_holder_preempted, expected);
        assert_eq!(
            r.counters.mmu_lock_holds, 6400,
            "holds of the measured phase"
        );

        let log = FAKE.with(|f| f.borrow().1.clone());
        let mut last = "";
        for e in &log {
            if *e == "read" {
                assert!(
                    last == "asking" || last == "releasing",
                    "a counter read after '{last}': inside the critical section"
                );
            } else {
                last = e;
            }
        }
        assert_eq!(log.iter().filter(|e| **e == "read").count(), 200);
    }

    /// The thread's CPU time counts what it burns and not what it sleeps.
    #[test]
    fn thread_cpu_time_counts_work_not_sleep() {
        let a = thread_cpu_ns().expect("getrusage(RUSAGE_THREAD) works on Linux");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let b = thread_cpu_ns().unwrap();
        let spin_until = std::time::Instant::now() + std::time::Duration::from_millis(50);
        let mut x = 0u64;
        while std::time::Instant::now() < spin_until {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let c = thread_cpu_ns().unwrap();
        assert!(b >= a && c >= b);
        assert!(
            c - b > b - a,
            "sleeping {} ns, spinning {} ns",
            b - a,
            c - b
        );
    }

    #[test]
    fn nivcsw_is_readable_and_monotonic() {
        let a = thread_nivcsw().expect("getrusage(RUSAGE_THREAD) works on Linux");
        let b = thread_nivcsw().unwrap();
        assert!(b >= a);
    }
}
