//! The zapper: mmu-notifier invalidations (see [zaps](crate#zaps) in the
//! crate docs).
//!
//! `dirty-log` and `idle` zap `Config::zap_gfns` consecutive gfns
//! `Config::zap_rate` times a second (paced by a deadline, so a late zap
//! does not cause a burst). `churn` works on the hot gfns back to back, for the most add and
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
use crate::config::WorkloadKind;
use rmap_impls::Gfn;
use crate::metrics::{LiveField, Metric};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

/// `churn`: one operation in this many zaps a whole gfn.
const CHURN_FULL_ZAP: u64 = 16;

/// `torture`: one operation in this many zaps a whole gfn, alias 0 too.
const TORTURE_FULL_ZAP: u64 = 64;

/// `torture`: one drop to the single form in this many keeps a random
/// alias's spte instead of alias 0's.
const TORTURE_ANY_SURVIVOR: u32 = 4;

/// A zapper that fell this far behind its schedule skips ahead.
const MAX_LAG: Duration = Duration::from_millis(10);

pub(crate) fn zapper_main(w: &mut Worker<'_>) {
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
    // `churn` zaps back to back; the others at `zap_rate` (a `torture`
    // that dropped rmaps back to back would hold `mmu_lock` against the
    // very refaults that grow them again).
    let period = (!churn && cfg.zap_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / cfg.zap_rate));
    let mut next = Instant::now();

    while w.poll() {
        if let Some(period) = period {
            next += period;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
                if !w.poll() {
                    break;
                }
            } else if now - next > MAX_LAG {
                next = now;
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
        let end = w.record_since(Metric::Zap, t0);
        if traced {
            w.span(SpanKind::Zap, t0, end, range.start);
        }
        w.trace_end();
        w.counters.zaps += 1;
        w.counters.sptes_zapped += zapped;
        w.live(LiveField::Zaps, 1);
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
