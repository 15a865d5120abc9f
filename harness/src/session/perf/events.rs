//! The perf events the lab knows, how each is opened, how a machine's
//! support for it is probed, and how an `perf_event_open` failure is worded
//! (the way `perf stat` words it).
//!
//! Every event is opened on the calling thread only (`pid = 0`, `cpu = -1`,
//! no inheritance), disabled, with `TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING`
//! so multiplexing can be scaled out, and with `GROUP | ID` so a group is
//! read in one `read(2)`.
//!
//! Kernel-mode counting: an event is first opened counting user and kernel
//! mode, as `perf stat` does for a privileged user. When that is refused
//! with `EACCES`/`EPERM` (`perf_event_paranoid` >= 2 and no `CAP_PERFMON`),
//! it is opened again counting user mode only, and the probe says so
//! (`user_only`). `context-switches` and `cpu-migrations` happen only in the
//! kernel: counted in user mode only they always read 0 (`perf stat -e
//! context-switches:u` shows the same), so for them the refusal is reported
//! as "not supported" with the reason instead of a silent 0.

use perf_event::events::{Cache, CacheId, CacheOp, CacheResult, Hardware, Software};
use perf_event::{Builder, Counter, ReadFormat};
use serde::Serialize;
use std::io;

/// Whether an event needs a hardware PMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// Counted by the CPU's PMU (absent in most VMs: `ENOENT`).
    Hardware,
    /// Counted by the kernel itself (always present where perf is).
    Software,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Hardware => "hardware",
            EventKind::Software => "software",
        }
    }
}

/// One event the lab knows, spelled as `perf list` spells it.
pub struct EventDef {
    pub name: &'static str,
    pub kind: EventKind,
    /// Happens only in kernel mode: useless when only user mode may be
    /// counted.
    pub kernel_only: bool,
    event: Ev,
}

#[derive(Clone, Copy)]
enum Ev {
    Hw(Hardware),
    /// L1D or LL read misses.
    CacheReadMiss(CacheId),
    Sw(Software),
}

const fn hw(name: &'static str, h: Hardware) -> EventDef {
    EventDef {
        name,
        kind: EventKind::Hardware,
        kernel_only: false,
        event: Ev::Hw(h),
    }
}

const fn sw(name: &'static str, s: Software, kernel_only: bool) -> EventDef {
    EventDef {
        name,
        kind: EventKind::Software,
        kernel_only,
        event: Ev::Sw(s),
    }
}

/// Every event the lab knows, in the order they are reported.
pub static KNOWN: [EventDef; 10] = [
    hw("cycles", Hardware::CPU_CYCLES),
    hw("instructions", Hardware::INSTRUCTIONS),
    hw("cache-references", Hardware::CACHE_REFERENCES),
    hw("cache-misses", Hardware::CACHE_MISSES),
    EventDef {
        name: "L1-dcache-load-misses",
        kind: EventKind::Hardware,
        kernel_only: false,
        event: Ev::CacheReadMiss(CacheId::L1D),
    },
    EventDef {
        name: "LLC-load-misses",
        kind: EventKind::Hardware,
        kernel_only: false,
        event: Ev::CacheReadMiss(CacheId::LL),
    },
    sw("task-clock", Software::TASK_CLOCK, false),
    sw("context-switches", Software::CONTEXT_SWITCHES, true),
    sw("cpu-migrations", Software::CPU_MIGRATIONS, true),
    sw("page-faults", Software::PAGE_FAULTS, false),
];

/// The known event called `name`.
pub fn find(name: &str) -> Option<&'static EventDef> {
    KNOWN.iter().find(|d| d.name == name)
}

/// The known names, comma separated, for error messages.
pub fn known_names() -> String {
    KNOWN.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
}

impl EventDef {
    fn builder(&self, exclude_kernel: bool) -> Builder<'static> {
        let mut b = match self.event {
            Ev::Hw(h) => Builder::new(h),
            Ev::CacheReadMiss(which) => Builder::new(Cache {
                which,
                operation: CacheOp::READ,
                result: CacheResult::MISS,
            }),
            Ev::Sw(s) => Builder::new(s),
        };
        b.exclude_kernel(exclude_kernel).read_format(
            ReadFormat::GROUP
                | ReadFormat::ID
                | ReadFormat::TOTAL_TIME_ENABLED
                | ReadFormat::TOTAL_TIME_RUNNING,
        );
        b
    }

    /// Open this event, disabled, on the calling thread: as the leader of a
    /// new group (`leader: None`) or as a member of `leader`'s group.
    pub(crate) fn open(
        &self,
        exclude_kernel: bool,
        leader: Option<&mut Counter>,
    ) -> io::Result<Counter> {
        let b = self.builder(exclude_kernel);
        match leader {
            None => b.build(),
            Some(l) => b.build_with_group(l),
        }
    }
}

/// One event as probed on this machine (`lab list`, `--json` key
/// `perf_events`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventProbe {
    pub name: String,
    pub kind: EventKind,
    pub supported: bool,
    /// Why it is not supported, as `perf stat` would say it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Supported, but kernel-mode counting was refused: counts user mode
    /// only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub user_only: bool,
}

/// Probe one event by opening it on the calling thread (then closing it).
pub fn probe(def: &EventDef) -> EventProbe {
    let mut p = EventProbe {
        name: def.name.to_string(),
        kind: def.kind,
        supported: false,
        reason: None,
        user_only: false,
    };
    match def.open(false, None) {
        Ok(_) => p.supported = true,
        Err(e) if is_permission(&e) && def.kernel_only => {
            p.reason = Some(format!(
                "{}: counted only in kernel mode, which {}",
                errno_name(&e),
                paranoid_hint()
            ));
        }
        Err(e) if is_permission(&e) => match def.open(true, None) {
            Ok(_) => {
                p.supported = true;
                p.user_only = true;
            }
            Err(e) => p.reason = Some(reason(&e)),
        },
        Err(e) => p.reason = Some(reason(&e)),
    }
    p
}

/// Probe every event the lab knows, on the calling thread.
pub fn probe_all() -> Vec<EventProbe> {
    KNOWN.iter().map(probe).collect()
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM))
}

fn paranoid_hint() -> String {
    let level = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    format!(
        "kernel.perf_event_paranoid={level} forbids to this user \
         (run as root, grant CAP_PERFMON, or sysctl kernel.perf_event_paranoid=1)"
    )
}

fn errno_name(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENODEV) => "ENODEV",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EMFILE) => "EMFILE",
        Some(libc::ENFILE) => "ENFILE",
        Some(libc::EBUSY) => "EBUSY",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::E2BIG) => "E2BIG",
        Some(n) => return format!("errno {n}"),
        None => return format!("{:?}", e.kind()),
    };
    name.to_string()
}

/// Why `perf_event_open` failed, in one line, errno name first (as
/// `perf stat` explains an event it shows as `<not supported>`).
pub fn reason(e: &io::Error) -> String {
    let why = match e.raw_os_error() {
        Some(libc::ENOENT) => "no such event on this machine".to_string(),
        Some(libc::ENODEV) => "no such PMU on this machine".to_string(),
        Some(libc::EOPNOTSUPP) => {
            "the PMU cannot count this event with these attributes".to_string()
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            format!("not permitted: {}", paranoid_hint())
        }
        Some(libc::EINVAL) => {
            "the kernel rejected the event (or the group does not fit the PMU)".to_string()
        }
        Some(libc::ENOSYS) => {
            "perf_event_open is not available (kernel without perf events, or seccomp)".to_string()
        }
        Some(libc::EMFILE) | Some(libc::ENFILE) => "too many open files".to_string(),
        Some(libc::EBUSY) => "the PMU is in exclusive use by someone else".to_string(),
        Some(libc::ENOSPC) => "no PMU counter left for this event".to_string(),
        _ => e.to_string(),
    };
    format!("{}: {why}", errno_name(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_errno_first() {
        let r = reason(&io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(r, "ENOENT: no such event on this machine");
        let r = reason(&io::Error::from_raw_os_error(libc::EACCES));
        assert!(r.starts_with("EACCES: not permitted: kernel.perf_event_paranoid="));
        assert!(r.contains("CAP_PERFMON"));
        assert!(reason(&io::Error::from_raw_os_error(4095)).starts_with("errno 4095: "));
    }

    #[test]
    fn every_known_event_is_found_by_its_perf_list_name() {
        for d in &KNOWN {
            assert!(std::ptr::eq(find(d.name).unwrap(), d));
        }
        assert!(find("cpu-cycles").is_none());
        assert_eq!(
            KNOWN
                .iter()
                .filter(|d| d.kind == EventKind::Software)
                .count(),
            4
        );
    }

    #[test]
    fn the_probe_serialises_as_lab_list_documents_it() {
        let p = EventProbe {
            name: "cycles".into(),
            kind: EventKind::Hardware,
            supported: false,
            reason: Some("ENOENT: no such event on this machine".into()),
            user_only: false,
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["kind"], "hardware");
        assert_eq!(v["supported"], false);
        assert!(v.get("user_only").is_none());
        let ok = EventProbe {
            supported: true,
            reason: None,
            kind: EventKind::Software,
            ..p
        };
        let v = serde_json::to_value(&ok).unwrap();
        assert!(v.get("reason").is_none());
        assert_eq!(v["kind"], "software");
    }
}
