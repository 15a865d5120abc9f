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
//!   with `args` `{reason, gfn}`.
//!
//! Events are sorted per thread by start, longer first on a tie, so nested
//! spans import as nested.
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
use rmap_workloads::{Probe, RoleKind, SpanKind};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
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
}

impl Ev {
    fn start(&self) -> u64 {
        match *self {
            Ev::Span { start_ns, .. } => start_ns,
            Ev::Restart { at_ns, .. } => at_ns,
        }
    }
    fn dur(&self) -> u64 {
        match *self {
            Ev::Span { dur_ns, .. } => dur_ns,
            Ev::Restart { .. } => 0,
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
        let mut out = Vec::with_capacity(1 << 20);
        out.extend_from_slice(b"{\"traceEvents\":[\n");
        write!(
            out,
            "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{{\"name\":{}}}}}",
            json_str(&self.process_name)
        )?;
        let mut events = 0u64;
        for (tid, ((_, index), (role, evs))) in tracks.iter_mut().enumerate() {
            let tid = tid + 1;
            let role = *role;
            let name = match (role, *index) {
                (RoleKind::Vcpu, i) => format!("vcpu {i}"),
                (r, 0) => r.name().to_string(),
                (r, i) => format!("{} {i}", r.name()),
            };
            write!(
                out,
                ",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
                json_str(&name)
            )?;
            write!(
                out,
                ",\n{{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":1,\"tid\":{tid},\"args\":{{\"sort_index\":{tid}}}}}"
            )?;
            evs.sort_by_key(|e| (e.start(), std::cmp::Reverse(e.dur())));
            let cat = role.name();
            for e in evs.iter() {
                events += 1;
                match *e {
                    Ev::Span {
                        kind,
                        start_ns,
                        dur_ns,
                        arg,
                    } => {
                        write!(
                            out,
                            ",\n{{\"name\":\"{}\",\"cat\":\"{cat}\",\"ph\":\"X\",\"pid\":1,\"tid\":{tid},\"ts\":{},\"dur\":{}",
                            kind.name(),
                            Micros(start_ns),
                            Micros(dur_ns)
                        )?;
                        let key = match kind {
                            SpanKind::WpGfn | SpanKind::FaultSlow => Some("gfn"),
                            SpanKind::Round => Some("pages"),
                            _ if arg != 0 => Some("arg"),
                            _ => None,
                        };
                        match key {
                            Some(k) => write!(out, ",\"args\":{{\"{k}\":{arg}}}}}")?,
                            None => out.push(b'}'),
                        }
                    }
                    Ev::Restart { at_ns, reason, gfn } => write!(
                        out,
                        ",\n{{\"name\":\"restart\",\"cat\":\"{cat}\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":{tid},\"ts\":{},\"args\":{{\"reason\":{},\"gfn\":{gfn}}}}}",
                        Micros(at_ns),
                        json_str(reason)
                    )?,
                }
            }
        }
        let mut other = self.other.clone();
        other.insert("sample_one_in".into(), self.sample_one_in.into());
        other.insert("max_events".into(), self.max_events.into());
        other.insert("events".into(), events.into());
        other.insert("dropped_events".into(), dropped.into());
        other.insert("lab_version".into(), env!("CARGO_PKG_VERSION").into());
        write!(
            out,
            "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{}}}\n",
            serde_json::Value::Object(other.into_iter().collect())
        )?;
        write_atomic(&self.path, &out)?;
        Ok(TraceSummary {
            path: self.path.clone(),
            events,
            dropped,
            bytes: out.len() as u64,
        })
    }
}

/// Nanoseconds written as microseconds with three exact decimals.
struct Micros(u64);

impl std::fmt::Display for Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
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
