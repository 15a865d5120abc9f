//! The designs, one module each, named as the CLI names them. Each owns its
//! whole synchronisation story behind the [`crate::Rmap`] trait.
//!
//! Every design but `concurrent-map` keeps its rmaps as chains of
//! descriptors and shares one writer path (`chained.rs`): its module holds
//! only its walker and, where it has one, the section a writer runs around a
//! change of one rmap.

mod chained;
mod optimistic;

#[cfg(not(loom))]
pub mod concurrent_map;
pub mod lockless;
pub mod mmu_lock;
pub mod rmap_lock;
pub mod seqlock;

pub(crate) use optimistic::{Correct, NoNullsCheck, SeqNoRetry, StaleHeadRestart, TopDownWalk};
