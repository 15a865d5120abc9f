//! Perf counters per role: every worker thread opens counters on
//! itself as it starts, reads them as it ends, and the values are summed per
//! role (`vcpu`, `walker`, `zapper`), the way `perf stat --per-thread` would
//! count them and then add the threads of a role up.
//!
//! # Life of a session
//!
//! 1. [`PerfSession::new`] probes every requested event once, on the calling
//!    thread ([`events::probe`]): an event the machine lacks is kept, marked
//!    not supported with the reason `perf stat` would give (a VM without a
//!    PMU answers `ENOENT` for every hardware event). Nothing here ever fails
//!    a run. `--perf off` probes nothing and opens nothing: every probe method
//!    returns before any syscall.
//! 2. As a [`Probe`], `thread_start` opens the supported events on the
//!    calling thread, in groups (below), and enables them; `thread_stop`
//!    reads them and adds value, time enabled and time running to the role's
//!    totals. A failure to open or read on one thread is recorded: that event
//!    is reported not supported for that role, with the reason and how many
//!    threads failed (a partial sum would be silently wrong).
//! 3. [`PerfSession::results`] turns the totals into the result file's
//!    `perf` map: role -> event -> [`PerfValue`], every requested event for
//!    every role that started a thread.
//!
//! # Groups
//!
//! A group is enabled, disabled and scheduled on the PMU as one, so the
//! ratios inside a group (IPC, miss ratios) are exact even when the kernel
//! multiplexes. Each thread opens:
//!
//! - one software group: `task-clock` (leader), `context-switches`,
//!   `cpu-migrations`, `page-faults`. Software events never compete for PMU
//!   counters, so this group is never multiplexed, and keeping it apart
//!   means it counts even when the hardware group cannot be scheduled;
//! - the hardware events in one group, when the session's probe saw such a
//!   group actually run on this machine (opened, enabled, and `time_running`
//!   moved). Six events fit in an empty x86 PMU (4 general counters plus the
//!   fixed cycles and instructions ones), but a counter held by someone else
//!   (the NMI watchdog holds one) can make the whole group never run;
//!   otherwise the hardware events go in pairs that mean something together:
//!   {`cycles`, `instructions`}, {`cache-references`, `cache-misses`},
//!   {`L1-dcache-load-misses`, `LLC-load-misses`}, which the kernel
//!   multiplexes against each other. If a group fails to open on a thread,
//!   its events are opened one by one instead.
//!
//! # Scaling
//!
//! As `perf stat`: value, time enabled and time running are summed over the
//! role's threads, then `value * enabled / running`. The sums are kept in the
//! output so a reader sees how much was multiplexed (running < enabled). An
//! event that was enabled but never running is "not counted" and reported as
//! not supported, with that reason.
//!
//! # Per operation
//!
//! `per_op` divides a role's value by the role's primary operation in
//! `RunReport::counters` ([`role_operation`]): a vCPU's counters per guest
//! write, the walker's per write-protect walk (one gfn's rmap,
//! `counters.walk.walks`), the zapper's per zap. The VM's `measure_start`
//! probe calls [`PerfSession::begin_measured`] when warmup ends, so the
//! counters cover the measured phase, as the run's operation counts do (up to
//! the one operation each worker takes to notice the switch).
//!
//! # Reading live (`lab profile`)
//!
//! [`PerfSession::snapshot`] reads every live group from the calling thread
//! (a perf fd can be read from any thread) and adds the totals of threads
//! already stopped: cumulative values per role that a sampler differences
//! with [`PerfSnapshot::since`]. The per-thread groups live behind one
//! `Mutex`, taken only by thread start and stop, `begin_measured`, and
//! snapshots; never on an operation's path.

pub mod events;

pub use events::{probe_all, EventKind, EventProbe};

/// Where cache misses come from on a machine without hardware counters:
/// the simulated counts per operation (valgrind's cache model of one core,
/// which sees no coherence misses between cores; hardware counters do).
pub const SIMULATED_CACHES: &str = "for cache misses per operation, simulated: \
    `cargo bench -p rmap-impls --bench cost` (instructions and L1/LL misses of add, remove and \
    the write-protect walk under valgrind's model of one core's caches, which sees no coherence \
    misses between cores; README: What each operation costs, deterministically)";

use crate::record::result::PerfValue;
use events::EventDef;
use perf_event::Counter;
use rmap_workloads::{Counters, Probe, RoleKind, RunReport};
use std::collections::BTreeMap;
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::thread::ThreadId;

/// `--perf default|off|EVENT,EVENT...`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PerfSpec {
    /// No counters: no probe, no syscalls.
    Off,
    /// Every event the lab knows.
    Default,
    /// These events (known names, no duplicates, in the order given).
    Events(Vec<String>),
}

impl std::str::FromStr for PerfSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "off" => Ok(PerfSpec::Off),
            "default" => Ok(PerfSpec::Default),
            _ => {
                let names = crate::record::units::parse_list(s, |name| {
                    events::find(name)
                        .map(|d| d.name.to_string())
                        .ok_or_else(|| {
                            format!(
                                "unknown perf event '{name}' (known: {}; or 'default', 'off')",
                                events::known_names()
                            )
                        })
                })?;
                let mut unique: Vec<String> = Vec::new();
                for n in names {
                    if !unique.contains(&n) {
                        unique.push(n);
                    }
                }
                Ok(PerfSpec::Events(unique))
            }
        }
    }
}

impl PerfSpec {
    /// The events this spec asks for; an unknown name is an error naming it.
    fn events(&self) -> Result<Vec<&'static EventDef>, String> {
        match self {
            PerfSpec::Off => Ok(Vec::new()),
            PerfSpec::Default => Ok(events::KNOWN.iter().collect()),
            PerfSpec::Events(names) => names
                .iter()
                .map(|n| {
                    events::find(n).ok_or_else(|| {
                        format!(
                            "unknown perf event '{n}' (known: {})",
                            events::known_names()
                        )
                    })
                })
                .collect(),
        }
    }
}

/// The operation `per_op` divides a role's counters by.
pub fn role_operation(role: RoleKind) -> &'static str {
    match role {
        RoleKind::Vcpu => "guest write",
        RoleKind::Walker => "write-protect walk",
        RoleKind::Zapper => "zap",
        RoleKind::Aging => "aging walk",
    }
}

/// How many of [`role_operation`] the run did.
pub fn role_operations(role: RoleKind, c: &Counters) -> u64 {
    match role {
        RoleKind::Vcpu => c.guest_writes,
        RoleKind::Walker => c.walk.walks,
        RoleKind::Zapper => c.zaps,
        RoleKind::Aging => c.aging.walk.walks,
    }
}

/// What one read of a counter returns, summed over threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Raw count (not scaled).
    pub value: u64,
    pub enabled_ns: u64,
    pub running_ns: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.value += o.value;
        self.enabled_ns += o.enabled_ns;
        self.running_ns += o.running_ns;
    }

    /// What happened between `earlier` and `self` (readings of the same
    /// counters; saturating, as a counter never goes back).
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            value: self.value.saturating_sub(earlier.value),
            enabled_ns: self.enabled_ns.saturating_sub(earlier.enabled_ns),
            running_ns: self.running_ns.saturating_sub(earlier.running_ns),
        }
    }

    /// Scaled for multiplexing as `perf stat` does (`value * enabled /
    /// running`); `None` when it was enabled but never running ("not
    /// counted").
    pub fn scaled(&self) -> Option<f64> {
        if self.running_ns == 0 {
            (self.enabled_ns == 0).then_some(self.value as f64)
        } else if self.running_ns >= self.enabled_ns {
            Some(self.value as f64)
        } else {
            Some(self.value as f64 * self.enabled_ns as f64 / self.running_ns as f64)
        }
    }
}

/// A requested event and what the session's probe found.
struct SessionEvent {
    def: &'static EventDef,
    probe: EventProbe,
}

/// Events that failed on some threads of a role.
#[derive(Clone, Default)]
struct Failure {
    threads: u32,
    reason: Option<String>,
}

/// Totals of one role, indexed like `PerfSession::events`.
struct RoleTotals {
    threads: u32,
    counts: Vec<Counts>,
    failed: Vec<Failure>,
}

/// One open group: `counters[0]` is the leader; `usize` is the event slot.
struct OpenGroup {
    counters: Vec<(usize, Counter)>,
}

/// A thread between `thread_start` and `thread_stop`.
struct LiveThread {
    role: RoleKind,
    index: u32,
    thread: ThreadId,
    groups: Vec<OpenGroup>,
    /// Readings at `begin_measured` (zero before), per slot.
    baseline: Vec<Counts>,
}

#[derive(Default)]
struct State {
    live: Vec<LiveThread>,
    roles: BTreeMap<RoleKind, RoleTotals>,
}

/// The counters of one run: a [`Probe`] that opens groups on each
/// worker thread and merges the values per role when the thread stops.
pub struct PerfSession {
    events: Vec<SessionEvent>,
    /// The event slots of each group a thread opens (see the module doc).
    layout: Vec<Vec<usize>>,
    /// Whether all hardware events ran as one group in the probe.
    hw_one_group: bool,
    state: Mutex<State>,
}

/// Cumulative counts per role at one instant ([`PerfSession::snapshot`]):
/// supported events only.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerfSnapshot {
    pub roles: BTreeMap<RoleKind, BTreeMap<&'static str, Counts>>,
}

impl PerfSnapshot {
    pub fn get(&self, role: RoleKind, event: &str) -> Option<Counts> {
        self.roles.get(&role).and_then(|m| m.get(event)).copied()
    }

    /// What happened between `earlier` and `self`: difference the raw counts
    /// and times, then scale the difference with [`Counts::scaled`].
    pub fn since(&self, earlier: &PerfSnapshot) -> PerfSnapshot {
        let roles = self
            .roles
            .iter()
            .map(|(role, evs)| {
                let evs = evs
                    .iter()
                    .map(|(name, c)| {
                        let before = earlier.get(*role, name).unwrap_or_default();
                        (*name, c.since(&before))
                    })
                    .collect();
                (*role, evs)
            })
            .collect();
        PerfSnapshot { roles }
    }
}

impl PerfSession {
    /// Probe the events of `spec` on the calling thread (nothing for `Off`).
    pub fn new(spec: &PerfSpec) -> Result<PerfSession, String> {
        let events: Vec<SessionEvent> = spec
            .events()?
            .into_iter()
            .map(|def| SessionEvent {
                def,
                probe: events::probe(def),
            })
            .collect();
        let hw: Vec<usize> = supported_slots(&events, EventKind::Hardware);
        let hw_one_group = hw.len() > 1 && group_runs(&events, &hw);
        let layout = plan_groups(&events, hw_one_group);
        Ok(PerfSession {
            events,
            layout,
            hw_one_group,
            state: Mutex::new(State::default()),
        })
    }

    /// What the probe found for each requested event, in request order.
    #[cfg(test)]
    pub fn probes(&self) -> Vec<EventProbe> {
        self.events.iter().map(|e| e.probe.clone()).collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A thread that panicked while holding the lock left consistent
        // totals (each update is a plain add): keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The measured phase begins: from now on count only what happens
    /// after this call (threads already stopped are dropped from the totals,
    /// live threads are read and their current values become a baseline).
    /// Optional: without it the counts cover each thread's whole life.
    pub fn begin_measured(&self) {
        if self.events.is_empty() {
            return;
        }
        let mut st = self.lock();
        let st = &mut *st;
        for totals in st.roles.values_mut() {
            totals
                .counts
                .iter_mut()
                .for_each(|c| *c = Counts::default());
        }
        for t in &mut st.live {
            for g in &mut t.groups {
                if let Ok(vals) = read_group(g) {
                    for (slot, c) in vals {
                        t.baseline[slot] = c;
                    }
                }
            }
        }
    }

    /// Cumulative counts per role now: live threads read from the calling
    /// thread, plus the threads already stopped. A live group that cannot be
    /// read is left out of this snapshot.
    pub fn snapshot(&self) -> PerfSnapshot {
        let mut snap = PerfSnapshot::default();
        if self.events.is_empty() {
            return snap;
        }
        let mut st = self.lock();
        let st = &mut *st;
        let mut per_role: BTreeMap<RoleKind, Vec<Counts>> = st
            .roles
            .iter()
            .map(|(r, t)| (*r, t.counts.clone()))
            .collect();
        for t in &mut st.live {
            let sums = per_role
                .entry(t.role)
                .or_insert_with(|| vec![Counts::default(); self.events.len()]);
            for g in &mut t.groups {
                if let Ok(vals) = read_group(g) {
                    for (slot, c) in vals {
                        sums[slot].add(&c.since(&t.baseline[slot]));
                    }
                }
            }
        }
        for (role, sums) in per_role {
            let failed = st.roles.get(&role).map(|t| &t.failed);
            let evs = self
                .events
                .iter()
                .enumerate()
                .filter(|(slot, e)| {
                    e.probe.supported && failed.is_none_or(|f| f[*slot].threads == 0)
                })
                .map(|(slot, e)| (e.def.name, sums[slot]))
                .collect();
            snap.roles.insert(role, evs);
        }
        snap
    }

    /// Role -> event -> value for the result file, `per_op` from the run's
    /// counters ([`role_operations`]).
    pub fn results(&self, report: &RunReport) -> BTreeMap<String, BTreeMap<String, PerfValue>> {
        self.values(|role| role_operations(role, &report.counters))
    }

    /// [`results`](Self::results) with the operation count per role given.
    fn values(
        &self,
        ops: impl Fn(RoleKind) -> u64,
    ) -> BTreeMap<String, BTreeMap<String, PerfValue>> {
        let mut out = BTreeMap::new();
        if self.events.is_empty() {
            return out;
        }
        let st = self.lock();
        for (role, totals) in &st.roles {
            let n_ops = ops(*role);
            let mut evs = BTreeMap::new();
            for (slot, e) in self.events.iter().enumerate() {
                let c = totals.counts[slot];
                let failed = &totals.failed[slot];
                let mut v = PerfValue {
                    supported: false,
                    value: None,
                    time_enabled_ns: 0,
                    time_running_ns: 0,
                    reason: None,
                    per_op: None,
                };
                if !e.probe.supported {
                    v.reason = e.probe.reason.clone();
                } else if failed.threads > 0 {
                    v.reason = Some(format!(
                        "failed on {} of {} {} threads: {}",
                        failed.threads,
                        totals.threads,
                        role.name(),
                        failed.reason.as_deref().unwrap_or("unknown error")
                    ));
                } else if let Some(value) = c.scaled() {
                    v.supported = true;
                    v.value = Some(value);
                    v.time_enabled_ns = c.enabled_ns;
                    v.time_running_ns = c.running_ns;
                    v.per_op = (n_ops > 0).then(|| value / n_ops as f64);
                } else {
                    v.time_enabled_ns = c.enabled_ns;
                    v.reason = Some(
                        "not counted: enabled but never scheduled on the PMU \
                         (another user, such as the NMI watchdog, may hold its counters)"
                            .into(),
                    );
                }
                evs.insert(e.def.name.to_string(), v);
            }
            out.insert(role.name().to_string(), evs);
        }
        out
    }

    /// What a reader of these numbers should know (hyperfine-style
    /// warnings): missing hardware counters, user-mode-only counting,
    /// failures on some threads, multiplexing.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let unsupported_hw: Vec<&SessionEvent> = self
            .events
            .iter()
            .filter(|e| e.def.kind == EventKind::Hardware && !e.probe.supported)
            .collect();
        if let Some(first) = unsupported_hw.first() {
            let names: Vec<&str> = unsupported_hw.iter().map(|e| e.def.name).collect();
            w.push(format!(
                "hardware counters not available on this machine ({}: {}); {SIMULATED_CACHES}",
                names.join(", "),
                first.probe.reason.as_deref().unwrap_or("unknown")
            ));
        }
        let user_only: Vec<&str> = self
            .events
            .iter()
            .filter(|e| e.probe.user_only)
            .map(|e| e.def.name)
            .collect();
        if !user_only.is_empty() {
            w.push(format!(
                "perf counts user mode only for {} (kernel counting not permitted)",
                user_only.join(", ")
            ));
        }
        if self.events.is_empty() {
            return w;
        }
        let st = self.lock();
        for (role, t) in &st.roles {
            for (slot, e) in self.events.iter().enumerate() {
                let f = &t.failed[slot];
                if f.threads > 0 && e.probe.supported {
                    w.push(format!(
                        "perf event {} failed on {} of {} {} threads ({})",
                        e.def.name,
                        f.threads,
                        t.threads,
                        role.name(),
                        f.reason.as_deref().unwrap_or("unknown error")
                    ));
                }
                let c = t.counts[slot];
                if c.running_ns > 0 && (c.running_ns as f64) < 0.99 * c.enabled_ns as f64 {
                    w.push(format!(
                        "perf event {} of {} was multiplexed: counted {:.0}% of the time, value scaled",
                        e.def.name,
                        role.name(),
                        100.0 * c.running_ns as f64 / c.enabled_ns as f64
                    ));
                }
            }
        }
        w
    }

    /// How the hardware events are grouped on each thread ("one group",
    /// "pairs" or "none"), for the result file's metadata.
    pub fn hardware_layout(&self) -> &'static str {
        if supported_slots(&self.events, EventKind::Hardware).is_empty() {
            "none"
        } else if self.hw_one_group {
            "one group"
        } else {
            "pairs"
        }
    }

    /// Open the planned groups on the calling thread and enable them;
    /// failures per slot.
    fn open_groups(&self) -> (Vec<OpenGroup>, Vec<(usize, String)>) {
        let mut groups = Vec::new();
        let mut failed = Vec::new();
        for slots in &self.layout {
            match open_group(&self.events, slots) {
                Ok(g) => groups.push(g),
                Err(_) if slots.len() > 1 => {
                    // Open one by one: the kernel multiplexes them singly.
                    for &slot in slots {
                        match open_group(&self.events, &[slot]) {
                            Ok(g) => groups.push(g),
                            Err(e) => failed.push((slot, events::reason(&e))),
                        }
                    }
                }
                Err(e) => failed.push((slots[0], events::reason(&e))),
            }
        }
        groups.retain_mut(|g| match g.counters[0].1.enable_group() {
            Ok(()) => true,
            Err(e) => {
                for (slot, _) in &g.counters {
                    failed.push((*slot, events::reason(&e)));
                }
                false
            }
        });
        (groups, failed)
    }
}

fn supported_slots(events: &[SessionEvent], kind: EventKind) -> Vec<usize> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.def.kind == kind && e.probe.supported)
        .map(|(i, _)| i)
        .collect()
}

/// The pair a hardware event belongs to when the hardware events do not
/// run as one group (see the module doc).
fn hardware_pair(name: &str) -> u8 {
    match name {
        "cycles" | "instructions" => 0,
        "cache-references" | "cache-misses" => 1,
        _ => 2,
    }
}

/// The groups each thread opens: the supported software events together,
/// the supported hardware events together or in pairs.
fn plan_groups(events: &[SessionEvent], hw_one_group: bool) -> Vec<Vec<usize>> {
    let mut layout = Vec::new();
    let sw = supported_slots(events, EventKind::Software);
    if !sw.is_empty() {
        layout.push(sw);
    }
    let hw = supported_slots(events, EventKind::Hardware);
    if hw_one_group {
        layout.push(hw);
    } else {
        let mut pairs: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
        for slot in hw {
            pairs
                .entry(hardware_pair(events[slot].def.name))
                .or_default()
                .push(slot);
        }
        layout.extend(pairs.into_values());
    }
    layout
}

/// Open `slots` as one group on the calling thread, disabled.
fn open_group(events: &[SessionEvent], slots: &[usize]) -> io::Result<OpenGroup> {
    let mut counters: Vec<(usize, Counter)> = Vec::with_capacity(slots.len());
    for &slot in slots {
        let e = &events[slot];
        let c = e
            .def
            .open(e.probe.user_only, counters.first_mut().map(|(_, l)| l))?;
        counters.push((slot, c));
    }
    Ok(OpenGroup { counters })
}

/// Read a group: each member's value with the group's times.
fn read_group(g: &mut OpenGroup) -> io::Result<Vec<(usize, Counts)>> {
    let data = g.counters[0].1.read_group()?;
    let enabled_ns = data.time_enabled().map_or(0, |d| d.as_nanos() as u64);
    let running_ns = data.time_running().map_or(0, |d| d.as_nanos() as u64);
    Ok(g.counters
        .iter()
        .map(|(slot, c)| {
            let value = data.get(c).map_or(0, |e| e.value());
            (
                *slot,
                Counts {
                    value,
                    enabled_ns,
                    running_ns,
                },
            )
        })
        .collect())
}

/// Whether the hardware events `slots` run as one group on this machine:
/// open it on the calling thread, spin half a millisecond, and see whether
/// it was ever scheduled.
fn group_runs(events: &[SessionEvent], slots: &[usize]) -> bool {
    let Ok(mut g) = open_group(events, slots) else {
        return false;
    };
    if g.counters[0].1.enable_group().is_err() {
        return false;
    }
    let start = std::time::Instant::now();
    let mut x = 0u64;
    while start.elapsed() < std::time::Duration::from_micros(500) {
        for i in 0..1000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
    read_group(&mut g).is_ok_and(|v| v.first().is_some_and(|(_, c)| c.running_ns > 0))
}

impl Probe for PerfSession {
    fn measure_start(&self) {
        self.begin_measured();
    }

    fn thread_start(&self, role: RoleKind, index: u32) {
        if self.events.is_empty() {
            return;
        }
        let (groups, failed) = self.open_groups();
        let n = self.events.len();
        let mut st = self.lock();
        let totals = st.roles.entry(role).or_insert_with(|| RoleTotals {
            threads: 0,
            counts: vec![Counts::default(); n],
            failed: vec![Failure::default(); n],
        });
        totals.threads += 1;
        for (slot, reason) in failed {
            let f = &mut totals.failed[slot];
            f.threads += 1;
            f.reason.get_or_insert(reason);
        }
        st.live.push(LiveThread {
            role,
            index,
            thread: std::thread::current().id(),
            groups,
            baseline: vec![Counts::default(); n],
        });
    }

    fn thread_stop(&self, role: RoleKind, index: u32) {
        if self.events.is_empty() {
            return;
        }
        let me = std::thread::current().id();
        let mut st = self.lock();
        let Some(pos) = st
            .live
            .iter()
            .position(|t| t.thread == me && t.role == role && t.index == index)
        else {
            return;
        };
        let mut t = st.live.swap_remove(pos);
        let Some(totals) = st.roles.get_mut(&role) else {
            return;
        };
        for g in &mut t.groups {
            match read_group(g) {
                Ok(vals) => {
                    for (slot, c) in vals {
                        totals.counts[slot].add(&c.since(&t.baseline[slot]));
                    }
                }
                Err(e) => {
                    let reason = format!("read: {}", events::reason(&e));
                    for (slot, _) in &g.counters {
                        let f = &mut totals.failed[*slot];
                        f.threads += 1;
                        f.reason.get_or_insert_with(|| reason.clone());
                    }
                }
            }
        }
        // The groups close here, with `t`.
    }
}

#[cfg(test)]
mod tests;
