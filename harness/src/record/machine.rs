//! The machine a run ran on, as the result file's `machine` describes it,
//! and the two facts about it that validate a configuration: online CPUs
//! and physical memory.

use super::result::Part;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub online_cpus: u32,
    pub cpu_model: String,
    pub kernel: String,
    pub hostname: String,
    /// Worker threads (vCPUs + helpers) outnumber online CPUs.
    pub oversubscribed: bool,
    pub clock_source: String,
    #[serde(flatten)]
    pub part: Part<VmMachine, KvmMachine>,
}

/// The simulated VM's word on the machine.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VmMachine {
    /// vCPUs plus the walker (dirty-log rounds), the zapper and the aging thread, as started.
    pub worker_threads: u32,
}

/// The real VM's word on the machine: the host's KVM.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KvmMachine {
    pub kvm: KvmHost,
}

/// The host's KVM, as `lab calibrate` found it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KvmHost {
    /// `/sys/module/kvm/parameters/tdp_mmu` (`Y`/`N`), if present.
    #[serde(deserialize_with = "super::result::present")]
    pub tdp_mmu: Option<String>,
    /// Which of `kvm_pvm`, `kvm_intel`, `kvm_amd` are loaded.
    pub modules: Vec<String>,
    pub kvm_pvm: bool,
    pub software_virtualised: bool,
    /// `null`: cannot be told from the modules.
    #[serde(deserialize_with = "super::result::present")]
    pub shadow_paging: Option<bool>,
    /// The kernel's vCPU limit per VM.
    pub max_vcpus: usize,
    /// Every readable `/sys/module/kvm*/parameters/*`: module -> name ->
    /// value (absent: a result from before the lab recorded them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, BTreeMap<String, String>>,
}

/// Online CPUs of this machine.
pub fn online_cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// Physical memory of this machine in bytes.
pub fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|k| k.parse::<u64>().ok())
                })
        })
        .map(|kib| kib * 1024)
        .unwrap_or(u64::MAX)
}

impl Machine {
    /// Describe this machine for a run that starts `threads` worker threads.
    pub fn probe(threads: u32, clock_source: &str) -> Machine {
        let online_cpus = online_cpus();
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into())
        };
        Machine {
            online_cpus,
            cpu_model,
            kernel: read("/proc/sys/kernel/osrelease"),
            hostname: read("/proc/sys/kernel/hostname"),
            oversubscribed: threads > online_cpus,
            clock_source: clock_source.to_string(),
            part: Part::default(),
        }
    }
}
