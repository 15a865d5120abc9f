//! Chrome trace-event output for `lab run --trace FILE`: a JSON file that
//! Perfetto (ui.perfetto.dev) and `chrome://tracing` open, with one track per
//! worker thread.
//!
//! # What is traced
//!
//! Tracing every operation would distort the run it measures, so the VM
//! traces one operation in `n` of each kind, with everything inside it (a
//! traced dirty-log round brings its write-protect walks, `mmu_lock` waits
//! and holds, and TLB-flush wait). [`TraceWriter`] answers
//! [`Probe::trace_sample`] with `Some(n)`, [`DEFAULT_SAMPLE_ONE_IN`]
//! unless set, and bounds the file: at most `max_events` events
//! ([`DEFAULT_MAX_EVENTS`]: 110 to 127 bytes an event, so 11 to 13 MB of
//! JSON); past that, events are dropped and counted. The file's `otherData`
//! says both (`sample_one_in`, `max_events`, `dropped_events`), so a reader
//! knows the trace is a sample and whether it is complete.
//!
//! # The file
//!
//! `{"traceEvents": [...], "displayTimeUnit": "ns", "otherData": {...}}`,
//! all in process 1:
//!
//! - metadata (`"ph":"M"`): `process_name`, and per thread `thread_name`
//!   ("walker", "zapper", "vcpu 3") and `thread_sort_index`, so the tracks
//!   come walker, zapper, then vCPUs in order;
//! - complete events (`"ph":"X"`) for each [`SpanKind`], named by
//!   [`SpanKind::name`], `cat` the role, `ts`/`dur` in microseconds with
//!   three decimals (exact nanoseconds since the run started), `args` the
//!   gfn (walks, slow faults) or pages (rounds);
//! - instant events (`"ph":"i"`, `"s":"t"`: thread scope) named "restart",
//!   with `args` `{reason, gfn}`;
//! - counter tracks (`"ph":"C"`, process-wide): "guest writes per second"
//!   and "mmu_lock waiters queued", sampled by the VM's coordinator every
//!   10 ms, and "dirty pages per round", one value per round;
//! - flow arrows (`"ph":"s"` and `"f"`, `cat` "mmu_lock", named "mmu_lock
//!   handoff"): each traced `mmu_lock` wait is joined to the hold it waited
//!   for. While a traced wait is pending the VM puts every hold in the
//!   trace, so the holder's "mmu_lock hold" slice is there; the arrow starts
//!   just inside that hold's end and ends just inside the wait's end (a
//!   flow must run forward in time, so it is drawn holder -> waiter). A
//!   handoff whose hold is not in the file (dropped at the bound, or a
//!   holder that read the waiters count just before the traced wait began)
//!   gets no arrow and is counted in `otherData.lock_handoffs_unmatched`;
//!   so does one past the bound (an arrow is two events).
//!
//! Events are sorted per thread by start, longer first on a tie, so nested
//! spans import as nested. The events are serde-derived types
//! ([`TraceEvent`]), written in one `serde_json` call.
//!
//! # Collecting without a global lock
//!
//! The probe is called concurrently from every worker thread. `thread_start`
//! gives the calling thread its own buffer (registered once in the writer's
//! list, under a lock taken only at start and finish) and remembers it in a
//! thread-local; spans and restarts then go to that buffer through an
//! uncontended per-thread mutex. The event bound is shared: a thread takes
//! slots from one atomic counter in chunks of [`CHUNK`], so the counter is
//! touched once per [`CHUNK`] events, and once it is spent the thread drops
//! without touching it again. Slots a thread took but did not use are not
//! given back: a trace may stop short of `max_events` by up to [`CHUNK`]
//! per thread while another thread drops; it never holds more. A thread that
//! calls the probe without `thread_start` (tests, helpers) still gets a
//! buffer, found under the writer's lock.
//!
//! `finish` gathers the buffers and writes the file once, atomically
//! (`record::result::write_atomic`).

use crate::record::result::write_atomic;
use rmap_workloads::{LockHandoff, Probe, RoleKind, SpanKind};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// One operation in this many of each kind is traced by default: rare
/// enough that a traced run's latencies stay those of an untraced one,
/// frequent enough that a 10 s run shows every kind many times.
pub const DEFAULT_SAMPLE_ONE_IN: u32 = 64;

/// Default bound on the events of one trace: 11 to 13 MB of JSON.
pub const DEFAULT_MAX_EVENTS: usize = 100_000;

/// Event slots a thread takes from the shared bound at a time.
pub const CHUNK: usize = 256;

/// A traced event, as recorded on the hot path (no formatting there).
#[derive(Clone, Copy, Debug)]
enum Ev {
    Span {
        kind: SpanKind,
        start_ns: u64,
        dur_ns: u64,
        arg: u64,
    },
    Restart {
        at_ns: u64,
        reason: &'static str,
        gfn: u64,
    },
    /// A traced wait of this thread and the hold it waited for.
    Handoff(LockHandoff),
}

impl Ev {
    fn start(&self) -> u64 {
        match *self {
            Ev::Span { start_ns, .. } => start_ns,
            Ev::Restart { at_ns, .. } => at_ns,
            Ev::Handoff(h) => h.acquired_ns,
        }
    }
    fn dur(&self) -> u64 {
        match *self {
            Ev::Span { dur_ns, .. } => dur_ns,
            Ev::Restart { .. } | Ev::Handoff(_) => 0,
        }
    }
}

/// One thread's events.
struct ThreadBuf {
    role: RoleKind,
    index: u32,
    events: Vec<Ev>,
    /// Slots taken from the shared bound and not used yet.
    reserved: usize,
    /// The shared bound is spent: drop without asking again.
    exhausted: bool,
    dropped: u64,
}

/// A thread's registration with one writer, kept in a thread-local.
struct Registration {
    writer: u64,
    role: RoleKind,
    index: u32,
    buf: Arc<Mutex<ThreadBuf>>,
}

thread_local! {
    static REGISTERED: RefCell<Vec<Registration>> = const { RefCell::new(Vec::new()) };
}

/// Tells writers apart in the thread-locals (several runs in one process).
static NEXT_WRITER: AtomicU64 = AtomicU64::new(1);

/// What [`TraceWriter::finish`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSummary {
    pub path: PathBuf,
    /// Span and restart events in the file (metadata not counted).
    pub events: u64,
    /// Events dropped because the bound was reached.
    pub dropped: u64,
    pub bytes: u64,
}

/// Collects sampled spans from the worker threads and writes them as a
/// Chrome trace (see the module doc).
pub struct TraceWriter {
    id: u64,
    path: PathBuf,
    sample_one_in: u32,
    max_events: usize,
    process_name: String,
    other: BTreeMap<String, serde_json::Value>,
    /// Event slots handed out to threads so far (may overshoot
    /// `max_events`: only slots below it are real).
    taken: AtomicUsize,
    buffers: Mutex<Vec<Arc<Mutex<ThreadBuf>>>>,
    /// Counter samples: `(name, key, at_ns, value)`. Few (a hundred a
    /// second per track), from the coordinator and the walker.
    counters: Mutex<Vec<(&'static str, &'static str, u64, f64)>>,
    counters_dropped: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Buffers are only appended to: one left by a panicking thread is whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TraceWriter {
    /// A writer for `path` with the default sampling and bound.
    pub fn new(path: &Path) -> TraceWriter {
        TraceWriter {
            // Relaxed: a unique number, nothing is published with it.
            id: NEXT_WRITER.fetch_add(1, Ordering::Relaxed),
            path: path.to_path_buf(),
            sample_one_in: DEFAULT_SAMPLE_ONE_IN,
            max_events: DEFAULT_MAX_EVENTS,
            process_name: "rmap-lab".into(),
            other: BTreeMap::new(),
            taken: AtomicUsize::new(0),
            buffers: Mutex::new(Vec::new()),
            counters: Mutex::new(Vec::new()),
            counters_dropped: AtomicU64::new(0),
        }
    }

    /// Trace one operation in `n` of each kind (`n` >= 1; 1 traces all).
    pub fn sample_one_in(mut self, n: u32) -> TraceWriter {
        self.sample_one_in = n.max(1);
        self
    }

    /// Keep at most `n` events in the file.
    pub fn max_events(mut self, n: usize) -> TraceWriter {
        self.max_events = n;
        self
    }

    /// The process track's name (for example "rmap-lab lockless, 8 vCPUs").
    pub fn process_name(mut self, name: &str) -> TraceWriter {
        self.process_name = name.to_string();
        self
    }

    /// One more key in the file's `otherData` (the impl, the config...).
    pub fn other_data(mut self, key: &str, value: serde_json::Value) -> TraceWriter {
        self.other.insert(key.to_string(), value);
        self
    }

    fn new_buf(&self, role: RoleKind, index: u32) -> Arc<Mutex<ThreadBuf>> {
        let buf = Arc::new(Mutex::new(ThreadBuf {
            role,
            index,
            events: Vec::new(),
            reserved: 0,
            exhausted: false,
            dropped: 0,
        }));
        lock(&self.buffers).push(buf.clone());
        buf
    }

    /// Record `ev` on the calling thread's buffer.
    fn record(&self, role: RoleKind, index: u32, ev: Ev) {
        let done = REGISTERED.with(|r| {
            let r = r.borrow();
            let Some(reg) = r
                .iter()
                .find(|g| g.writer == self.id && g.role == role && g.index == index)
            else {
                return false;
            };
            self.push(&mut lock(&reg.buf), ev);
            true
        });
        if !done {
            // Not registered by `thread_start`: share a buffer by role and
            // index, found under the writer's lock.
            let buf = {
                let bufs = lock(&self.buffers);
                bufs.iter()
                    .find(|b| {
                        let b = lock(b);
                        b.role == role && b.index == index
                    })
                    .cloned()
            };
            let buf = buf.unwrap_or_else(|| self.new_buf(role, index));
            self.push(&mut lock(&buf), ev);
        }
    }

    fn push(&self, b: &mut ThreadBuf, ev: Ev) {
        if b.reserved == 0 && !b.exhausted {
            // Relaxed: a count of slots; the events themselves are
            // published to `finish` by the buffer's mutex.
            let before = self.taken.fetch_add(CHUNK, Ordering::Relaxed);
            b.reserved = self.max_events.saturating_sub(before).min(CHUNK);
            b.exhausted = b.reserved == 0;
        }
        if b.reserved == 0 {
            b.dropped += 1;
        } else {
            b.reserved -= 1;
            b.events.push(ev);
        }
    }

    /// Write the collected events to the file, atomically. Threads still
    /// running keep their events so far; call it after the run.
    pub fn finish(&self) -> std::io::Result<TraceSummary> {
        // Merge buffers by (role, index), tracks ordered walker, zapper,
        // aging, then vCPUs.
        let mut tracks: BTreeMap<(u8, u32), (RoleKind, Vec<Ev>)> = BTreeMap::new();
        let mut dropped = 0u64;
        for buf in lock(&self.buffers).iter() {
            let b = lock(buf);
            dropped += b.dropped;
            let rank = match b.role {
                RoleKind::Walker => 0,
                RoleKind::Zapper => 1,
                RoleKind::Aging => 2,
                RoleKind::Vcpu => 3,
            };
            tracks
                .entry((rank, b.index))
                .or_insert_with(|| (b.role, Vec::new()))
                .1
                .extend_from_slice(&b.events);
        }
        let mut out: Vec<TraceEvent> = vec![TraceEvent::Metadata {
            name: "process_name",
            pid: PID,
            tid: 0,
            args: MetaArgs::Name {
                name: self.process_name.clone(),
            },
        }];
        let mut events = 0u64;
        // Each track's tid, and its holds by start, for the handoff arrows.
        let tid_of: BTreeMap<(RoleKind, u32), u32> = tracks
            .iter()
            .enumerate()
            .map(|(i, (&(_, index), (role, _)))| ((*role, index), i as u32 + 1))
            .collect();
        let mut holds: BTreeMap<(u32, u64), u64> = BTreeMap::new();
        let mut handoffs: Vec<(u32, LockHandoff)> = Vec::new();
        for (tid, ((_, index), (role, evs))) in tracks.iter_mut().enumerate() {
            let tid = tid as u32 + 1;
            let role = *role;
            let name = match (role, *index) {
                (RoleKind::Vcpu, i) => format!("vcpu {i}"),
                (r, 0) => r.name().to_string(),
                (r, i) => format!("{} {i}", r.name()),
            };
            out.push(TraceEvent::Metadata {
                name: "thread_name",
                pid: PID,
                tid,
                args: MetaArgs::Name { name },
            });
            out.push(TraceEvent::Metadata {
                name: "thread_sort_index",
                pid: PID,
                tid,
                args: MetaArgs::SortIndex { sort_index: tid },
            });
            evs.sort_by_key(|e| (e.start(), std::cmp::Reverse(e.dur())));
            let cat = role.name();
            for e in evs.iter() {
                match *e {
                    Ev::Handoff(h) => {
                        handoffs.push((tid, h));
                        continue;
                    }
                    Ev::Span {
                        kind: SpanKind::LockHold,
                        start_ns,
                        dur_ns,
                        ..
                    } => {
                        holds.insert((tid, start_ns), dur_ns);
                    }
                    _ => {}
                }
                events += 1;
                out.push(match *e {
                    Ev::Span {
                        kind,
                        start_ns,
                        dur_ns,
                        arg,
                    } => TraceEvent::Complete {
                        name: kind.name(),
                        cat,
                        pid: PID,
                        tid,
                        ts: micros(start_ns),
                        dur: micros(dur_ns),
                        args: match kind {
                            SpanKind::WpGfn | SpanKind::FaultSlow => {
                                Some(SpanArgs::Gfn { gfn: arg })
                            }
                            SpanKind::Round => Some(SpanArgs::Pages { pages: arg }),
                            _ if arg != 0 => Some(SpanArgs::Arg { arg }),
                            _ => None,
                        },
                    },
                    Ev::Restart { at_ns, reason, gfn } => TraceEvent::Instant {
                        name: "restart",
                        cat,
                        s: "t",
                        pid: PID,
                        tid,
                        ts: micros(at_ns),
                        args: RestartArgs { reason, gfn },
                    },
                    Ev::Handoff(_) => unreachable!("handoffs are drawn as flows below"),
                });
            }
        }
        for &(name, key, at_ns, value) in lock(&self.counters).iter() {
            out.push(TraceEvent::Counter {
                name,
                pid: PID,
                tid: 0,
                ts: micros(at_ns),
                args: BTreeMap::from([(key, value)]),
            });
            events += 1;
        }
        dropped += self.counters_dropped.load(Ordering::Relaxed);
        // Handoff arrows: from just inside the end of the hold waited for to
        // just inside the end of the wait. Each is two events; past the
        // bound, a handoff gets none and counts as unmatched.
        let mut unmatched = 0u64;
        for (id, (waiter, h)) in handoffs.iter().enumerate() {
            let holder = tid_of.get(&(h.holder_role, h.holder_index));
            let hold = holder.and_then(|t| holds.get(&(*t, h.hold_start_ns)).map(|d| (*t, *d)));
            let Some((holder, dur)) = hold.filter(|_| events + 2 <= self.max_events as u64) else {
                unmatched += 1;
                continue;
            };
            // The holder reads its clock just after its unlock, so its hold
            // can end a little after the waiter's acquisition: the arrow
            // starts no later than that.
            let hold_end = (h.hold_start_ns + dur).min(h.acquired_ns);
            let from = hold_end.saturating_sub(1).max(h.hold_start_ns);
            let to = h
                .acquired_ns
                .saturating_sub(1)
                .max(h.wait_start_ns)
                .max(from);
            out.push(TraceEvent::FlowStart {
                name: "mmu_lock handoff",
                cat: "mmu_lock",
                id: id as u64,
                pid: PID,
                tid: holder,
                ts: micros(from),
            });
            out.push(TraceEvent::FlowEnd {
                name: "mmu_lock handoff",
                cat: "mmu_lock",
                id: id as u64,
                bp: "e",
                pid: PID,
                tid: *waiter,
                ts: micros(to),
            });
            events += 2;
        }

        let mut other = self.other.clone();
        other.insert("sample_one_in".into(), self.sample_one_in.into());
        other.insert("max_events".into(), self.max_events.into());
        other.insert("events".into(), events.into());
        other.insert("dropped_events".into(), dropped.into());
        other.insert("lock_handoffs".into(), (handoffs.len() as u64).into());
        other.insert("lock_handoffs_unmatched".into(), unmatched.into());
        other.insert("lab_version".into(), env!("CARGO_PKG_VERSION").into());
        let file = TraceFile {
            trace_events: out,
            display_time_unit: "ns",
            other_data: other,
        };
        let mut bytes = serde_json::to_vec(&file).expect("a trace always serialises");
        bytes.push(b'\n');
        write_atomic(&self.path, &bytes)?;
        Ok(TraceSummary {
            path: self.path.clone(),
            events,
            dropped,
            bytes: bytes.len() as u64,
        })
    }
}

/// Every event is in this process.
const PID: u32 = 1;

/// Nanoseconds as the trace format's microseconds (exact to the
/// nanosecond: a quotient of integers below 2^53 rounds to the double that
/// prints as the three-decimal value).
fn micros(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// The file: Chrome's trace-event format, JSON object form.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TraceFile {
    trace_events: Vec<TraceEvent>,
    display_time_unit: &'static str,
    other_data: BTreeMap<String, serde_json::Value>,
}

/// One trace event, tagged by its phase `ph` as the format names them.
#[derive(serde::Serialize)]
#[serde(tag = "ph")]
enum TraceEvent {
    /// Process and thread names and the tracks' order.
    #[serde(rename = "M")]
    Metadata {
        name: &'static str,
        pid: u32,
        tid: u32,
        args: MetaArgs,
    },
    /// A span with its duration.
    #[serde(rename = "X")]
    Complete {
        name: &'static str,
        cat: &'static str,
        pid: u32,
        tid: u32,
        ts: f64,
        dur: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        args: Option<SpanArgs>,
    },
    /// A moment on one thread's track (`s: "t"`).
    #[serde(rename = "i")]
    Instant {
        name: &'static str,
        cat: &'static str,
        s: &'static str,
        pid: u32,
        tid: u32,
        ts: f64,
        args: RestartArgs,
    },
    /// A counter track's value, process-wide (the track is named `name`
    /// followed by the arg's key).
    #[serde(rename = "C")]
    Counter {
        name: &'static str,
        pid: u32,
        tid: u32,
        ts: f64,
        args: BTreeMap<&'static str, f64>,
    },
    /// Where a flow arrow starts: inside the slice open on `tid` at `ts`.
    #[serde(rename = "s")]
    FlowStart {
        name: &'static str,
        cat: &'static str,
        id: u64,
        pid: u32,
        tid: u32,
        ts: f64,
    },
    /// Where it ends: bound to the enclosing slice (`bp: "e"`).
    #[serde(rename = "f")]
    FlowEnd {
        name: &'static str,
        cat: &'static str,
        id: u64,
        bp: &'static str,
        pid: u32,
        tid: u32,
        ts: f64,
    },
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum MetaArgs {
    Name { name: String },
    SortIndex { sort_index: u32 },
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum SpanArgs {
    Gfn { gfn: u64 },
    Pages { pages: u64 },
    Arg { arg: u64 },
}

#[derive(serde::Serialize)]
struct RestartArgs {
    reason: &'static str,
    gfn: u64,
}

impl Probe for TraceWriter {
    fn thread_start(&self, role: RoleKind, index: u32) {
        let buf = self.new_buf(role, index);
        REGISTERED.with(|r| {
            r.borrow_mut().push(Registration {
                writer: self.id,
                role,
                index,
                buf,
            })
        });
    }

    fn thread_stop(&self, role: RoleKind, index: u32) {
        // The buffer stays in the writer's list for `finish`.
        REGISTERED.with(|r| {
            r.borrow_mut()
                .retain(|g| !(g.writer == self.id && g.role == role && g.index == index))
        });
    }

    fn trace_sample(&self) -> Option<u32> {
        Some(self.sample_one_in)
    }

    fn span(
        &self,
        role: RoleKind,
        index: u32,
        kind: SpanKind,
        start_ns: u64,
        dur_ns: u64,
        arg: u64,
    ) {
        self.record(
            role,
            index,
            Ev::Span {
                kind,
                start_ns,
                dur_ns,
                arg,
            },
        );
    }

    fn restart(&self, role: RoleKind, index: u32, at_ns: u64, reason: &'static str, gfn: u64) {
        self.record(role, index, Ev::Restart { at_ns, reason, gfn });
    }

    fn counter(&self, name: &'static str, key: &'static str, at_ns: u64, value: f64) {
        // Relaxed: a count of slots, as in `push`; a counter sample takes
        // one at a time (they are few, and come from two threads).
        if self.taken.fetch_add(1, Ordering::Relaxed) < self.max_events {
            lock(&self.counters).push((name, key, at_ns, value));
        } else {
            self.counters_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn lock_handoff(&self, role: RoleKind, index: u32, handoff: LockHandoff) {
        self.record(role, index, Ev::Handoff(handoff));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::run::Probes;
    use rmap_workloads::NoProbe;
    use serde_json::Value;

    fn read(path: &Path) -> Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON")
    }

    fn events(v: &Value) -> &Vec<Value> {
        v["traceEvents"].as_array().expect("a traceEvents array")
    }

    /// What one worker thread of a run would report.
    fn work(w: &dyn Probe, role: RoleKind, index: u32, spans: u64) {
        w.thread_start(role, index);
        for i in 0..spans {
            let t = 1_000 * i;
            for kind in SpanKind::ALL {
                w.span(role, index, kind, t + 10, 500 + i, 4096 + i);
            }
            w.restart(role, index, t + 20, "foreign-nulls", 4096 + i);
        }
        w.thread_stop(role, index);
    }

    #[test]
    fn a_trace_has_every_span_kind_restarts_and_one_track_per_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.trace.json");
        let w = TraceWriter::new(&path)
            .sample_one_in(10)
            .other_data("impl", "lockless".into());
        assert_eq!(w.trace_sample(), Some(10));
        let threads = [
            (RoleKind::Vcpu, 0),
            (RoleKind::Vcpu, 1),
            (RoleKind::Walker, 0),
            (RoleKind::Zapper, 0),
        ];
        std::thread::scope(|s| {
            for (role, index) in threads {
                let w = &w;
                s.spawn(move || work(w, role, index, 5));
            }
        });
        let sum = w.finish().unwrap();
        assert_eq!(sum.events, 4 * 5 * 8);
        assert_eq!(sum.dropped, 0);
        let v = read(&path);
        let evs = events(&v);
        for kind in SpanKind::ALL {
            assert!(
                evs.iter()
                    .any(|e| e["ph"] == "X" && e["name"] == kind.name()),
                "{} missing",
                kind.name()
            );
        }
        let restart = evs.iter().find(|e| e["ph"] == "i").expect("a restart");
        assert_eq!(restart["name"], "restart");
        assert_eq!(restart["s"], "t");
        assert_eq!(restart["args"]["reason"], "foreign-nulls");
        assert!(restart["args"]["gfn"].as_u64().unwrap() >= 4096);
        let mut names: Vec<&str> = evs
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["vcpu 0", "vcpu 1", "walker", "zapper"]);
        // Each track holds only its own thread's events.
        let tid_of = |n: &str| {
            evs.iter()
                .find(|e| e["name"] == "thread_name" && e["args"]["name"] == n)
                .unwrap()["tid"]
                .clone()
        };
        let walker = tid_of("walker");
        let walker_cats: Vec<&Value> = evs
            .iter()
            .filter(|e| e["tid"] == walker && e["ph"] != "M")
            .map(|e| &e["cat"])
            .collect();
        assert_eq!(walker_cats.len(), 5 * 8);
        assert!(walker_cats.iter().all(|c| *c == "walker"));
        // Times in microseconds, exact to the nanosecond.
        let wp = evs
            .iter()
            .find(|e| {
                e["name"] == "write-protect walk" && e["tid"] == walker && e["args"]["gfn"] == 4097
            })
            .unwrap();
        assert_eq!(wp["ts"].as_f64().unwrap(), 1.010);
        assert_eq!(wp["dur"].as_f64().unwrap(), 0.501);
        let round = evs.iter().find(|e| e["name"] == "dirty-log round").unwrap();
        assert!(round["args"]["pages"].is_u64());
        let other = &v["otherData"];
        assert_eq!(other["sample_one_in"], 10);
        assert_eq!(other["max_events"], DEFAULT_MAX_EVENTS);
        assert_eq!(other["dropped_events"], 0);
        assert_eq!(other["impl"], "lockless");
        assert!(other["lab_version"].is_string());
    }

    #[test]
    fn the_file_holds_at_most_the_bound_and_counts_what_it_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let max = 3 * CHUNK + 10;
        let w = TraceWriter::new(&path).max_events(max);
        std::thread::scope(|s| {
            for i in 0..3 {
                let w = &w;
                s.spawn(move || work(w, RoleKind::Vcpu, i, 200));
            }
        });
        let fed = 3 * 200 * 8;
        let sum = w.finish().unwrap();
        let v = read(&path);
        let written = events(&v).iter().filter(|e| e["ph"] != "M").count() as u64;
        assert_eq!(written, sum.events);
        assert!(written <= max as u64, "{written} > {max}");
        // Slots a thread took and left unused are at most one chunk each.
        assert!(written + 3 * CHUNK as u64 >= max as u64, "{written}");
        assert_eq!(sum.dropped, fed - written);
        assert_eq!(v["otherData"]["dropped_events"], sum.dropped);
        assert_eq!(v["otherData"]["max_events"], max);
    }

    #[test]
    fn the_default_bound_keeps_files_under_20_mb() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let w = TraceWriter::new(&path);
        // Large times and gfns: the longest numbers a run writes.
        w.thread_start(RoleKind::Vcpu, 31);
        for i in 0..1000u64 {
            for kind in SpanKind::ALL {
                w.span(
                    RoleKind::Vcpu,
                    31,
                    kind,
                    3_600_000_000_000 + i,
                    999_999_999,
                    u32::MAX as u64,
                );
            }
            w.restart(
                RoleKind::Vcpu,
                31,
                3_600_000_000_000,
                "restart-limit",
                u32::MAX as u64,
            );
        }
        let sum = w.finish().unwrap();
        let per_event = sum.bytes / sum.events;
        assert!(
            per_event * DEFAULT_MAX_EVENTS as u64 <= 20 << 20,
            "{per_event} bytes an event"
        );
    }

    #[test]
    fn spans_from_an_unregistered_thread_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let w = TraceWriter::new(&path);
        w.span(RoleKind::Walker, 0, SpanKind::Round, 5, 7, 100);
        w.span(RoleKind::Walker, 0, SpanKind::WpGfn, 6, 1, 42);
        let v = read(&{
            w.finish().unwrap();
            path
        });
        let evs = events(&v);
        assert_eq!(evs.iter().filter(|e| e["name"] == "thread_name").count(), 1);
        // Sorted by start: the round (outer) before the walk inside it.
        let x: Vec<&Value> = evs.iter().filter(|e| e["ph"] == "X").collect();
        assert_eq!(x[0]["name"], "dirty-log round");
        assert_eq!(x[1]["args"]["gfn"], 42);
    }

    #[test]
    fn counters_and_handoff_arrows_are_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let w = TraceWriter::new(&path);
        // vcpu 1 holds mmu_lock from 1,000 to 5,000 ns; vcpu 0 waits from
        // 2,000 and gets it at 6,000.
        w.thread_start(RoleKind::Vcpu, 1);
        w.span(RoleKind::Vcpu, 1, SpanKind::LockHold, 1_000, 4_000, 0);
        w.thread_stop(RoleKind::Vcpu, 1);
        w.thread_start(RoleKind::Vcpu, 0);
        w.span(RoleKind::Vcpu, 0, SpanKind::LockWait, 2_000, 4_000, 0);
        let h = LockHandoff {
            wait_start_ns: 2_000,
            acquired_ns: 6_000,
            holder_role: RoleKind::Vcpu,
            holder_index: 1,
            hold_start_ns: 1_000,
        };
        w.lock_handoff(RoleKind::Vcpu, 0, h);
        // A handoff whose hold is not in the file: no arrow, counted.
        w.lock_handoff(
            RoleKind::Vcpu,
            0,
            LockHandoff {
                hold_start_ns: 999,
                ..h
            },
        );
        w.thread_stop(RoleKind::Vcpu, 0);
        w.counter("guest writes", "per second", 3_000, 1.5e6);
        w.counter("mmu_lock waiters", "queued", 3_000, 1.0);
        w.finish().unwrap();
        let v = read(&path);
        let evs = events(&v);
        let tid = |n: &str| {
            evs.iter()
                .find(|e| e["name"] == "thread_name" && e["args"]["name"] == n)
                .unwrap()["tid"]
                .clone()
        };
        let s: Vec<&Value> = evs.iter().filter(|e| e["ph"] == "s").collect();
        let f: Vec<&Value> = evs.iter().filter(|e| e["ph"] == "f").collect();
        assert_eq!((s.len(), f.len()), (1, 1));
        assert_eq!(s[0]["id"], f[0]["id"]);
        assert_eq!(s[0]["cat"], "mmu_lock");
        // The arrow runs from inside the hold's end to inside the wait's end.
        assert_eq!(s[0]["tid"], tid("vcpu 1"));
        assert_eq!(s[0]["ts"].as_f64().unwrap(), 4.999);
        assert_eq!(f[0]["tid"], tid("vcpu 0"));
        assert_eq!(f[0]["ts"].as_f64().unwrap(), 5.999);
        assert_eq!(f[0]["bp"], "e");
        let c: Vec<&Value> = evs.iter().filter(|e| e["ph"] == "C").collect();
        assert_eq!(c.len(), 2);
        assert!(c
            .iter()
            .any(|e| e["name"] == "guest writes" && e["args"]["per second"] == 1.5e6));
        assert_eq!(v["otherData"]["lock_handoffs"], 2);
        assert_eq!(v["otherData"]["lock_handoffs_unmatched"], 1);
    }

    #[test]
    fn probes_forward_to_every_probe() {
        let dir = tempfile::tempdir().unwrap();
        let (p1, p2) = (dir.path().join("a.json"), dir.path().join("b.json"));
        let (a, b) = (
            TraceWriter::new(&p1),
            TraceWriter::new(&p2).sample_one_in(3),
        );
        let pair = Probes(vec![&a, &b]);
        assert_eq!(pair.trace_sample(), Some(DEFAULT_SAMPLE_ONE_IN));
        assert_eq!(Probes(vec![&NoProbe, &b]).trace_sample(), Some(3));
        assert_eq!(Probes(vec![&NoProbe, &NoProbe]).trace_sample(), None);
        work(&pair, RoleKind::Zapper, 0, 2);
        assert_eq!(a.finish().unwrap().events, 16);
        assert_eq!(b.finish().unwrap().events, 16);
    }
}
