//! The zapper: mmu-notifier invalidations (see [zaps](crate#zaps) in the
//! crate docs).
//!
//! `dirty-log` and `idle` zap `Config::zap_gfns` consecutive gfns
//! `Config::zap_rate` times a second, **open loop**, as wrk2 drives its
//! load: zap `k` of the schedule is due at `origin + k / zap_rate`, however
//! long the zaps before it took. The zapper sleeps until a zap is due, or
//! starts it at once when it is already late, and never skips one, so a
//! design that makes zaps slow faces the same offered load as one that does
//! not, and its backlog shows. `zapper.zap` is measured from the zap's
//! *intended* start to its end: the time an invalidation waited behind the
//! ones before it counts, as it would for the host's mm waiting on KVM. A zap
//! that starts more than one period after its intended start is *late*.
//!
//! When the run stops, the zaps that were due and never started count in
//! `zapper.zap` at their wait so far (a lower bound): a design that fell
//! behind is not spared its longest waits.
//!
//! The schedule restarts when the measured phase begins (the warmup's
//! backlog is not carried over), and the run reports the zaps requested
//! (intended starts from then to the end of the measured phase, computed
//! when the run ends by [`requested`]), issued (`Counters::zaps`) and late
//! (`Counters::zaps_late`). The zapper's thread asks for a 1 us timer slack,
//! so that its sleeps end when they should rather than up to 50 us later
//! (Linux's default slack), which would add to every zap's latency.
//!
//! `churn` works on the hot gfns back to back, unpaced, for the most add and
//! remove traffic against continuous walks: mostly it drops a *single* spte
//! (one address space's mapping of one hot gfn, as zapping a shadow page
//! does), so rmaps shrink entry by entry, fall back to the single-spte form
//! and grow again as vCPUs refault, which moves descriptors between rmaps
//! through the pool; one operation in [`CHURN_FULL_ZAP`] is a full
//! invalidation of the gfn.
//!
//! `torture` works on its hot gfns at `zap_rate`, in the flaw's shape:
//! one operation drops a hot gfn's rmap to its single-spte form, unmapping
//! every spte but one, one at a time (each its own `mmu_lock` hold, in a
//! random order), then flushes; the vCPUs refault the others at once, so
//! the rmap grows back into descriptors taken last-in-first-out from the
//! pool, some of them freed by this rmap a moment ago, some by another. The
//! spte kept is alias 0's in three drops of four, so that it stays in the
//! rmap through many flips (one operation in [`TORTURE_FULL_ZAP`] zaps the
//! whole gfn): it is the spte a walk that stands on a recycled descriptor
//! misses. A random alias's in the fourth puts the kept spte in any slot of
//! a descriptor, where a walker reading slots in the wrong order misses it
//! as it moves down.

use super::picker::hot_gfns;
use super::probe::SpanKind;
use super::worker::Worker;
use crate::clock;
use crate::config::{Config, WorkloadKind};
use crate::metrics::{LiveField, Metric};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rmap_impls::Gfn;
use std::time::Duration;

/// `churn`: one operation in this many zaps a whole gfn.
const CHURN_FULL_ZAP: u64 = 16;

/// The zapper's timer slack, nanoseconds.
const TIMER_SLACK_NS: libc::c_ulong = 1_000;

/// `torture`: one operation in this many zaps a whole gfn, alias 0 too.
const TORTURE_FULL_ZAP: u64 = 64;

/// `torture`: one drop to the single form in this many keeps a random
/// alias's spte instead of alias 0's.
const TORTURE_ANY_SURVIVOR: u32 = 4;

/// The open-loop schedule: zap `k` is due `k * period` after `origin`.
struct Schedule {
    period_ns: f64,
    /// Raw clock at which zap 0 is due.
    origin: u64,
    /// The next zap's index.
    next: u64,
}

impl Schedule {
    fn new(rate: f64) -> Self {
        Schedule {
            period_ns: 1e9 / rate,
            origin: clock::now(),
            next: 0,
        }
    }

    /// Start over: zap 0 is due now.
    fn restart(&mut self) {
        self.origin = clock::now();
        self.next = 0;
    }

    /// When the next zap is due, in nanoseconds since the origin.
    fn due_ns(&self) -> u64 {
        self.due_ns_of(self.next)
    }

    /// When zap `k` is due, in nanoseconds since the origin.
    fn due_ns_of(&self, k: u64) -> u64 {
        (k as f64 * self.period_ns) as u64
    }

    /// Nanoseconds since the origin.
    fn elapsed_ns(&self) -> u64 {
        clock::delta_ns(self.origin, clock::now())
    }
}

/// Zaps the open-loop schedule of `cfg` asked for in the measured phase:
/// the intended starts from `origin` (the zapper's schedule origin in the
/// measured phase; `None` if the zapper never saw the measured phase, which
/// then counts from `start`) to `end` (raw clock at the measured phase's
/// start and end). 0 where the zapper is not paced.
pub(crate) fn requested(cfg: &Config, origin: Option<u64>, start: u64, end: u64) -> u64 {
    if !paced(cfg) {
        return 0;
    }
    let from = origin.unwrap_or(start);
    let ns = clock::delta_ns(from, end) as f64;
    (ns * cfg.zap_rate / 1e9).ceil() as u64
}

/// The zapper follows a schedule (`dirty-log` and `idle` with a rate).
fn paced(cfg: &Config) -> bool {
    cfg.workload != WorkloadKind::Churn && cfg.zap_rate > 0.0
}

/// The zapper thread, until the run stops. Returns the raw clock at which
/// its schedule started in the measured phase, if it was paced and saw it.
pub(crate) fn zapper_main(w: &mut Worker<'_>) -> Option<u64> {
    let ctx = w.ctx;
    let cfg = ctx.cfg;
    let gfns = cfg.gfns();
    let mut rng = SmallRng::seed_from_u64(cfg.seed ^ 0x5A9_5A9);
    let churn = cfg.workload == WorkloadKind::Churn;
    let torture = cfg.workload == WorkloadKind::Torture;
    let hot = if cfg.workload.hot() {
        hot_gfns(cfg)
    } else {
        Vec::new()
    };
    // `churn` zaps back to back; the others follow the open-loop schedule
    // at `zap_rate` (a `torture` that dropped rmaps back to back would hold
    // `mmu_lock` against the very refaults that grow them again).
    let mut schedule = paced(cfg).then(|| {
        // SAFETY: PR_SET_TIMERSLACK takes a value and changes only the
        // calling thread's timer slack; a failure leaves the default.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, TIMER_SLACK_NS, 0, 0, 0) };
        Schedule::new(cfg.zap_rate)
    });
    let mut origin_measured = None;

    'zaps: while w.poll() {
        // The intended start of this zap, nanoseconds since the origin.
        let mut due = None;
        if let Some(s) = &mut schedule {
            loop {
                if w.measure_began() {
                    s.restart();
                    origin_measured = Some(s.origin);
                }
                let (at, now) = (s.due_ns(), s.elapsed_ns());
                if at <= now {
                    due = Some(at);
                    w.counters.zaps_late += (now - at > s.period_ns as u64) as u64;
                    s.next += 1;
                    break;
                }
                std::thread::sleep(Duration::from_nanos(at - now));
                if !w.poll() {
                    break 'zaps;
                }
            }
        }
        if torture && !w.counters.zaps.is_multiple_of(TORTURE_FULL_ZAP) {
            let g = hot[rng.gen_range(0..hot.len())];
            drop_to_single_form(w, &mut rng, g);
            continue;
        }
        let range = if churn {
            let g = hot[rng.gen_range(0..hot.len())];
            if !w.counters.zaps.is_multiple_of(CHURN_FULL_ZAP) {
                // Drop one spte of `g`, as zapping a shadow page does.
                let alias = rng.gen_range(0..cfg.aliases);
                let t0 = w.now();
                let slot = ctx.sptes.slot_id(alias, g);
                let zapped = ctx.rmap.unmap(&ctx.sptes, g, slot, w);
                ctx.vcpus.flush();
                w.record_since(Metric::Zap, t0);
                w.counters.zaps += 1;
                w.counters.sptes_zapped += zapped as u64;
                w.live(LiveField::Zaps, 1);
                continue;
            }
            g..g + 1
        } else if torture {
            let g = hot[rng.gen_range(0..hot.len())];
            g..g + 1
        } else {
            let n = cfg.zap_gfns.min(gfns);
            let start = rng.gen_range(0..=gfns - n);
            start..start + n
        };
        let traced = w.trace_begin(SpanKind::Zap);
        let t0 = w.now();
        let zapped = ctx.rmap.zap(&ctx.sptes, range.clone(), w);
        ctx.vcpus.flush();
        // A paced zap reads the clock whether or not latency is recorded:
        // its schedule runs on it.
        let end = if schedule.is_some() {
            clock::now()
        } else {
            w.now()
        };
        match (&schedule, due) {
            // From the intended start.
            (Some(s), Some(at)) => w.record_ns(
                Metric::Zap,
                clock::delta_ns(s.origin, end).saturating_sub(at),
            ),
            _ => w.record_span(Metric::Zap, t0, end),
        }
        if traced {
            w.span(SpanKind::Zap, t0, end, range.start);
        }
        w.trace_end();
        w.counters.zaps += 1;
        w.counters.sptes_zapped += zapped;
        w.live(LiveField::Zaps, 1);
    }
    if let (Some(s), Some(_)) = (&schedule, origin_measured) {
        record_backlog(w, s);
    }
    origin_measured
}

/// At most this many zaps of a backlog are recorded (a run that fell 30 s
/// behind at 2,000 zaps a second).
const MAX_BACKLOG_SAMPLES: u64 = 60_000;

/// The zaps that were due when the run stopped and never started: each is
/// recorded into `zapper.zap` at its wait so far, a lower bound on its
/// latency. Leaving them out would drop exactly the longest waits of a
/// design that fell behind, the coordinated omission the open loop exists
/// to avoid (wrk2 counts such requests the same way).
fn record_backlog(w: &mut Worker<'_>, s: &Schedule) {
    let now = s.elapsed_ns();
    let mut k = s.next;
    while s.due_ns_of(k) <= now && k - s.next < MAX_BACKLOG_SAMPLES {
        w.record_ns(Metric::Zap, now - s.due_ns_of(k));
        k += 1;
    }
}

/// `torture`: unmap every spte of rmap `g` but one (alias 0's, or one in
/// [`TORTURE_ANY_SURVIVOR`] times a random alias's), one at a time in a
/// random order, then flush.
fn drop_to_single_form(w: &mut Worker<'_>, rng: &mut SmallRng, g: Gfn) {
    let ctx = w.ctx;
    let aliases = ctx.cfg.aliases;
    let t0 = w.now();
    let first = rng.gen_range(0..aliases.max(2) - 1);
    let survivor = if rng.gen_range(0..TORTURE_ANY_SURVIVOR) == 0 {
        rng.gen_range(0..aliases)
    } else {
        0
    };
    let mut zapped = 0;
    for k in 0..aliases.saturating_sub(1) {
        let alias = (survivor + 1 + (first + k) % (aliases - 1)) % aliases;
        let slot = ctx.sptes.slot_id(alias, g);
        zapped += ctx.rmap.unmap(&ctx.sptes, g, slot, w) as u64;
    }
    ctx.vcpus.flush();
    w.record_since(Metric::Zap, t0);
    w.counters.zaps += 1;
    w.counters.sptes_zapped += zapped;
    w.live(LiveField::Zaps, 1);
}
