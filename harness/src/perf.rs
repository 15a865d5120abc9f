//! Perf counters per role (to be implemented: perf_event_open groups opened
//! by each worker thread on itself, merged per role).

use crate::results::PerfValue;
use rmap_workloads::{RoleKind, RunReport, ThreadHook};
use std::collections::BTreeMap;

/// `--perf default|off|EVENT,EVENT...`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PerfSpec {
    Off,
    Default,
    Events(Vec<String>),
}

impl std::str::FromStr for PerfSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(PerfSpec::Off),
            "default" => Ok(PerfSpec::Default),
            _ => Ok(PerfSpec::Events(
                s.split(',').map(|e| e.trim().to_string()).collect(),
            )),
        }
    }
}

/// One event as probed on this machine (`lab list`).
#[derive(Clone, Debug)]
pub struct EventProbe {
    pub name: String,
    pub supported: bool,
    pub reason: Option<String>,
}

/// Probe every event the lab knows.
pub fn probe_all() -> Vec<EventProbe> {
    Vec::new()
}

/// The counters of one run: a [`ThreadHook`] that opens a group per worker
/// thread and merges the values per role when the thread stops.
pub struct PerfSession {}

impl PerfSession {
    pub fn new(_spec: &PerfSpec) -> Result<PerfSession, String> {
        Ok(PerfSession {})
    }

    /// Role -> event -> value, normalised per operation using the report.
    pub fn results(&self, _report: &RunReport) -> BTreeMap<String, BTreeMap<String, PerfValue>> {
        BTreeMap::new()
    }
}

impl ThreadHook for PerfSession {
    fn thread_start(&self, _role: RoleKind, _index: u32) {}
    fn thread_stop(&self, _role: RoleKind, _index: u32) {}
}
