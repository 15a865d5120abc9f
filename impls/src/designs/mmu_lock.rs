//! `mmu-lock`: KVM in 2013 (Linux 3.11). Every add, remove and walk runs
//! under the one VM-wide `mmu_lock`; chains follow the tail discipline of
//! `chain.rs` (append at the tail, fill a hole from the same descriptor). The
//! dirty-log round holds the lock across a whole batch of gfns
//! (`--wp-batch`; by default the whole harvest, as
//! `kvm_vm_ioctl_get_dirty_log` did), so every vCPU that faults meanwhile
//! waits for the entire write-protect pass: the scalability problem the
//! lockless series set out to fix.

use super::chained::{Batch, ChainRmap, Chains, Direct, Walker};
use crate::chain::{walk_locked, TailChain};
use crate::desc::decode_head;
use crate::observer::Observer;
use crate::perturb::{PerturbPoint, Points, Unperturbed};
use crate::primitive::Ordering;
use crate::spte::{Gfn, SlotId};
use crate::stats::WalkStats;

pub(crate) type MmuLockRmap<P = Unperturbed> = ChainRmap<UnderMmuLock, Direct, TailChain, P>;

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
