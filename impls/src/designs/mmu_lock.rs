//! `mmu-lock`: KVM in 2013 (Linux 3.11). Every add, remove and walk runs
//! under the one VM-wide `mmu_lock`; chains follow the tail discipline of
//! `chain.rs` (add into the first non-full descriptor, fill a hole from the
//! same descriptor), or Linux 6.4's with `--chain 6.4`. The
//! dirty-log round holds the lock across a whole batch of gfns
//! (`--wp-batch`; by default the whole harvest, as
//! `kvm_vm_ioctl_get_dirty_log` did), so every vCPU that faults meanwhile
//! waits for the entire write-protect pass: the scalability problem the
//! lockless series set out to fix. Aging (`Rmap::age`) holds it for a whole
//! range of gfns, as KVM did until Linux 6.14 (`kvm_mmu_notifier_clear_young`
//! and `clear_flush_young` reach `kvm_age_gfn` through
//! `__kvm_handle_hva_range`, which takes `mmu_lock` for write once for the
//! whole range).

use super::chained::{Batch, ChainRmap, Chains, Direct, Walker};
use crate::chain::{walk_locked, TailChain};
use crate::desc::decode_head;
use crate::observer::Observer;
use crate::perturb::{PerturbPoint, Points, Unperturbed};
use crate::primitive::Ordering;
use crate::spte::{Gfn, SlotId};
use crate::stats::WalkStats;

/// `mmu-lock` over chain discipline `C` (KVM 2013's tail discipline unless
/// `--chain` says otherwise), with perturbation points `P`.
pub(crate) type MmuLockRmap<C = TailChain, P = Unperturbed> = ChainRmap<UnderMmuLock, Direct, C, P>;

/// A walker that holds `mmu_lock` across its whole batch.
pub(crate) struct UnderMmuLock;

impl Walker<Direct> for UnderMmuLock {
    const NAME: &'static str = "mmu-lock";
    const BATCH: Batch = Batch::MmuLock;

    fn walk(
        c: &Chains,
        _: &Direct,
        p: &impl Points,
        gfn: Gfn,
        f: &mut impl FnMut(SlotId),
        _obs: &mut dyn Observer,
    ) -> WalkStats {
        p.at(PerturbPoint::WalkBetweenDescs);
        let v = c.head(gfn).load(Ordering::Relaxed);
        // SAFETY: read from an rmap head while holding `mmu_lock`
        // (`Batch::MmuLock`), which every writer of the head holds: the chain
        // it names is in use until we let go.
        let head = unsafe { decode_head(v) };
        WalkStats {
            visited: walk_locked(&c.pool, head, f),
            ..WalkStats::one_walk()
        }
    }
}
