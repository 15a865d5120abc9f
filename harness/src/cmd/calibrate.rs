//! `lab calibrate`: the real kernel as a reference for the simulated designs.
//!
//! The real VM itself (`/dev/kvm`, the guest code, the measurement loop)
//! lives in `rmap_workloads::kvm`; this command validates the flags, runs
//! it with the lab's Ctrl-C flag, and renders what it measured: `render::calibrate`
//! builds the `rmap-lab/result/v1` record (`impl` = `host-kvm`) and prints the summary
//! and the kernel test's own lines.
//!
//! Where KVM is missing or lacks a capability, the command says so in one
//! line and exits 2, as it does for bad arguments.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
use crate::render::calibrate as output;

use crate::record::error::{LabError, LabResult};
use crate::record::units::{format_size, parse_duration, parse_size};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// `--dirty-log-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeChoice {
    /// clear where the kernel offers manual protection, else get.
    Auto,
    /// KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG (manual protection).
    Clear,
    /// KVM_GET_DIRTY_LOG alone (it also write-protects).
    Get,
}

/// `--guest-cpl`: the privilege the guest's pass loop runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CplChoice {
    /// CPL 0, as dirty_log_perf_test's guest (on kvm_pvm: emulated, no sptes).
    #[value(name = "0")]
    Kernel,
    /// CPL 3 (on kvm_pvm: runs on shadow sptes, so rounds walk rmaps).
    #[value(name = "3")]
    User,
}

#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// vCPUs; each writes its own share of the memslot.
    #[arg(long, default_value_t = 1)]
    pub vcpus: u32,
    /// Size of the dirty-logged memslot, e.g. 256MiB (65,536 4 KiB pages).
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub mem: u64,
    /// Dirty-log iterations with the vCPUs stopped between passes, as
    /// dirty_log_perf_test's -i.
    #[arg(long, default_value_t = 5)]
    pub iterations: u32,
    /// Length of each free-running phase (without, then with dirty logging),
    /// e.g. 1s or 300ms.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Pause between dirty-log rounds while the vCPUs run (0: back to back).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub round_interval: Duration,
    /// Dirty-log protocol: auto, clear or get.
    #[arg(long, value_enum, default_value_t = ModeChoice::Auto)]
    pub dirty_log_mode: ModeChoice,
    /// Privilege of the guest's pass loop: 3 (user) or 0 (kernel, as the
    /// kernel's dirty_log_perf_test).
    #[arg(long, value_enum, default_value_t = CplChoice::User)]
    pub guest_cpl: CplChoice,
    /// Print the result JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Directory for the result file.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// The KVM device.
    #[arg(long, default_value = "/dev/kvm")]
    pub kvm_device: PathBuf,
}

/// Check the arguments that need no KVM: 0 vCPUs, a memslot that is not
/// whole pages, too small for the vCPUs, or beyond the machine.
fn validate(a: &CalibrateArgs, machine_memory: u64) -> LabResult<()> {
    const PAGE: u64 = 4096;
    /// The guest layout maps at most this much (one PML4 entry).
    const MAX_MEM: u64 = 256 << 30;
    if a.vcpus == 0 {
        return Err(LabError::usage("--vcpus must be at least 1"));
    }
    if a.mem == 0 || !a.mem.is_multiple_of(PAGE) {
        return Err(LabError::usage(format!(
            "--mem {} is not a positive multiple of the 4KiB page",
            a.mem
        )));
    }
    if a.mem / PAGE < a.vcpus as u64 {
        return Err(LabError::usage(format!(
            "--mem {} is too small for {} vCPUs: each needs at least one 4KiB page",
            format_size(a.mem),
            a.vcpus
        )));
    }
    if a.mem > machine_memory {
        return Err(LabError::usage(format!(
            "--mem {} is beyond this machine's memory ({:.1}GiB)",
            format_size(a.mem),
            machine_memory as f64 / (1u64 << 30) as f64
        )));
    }
    if a.mem > MAX_MEM {
        return Err(LabError::usage(format!(
            "--mem {} is beyond what the calibration guest maps ({})",
            format_size(a.mem),
            format_size(MAX_MEM)
        )));
    }
    if a.iterations == 0 {
        return Err(LabError::usage("--iterations must be at least 1"));
    }
    Ok(())
}

pub fn main(args: CalibrateArgs) -> LabResult<i32> {
    validate(&args, crate::record::machine::machine_memory())?;
    run(args)
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn run(_args: CalibrateArgs) -> LabResult<i32> {
    Err(LabError::usage(
        "KVM is not usable here: 'lab calibrate' needs Linux on x86-64 with /dev/kvm",
    ))
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn run(args: CalibrateArgs) -> LabResult<i32> {
    use crate::record::error::{EXIT_OK, EXIT_VIOLATION};
    use rmap_workloads::kvm::measure;
    use rmap_workloads::kvm::vm::{DirtyLogMode, Vm, VmError};
    use rmap_workloads::kvm::Environment;

    let to_lab = |e: VmError| match e {
        VmError::Unavailable(m) => LabError::usage(m),
        VmError::Failed(m) => LabError::failed(m),
    };
    let max = Vm::probe_max_vcpus(&args.kvm_device).map_err(to_lab)?;
    if args.vcpus as usize > max {
        return Err(LabError::usage(format!(
            "--vcpus {} is beyond this kernel's KVM limit of {max} vCPUs per VM",
            args.vcpus
        )));
    }
    let forced_mode = match args.dirty_log_mode {
        ModeChoice::Auto => None,
        ModeChoice::Clear => Some(DirtyLogMode::Clear),
        ModeChoice::Get => Some(DirtyLogMode::Get),
    };
    let env = Environment::probe();
    let mut warnings = Vec::new();
    let online = crate::record::machine::online_cpus();
    if args.vcpus + 1 > online {
        warnings.push(format!(
            "{} vCPU threads + the host's dirty-log thread outnumber the {online} online CPUs: \
             vCPUs and rounds take turns on the CPUs, which inflates pass times and the \
             interference ratio",
            args.vcpus
        ));
    }
    // Ctrl-C ends the calibration early and still writes a result marked
    // interrupted (the lab's one handler, shared with `lab run`).
    let stop = crate::session::run::stop_flag();

    let plan = measure::Plan {
        vcpus: args.vcpus,
        mem_bytes: args.mem,
        iterations: args.iterations,
        live: args.duration,
        mode: forced_mode,
        round_interval: args.round_interval,
        privilege: match args.guest_cpl {
            CplChoice::Kernel => rmap_workloads::kvm::guest::Privilege::Kernel,
            CplChoice::User => rmap_workloads::kvm::guest::Privilege::User,
        },
    };
    let cal = measure::calibrate_on(&args.kvm_device, &plan, stop).map_err(to_lab)?;
    let setup = output::Setup {
        vcpus: args.vcpus,
        mem_bytes: args.mem,
        iterations: args.iterations,
        live: args.duration,
        forced_mode,
        round_interval: args.round_interval,
        env: &env,
        warnings: &warnings,
    };
    let result = output::result(&cal, &setup);
    let (_, stamp) = crate::record::result::utc_stamps(cal.started);
    let path = args.out.join(format!("host-kvm-{stamp}.json"));
    result
        .save(&path)
        .map_err(|e| LabError::failed(format!("cannot write {}: {e}", path.display())))?;
    if args.json {
        let json = serde_json::to_string_pretty(&result).expect("a result always serialises");
        println!("{json}");
        eprintln!("lab: wrote {}", path.display());
    } else {
        print!(
            "{}",
            output::summary(&cal, &setup, &result, Some(&path.display().to_string()))
        );
    }
    Ok(if cal.ok() { EXIT_OK } else { EXIT_VIOLATION })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(vcpus: u32, mem: u64) -> CalibrateArgs {
        CalibrateArgs {
            vcpus,
            mem,
            iterations: 3,
            duration: Duration::from_millis(100),
            round_interval: Duration::ZERO,
            dirty_log_mode: ModeChoice::Auto,
            guest_cpl: CplChoice::User,
            json: false,
            out: PathBuf::from("results"),
            kvm_device: PathBuf::from("/dev/kvm"),
        }
    }

    #[test]
    fn bad_arguments_are_named() {
        let gib = 1 << 30;
        let msg = |a: CalibrateArgs| validate(&a, 16 * gib).unwrap_err().to_string();
        assert!(msg(args(0, 4 << 20)).contains("--vcpus must be at least 1"));
        assert!(msg(args(4, 8192)).contains("too small for 4 vCPUs"));
        assert!(msg(args(1, 4097)).contains("multiple of the 4KiB page"));
        assert!(msg(args(1, 0)).contains("multiple of the 4KiB page"));
        assert!(msg(args(1, 32 * gib)).contains("beyond this machine's memory (16.0GiB)"));
        assert!(validate(&args(1, 512 * gib), u64::MAX)
            .unwrap_err()
            .to_string()
            .contains("beyond what the calibration guest maps"));
        let mut a = args(1, 4 << 20);
        a.iterations = 0;
        assert!(msg(a).contains("--iterations"));
        assert!(validate(&args(4, 4 * 4096), 16 * gib).is_ok());
    }
}
