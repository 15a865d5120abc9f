//! The workload flags shared by `run`, `check`, `sweep` and `profile`, and
//! their translation into a validated `rmap_workloads::Config`.

use crate::record::error::{LabError, LabResult};
use crate::record::machine::{machine_memory, online_cpus};
use crate::record::units::{parse_duration, parse_size};
use crate::session::perf::PerfSpec;
use clap::Args;
use rmap_impls::{Bug, ChainKind, ImplKind, LockKind};
use rmap_workloads::{Config, Delay, Pattern, Perturbation, Regions, TlbFlush, WorkloadKind};
use std::path::PathBuf;
use std::time::Duration;

/// `--mmu-lock`: the kernel's spinning lock, a parking lock, or `auto`
/// (spin while every worker thread has a CPU, park once they outnumber the
/// CPUs; the output says which was used).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockChoice {
    Auto,
    Kind(LockKind),
}

fn parse_lock(s: &str) -> Result<LockChoice, String> {
    if s == "auto" {
        Ok(LockChoice::Auto)
    } else {
        s.parse::<LockKind>()
            .map(LockChoice::Kind)
            .map_err(|_| format!("'{s}' is not an mmu_lock kind (spin, park, auto)"))
    }
}

fn parse_tlb_flush(s: &str) -> Result<TlbFlush, String> {
    TlbFlush::from_name(s)
        .ok_or_else(|| format!("unknown TLB-flush placement '{s}' (under-lock, after-unlock)"))
}

fn parse_workload(s: &str) -> Result<WorkloadKind, String> {
    WorkloadKind::from_name(s).ok_or_else(|| {
        let all: Vec<_> = WorkloadKind::ALL.iter().map(|w| w.name()).collect();
        format!(
            "unknown workload '{s}' (expected one of: {})",
            all.join(", ")
        )
    })
}

fn parse_pattern(s: &str) -> Result<Pattern, String> {
    Pattern::from_name(s)
        .ok_or_else(|| format!("unknown pattern '{s}' (uniform, zipf, sequential)"))
}

fn parse_delay(s: &str) -> Result<Delay, String> {
    Delay::from_name(s).ok_or_else(|| format!("unknown delay '{s}' (spin, yield, sleep, mix)"))
}

/// `--perturb`: a probability per perturbation point, `0.01` or `1%`; `0`
/// or `off` for none.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let bad = || format!("'{s}' is not a rate (expected e.g. 1%, 0.01, or off)");
    let r = match s.trim() {
        "off" => 0.0,
        t => match t.strip_suffix('%') {
            Some(p) => p.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
            None => t.parse::<f64>().map_err(|_| bad())?,
        },
    };
    if !(0.0..=1.0).contains(&r) {
        return Err(format!("'{s}' is out of range (0 to 100%)"));
    }
    Ok(r)
}

fn parse_regions(s: &str) -> Result<Regions, String> {
    Regions::from_name(s).ok_or_else(|| format!("unknown regions '{s}' (shared, partitioned)"))
}

pub fn parse_bug(s: &str) -> Result<Bug, String> {
    Bug::from_name(s).ok_or_else(|| {
        let all: Vec<_> = Bug::ALL.iter().map(|b| b.name()).collect();
        format!("unknown bug '{s}' (expected one of: {})", all.join(", "))
    })
}

fn parse_chain(s: &str) -> Result<ChainKind, String> {
    ChainKind::from_name(s).ok_or_else(|| {
        let all: Vec<_> = ChainKind::ALL.iter().map(|c| c.name()).collect();
        format!("unknown chain '{s}' (expected one of: {})", all.join(", "))
    })
}

pub fn parse_impl(s: &str) -> Result<ImplKind, String> {
    ImplKind::from_name(s).ok_or_else(|| {
        let all: Vec<_> = ImplKind::ALL.iter().map(|k| k.name()).collect();
        format!(
            "unknown implementation '{s}' (expected one of: {})",
            all.join(", ")
        )
    })
}

/// `--impl all|correct|NAME,...`: one flag value naming several designs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImplList(pub Vec<ImplKind>);

/// `all`, `correct`, or a comma-separated list of implementation names.
pub fn parse_impl_list(s: &str) -> Result<ImplList, String> {
    match s {
        "all" => Ok(ImplList(ImplKind::ALL.to_vec())),
        "correct" => Ok(ImplList(ImplKind::correct().collect())),
        _ => crate::record::units::parse_list(s, parse_impl).map(ImplList),
    }
}

/// `--vcpus 1,2,4`: one flag value naming several vCPU counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountList(pub Vec<u32>);

pub fn parse_count_list(s: &str) -> Result<CountList, String> {
    crate::record::units::parse_u32_list(s).map(CountList)
}

/// `--workload dirty-log,churn`: one flag value naming several workloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadList(pub Vec<WorkloadKind>);

fn parse_workload_list(s: &str) -> Result<WorkloadList, String> {
    crate::record::units::parse_list(s, parse_workload).map(WorkloadList)
}

/// One point of the workload/aliases/desc_ext matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    pub workload: WorkloadKind,
    pub aliases: u32,
    pub desc_ext: usize,
}

/// Workload parameters (the README's "How the simulated VM works"). The
/// defaults measure for 10 s after a 0.5 s warmup. `--workload`, `--aliases` and `--desc-ext` take lists
/// (`1,4,16`) for `lab sweep`; every other command wants one value.
#[derive(Args, Clone, Debug)]
pub struct VmArgs {
    /// Workload: dirty-log, churn, idle or aging (a list for lab sweep).
    #[arg(long, default_value = "dirty-log", value_parser = parse_workload_list)]
    pub workload: WorkloadList,
    /// Guest memory (one memslot), e.g. 256MiB.
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub mem: u64,
    /// Address spaces mapping the memory (sptes per gfn, so chain length; a list for lab sweep).
    #[arg(long, default_value = "4", value_parser = parse_count_list)]
    pub aliases: CountList,
    /// spte references per rmap descriptor (3: KVM 2013, 14: KVM since 6.4; a list for lab sweep).
    #[arg(long, default_value = "3", value_parser = parse_count_list)]
    pub desc_ext: CountList,
    /// Measured time, e.g. 10s or 300ms.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time run before measuring starts.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Zaps (mmu-notifier invalidations) per second.
    #[arg(long, default_value_t = 2000.0)]
    pub zap_rate: f64,
    /// gfns per zap.
    #[arg(long, default_value_t = 16)]
    pub zap_gfns: u64,
    /// Share of guest accesses that are writes, in percent.
    #[arg(long, default_value_t = 80)]
    pub write_pct: u32,
    /// Which page a vCPU touches next: uniform, zipf or sequential.
    #[arg(long, default_value = "uniform", value_parser = parse_pattern)]
    pub pattern: Pattern,
    /// Whether vCPUs share memory or each has its own slice: shared, partitioned.
    #[arg(long, default_value = "shared", value_parser = parse_regions)]
    pub regions: Regions,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pin worker threads to CPUs.
    #[arg(long)]
    pub pin: bool,
    /// gfns per write-protect call (default: the whole harvest, as 2013's mmu-lock).
    #[arg(long)]
    pub wp_batch: Option<u64>,
    /// mmu_lock kind: spin (a fair FIFO ticket lock, as the kernel's), park (a futex mutex),
    /// or auto (spin while every worker thread has a CPU, park once they outnumber the CPUs).
    #[arg(long, default_value = "auto", value_parser = parse_lock)]
    pub mmu_lock: LockChoice,
    /// Where mmu-lock's dirty-log round flushes remote TLBs: under-lock (inside mmu_lock, as
    /// Linux 3.10) or after-unlock (commit 198c74f43f0f, 2014). The other designs
    /// write-protect without mmu_lock and always flush after their walk.
    #[arg(long, default_value = "under-lock", value_parser = parse_tlb_flush)]
    pub tlb_flush: TlbFlush,
    /// Inject a deliberate bug (see `lab list`).
    #[arg(long, value_parser = parse_bug)]
    pub inject_bug: Option<Bug>,
    /// Do not record latency histograms (counters only; shows what measuring costs).
    #[arg(long)]
    pub no_latency: bool,
    /// Guest writes per guest-mode entry (writes through one cached translation).
    #[arg(long, default_value_t = 4)]
    pub tlb_burst: u32,
    /// churn, torture: number of hot gfns.
    #[arg(long, default_value_t = 8)]
    pub hot_gfns: u64,
    /// Perturb: at each of a walker's perturbation points, delay with this probability (5%, 0.05; off).
    #[arg(long, default_value = "off", value_parser = parse_rate)]
    pub perturb: f64,
    /// ... and at each writer-section and fault-path point with this one (default: a tenth of --perturb).
    #[arg(long, value_parser = parse_rate)]
    pub perturb_writers: Option<f64>,
    /// How a perturbed run delays: spin, yield, sleep or mix.
    #[arg(long, default_value = "mix", value_parser = parse_delay)]
    pub perturb_delay: Delay,
    /// Longest perturbation delay.
    #[arg(long, default_value = "100us", value_parser = parse_duration)]
    pub perturb_max: Duration,
    /// Chain discipline: 2013 (the design's 2013 one) or 6.4 (Linux 6.4's)
    /// [default: the design's, see `lab list`].
    #[arg(long, value_parser = parse_chain)]
    pub chain: Option<ChainKind>,
    /// aging: gfns per clear_young call (one Rmap::age range; 512 is 2 MiB).
    #[arg(long, default_value_t = 512)]
    pub age_gfns: u64,
    /// aging: start a pass over the whole memslot every this long (0s: back to back).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub age_period: Duration,
}

/// Where results go and how a run shows itself.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Directory for result files.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// No progress bar on stderr (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Perf counters: default, off, or a comma-separated list of events (see `lab list`).
    #[arg(long, default_value = "default")]
    pub perf: PerfSpec,
}

impl VmArgs {
    /// Every (workload, aliases, desc_ext) the flags name, workload slowest.
    pub fn points(&self) -> Vec<Point> {
        let mut v = Vec::new();
        for &workload in &self.workload.0 {
            for &aliases in &self.aliases.0 {
                for &desc_ext in &self.desc_ext.0 {
                    v.push(Point {
                        workload,
                        aliases,
                        desc_ext: desc_ext as usize,
                    });
                }
            }
        }
        v
    }

    /// The one point a single run uses; lists are for `lab sweep`.
    pub fn point(&self) -> LabResult<Point> {
        for (flag, n) in [
            ("--workload", self.workload.0.len()),
            ("--aliases", self.aliases.0.len()),
            ("--desc-ext", self.desc_ext.0.len()),
        ] {
            if n != 1 {
                return Err(LabError::usage(format!(
                    "{flag} takes one value here (lab sweep runs several)"
                )));
            }
        }
        Ok(self.points()[0])
    }

    /// A validated configuration for one run (single-valued flags).
    pub fn to_config(&self, impl_kind: ImplKind, vcpus: u32) -> LabResult<Config> {
        self.to_config_at(impl_kind, vcpus, self.point()?)
    }

    /// A validated configuration for one run at `p`.
    pub fn to_config_at(&self, impl_kind: ImplKind, vcpus: u32, p: Point) -> LabResult<Config> {
        let mut cfg = Config {
            impl_kind,
            workload: p.workload,
            vcpus,
            mem_bytes: self.mem,
            aliases: p.aliases,
            desc_ext: p.desc_ext,
            duration: self.duration,
            warmup: self.warmup,
            zap_rate: self.zap_rate,
            zap_gfns: self.zap_gfns.max(1),
            write_pct: self.write_pct,
            pattern: self.pattern,
            regions: self.regions,
            seed: self.seed,
            pin: self.pin,
            wp_batch: self.wp_batch.filter(|&b| b > 0),
            mmu_lock: LockKind::Spin,
            mmu_lock_auto: self.mmu_lock == LockChoice::Auto,
            tlb_flush: self.tlb_flush,
            bug: self.inject_bug,
            record_latency: !self.no_latency,
            tlb_burst: self.tlb_burst.max(1),
            hot_gfns: self.hot_gfns.max(1),
            sample_interval: None,
            perturb: (self.perturb > 0.0 || self.perturb_writers.unwrap_or(0.0) > 0.0).then_some(
                Perturbation {
                    rate: self.perturb,
                    writer_rate: self.perturb_writers.unwrap_or(self.perturb / 10.0),
                    delay: self.perturb_delay,
                    max: self.perturb_max,
                },
            ),
            spte_check: false,
            stop_on_violation: false,
            chain: self.chain,
            age_gfns: self.age_gfns,
            age_period: self.age_period,
        };
        cfg.mmu_lock = match self.mmu_lock {
            LockChoice::Kind(k) => k,
            // Spin while every worker thread has a CPU, park once they
            // outnumber the CPUs (the output says which was used).
            LockChoice::Auto if cfg.worker_threads() > online_cpus() => LockKind::Park,
            LockChoice::Auto => LockKind::Spin,
        };
        cfg.validate(machine_memory())
            .map_err(|e| LabError::usage(e.to_string()))?;
        Ok(cfg)
    }
}
