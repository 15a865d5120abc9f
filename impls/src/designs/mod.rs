//! The designs, one module each, named as the CLI names them. Each owns its
//! whole synchronisation story behind the [`crate::Rmap`] trait.

#[cfg(not(loom))]
pub mod concurrent_map;
pub mod lockless;
pub mod mmu_lock;
pub mod rmap_lock;
pub mod seqlock;
