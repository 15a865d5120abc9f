//! The real VM: a VM created through `/dev/kvm`, with guest machine code,
//! driven the way the kernel's `dirty_log_perf_test` drives it, so that the
//! host kernel's own dirty logging can be measured beside the simulated
//! designs (`lab calibrate`).
//!
//! One dirty-logged memslot of `mem_bytes` and `vcpus` vCPUs. Each vCPU runs
//! a small long-mode guest that writes one word to every page of its share
//! of the memslot per pass and exits to the host after each pass
//! ([`guest`]); the host harvests the dirty log with `KVM_GET_DIRTY_LOG`
//! and, where the kernel has `KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2`,
//! `KVM_CLEAR_DIRTY_LOG` ([`vm`]). The loop ([`measure`]) follows
//! `dirty_log_perf_test` (populate, enable dirty logging, iterations of
//! "each vCPU dirties its memory once, then the host gets and clears the
//! log", disable) and adds two free-running phases, without and with
//! dirty-log rounds back to back, whose throughput ratio is the
//! interference ratio. Because the host grants the passes of the
//! iterations, each harvest is exactly checkable: every page written must
//! be in it, and every page must hold the value its vCPU wrote in its last
//! pass.
//!
//! Around every phase, pass and round the host reads KVM's own statistics
//! ([`stats`], `KVM_GET_STATS_FD`), and [`figure`] tells from them what the
//! rounds' write-protect step had to do: walk rmaps, or only handle the
//! bitmap because the guest has no sptes (on `kvm_pvm`, a CPL 0 guest).
//!
//! This module knows nothing of the CLI: the caller passes a [`measure::Plan`]
//! and a stop flag and renders the [`measure::Calibration`] it gets back.
//! Linux on x86-64 only.

pub mod figure;
pub mod guest;
pub mod measure;
pub mod stats;
pub mod vm;

use std::collections::BTreeMap;
use std::path::Path;

/// The host's KVM as `/sys` shows it, recorded with every calibration:
/// numbers from a software-virtualised, shadow-paging KVM are not those of
/// a hardware one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    /// `/sys/module/kvm/parameters/tdp_mmu` (`Y`/`N`), if present.
    pub tdp_mmu: Option<String>,
    /// Which of `kvm_pvm`, `kvm_intel`, `kvm_amd` are loaded.
    pub modules: Vec<String>,
    /// Every readable `/sys/module/kvm*/parameters/*`: module -> name ->
    /// value (the host's KVM flavour, whole).
    pub parameters: BTreeMap<String, BTreeMap<String, String>>,
}

impl Environment {
    pub fn probe() -> Environment {
        Self::probe_in(Path::new("/sys/module"))
    }

    fn probe_in(sys_module: &Path) -> Environment {
        let tdp_mmu = std::fs::read_to_string(sys_module.join("kvm/parameters/tdp_mmu"))
            .ok()
            .map(|s| s.trim().to_string());
        let modules = ["kvm_pvm", "kvm_intel", "kvm_amd"]
            .into_iter()
            .filter(|m| sys_module.join(m).exists())
            .map(String::from)
            .collect();
        Environment {
            tdp_mmu,
            modules,
            parameters: Self::parameters_in(sys_module),
        }
    }

    /// `kvm*/parameters/*` under `sys_module`; unreadable files are left out.
    fn parameters_in(sys_module: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let Ok(modules) = std::fs::read_dir(sys_module) else {
            return out;
        };
        for m in modules.flatten() {
            let module = m.file_name().to_string_lossy().into_owned();
            if !module.starts_with("kvm") {
                continue;
            }
            let Ok(params) = std::fs::read_dir(m.path().join("parameters")) else {
                continue;
            };
            let values: BTreeMap<_, _> = params
                .flatten()
                .filter_map(|p| {
                    let v = std::fs::read_to_string(p.path()).ok()?;
                    Some((
                        p.file_name().to_string_lossy().into_owned(),
                        v.trim().to_string(),
                    ))
                })
                .collect();
            out.insert(module, values);
        }
        out
    }

    /// PVM virtualises in software: no VT-x/SVM, and always shadow paging.
    pub fn software_virtualised(&self) -> bool {
        self.modules.iter().any(|m| m == "kvm_pvm")
    }

    /// Whether guests here run on shadow paging (`None`: cannot tell from
    /// `/sys`, as on a hardware host where EPT/NPT may be off).
    pub fn shadow_paging(&self) -> Option<bool> {
        if self.software_virtualised() {
            Some(true)
        } else {
            None
        }
    }

    pub fn describe(&self) -> String {
        let tdp = self.tdp_mmu.as_deref().unwrap_or("absent");
        let modules = if self.modules.is_empty() {
            "no vendor module found".to_string()
        } else {
            format!("{} loaded", self.modules.join(", "))
        };
        if self.software_virtualised() {
            format!(
                "software-virtualised ({modules}, tdp_mmu={tdp}): shadow paging; a guest's \
                 CPL 0 is emulated and gets no sptes, its CPL 3 runs on shadow sptes (the \
                 statistics below say which this run had); absolute times include PVM's own \
                 costs and are not those of hardware virtualisation"
            )
        } else {
            format!("{modules}, tdp_mmu={tdp}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_reads_sys_module() {
        let dir = tempfile::tempdir().unwrap();
        let env = Environment::probe_in(dir.path());
        assert_eq!(env.tdp_mmu, None);
        assert!(!env.software_virtualised());
        std::fs::create_dir_all(dir.path().join("kvm/parameters")).unwrap();
        std::fs::write(dir.path().join("kvm/parameters/tdp_mmu"), "N\n").unwrap();
        std::fs::create_dir_all(dir.path().join("kvm_pvm/parameters")).unwrap();
        std::fs::write(dir.path().join("kvm_pvm/parameters/pvm_native"), "Y\n").unwrap();
        // Not a KVM module: left out.
        std::fs::create_dir_all(dir.path().join("virtio/parameters")).unwrap();
        std::fs::write(dir.path().join("virtio/parameters/x"), "1\n").unwrap();
        let env = Environment::probe_in(dir.path());
        assert_eq!(env.tdp_mmu.as_deref(), Some("N"));
        assert_eq!(env.parameters["kvm"]["tdp_mmu"], "N");
        assert_eq!(env.parameters["kvm_pvm"]["pvm_native"], "Y");
        assert_eq!(env.parameters.len(), 2, "{:?}", env.parameters);
        assert_eq!(env.modules, vec!["kvm_pvm".to_string()]);
        assert!(env.software_virtualised());
        assert_eq!(env.shadow_paging(), Some(true));
        assert!(env.describe().contains("tdp_mmu=N"));
    }
}
