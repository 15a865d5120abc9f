//! A vCPU thread: guest accesses, back to back, until the run stops (see
//! [the access paths](crate#the-three-access-paths) in the crate docs).
//!
//! One access: enter guest mode, translate (read the spte of the page in
//! the chosen address space), and if the spte allows the access, set its
//! Accessed bit if it is clear (as the CPU does with A/D bits), do
//! `Config::tlb_burst` writes through that one translation (or one read),
//! then leave guest mode. Otherwise leave guest mode (a VM exit), take the
//! fault ([`super::fault`]), and retry the same access.
//!
//! Guest progress: every [`Config::pass_accesses`] accesses that went
//! through make one *pass*, timed into `vcpu.pass` with one clock read per
//! pass. A vCPU is a closed loop, so a stall shows in one long fault sample
//! and in none of the writes it did not make; the pass time counts the
//! stall against the guest's progress, as `dirty_log_perf_test`'s iteration
//! time does.
//!
//! [`Config::pass_accesses`]: crate::Config::pass_accesses

use super::fault::{FastSample, Faults};
use super::picker::GfnPicker;
use super::worker::Worker;
use crate::clock;
use crate::metrics::{LiveField, Metric, WRITE_SAMPLE};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rmap_impls::spte::{is_present, is_writable, SPTE_ACCESSED, SPTE_MMU_WRITABLE};
use rmap_impls::Gfn;
use std::sync::atomic::Ordering;

/// vCPU `i` runs until the run stops.
pub(crate) fn vcpu_main(w: &mut Worker<'_>, i: u32) {
    let ctx = w.ctx;
    let cfg = ctx.cfg;
    let sptes = &ctx.sptes;
    let vcpus = &ctx.vcpus;
    let i = i as usize;
    let mut rng = SmallRng::seed_from_u64(
        cfg.seed
            .wrapping_mul(0x2545_F491_4F6C_DD1D)
            .wrapping_add(i as u64 + 1),
    );
    let mut picker = GfnPicker::new(cfg, i as u32);
    let mut faults = Faults::new(cfg, i);
    let burst = cfg.tlb_burst as u64;
    let aliases = cfg.aliases;
    // An access being retried after a fault: gfn, address space, write,
    // and its fast-fault sample.
    let mut retry: Option<(Gfn, u32, bool, FastSample)> = None;
    // Guest-mode entries: the sampling counter of `vcpu.write`.
    let mut entries = 0u64;
    let pass_len = cfg.pass_accesses();
    let mut pass_done = 0u64;
    let mut pass_start = clock::now();
    let mut measuring = false;

    while w.poll() {
        if !measuring && w.measuring() {
            // The first pass of the measured phase starts here.
            measuring = true;
            pass_done = 0;
            pass_start = clock::now();
        }
        let (gfn, alias, write, mut fast) = retry.take().unwrap_or_else(|| {
            let g = picker.next(&mut rng);
            let a = if aliases > 1 {
                rng.gen_range(0..aliases)
            } else {
                0
            };
            (
                g,
                a,
                rng.gen_range(0..100) < cfg.write_pct,
                FastSample::NotYet,
            )
        });
        let slot = sptes.slot_id(alias, gfn);
        entries += 1;
        if vcpus.kicked() {
            // A remote TLB flush waits for a vCPU that is not running.
            std::thread::yield_now();
        }
        let sampled = entries.is_multiple_of(WRITE_SAMPLE);
        let t0 = if sampled { w.now() } else { 0 };

        vcpus.enter(i);
        // SeqCst: the load half of the store-buffering pair with the remote
        // TLB flush (`Vcpus::flush`): either this translation sees the W bit
        // (or the spte) cleared, or the flush sees us in guest mode and
        // waits.
        let spte = sptes.slot(slot).load(Ordering::SeqCst);
        if is_present(spte) && (!write || is_writable(spte)) {
            // The access sets the Accessed bit if aging cleared it, as the
            // CPU's page walk does: one atomic update, only when the bit is
            // clear, so a VM nobody ages pays nothing for it.
            if spte & SPTE_ACCESSED == 0 && sptes.mark_accessed(slot, spte) {
                w.counters.accessed_set += 1;
            }
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
            pass_done += 1;
            if pass_done == pass_len {
                let now = clock::now();
                w.record_always(Metric::Pass, clock::delta_ns(pass_start, now));
                w.counters.passes += 1;
                pass_done = 0;
                pass_start = now;
            }
            continue;
        }
        vcpus.exit(i);

        if !is_present(spte) {
            faults.slow(w, gfn, slot, write);
        } else if write && spte & SPTE_MMU_WRITABLE != 0 {
            faults.fast(w, gfn, slot, spte, &mut fast);
        }
        retry = Some((gfn, alias, write, fast));
    }
}
