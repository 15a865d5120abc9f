//! Loom models of the rmap walkers: one walker against one writer script,
//! every interleaving (within a preemption bound), for each case of the
//! 2013 review thread and for the counterexample (both in the crate docs,
//! `impls/README.md`: "The seed thread" and "The counterexample").
//!
//! # Running
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p rmap-impls --release --test loom
//! ```
//!
//! Add `CARGO_TARGET_DIR=target/loom` to keep a normal build's artefacts
//! (`--cfg loom` rebuilds the whole crate graph), and `-- --nocapture` to
//! see, per model, the interleavings explored, the distinct walk outcomes,
//! the restart reasons met, and every counterexample found.
//!
//! Each model has a preemption bound (2 or 3, see `B2` and `B3`) that keeps
//! the suite short enough for every CI run. `LOOM_MAX_PREEMPTIONS=N`, which
//! loom reads, replaces it; `RMAP_LOOM_UNBOUNDED=1` removes it, for an
//! occasional exhaustive run, one group at a time (e.g. `RMAP_LOOM_UNBOUNDED=1
//! ... --test loom rmap_lock::`). Unbounded, `rmap-lock`'s models, the
//! deferred-reuse pool's and `lockless`'s all finish (`lockless`'s case
//! 3.c.3 is the largest, 1.37 million interleavings); `lockless-gen`'s
//! finish for every script but the recycling one (3.c.3: 1.1 million
//! interleavings), which did not finish (it holds at bound 3, 177 000
//! interleavings, and at bound 4, 615 000); `seqlock`'s were not tried
//! (its bounded models are already the largest). `lockless-6.4`'s all
//! finish unbounded, in about six minutes for the group
//! (`RMAP_LOOM_UNBOUNDED=1 ... --test loom lockless_6_4::`): 3.c.3 is the
//! largest walk, 277 095 interleavings, and the write-protect walk of the
//! recycling script 335 889.
//!
//! # What a model checks
//!
//! The setup builds rmaps R (gfn 0, the one walked) and Q (gfn 1) before any
//! thread starts; `desc_ext` is 2, a pool page holds 4 descriptors, reuse is
//! immediate and last-in-first-out (the pool's own policy). Then a writer
//! thread runs the script's `map`/`unmap` steps (under `mmu_lock`, as the
//! designs do) while a walker thread walks R (`Rmap::walk`) or
//! write-protects it (`Rmap::write_protect`). The one property, in every
//! interleaving, is the sentence of the `Rmap` trait: every spte of R that
//! the writer never touches (present in R for the whole walk) is visited,
//! or, for `write_protect`, had W clear at some instant between its visit
//! and the walk's return. No script fast-faults, so nothing but a walk
//! changes W of those sptes, and the second half is decided exactly by
//! reading W when the walk has returned.
//! The setup also asserts the layout drawn below (for the nulls walkers
//! slot by slot, in the order they visit), so the drawings cannot drift
//! from the code.
//!
//! **The checker must really interleave.** loom 0.7's DPOR sees a race
//! between a walker's load and a writer's store only when it meets the
//! store first (tokio-rs/loom#392, #166): with the walker on the model's
//! main thread it explored *one* interleaving of these scripts and passed
//! every design, the flawed one included. So the writer is spawned first
//! and the walker second, both as threads, and every passing model asserts
//! that the walk ended in at least two different ways. The faithful
//! design's models also assert that the walker met the restart its seed
//! case is about (3.b: `desc-init`; 3.c.2 and 3.c.3: `foreign-nulls`).
//!
//! # The scripts
//!
//! `[D: p q] -> [E: r s] -> nulls(R)` is a chain of descriptors D, E with
//! slot 0 first; a nulls walker reads the head descriptor first and each
//! descriptor from its last slot down, then its `more` link. Descriptor
//! names follow the pool: the one freed last is the one handed out next.
//! "At risk" are the sptes the writer never touches.
//!
//! | script | setup | writer steps | at risk |
//! |---|---|---|---|
//! | `case_1_deleted_behind_walker` | R = [D: x y] -> [E: v w] | unmap x (y moves to D.slot0); unmap y (D empty: head(R) = E, D freed) | v w |
//! | `case_2_deleted_ahead_of_walker` | R = [D: x y] -> [E: s t] -> [F: v w] | unmap x, y (D freed); unmap s (t moves to E.slot0), t (E freed, head(R) = F): a walker on D finds E deleted ahead of it | v w |
//! | `case_3a_deleted_under_walker` | R = [D: x y] -> [E: v w] | unmap x, y (D freed, its `more` still E: 3.a.1); unmap w (R = {v}, single form, E freed, its `more` nulls(R): 3.a.2); nothing is reused | v |
//! | `case_3b_reused_while_initialising` | R as in 3a; Q = {a} | unmap x, y (D freed); map b to Q: Q grows to [D: a b], D reused (its `more` is 0 until set) | v w |
//! | `case_3c1_readded_to_same_rmap` | R as in 3a | unmap x, y (D freed); map z to R: E is full, D reused as R's new head [D: z] -> E | v w |
//! | `case_3c2_moved_to_other_rmap` | R as in 3a; Q = [F: c d] | unmap x, y (D freed); map b to Q: D reused as Q's head [D: b] -> F -> nulls(Q) | v w |
//! | `case_3c3_moved_away_and_back` | as 3c2 | as 3c2, then unmap b from Q (D freed), unmap d from Q (Q = {c}, F freed), map z to R: F reused as R's head [F: z] -> E (Gleb's case: the walker may have followed D into Q's F, which comes back into R) | v w |
//! | `entry_moved_under_walker` | R = [D: x v] -> [E: y w] | unmap x (v moves D.slot1 -> D.slot0); unmap y (v moves D.slot0 -> E.slot0, D freed, head(R) = E) | v w |
//! | `recycled_through_single_form` | R = [D: x y] -> [E: v w]; Q = {a} | unmap x (y moves to D.slot0); unmap y (D freed, head(R) = E); unmap w (R = {v}, single form, E freed); map b to Q (E reused: Q = [E: a b]); map u to R (D reused: R = [D: v u] -> nulls(R), v copied in) | v |
//! | `single_form_reused_elsewhere` | R = [D: v x]; Q = {a} | unmap x (R = {v}, D freed); map b to Q (D reused: Q = [D: a b]) | v |
//! | `middle_desc_recycled_at_tail` | tail discipline: R = [D: x y] -> [E: s t] -> [F: v w] | unmap s, t (E emptied in the middle: D links to F, E freed); map z (F full: E reused as R's tail [E: z] -> nulls(R)) | x y v w |
//! | `shrunk_and_regrown` (6.4) | R = [D: x y] -> [E: v w] | unmap x, y (D freed, head(R) = E); unmap w (6.4: E = [v], no single form); map u (E = [v u]); map z (E full: D reused as R's head, [D: z] -> E) | v |
//! | `moved_then_head_recycled` (6.4) | R = [D: x y] -> [E: v w] | unmap w (y moves from D into E: E = [v y]); unmap x (D freed, head(R) = E); map u (D reused: [D: u] -> E) | v y |
//!
//! The drawings are the head disciplines' (the series', and Linux 6.4's,
//! which lays out every setup alike). Under Linux 6.4's chain the writer
//! steps that shrink an rmap to one spte leave it in its descriptor: in
//! 3.a E stays [v] (3.a.2 does not happen), in 3.c.3 Q stays [F: c], so F
//! stays in Q and it is D that comes back to R as its new head (D moved to
//! Q and back), and in the recycling scripts the freed descriptors go back
//! to Q or nowhere. The two scripts marked 6.4 are the recycling script
//! rewritten for that chain: the closest it comes to the counterexample.
//!
//! With the `fill-from-tail` bug the chains follow the tail discipline
//! instead: `entry_moved_under_walker` starts from R = [D: y w] -> [N: x v],
//! and unmapping y moves v from N (ahead of the walker) into D (behind it).
//!
//! # Results
//!
//! | design | scripts that break the walk guarantee |
//! |---|---|
//! | `lockless-gen`, `seqlock`, `rmap-lock` | none (walk and write-protect; `rmap-lock` unbounded too, `lockless-gen` unbounded for all scripts but the recycling one); on the recycling script some interleaving restarts for `desc-seq` (`seqlock`: `rmap-seq`): the repair is what holds |
//! | `lockless` (faithful) | `recycled_through_single_form` only (walk y, x; no restart); the other nine hold also unbounded |
//! | `lockless` re-reading the head at its nulls (`weaker_repairs`) | recycled (ABA: head(R) is D again) |
//! | `lockless-gen`'s count as a generation bumped once (`weaker_repairs`) | recycled (new generation, stale slots) |
//! | the nulls walker over 2013's own remove, with or without the count (`remove_of_2013`) | `middle_desc_recycled_at_tail` |
//! | `lockless-gen` + `fill-from-tail` / `top-down-walk` | `entry_moved_under_walker` |
//! | `lockless-gen` + `no-nulls-check` | 3.b, 3.c.2, 3.c.3, recycled, single-form (tested on 3.c.2) |
//! | `lockless-gen` + `stale-head-restart` | 3.b, 3.c.2, recycled, single-form (tested on 3.c.2) |
//! | `seqlock` + `seq-no-retry` | 3.b, 3.c.1, 3.c.2, 3.c.3, entry-moved, recycled, single-form (tested on recycled) |
//! | `lockless-gen` + `seq-no-retry` | recycled (it is `lockless` again) |
//! | `more` read before the slots (`designs::lockless::more_first`) | recycled and single-form |
//! | `lockless` with reuse deferred by a grace period, a pool that must wait for it | none |
//! | the same pool reusing a descriptor under the pinned walker instead | recycled |
//! | `lockless-6.4` (the faithful walker over Linux 6.4's chain) | none, on all twelve scripts |
//! | `lockless-gen` over Linux 6.4's chain (every script), `seqlock` over it (3.c.2 and `moved_then_head_recycled`); `rmap-lock` over the 2013 one (every script) | none |
//! | `lockless-6.4` + `no-nulls-check` / `stale-head-restart` | 3.c.2 |
//! | `lockless-6.4` + `top-down-walk` | `entry_moved_under_walker` |
//!
//! So the seed's case 3.c.1 as it argues it (the descriptor comes back as
//! the new head and still links to the rest of the chain) holds; it fails
//! when the descriptor comes back through the single-spte form, where it
//! links to nothing and the spte that used to follow it has been copied into
//! it. The checker's report for `lockless::recycled_through_single_form`
//! (a walker's visits are logged once it has read the descriptor's `more`)
//! is the schedule the crate docs draw ("The counterexample"):
//!
//! ```text
//! v present in R for the whole walk but not visited
//!   writer: unmap x (R) done ... writer: map u (R) done   (all five steps)
//!   walker: visits y
//!   walker: visits x
//!   walker: returns after 0 restarts
//! ```
//!
//! # The open questions
//!
//! * **Reading `more` before the slots, without a count, does not close the
//!   hole** (`open_questions::more_first_*`, walker `designs::lockless::more_first`).
//!   It opens another: the `more` it keeps belongs to the descriptor's old
//!   life and the slots it reads next may belong to the new one. In
//!   `single_form_reused_elsewhere` it reads D.more = nulls(R) and
//!   D.slot1 = x; the writer unmaps x (R drops to the single form {v}, D
//!   is freed) and Q reuses D, writing a over v in slot 0; the walker reads
//!   a there and stops at "its own" end. In `recycled_through_single_form`
//!   the same happens one descriptor later: it reads E.more = nulls(R) and
//!   E.slot1 = w, and E.slot0 only after Q has reused E (a, not v). The
//!   faithful order (slots, then `more`) catches both: a reused descriptor
//!   shows a `more` of 0 or of another rmap.
//! * **Deferring reuse by a grace period closes it**
//!   (`open_questions::deferred_reuse::*`): a pool that does not hand out a
//!   freed descriptor while a walker is pinned (`desc.rs`, loom builds
//!   only) passes every script. It is built so that it could fail: one
//!   descriptor per page, and no growth while a freed descriptor waits, so
//!   every descriptor a writer takes while the walker is pinned is a reused
//!   one, and the writer waits (under `mmu_lock`) for the walker to unpin;
//!   the same pool that reuses the descriptor anyway fails the recycling
//!   script (`deferred_pool_that_does_not_wait`). (A pool of four
//!   descriptors per page that grew freely passed every script, unbounded
//!   too, also without waiting: it never had to reuse.) A descriptor's `more` is then
//!   fixed for as long as the walker can reach it, a freed descriptor keeps
//!   its last contents (a free clears nothing), and an entry leaves a live
//!   descriptor only by its removal or by a forward move to a slot the
//!   walker reads later. What it costs in a real build (an epoch per free,
//!   memory held by stalled walkers) is for the benchmarks, not this file.
#![cfg(loom)]

use loom::model::Builder;
use rmap_impls::spte::{is_writable, make_spte};
use rmap_impls::{
    build, Bug, ChainKind, Exhausted, Gfn, ImplKind, LockKind, MapOutcome, NoObserver,
    RestartReason, Rmap, RmapConfig, SlotId, SpteTable,
};
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Instant;

/// The start of the message of the one assertion a model checks.
const MISSED: &str = "walk guarantee broken";

/// Rmaps: R (gfn 0) is the one walked, Q (gfn 1) lends and borrows
/// descriptors.
const GFNS: u64 = 2;
const ALIASES: u32 = 8;
const R: Gfn = 0;
const Q: Gfn = 1;

/// How far one model explores.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// Preemptions per interleaving, unless `LOOM_MAX_PREEMPTIONS` says
    /// otherwise or `RMAP_LOOM_UNBOUNDED` is set.
    bound: usize,
    /// Scheduling points per interleaving (loom's default is 1000; only a
    /// walker that spins for a long time needs more).
    max_branches: usize,
}

/// Bound 2: for the designs whose models are the largest (`lockless-gen`,
/// `seqlock`).
const B2: Limits = Limits {
    bound: 2,
    max_branches: 1000,
};
/// Bound 3: for the designs whose models are small at bound 2.
const B3: Limits = Limits {
    bound: 3,
    max_branches: 1000,
};

/// One spte of the scripts: a name, and the (alias, gfn) slot it lives in.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sp {
    name: char,
    gfn: Gfn,
    alias: u32,
}

impl Sp {
    const fn new(name: char, gfn: Gfn, alias: u32) -> Sp {
        Sp { name, gfn, alias }
    }

    fn slot(self, t: &SpteTable) -> SlotId {
        t.slot_id(self.alias, self.gfn)
    }
}

const V: Sp = Sp::new('v', R, 0);
const W: Sp = Sp::new('w', R, 1);
const X: Sp = Sp::new('x', R, 2);
const Y: Sp = Sp::new('y', R, 3);
const Z: Sp = Sp::new('z', R, 4);
const U: Sp = Sp::new('u', R, 5);
const S: Sp = Sp::new('s', R, 6);
const T: Sp = Sp::new('t', R, 7);
// Q's sptes carry a Q prefix: D, E, F name descriptors in the docs.
const QA: Sp = Sp::new('a', Q, 0);
const QB: Sp = Sp::new('b', Q, 1);
const QC: Sp = Sp::new('c', Q, 2);
const QD: Sp = Sp::new('d', Q, 3);

#[derive(Clone, Copy, Debug)]
enum Op {
    Map(Sp),
    Unmap(Sp),
}
use Op::{Map, Unmap};

impl Op {
    fn spte(self) -> Sp {
        match self {
            Map(s) | Unmap(s) => s,
        }
    }
    fn apply(self, rmap: &dyn Rmap, t: &SpteTable) {
        match self {
            Map(s) => {
                let out = rmap.map(t, s.gfn, s.slot(t), make_spte(s.gfn, true), &mut NoObserver);
                assert_eq!(out, MapOutcome::Mapped, "script maps {} twice", s.name);
            }
            Unmap(s) => {
                let present = rmap.unmap(t, s.gfn, s.slot(t), &mut NoObserver);
                assert!(present, "script unmaps {} which is not mapped", s.name);
            }
        }
    }
    fn describe(self) -> String {
        let (verb, s) = match self {
            Map(s) => ("map", s),
            Unmap(s) => ("unmap", s),
        };
        let rmap = if s.gfn == R { 'R' } else { 'Q' };
        format!("writer: {verb} {} ({rmap}) done", s.name)
    }
}

/// A writer script: the rmaps it starts from and the steps the writer takes
/// while the walker walks R.
struct Script {
    /// Run before any thread starts (in this order: it fixes the layout).
    setup: &'static [Op],
    /// R's sptes in the order a nulls walker visits them after the setup
    /// (head to tail, each descriptor from its last slot to slot 0): pins
    /// the layout the module doc draws.
    layout: &'static str,
    /// The writer thread's steps.
    writer: &'static [Op],
}

impl Script {
    fn sptes(&self) -> impl Iterator<Item = Sp> + '_ {
        self.setup.iter().chain(self.writer).map(|op| op.spte())
    }

    fn name_of(&self, slot: SlotId, t: &SpteTable) -> char {
        self.sptes()
            .find(|s| s.slot(t) == slot)
            .map_or('?', |s| s.name)
    }

    /// The sptes of R that are present for the whole walk: mapped by the
    /// setup and never touched by the writer.
    fn at_risk(&self) -> Vec<Sp> {
        self.setup
            .iter()
            .map(|op| op.spte())
            .filter(|s| s.gfn == R && !self.writer.iter().any(|op| op.spte() == *s))
            .collect()
    }
}

/// What the walker thread does.
#[derive(Clone, Copy, Debug)]
enum Walker {
    /// `Rmap::walk`: every spte at risk must be visited.
    Walk,
    /// `Rmap::write_protect`: every spte at risk must have W clear after.
    WriteProtect,
}

type Make = Arc<dyn Fn(&RmapConfig) -> Box<dyn Rmap> + Send + Sync>;

/// An implementation under test.
#[derive(Clone)]
struct Design {
    make: Make,
    /// Walks in the nulls walker's order under the head discipline, so the
    /// setup layout can be checked slot by slot (otherwise as a set).
    nulls_order: bool,
}

impl Design {
    fn built(kind: ImplKind, bug: Option<Bug>) -> Design {
        Design::on(kind, bug, None)
    }

    /// A walker of the nulls family that `build` does not name (a variant
    /// the crate exposes to these models), made by `make`: its walks keep
    /// the nulls walker's order.
    fn nulls(make: impl Fn(&RmapConfig) -> Box<dyn Rmap> + Send + Sync + 'static) -> Design {
        Design {
            make: Arc::new(make),
            nulls_order: true,
        }
    }

    /// `kind` over chain discipline `chain` (`None`: its default).
    fn on(kind: ImplKind, bug: Option<Bug>, chain: Option<ChainKind>) -> Design {
        Design {
            make: Arc::new(move |cfg| {
                let cfg = RmapConfig {
                    chain,
                    ..cfg.clone()
                };
                build(kind, &cfg, bug).expect("the design builds")
            }),
            // Both head disciplines lay the scripts' setups out alike: none
            // of them shrinks an rmap to one spte.
            nulls_order: matches!(
                kind,
                ImplKind::Lockless | ImplKind::LocklessGen | ImplKind::Lockless64
            ) && !matches!(bug, Some(Bug::FillFromTail | Bug::TopDownWalk)),
        }
    }
}

/// The interleaving that broke the walk guarantee, as the walker saw it.
#[derive(Clone, Debug, Default, PartialEq)]
struct Failure {
    /// The sptes the walk visited, in order (`Walker::Walk`), or how many it
    /// write-protected (`Walker::WriteProtect`, e.g. "1 protected").
    visited: String,
    restarts: u64,
    /// The sptes at risk it missed.
    missed: String,
}
const LINUX64: Option<ChainKind> = Some(ChainKind::Linux64);

/// What the checker saw over all interleavings.
#[derive(Default)]
struct Seen {
    iterations: usize,
    /// Distinct (visited sptes, restarts) outcomes of the walk.
    outcomes: BTreeSet<(String, u64)>,
    /// Restart reasons some interleaving took.
    reasons: BTreeSet<RestartReason>,
}

fn builder(limits: Limits) -> Builder {
    let mut b = Builder::new();
    if std::env::var_os("RMAP_LOOM_UNBOUNDED").is_some() {
        b.preemption_bound = None;
    } else if b.preemption_bound.is_none() {
        b.preemption_bound = Some(limits.bound);
    }
    b.max_branches = b.max_branches.max(limits.max_branches);
    b
}

fn config() -> RmapConfig {
    RmapConfig {
        gfns: GFNS,
        desc_ext: 2,
        mmu_lock: LockKind::Park,
        page_descs: 4,
        chain: None,
    }
}

/// Check `script` against `design` in every interleaving (within the
/// preemption bound). Panics with [`MISSED`] on the first interleaving that
/// breaks the walk guarantee.
fn check(
    design: &Design,
    script: &'static Script,
    walker: Walker,
    limits: Limits,
    failure: &Arc<StdMutex<Option<Failure>>>,
) -> Seen {
    let seen = Arc::new(StdMutex::new(Seen::default()));
    let seen_in = seen.clone();
    let failure = failure.clone();
    let design = design.clone();
    let start = Instant::now();
    builder(limits).check(move || {
        seen_in.lock().unwrap().iterations += 1;
        let rmap: Arc<Box<dyn Rmap>> = Arc::new((design.make)(&config()));
        let t = Arc::new(SpteTable::new(GFNS, ALIASES));
        for op in script.setup {
            op.apply(&**rmap, &t);
        }
        let mut order = String::new();
        rmap.walk(R, &mut |s| order.push(script.name_of(s, &t)));
        let mut want: Vec<char> = script.layout.chars().collect();
        let mut got: Vec<char> = order.chars().collect();
        if !design.nulls_order {
            want.sort();
            got.sort();
        }
        assert_eq!(got, want, "the setup does not build the layout drawn");

        // Events in the order they happened, for the failure message.
        let log = Arc::new(StdMutex::new(Vec::<String>::new()));
        // The writer is spawned first and the walker second: loom's DPOR
        // (0.7) only reverses a walker load and a writer store when it sees
        // the store first, so the exploration must start writer-first.
        let writer = {
            let (rmap, t, log) = (rmap.clone(), t.clone(), log.clone());
            loom::thread::spawn(move || {
                for op in script.writer {
                    op.apply(&**rmap, &t);
                    log.lock().unwrap().push(op.describe());
                }
            })
        };
        let walker = {
            let (rmap, t, log, seen) = (rmap.clone(), t.clone(), log.clone(), seen_in.clone());
            let failure = failure.clone();
            loom::thread::spawn(move || {
                let at_risk = script.at_risk();
                let (stats, missed, outcome) = match walker {
                    Walker::Walk => {
                        let mut visited = Vec::new();
                        let stats = rmap.walk(R, &mut |s| {
                            visited.push(s);
                            let name = script.name_of(s, &t);
                            log.lock().unwrap().push(format!("walker: visits {name}"));
                        });
                        let missed: Vec<Sp> = at_risk
                            .iter()
                            .copied()
                            .filter(|s| !visited.contains(&s.slot(&t)))
                            .collect();
                        let names: String =
                            visited.iter().map(|&s| script.name_of(s, &t)).collect();
                        let mut g = seen.lock().unwrap();
                        g.outcomes.insert((names.clone(), stats.total_restarts()));
                        (stats, missed, names)
                    }
                    Walker::WriteProtect => {
                        let stats = rmap.write_protect(&t, &[R], &mut NoObserver);
                        let missed: Vec<Sp> = at_risk
                            .iter()
                            .copied()
                            .filter(|s| is_writable(t.load(s.slot(&t))))
                            .collect();
                        let outcome = format!("{} protected", stats.protected);
                        let mut g = seen.lock().unwrap();
                        g.outcomes.insert((outcome.clone(), 0));
                        (stats, missed, outcome)
                    }
                };
                {
                    let mut g = seen.lock().unwrap();
                    for (i, n) in stats.restarts.iter().enumerate() {
                        if *n > 0 {
                            g.reasons.insert(RestartReason::ALL[i]);
                        }
                    }
                }
                let mut log = log.lock().unwrap();
                log.push(format!(
                    "walker: returns after {} restarts",
                    stats.total_restarts()
                ));
                if !missed.is_empty() {
                    let names: String = missed.iter().map(|s| s.name).collect();
                    *failure.lock().unwrap() = Some(Failure {
                        visited: outcome,
                        restarts: stats.total_restarts(),
                        missed: names.clone(),
                    });
                    panic!(
                        "{MISSED}: {} present in R for the whole walk but {}\n  {}",
                        names,
                        match walker {
                            Walker::Walk => "not visited",
                            Walker::WriteProtect => "still writable",
                        },
                        fold(&log).join("\n  ")
                    );
                }
            })
        };
        writer.join().unwrap();
        walker.join().unwrap();
    });
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    println!(
        "{} interleavings, {} distinct walk outcomes, restarts {:?}, {:.2?}",
        seen.iterations,
        seen.outcomes.len(),
        seen.reasons,
        start.elapsed()
    );
    seen
}

/// The event log with its middle left out when it is long (a walker that
/// restarts a thousand times).
fn fold(log: &[String]) -> Vec<String> {
    const HEAD: usize = 12;
    const TAIL: usize = 6;
    if log.len() <= HEAD + TAIL + 1 {
        return log.to_vec();
    }
    let mut out = log[..HEAD].to_vec();
    out.push(format!("... {} more events ...", log.len() - HEAD - TAIL));
    out.extend_from_slice(&log[log.len() - TAIL..]);
    out
}

/// The walk guarantee holds in every interleaving, and the checker did
/// interleave (a model that only ever ran one schedule proves nothing).
fn holds(design: Design, script: &'static Script, walker: Walker, limits: Limits) -> Seen {
    let seen = check(&design, script, walker, limits, &Arc::default());
    assert!(
        seen.outcomes.len() >= 2,
        "the checker saw the walk end only one way: it did not interleave"
    );
    seen
}

/// The checker finds an interleaving that breaks the walk guarantee (and
/// not some other panic). Returns the failure message and what the walker
/// saw in that interleaving.
fn broken(
    design: Design,
    script: &'static Script,
    walker: Walker,
    limits: Limits,
) -> (String, Failure) {
    let failure = Arc::default();
    let res = catch_unwind(AssertUnwindSafe(|| {
        check(&design, script, walker, limits, &failure)
    }));
    let payload = match res {
        Ok(seen) => panic!(
            "no interleaving breaks the walk guarantee ({} explored)",
            seen.iterations
        ),
        Err(p) => p,
    };
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        msg.starts_with(MISSED),
        "the model failed, but not on the walk guarantee: {msg}"
    );
    let failure = failure
        .lock()
        .unwrap()
        .clone()
        .expect("the walker records the failure it panics on");
    (msg, failure)
}

/// The checker breaks the walk guarantee, and in the interleaving that
/// breaks it the walk missed, visited and restarted as `expected` says
/// (`shape`: what that outcome is, for the message).
fn broken_as(
    design: Design,
    script: &'static Script,
    limits: Limits,
    expected: (&str, &str, u64),
    shape: &str,
) {
    let (_, f) = broken(design, script, Walker::Walk, limits);
    assert_eq!(
        (f.missed.as_str(), f.visited.as_str(), f.restarts),
        expected,
        "{shape}: {f:?}"
    );
}

/// One test per broken design: the checker finds an interleaving, on the
/// given script, that breaks the walk guarantee.
macro_rules! caught {
    ($($(#[$doc:meta])* $name:ident: $design:expr, $script:ident, $limits:expr;)*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                broken($design, &scripts::$script, Walker::Walk, $limits);
            }
        )*
    };
}

/// The writer scripts, one per case of the seed thread (see the module doc
/// for the drawings). R = gfn 0 is walked; `desc_ext` is 2.
#[allow(non_upper_case_globals)]
mod scripts {
    use super::*;

    /// Seed 1: the head descriptor D is deleted, behind a walker that passed it.
    pub static case_1_deleted_behind_walker: Script = Script {
        setup: &[Map(V), Map(W), Map(X), Map(Y)],
        layout: "yxwv",
        writer: &[Unmap(X), Unmap(Y)],
    };

    /// Seed 2: D and then E are deleted; for a walker on D, E goes ahead of it.
    pub static case_2_deleted_ahead_of_walker: Script = Script {
        setup: &[Map(V), Map(W), Map(S), Map(T), Map(X), Map(Y)],
        layout: "yxtswv",
        writer: &[Unmap(X), Unmap(Y), Unmap(S), Unmap(T)],
    };

    /// Seed 3.a: the walker's descriptor is deleted and not reused (3.a.1: D, whose `more` still leads on; 3.a.2: E, whose `more` is the nulls).
    pub static case_3a_deleted_under_walker: Script = Script {
        setup: &[Map(V), Map(W), Map(X), Map(Y)],
        layout: "yxwv",
        writer: &[Unmap(X), Unmap(Y), Unmap(W)],
    };

    /// Seed 3.b: D is reused by Q and initialised under the walker.
    pub static case_3b_reused_while_initialising: Script = Script {
        setup: &[Map(V), Map(W), Map(X), Map(Y), Map(QA)],
        layout: "yxwv",
        writer: &[Unmap(X), Unmap(Y), Map(QB)],
    };

    /// Seed 3.c.1: D comes back to R as its new head, linked to the rest.
    pub static case_3c1_readded_to_same_rmap: Script = Script {
        setup: &[Map(V), Map(W), Map(X), Map(Y)],
        layout: "yxwv",
        writer: &[Unmap(X), Unmap(Y), Map(Z)],
    };

    /// Seed 3.c.2: D becomes Q's head, linked to Q's F.
    pub static case_3c2_moved_to_other_rmap: Script = Script {
        setup: &[Map(V), Map(W), Map(X), Map(Y), Map(QC), Map(QD)],
        layout: "yxwv",
        writer: &[Unmap(X), Unmap(Y), Map(QB)],
    };

    /// Seed 3.c.3 (Gleb): D goes to Q, Q's F (where the walker may now be) comes to R.
    pub static case_3c3_moved_away_and_back: Script = Script {
        setup: &[Map(V), Map(W), Map(X), Map(Y), Map(QC), Map(QD)],
        layout: "yxwv",
        writer: &[Unmap(X), Unmap(Y), Map(QB), Unmap(QB), Unmap(QD), Map(Z)],
    };

    /// v moves twice by forward moves: within the head D, then into E.
    pub static entry_moved_under_walker: Script = Script {
        setup: &[Map(Y), Map(W), Map(X), Map(V)],
        layout: "vxwy",
        writer: &[Unmap(X), Unmap(Y)],
    };

    /// The counterexample: R shrinks to {v} and grows again into the reused D.
    pub static recycled_through_single_form: Script = Script {
        setup: &[Map(V), Map(W), Map(X), Map(Y), Map(QA)],
        layout: "yxwv",
        writer: &[Unmap(X), Unmap(Y), Unmap(W), Map(QB), Map(U)],
    };

    /// R shrinks to {v} and its last descriptor goes to Q (the more-first question).
    pub static single_form_reused_elsewhere: Script = Script {
        setup: &[Map(V), Map(X), Map(QA)],
        layout: "xv",
        writer: &[Unmap(X), Map(QB)],
    };

    /// 2013's own remove (tail discipline): E, in the middle of R, is
    /// emptied and unlinked (D links to F), and comes back at once as R's
    /// new tail, linked to R's own nulls.
    pub static middle_desc_recycled_at_tail: Script = Script {
        setup: &[Map(X), Map(Y), Map(S), Map(T), Map(V), Map(W)],
        layout: "yxtswv",
        writer: &[Unmap(S), Unmap(T), Map(Z)],
    };

    /// The counterexample's script as close as Linux 6.4's chain lets it
    /// come: D is freed as an emptied head, R shrinks to {v} (still in E: no
    /// single form), grows again, and D comes back as R's new head, in
    /// front of E, instead of with v copied into it.
    pub static shrunk_and_regrown: Script = Script {
        setup: &[Map(V), Map(W), Map(X), Map(Y)],
        layout: "yxwv",
        writer: &[Unmap(X), Unmap(Y), Unmap(W), Map(U), Map(Z)],
    };

    /// An entry moves out of the head before the head is recycled: unmap w
    /// moves y from D (the head) into E's hole, unmap x empties D (freed,
    /// head(R) = E), map u finds E full and reuses D as R's new head.
    pub static moved_then_head_recycled: Script = Script {
        setup: &[Map(V), Map(W), Map(X), Map(Y)],
        layout: "yxwv",
        writer: &[Unmap(W), Unmap(X), Map(U)],
    };
}

/// One test per script for a design that must pass them all, plus the
/// write-protect walk of the counterexample: every script; with `; seed`,
/// the seed thread's scripts only; with a list after a `;`, those scripts.
macro_rules! all_cases_hold {
    ($module:ident, $design:expr, $limits:expr, repair $repair:expr) => {
        all_cases_hold!($module, $design, $limits, repair $repair; seed;
            shrunk_and_regrown, moved_then_head_recycled);
    };
    ($module:ident, $design:expr, $limits:expr, repair $repair:expr; seed $(; $($extra:ident),*)?) => {
        all_cases_hold!($module, $design, $limits, repair $repair;
            case_1_deleted_behind_walker,
            case_2_deleted_ahead_of_walker,
            case_3a_deleted_under_walker,
            case_3b_reused_while_initialising,
            case_3c1_readded_to_same_rmap,
            case_3c2_moved_to_other_rmap,
            case_3c3_moved_away_and_back,
            entry_moved_under_walker,
            single_form_reused_elsewhere
            $($(, $extra)*)?
        );
    };
    ($module:ident, $design:expr, $limits:expr, repair $repair:expr; $($case:ident),*) => {
        mod $module {
            use super::*;
            $(
                #[test]
                fn $case() {
                    holds($design, &scripts::$case, Walker::Walk, $limits);
                }
            )*

            /// The counterexample's script holds, and the design's repair is
            /// what holds it: in some interleaving the walker restarted for
            /// the repair's reason (`None`: a design that repairs otherwise,
            /// or a chain on which the script cannot reach the flaw).
            #[test]
            fn recycled_through_single_form() {
                let seen = holds($design, &scripts::recycled_through_single_form, Walker::Walk, $limits);
                repair_fired(&seen, $repair);
            }

            #[test]
            fn write_protect_recycled_through_single_form() {
                let seen = holds(
                    $design,
                    &scripts::recycled_through_single_form,
                    Walker::WriteProtect,
                    $limits,
                );
                repair_fired(&seen, $repair);
            }
        }
    };
}

/// Some interleaving restarted the walk for `repair`'s reason.
fn repair_fired(seen: &Seen, repair: Option<RestartReason>) {
    restarted_for(
        seen,
        repair,
        "the repair never fired, so the script did not reach the flaw",
    );
}

/// Some interleaving restarted the walk for `reason` (`None`: nothing to
/// ask); `otherwise` says what it means when none did.
fn restarted_for(seen: &Seen, reason: Option<RestartReason>, otherwise: &str) {
    if let Some(r) = reason {
        assert!(
            seen.reasons.contains(&r),
            "no interleaving restarted for {r:?}: {otherwise}"
        );
    }
}

/// `script` holds for `design`, and the walker did meet `reason` in some
/// interleaving: the script reaches the seed case it is named after.
fn holds_reaching(
    design: Design,
    script: &'static Script,
    reason: Option<RestartReason>,
    limits: Limits,
) {
    let seen = holds(design, script, Walker::Walk, limits);
    restarted_for(&seen, reason, "the script misses its case");
}

/// One test per script that must hold for `design`, with the restart its
/// seed case is about (if any); `seed` stands for the seed thread's scripts
/// and the restarts a faithful nulls walker meets on them.
macro_rules! holds_reaching {
    ($design:expr, $limits:expr; seed $(, $case:ident => $reason:expr)* $(,)?) => {
        holds_reaching!($design, $limits;
            case_1_deleted_behind_walker => None,
            case_2_deleted_ahead_of_walker => None,
            case_3a_deleted_under_walker => None,
            case_3b_reused_while_initialising => Some(RestartReason::DescInit),
            case_3c1_readded_to_same_rmap => None,
            case_3c2_moved_to_other_rmap => Some(RestartReason::ForeignNulls),
            case_3c3_moved_away_and_back => Some(RestartReason::ForeignNulls),
            entry_moved_under_walker => None,
            single_form_reused_elsewhere => None
            $(, $case => $reason)*
        );
    };
    ($design:expr, $limits:expr; $($case:ident => $reason:expr),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                holds_reaching($design, &scripts::$case, $reason, $limits);
            }
        )*
    };
}

all_cases_hold!(lockless_gen, Design::built(ImplKind::LocklessGen, None), B2,
    repair Some(RestartReason::DescSeq));
// `seqlock` validates every pass against a per-rmap count that every writer
// bumps, whatever the chain discipline does; the 6.4 scripts, written for the
// nulls walker, take it minutes each at bound 2 (a million interleavings for
// `shrunk_and_regrown`), so it runs the seed scripts, and over 6.4 two of
// them.
all_cases_hold!(seqlock, Design::built(ImplKind::Seqlock, None), B2,
    repair Some(RestartReason::RmapSeq); seed);
// `rmap-lock` over Linux 6.4's chain (its default, as KVM 6.15's), then over
// the series' 2013 one. Its repair is its lock: its walker never restarts.
all_cases_hold!(rmap_lock, Design::built(ImplKind::RmapLock, None), B3, repair None);
all_cases_hold!(
    rmap_lock_on_2013,
    Design::on(ImplKind::RmapLock, None, Some(ChainKind::Y2013)),
    B3,
    repair None
);
// The repaired walkers over Linux 6.4's chain, where the recycling script
// cannot reach the flaw (no single form): no repair need fire.
all_cases_hold!(
    lockless_gen_on_6_4,
    Design::on(ImplKind::LocklessGen, None, LINUX64),
    B2,
    repair None
);
all_cases_hold!(
    seqlock_on_6_4,
    Design::on(ImplKind::Seqlock, None, LINUX64),
    B2,
    repair None;
    case_3c2_moved_to_other_rmap,
    moved_then_head_recycled
);

/// The question of the crate docs' "KVM today": the 2013 series' walker,
/// unchanged and without a sequence count, over Linux 6.4's chain
/// (`lockless-6.4`). Every script holds, the recycling ones included, and
/// the walker meets the restarts its seed cases are about.
mod lockless_6_4 {
    use super::*;

    fn faithful_on_6_4() -> Design {
        Design::built(ImplKind::Lockless64, None)
    }

    holds_reaching!(faithful_on_6_4(), B3; seed,
        recycled_through_single_form => Some(RestartReason::ForeignNulls),
        shrunk_and_regrown => None,
        moved_then_head_recycled => None,
    );

    /// The dirty log's view of the two scripts closest to the
    /// counterexample: v (and y) are write-protected.
    #[test]
    fn write_protect_shrunk_and_regrown() {
        holds(
            faithful_on_6_4(),
            &scripts::shrunk_and_regrown,
            Walker::WriteProtect,
            B3,
        );
    }

    #[test]
    fn write_protect_recycled_through_single_form() {
        holds(
            faithful_on_6_4(),
            &scripts::recycled_through_single_form,
            Walker::WriteProtect,
            B3,
        );
    }

    #[test]
    fn write_protect_moved_then_head_recycled() {
        holds(
            faithful_on_6_4(),
            &scripts::moved_then_head_recycled,
            Walker::WriteProtect,
            B3,
        );
    }
}

/// `lockless`, the seed's design: every case holds but the recycling one.
mod lockless {
    use super::*;

    fn faithful() -> Design {
        Design::built(ImplKind::Lockless, None)
    }

    holds_reaching!(faithful(), B3; seed);

    /// The counterexample (crate docs) is found: the spte it misses is v
    /// (`how` says how a miss shows), and in that interleaving the walker
    /// saw `visited` and never restarted.
    fn misses_v(walker: Walker, how: &str, visited: &str) {
        let (msg, f) = broken(
            faithful(),
            &scripts::recycled_through_single_form,
            walker,
            B3,
        );
        assert!(msg.contains(&format!("v present in R for the whole walk but {how}")));
        assert_eq!(
            (f.missed.as_str(), f.visited.as_str(), f.restarts),
            ("v", visited, 0),
            "the counterexample's shape: {f:?}"
        );
    }

    /// The counterexample has the crate docs' shape: the walk visited D's
    /// two entries of its first life (y, then x: bottom-up), read D's
    /// `more` in its second life, took R's own nulls for its end, and
    /// returned without a single restart. Nothing told it anything moved.
    #[test]
    fn recycled_through_single_form() {
        misses_v(Walker::Walk, "not visited", "yx");
    }

    /// The same interleaving seen by the dirty log: v keeps its W bit; the
    /// two sptes the walk did visit (y, x) were zapped by the time it
    /// visited them, so it cleared W on none, and it never restarted.
    #[test]
    fn write_protect_recycled_through_single_form() {
        misses_v(Walker::WriteProtect, "still writable", "0 protected");
    }
}

/// Each injected walker bug is caught by the checker, on the script that
/// exhibits it (the correct twin passes the same script above).
mod injected_bugs {
    use super::*;

    fn gen_with(bug: Bug) -> Design {
        Design::built(ImplKind::LocklessGen, Some(bug))
    }

    caught! {
        /// Tail discipline: removing y moves v from the tail descriptor
        /// (ahead of the walker) into the hole y left in the head (behind it).
        fill_from_tail: gen_with(Bug::FillFromTail), entry_moved_under_walker, B2;
        /// The walker follows D into Q and stops at Q's nulls.
        no_nulls_check: gen_with(Bug::NoNullsCheck), case_3c2_moved_to_other_rmap, B2;
        /// Slot 0 before slot 1: the walker reads x in slot 0, then the hole
        /// that v left in slot 1 when it moved down into x's place.
        top_down_walk: gen_with(Bug::TopDownWalk), entry_moved_under_walker, B2;
        /// The walker restarts from D, now Q's, until it gives up. It spins
        /// 1000 restarts before that, hence the larger branch limit.
        stale_head_restart: gen_with(Bug::StaleHeadRestart), case_3c2_moved_to_other_rmap,
            Limits { bound: 2, max_branches: 50_000 };
        /// `seqlock` without its retry reads the recycled chain as it is.
        seq_no_retry: Design::built(ImplKind::Seqlock, Some(Bug::SeqNoRetry)),
            recycled_through_single_form, B2;
        /// `lockless-gen` without acting on its count is `lockless` again.
        seq_no_retry_on_lockless_gen: gen_with(Bug::SeqNoRetry), recycled_through_single_form, B2;
        /// The walker bugs stay bugs over Linux 6.4's chain: `lockless-6.4`
        /// follows D into Q and stops at Q's nulls ...
        no_nulls_check_on_6_4: Design::built(ImplKind::Lockless64, Some(Bug::NoNullsCheck)),
            case_3c2_moved_to_other_rmap, B3;
        /// ... reads x in slot 0, then the hole v left in slot 1 ...
        top_down_walk_on_6_4: Design::built(ImplKind::Lockless64, Some(Bug::TopDownWalk)),
            entry_moved_under_walker, B3;
        /// ... and restarts from D, now Q's, until it gives up.
        stale_head_restart_on_6_4: Design::built(ImplKind::Lockless64, Some(Bug::StaleHeadRestart)),
            case_3c2_moved_to_other_rmap, Limits { bound: 2, max_branches: 50_000 };
    }
}

/// The two open questions of the crate docs ("The counterexample").
mod open_questions {
    use super::*;
    use rmap_impls::designs::lockless;

    fn more_first() -> Design {
        Design::nulls(lockless::more_first)
    }

    /// The faithful design over a deferring pool of one descriptor per
    /// page, so that every descriptor a writer takes while the walker is
    /// pinned is a reused one (`desc.rs`, "Deferred reuse"); `exhausted`:
    /// wait for the grace period, or reuse anyway.
    fn deferred_reuse(exhausted: Exhausted) -> Design {
        Design::nulls(move |c| {
            let one_per_page = RmapConfig {
                page_descs: 1,
                ..c.clone()
            };
            lockless::with_deferred_reuse(&one_per_page, exhausted)
        })
    }

    caught! {
        /// Reading `more` first does not close the hole: the walker keeps E's
        /// old link (nulls of R) and reads E's new slots (Q's a, b).
        more_first_recycled_through_single_form: more_first(), recycled_through_single_form, B3;
        /// ... and opens one the faithful walker does not have.
        more_first_single_form_reused_elsewhere: more_first(), single_form_reused_elsewhere, B3;
    }

    // A grace period before reuse closes it, for every script: a writer
    // that needs a descriptor while the walker is pinned waits for it.
    all_cases_hold!(deferred_reuse, deferred_reuse(Exhausted::Wait), B3, repair None);

    caught! {
        /// The same small pool, reusing a descriptor freed under the pinned
        /// walker instead of waiting: the counterexample again. So the
        /// deferred model passes because it waits, not because it never
        /// reuses.
        deferred_pool_that_does_not_wait: deferred_reuse(Exhausted::ReuseAnyway),
            recycled_through_single_form, B3;
    }
}

/// The weaker repairs of the flaw that the crate docs say fail ("The
/// counterexample"): the checker shows that they do.
mod weaker_repairs {
    use super::*;
    use rmap_impls::designs::lockless::{weaker_repair, WeakerRepair};

    fn design(repair: WeakerRepair) -> Design {
        Design::nulls(move |c| weaker_repair(repair, c))
    }

    /// Re-reading the head at the walker's own nulls: in the counterexample
    /// head(R) names D before the writer's first step and again after its
    /// last (ABA), so the walker ends as the faithful one does.
    #[test]
    fn head_recheck_is_fooled_by_aba() {
        broken_as(
            design(WeakerRepair::HeadRecheck),
            &scripts::recycled_through_single_form,
            B3,
            ("v", "yx", 0),
            "the faithful walker's counterexample",
        );
    }

    /// A generation bumped once per reuse: the walker holds head(R) = D from
    /// before the writer's first step; it reads D's generation after D was
    /// taken for R again (bumped: the new generation), then D's slots before
    /// their new values land (holes, as D's first life left them), then D's
    /// new `more` (R's nulls), and the generation again, unchanged. It
    /// visits nothing and restarts never.
    #[test]
    fn generation_bumped_once_reads_stale_slots() {
        broken_as(
            design(WeakerRepair::GenerationOnce),
            &scripts::recycled_through_single_form,
            B2,
            ("v", "", 0),
            "D's holes, then R's nulls",
        );
    }
}

/// What 2013 really did (the crate docs, "What 2013 really did"): Linux
/// 3.10's `pte_list_desc_remove_entry` fills a hole from the same
/// descriptor and unlinks an emptied descriptor wherever it is; adds append
/// at the tail. The nulls walker over that chain.
mod remove_of_2013 {
    use super::*;
    use rmap_impls::designs::lockless::over_2013_remove;

    fn design(gen: bool) -> Design {
        Design::nulls(move |c| over_2013_remove(gen, c))
    }

    /// The faithful walker does not survive it: E, emptied in the middle of
    /// the chain, is unlinked (D now links to F), freed, and reused at once
    /// as R's new tail, linked to R's own nulls. A walker that read D's old
    /// link to E reaches E in its new life and stops at its nulls, short of
    /// F (v, w), with no restart.
    #[test]
    fn faithful_walker_skips_past_a_recycled_middle_desc() {
        broken_as(
            design(false),
            &scripts::middle_desc_recycled_at_tail,
            B3,
            ("vw", "yxts", 0),
            "D's entries, E's of its first life, then E's new nulls",
        );
    }

    /// Nor does `lockless-gen`'s count save it: the count validates each
    /// descriptor the walker reads, and E in its new life is stable and
    /// consistent; what is stale is D's link to it, and D never changed.
    /// (The head discipline never frees a descriptor that a live one links
    /// to: only the head is ever emptied.)
    #[test]
    fn walker_with_the_count_skips_past_it_too() {
        broken_as(
            design(true),
            &scripts::middle_desc_recycled_at_tail,
            B2,
            ("vw", "yxz", 0),
            "D's entries, then E's new one, then R's nulls",
        );
    }
}

/// `mmu_lock` (both kinds) and the pool's mutex under loom: two writers on
/// the same rmap never lose an update.
mod writer_locks {
    use super::*;

    fn two_writers(lock: LockKind) {
        let iterations = Arc::new(StdMutex::new(0usize));
        let counter = iterations.clone();
        builder(B2).check(move || {
            *counter.lock().unwrap() += 1;
            let cfg = RmapConfig {
                mmu_lock: lock,
                ..config()
            };
            let rmap: Arc<Box<dyn Rmap>> =
                Arc::new(build(ImplKind::LocklessGen, &cfg, None).unwrap());
            let t = Arc::new(SpteTable::new(GFNS, ALIASES));
            Map(V).apply(&**rmap, &t);
            let spawn = |ops: &'static [Op]| {
                let (rmap, t) = (rmap.clone(), t.clone());
                loom::thread::spawn(move || ops.iter().for_each(|op| op.apply(&**rmap, &t)))
            };
            let a = spawn(&[Map(W), Map(X)]);
            let b = spawn(&[Map(Y), Unmap(V)]);
            a.join().unwrap();
            b.join().unwrap();
            let mut names = Vec::new();
            rmap.walk(R, &mut |s| {
                names.push(if s == W.slot(&t) {
                    'w'
                } else if s == X.slot(&t) {
                    'x'
                } else if s == Y.slot(&t) {
                    'y'
                } else {
                    '?'
                })
            });
            names.sort();
            assert_eq!(names, ['w', 'x', 'y'], "an update of R was lost");
            assert_eq!(rmap.descs_in_use(), 2, "three sptes take two descriptors");
        });
        let n = *iterations.lock().unwrap();
        println!("{n} interleavings");
        assert!(n > 1, "the two writers never interleaved");
    }

    #[test]
    fn spin_mmu_lock_serialises_writers() {
        two_writers(LockKind::Spin);
    }

    #[test]
    fn park_mmu_lock_serialises_writers() {
        two_writers(LockKind::Park);
    }
}

/// `mmu_lock`'s spinning kind, a ticket lock: three threads each take it
/// once, and in every interleaving it is granted one holder at a time, in
/// the order the tickets were taken (the order of arrival).
///
/// Preemption bound 1, not 2: a waiter spins with a yield, and loom may
/// switch between two yielding waiters for free (a yield is not a
/// preemption), so with the two preemptions that keep the holder off the
/// CPU it finds schedules where the two waiters yield to each other forever
/// and the model never ends. At bound 1 every schedule ends and the threads
/// still arrive in several orders (the test asserts more than one). The
/// two-thread model above (`spin_mmu_lock_serialises_writers`) runs the same
/// lock at bound 2.
mod ticket_lock {
    use super::*;
    use rmap_impls::lock::TicketLock;

    #[test]
    fn grants_in_ticket_order() {
        // Per interleaving, which thread took each ticket: more than one
        // such order proves the threads really raced for their tickets.
        let arrivals = Arc::new(StdMutex::new(BTreeSet::new()));
        let seen = arrivals.clone();
        let b1 = Limits { bound: 1, ..B2 };
        builder(b1).check(move || {
            let lock = Arc::new(TicketLock::new());
            // (ticket, thread), appended by each holder; `try_lock` finding
            // it taken would mean two holders at once.
            let log = Arc::new(loom::sync::Mutex::new(Vec::new()));
            let threads: Vec<_> = (0..3)
                .map(|me| {
                    let (lock, log) = (lock.clone(), log.clone());
                    loom::thread::spawn(move || {
                        let held = lock.lock();
                        log.try_lock()
                            .expect("two holders at once")
                            .push((held.ticket(), me));
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
            let log = log.lock().unwrap().clone();
            let tickets: Vec<u32> = log.iter().map(|&(t, _)| t).collect();
            assert_eq!(tickets, [0, 1, 2], "granted out of ticket order");
            let who: Vec<i32> = log.iter().map(|&(_, me)| me).collect();
            seen.lock().unwrap().insert(who);
        });
        let arrivals = arrivals.lock().unwrap();
        println!("{} orders of arrival", arrivals.len());
        assert!(arrivals.len() > 1, "the threads never raced for a ticket");
    }
}

/// Every present spte is in its rmap (`Rmap::map` adds, then installs): a
/// read fault maps `v` (W clear, MMU-writable) into R, which holds `w`,
/// while another vCPU's fast fault, which takes no lock, makes `v` writable
/// the moment it sees it present, and a write-protect walks R. If the fast
/// fault was over before the walk began, `v` was present and in R for the
/// whole walk, so the walk must leave it W clear: nothing sets W after it.
/// The old order (`install-before-add`) lets the fast fault see `v` before
/// the add, and the walk miss it; the model finds that too. The scripts
/// above have no fast faults, so they could not.
mod map_order {
    use super::*;
    use loom::sync::atomic::{AtomicU8, Ordering};
    use rmap_impls::spte::{is_present, SPTE_MMU_WRITABLE};

    /// The fast fault's progress, as the walker reads it before its walk.
    const BEGAN: u8 = 1;
    const DONE: u8 = 2;

    /// Whether some interleaving left `v` writable after a walk that began
    /// once the fast fault was over.
    fn missed(kind: ImplKind, bug: Option<Bug>) -> bool {
        let found = Arc::new(StdMutex::new(false));
        let seen = found.clone();
        let n = Arc::new(StdMutex::new(0usize));
        let count = n.clone();
        builder(B3).check(move || {
            *count.lock().unwrap() += 1;
            let rmap: Arc<Box<dyn Rmap>> = Arc::new(build(kind, &config(), bug).unwrap());
            let t = Arc::new(SpteTable::new(GFNS, ALIASES));
            Map(W).apply(&**rmap, &t);
            let fast = Arc::new(AtomicU8::new(0));
            let read_fault = {
                let (rmap, t) = (rmap.clone(), t.clone());
                loom::thread::spawn(move || {
                    rmap.map(&t, R, V.slot(&t), make_spte(R, false), &mut NoObserver);
                })
            };
            let fast_fault = {
                let (t, fast) = (t.clone(), fast.clone());
                loom::thread::spawn(move || {
                    // SeqCst, the begin and the end: the walker's load of
                    // `fast` either sees DONE, and with it the fault's fix
                    // and the add and install the fix saw, or does not.
                    fast.store(BEGAN, Ordering::SeqCst);
                    let s = t.slot(V.slot(&t)).load(Ordering::SeqCst);
                    if is_present(s) && !is_writable(s) && s & SPTE_MMU_WRITABLE != 0 {
                        t.fast_fault_fix(V.slot(&t), s);
                    }
                    fast.store(DONE, Ordering::SeqCst);
                })
            };
            let round = {
                let (rmap, t, fast) = (rmap.clone(), t.clone(), fast.clone());
                loom::thread::spawn(move || {
                    let before = fast.load(Ordering::SeqCst);
                    rmap.write_protect(&t, &[R], &mut NoObserver);
                    before == DONE && is_writable(t.load(V.slot(&t)))
                })
            };
            read_fault.join().unwrap();
            fast_fault.join().unwrap();
            if round.join().unwrap() {
                *seen.lock().unwrap() = true;
            }
        });
        let found = *found.lock().unwrap();
        println!(
            "{kind} {bug:?}: {} interleavings, found {found}",
            n.lock().unwrap()
        );
        found
    }

    #[test]
    fn the_walkers_without_mmu_lock_see_every_spte_a_fast_fault_can_fix() {
        for kind in Bug::InstallBeforeAdd.applies_to() {
            assert!(!missed(*kind, None), "{kind}: a fixable spte missed");
        }
    }

    #[test]
    fn install_before_add_is_missed() {
        for kind in Bug::InstallBeforeAdd.applies_to() {
            assert!(
                missed(*kind, Some(Bug::InstallBeforeAdd)),
                "{kind}: install-before-add never missed"
            );
        }
    }
}
