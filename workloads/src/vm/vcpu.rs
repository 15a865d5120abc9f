//! A vCPU: guest accesses, fast faults and slow faults (DESIGN §3).
//!
//! One access: enter guest mode, translate (read the spte of the page in the
//! chosen address space), and if the spte allows it, do `tlb_burst` writes
//! through that one translation, then leave guest mode. Otherwise leave
//! guest mode (a VM exit) and fault:
//!
//! * present, W clear, MMU_WRITABLE set, a write: the **fast fault** fixes
//!   the spte with one cmpxchg and no lock, then marks the gfn dirty;
//! * not present: the **slow fault** installs an spte and adds it to the
//!   rmap (`Rmap::map`, which takes what the design needs), and only then
//!   marks the gfn dirty if it granted W. Marking before the rmap add is the
//!   `dirty-before-rmap` injected bug: a round can harvest the mark and walk
//!   the rmap before the spte is in it, and the writes through it are lost.
//!
//! Then the access is retried. Reads fault sptes in without W (KVM maps a
//! read fault read-only while dirty logging is on), so a later write takes
//! a fast fault.

use super::tlb::Vcpus;
use super::worker::Worker;
use super::SpanKind;
use crate::config::{Config, Pattern, Regions, WorkloadKind};
use crate::metrics::{LiveField, Metric, FAULT_FAST_SAMPLE, WRITE_SAMPLE};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rmap_impls::spte::{is_present, is_writable, make_spte, SPTE_MMU_WRITABLE};
use rmap_impls::{Bug, Gfn, MapOutcome};
use std::sync::atomic::Ordering;

/// Which gfn a vCPU touches next.
pub(crate) struct GfnPicker {
    base: u64,
    len: u64,
    pattern: Pattern,
    /// `churn`: only these gfns.
    hot: Option<Vec<Gfn>>,
    cursor: u64,
    /// Zipf(1) over `len`: H(len) - Euler's gamma, and a multiplier that
    /// spreads ranks over the region (a bijection mod `len`).
    zipf_h: f64,
    spread: u64,
}

const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl GfnPicker {
    pub(crate) fn new(cfg: &Config, vcpu: u32) -> Self {
        let gfns = cfg.gfns();
        let (base, len) = match cfg.regions {
            Regions::Shared => (0, gfns),
            Regions::Partitioned => {
                let per = (gfns / cfg.vcpus as u64).max(1);
                let base = (vcpu as u64 * per).min(gfns - 1);
                (base, per.min(gfns - base))
            }
        };
        let hot = (cfg.workload == WorkloadKind::Churn).then(|| hot_gfns(cfg));
        let mut spread = 0x9E37_79B9_7F4A_7C15 % len.max(1);
        while len > 1 && (spread == 0 || gcd(spread, len) != 1) {
            spread += 1;
        }
        GfnPicker {
            base,
            len,
            pattern: cfg.pattern,
            hot,
            cursor: vcpu as u64 * 7919,
            zipf_h: (len as f64).ln() + 0.5 / len as f64,
            spread: spread.max(1),
        }
    }

    #[inline]
    pub(crate) fn next(&mut self, rng: &mut SmallRng) -> Gfn {
        if let Some(hot) = &self.hot {
            return hot[rng.gen_range(0..hot.len())];
        }
        let off = match self.pattern {
            Pattern::Uniform => rng.gen_range(0..self.len),
            Pattern::Sequential => {
                self.cursor = self.cursor.wrapping_add(1);
                self.cursor % self.len
            }
            Pattern::Zipf => {
                // Inverse of H(k) ~ ln k + gamma: rank k has probability
                // about 1/(k H(len)).
                let u: f64 = rng.gen();
                let k = (u * (self.zipf_h + EULER_GAMMA) - EULER_GAMMA).exp() as u64;
                let rank = k.clamp(1, self.len) - 1;
                ((rank as u128 * self.spread as u128) % self.len as u128) as u64
            }
        };
        self.base + off
    }
}

/// `churn`'s hot gfns, spread over the memslot.
pub(crate) fn hot_gfns(cfg: &Config) -> Vec<Gfn> {
    let gfns = cfg.gfns();
    let n = cfg.hot_gfns.min(gfns).max(1);
    (0..n).map(|k| k * (gfns / n)).collect()
}

pub(crate) fn vcpu_main(w: &mut Worker<'_>, vcpus: &Vcpus, i: u32) {
    let ctx = w.ctx;
    let cfg = ctx.cfg;
    let sptes = &ctx.sptes;
    let i = i as usize;
    let mut rng = SmallRng::seed_from_u64(
        cfg.seed
            .wrapping_mul(0x2545_F491_4F6C_DD1D)
            .wrapping_add(i as u64 + 1),
    );
    let mut picker = GfnPicker::new(cfg, i as u32);
    let dirty_logging = cfg.workload != WorkloadKind::Idle;
    let bug_dirty_first = cfg.workload_bug() == Some(Bug::DirtyBeforeRmap);
    let burst = cfg.tlb_burst as u64;
    let aliases = cfg.aliases;
    let mut retry: Option<(Gfn, u32, bool)> = None;
    let mut accesses = 0u64;

    while w.poll() {
        let (gfn, alias, write) = retry.take().unwrap_or_else(|| {
            let g = picker.next(&mut rng);
            let a = if aliases > 1 {
                rng.gen_range(0..aliases)
            } else {
                0
            };
            (g, a, rng.gen_range(0..100) < cfg.write_pct)
        });
        let slot = sptes.slot_id(alias, gfn);
        accesses += 1;
        if vcpus.kicked() {
            // A remote TLB flush waits for a vCPU that is not running.
            std::thread::yield_now();
        }
        let sampled = accesses % WRITE_SAMPLE == 0;
        let t0 = if sampled { w.now() } else { 0 };

        vcpus.enter(i);
        // SeqCst: the load half of the store-buffering pair with the remote
        // TLB flush (tlb.rs): either this translation sees the W bit (or the
        // spte) cleared, or the flush sees us in guest mode and waits.
        let spte = sptes.slot(slot).load(Ordering::SeqCst);
        if is_present(spte) && (!write || is_writable(spte)) {
            if write {
                for _ in 0..burst {
                    ctx.mem.guest_write(gfn);
                }
            }
            vcpus.exit(i);
            if write {
                w.counters.guest_writes += burst;
                w.live(LiveField::GuestWrites, burst);
                if sampled {
                    w.record_since(Metric::Write, t0);
                }
            } else {
                w.counters.guest_reads += 1;
            }
            continue;
        }
        vcpus.exit(i);

        if !is_present(spte) {
            // Slow fault.
            let traced = w.trace_begin(SpanKind::FaultSlow);
            let t = w.now();
            vcpus.fault_begin(i, gfn);
            let mark = write && dirty_logging;
            if mark && bug_dirty_first {
                ctx.dirty.mark(gfn);
            }
            let out = ctx.rmap.map(sptes, gfn, slot, make_spte(gfn, write), w);
            if mark && !bug_dirty_first && out == MapOutcome::Mapped {
                ctx.dirty.mark(gfn);
            }
            vcpus.fault_end(i);
            match out {
                MapOutcome::Mapped => {
                    let end = w.record_since(Metric::FaultSlow, t);
                    w.counters.faults_slow += 1;
                    if traced {
                        w.span(SpanKind::FaultSlow, t, end, gfn);
                    }
                }
                MapOutcome::AlreadyPresent => w.counters.faults_raced += 1,
            }
            w.trace_end();
            w.live(LiveField::Faults, 1);
        } else if write && spte & SPTE_MMU_WRITABLE != 0 {
            // Fast fault: no lock. Timed one in FAULT_FAST_SAMPLE.
            let timed = w.counters.faults_fast % FAULT_FAST_SAMPLE == 0;
            let t = if timed { w.now() } else { 0 };
            vcpus.fault_begin(i, gfn);
            if sptes.fast_fault_fix(slot, spte) {
                if dirty_logging {
                    ctx.dirty.mark(gfn);
                }
                vcpus.fault_end(i);
                if timed {
                    w.record_since(Metric::FaultFast, t);
                }
                w.counters.faults_fast += 1;
                w.live(LiveField::Faults, 1);
            } else {
                vcpus.fault_end(i);
                w.counters.fast_fault_retries += 1;
            }
        }
        retry = Some((gfn, alias, write));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pattern: Pattern, regions: Regions) -> Config {
        Config {
            mem_bytes: 1000 * 4096,
            vcpus: 4,
            pattern,
            regions,
            ..Config::default()
        }
    }

    #[test]
    fn picks_stay_in_the_region() {
        let mut rng = SmallRng::seed_from_u64(1);
        for pattern in [Pattern::Uniform, Pattern::Zipf, Pattern::Sequential] {
            let c = cfg(pattern, Regions::Partitioned);
            let mut p = GfnPicker::new(&c, 2);
            for _ in 0..5000 {
                let g = p.next(&mut rng);
                assert!((500..750).contains(&g), "{pattern:?} picked {g}");
            }
        }
    }

    #[test]
    fn zipf_is_skewed_and_uniform_is_not() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut share_of_top_page = |pattern| {
            let mut p = GfnPicker::new(&cfg(pattern, Regions::Shared), 0);
            let mut counts = vec![0u32; 1000];
            for _ in 0..100_000 {
                counts[p.next(&mut rng) as usize] += 1;
            }
            *counts.iter().max().unwrap() as f64 / 100_000.0
        };
        // Zipf(1) over 1000 pages: the top page takes 1/H(1000), about 13%.
        assert!(share_of_top_page(Pattern::Zipf) > 0.08);
        assert!(share_of_top_page(Pattern::Uniform) < 0.01);
    }

    #[test]
    fn churn_touches_only_hot_gfns() {
        let c = Config {
            workload: WorkloadKind::Churn,
            hot_gfns: 4,
            ..cfg(Pattern::Uniform, Regions::Shared)
        };
        let hot = hot_gfns(&c);
        assert_eq!(hot, vec![0, 250, 500, 750]);
        let mut rng = SmallRng::seed_from_u64(3);
        let mut p = GfnPicker::new(&c, 1);
        for _ in 0..1000 {
            assert!(hot.contains(&p.next(&mut rng)));
        }
    }
}
