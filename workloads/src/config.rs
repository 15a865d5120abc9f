//! What one run does: every parameter of a run ([`Config`]), validated.

use rmap_impls::{Bug, BugLayer, BuildError, ChainKind, ImplKind, LockKind, MAX_DESC_EXT};
use std::fmt;
use std::time::Duration;

/// Guest page size: one gfn.
pub const PAGE_SIZE: u64 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// Pre-copy migration: vCPUs write, rounds run back to back, a zapper
    /// invalidates ranges; ends with the oracle.
    DirtyLog,
    /// Few hot gfns with long chains, heavy zap + refault against continuous
    /// write-protect walks: the restart and retry stress.
    Churn,
    /// The same vCPU traffic with no dirty logging: the baseline.
    Idle,
    /// The same vCPU traffic while an aging thread test-and-clears Accessed
    /// bits over the whole memslot, as the primary MMU's reclaim does
    /// through the mmu notifier's `clear_young`.
    Aging,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 4] = [
        WorkloadKind::DirtyLog,
        WorkloadKind::Churn,
        WorkloadKind::Idle,
        WorkloadKind::Aging,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::DirtyLog => "dirty-log",
            WorkloadKind::Churn => "churn",
            WorkloadKind::Idle => "idle",
            WorkloadKind::Aging => "aging",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.name() == s)
    }

    pub fn description(self) -> &'static str {
        match self {
            WorkloadKind::DirtyLog => "pre-copy migration: vCPU writes, back-to-back dirty-log rounds, zaps at --zap-rate; ends with the migration oracle",
            WorkloadKind::Churn => "a few hot gfns with long chains: heavy zap + refault against continuous write-protect walks (restart/retry stress), with the oracle",
            WorkloadKind::Idle => "the same vCPU traffic with no dirty logging: the baseline for interference ratios",
            WorkloadKind::Aging => "the same vCPU traffic (accesses set the spte's Accessed bit) while an aging thread test-and-clears Accessed over the whole memslot in --age-gfns ranges, as reclaim does through clear_young (KVM's kvm_age_gfn); no dirty logging",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which gfn a vCPU writes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    Uniform,
    /// Zipf with exponent 1: a few hot pages take most writes.
    Zipf,
    /// Each vCPU sweeps its pages in order.
    Sequential,
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Uniform => "uniform",
            Pattern::Zipf => "zipf",
            Pattern::Sequential => "sequential",
        }
    }
    pub fn from_name(s: &str) -> Option<Self> {
        [Pattern::Uniform, Pattern::Zipf, Pattern::Sequential]
            .into_iter()
            .find(|p| p.name() == s)
    }
}

/// Whether vCPUs share the whole memslot or each writes its own slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regions {
    Shared,
    Partitioned,
}

impl Regions {
    pub fn name(self) -> &'static str {
        match self {
            Regions::Shared => "shared",
            Regions::Partitioned => "partitioned",
        }
    }
    pub fn from_name(s: &str) -> Option<Self> {
        [Regions::Shared, Regions::Partitioned]
            .into_iter()
            .find(|p| p.name() == s)
    }
}

/// Every parameter of a run. [`Config::default`] gives the defaults that
/// finish in about 10 s on a 2-core machine.
#[derive(Clone, Debug)]
pub struct Config {
    pub impl_kind: ImplKind,
    pub workload: WorkloadKind,
    pub vcpus: u32,
    pub mem_bytes: u64,
    pub aliases: u32,
    pub desc_ext: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Zap operations per second (each zaps `zap_gfns` consecutive gfns).
    pub zap_rate: f64,
    pub zap_gfns: u64,
    /// Share of guest accesses that are writes (0..=100); the rest are reads
    /// (which fault an spte in read-only but never dirty anything).
    pub write_pct: u32,
    pub pattern: Pattern,
    pub regions: Regions,
    pub seed: u64,
    /// Pin worker threads to CPUs (round-robin).
    pub pin: bool,
    /// gfns write-protected per `Rmap::write_protect` call; `None`: the whole
    /// harvest in one call (2013's behaviour for `mmu-lock`).
    pub wp_batch: Option<u64>,
    pub mmu_lock: LockKind,
    pub bug: Option<Bug>,
    /// Record per-operation latency histograms (off: counters only, to
    /// measure what measuring costs).
    pub record_latency: bool,
    /// Guest writes per guest-mode entry (a vCPU keeps its translation, its
    /// "TLB", for this many writes to one page).
    pub tlb_burst: u32,
    /// `churn`: how many hot gfns.
    pub hot_gfns: u64,
    /// Cut the measured phase into intervals of this length and report each
    /// interval's histograms and counters (`lab profile`).
    pub sample_interval: Option<Duration>,
    /// The chain discipline; `None`: the design's own
    /// (`ImplKind::default_chain`).
    pub chain: Option<ChainKind>,
    /// `aging`: gfns per `Rmap::age` call (one mmu-notifier `clear_young`
    /// range).
    pub age_gfns: u64,
    /// `aging`: a pass over the whole memslot starts every this long
    /// (open loop); zero: passes back to back, as the kernel's
    /// `access_tracking_perf_test` runs them.
    pub age_period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            impl_kind: ImplKind::Lockless,
            workload: WorkloadKind::DirtyLog,
            vcpus: 4,
            mem_bytes: 256 << 20,
            aliases: 4,
            desc_ext: 3,
            duration: Duration::from_secs(10),
            warmup: Duration::from_millis(500),
            zap_rate: 2000.0,
            zap_gfns: 16,
            write_pct: 80,
            pattern: Pattern::Uniform,
            regions: Regions::Shared,
            seed: 1,
            pin: false,
            wp_batch: None,
            mmu_lock: LockKind::Spin,
            bug: None,
            record_latency: true,
            tlb_burst: 4,
            hot_gfns: 8,
            sample_interval: None,
            chain: None,
            age_gfns: 512,
            age_period: Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    NoVcpus,
    NoMemory,
    MemoryBeyondMachine {
        wanted: u64,
        available: u64,
    },
    Aliases(u32),
    DescExt(usize),
    WritePct(u32),
    ZapRate(f64),
    NoDuration,
    BugNotApplicable(Bug, ImplKind),
    TooManyVcpus(u32),
    /// The design cannot be built this way (`--chain`).
    Build(BuildError),
    AgeGfns,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoVcpus => write!(f, "--vcpus must be at least 1"),
            ConfigError::NoMemory => write!(f, "--mem must hold at least one 4 KiB page"),
            ConfigError::MemoryBeyondMachine { wanted, available } => write!(
                f,
                "--mem needs about {} MiB of host memory for pages, sptes and rmaps, but the machine has {} MiB",
                wanted >> 20,
                available >> 20
            ),
            ConfigError::Aliases(a) => write!(f, "--aliases {a} is out of range (1..=1024)"),
            ConfigError::DescExt(e) => write!(f, "--desc-ext {e} is out of range (1..={MAX_DESC_EXT})"),
            ConfigError::WritePct(p) => write!(f, "--write-pct {p} is out of range (0..=100)"),
            ConfigError::ZapRate(r) => write!(f, "--zap-rate {r} must be a finite number >= 0"),
            ConfigError::NoDuration => write!(f, "--duration must be longer than 0"),
            ConfigError::BugNotApplicable(b, k) => {
                let to: Vec<_> = b.applies_to().iter().map(|k| k.name()).collect();
                write!(f, "bug '{b}' does not apply to '{k}' (it applies to: {})", to.join(", "))
            }
            ConfigError::TooManyVcpus(n) => write!(f, "--vcpus {n} is more than the lab supports (4096)"),
            ConfigError::Build(e) => write!(f, "{e}"),
            ConfigError::AgeGfns => write!(f, "--age-gfns must be at least 1"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn gfns(&self) -> u64 {
        self.mem_bytes / PAGE_SIZE
    }

    /// Worker threads a run starts: the vCPUs, the walker where the
    /// workload logs dirty pages, the zapper where it zaps, and the aging
    /// thread where it ages.
    pub fn worker_threads(&self) -> u32 {
        self.vcpus + self.dirty_logging() as u32 + self.zapping() as u32 + self.aging() as u32
    }

    /// The workload runs dirty-log rounds (a walker thread).
    pub fn dirty_logging(&self) -> bool {
        matches!(self.workload, WorkloadKind::DirtyLog | WorkloadKind::Churn)
    }

    /// The workload ages (an aging thread).
    pub fn aging(&self) -> bool {
        self.workload == WorkloadKind::Aging
    }

    /// The chain discipline the run uses (`None`: the design keeps none).
    pub fn chain_used(&self) -> Option<ChainKind> {
        self.chain.or(self.impl_kind.default_chain())
    }

    /// The workload has a zapper (`churn` always zaps).
    pub fn zapping(&self) -> bool {
        self.workload == WorkloadKind::Churn || self.zap_rate > 0.0
    }

    /// Host bytes the run will allocate (source and destination pages,
    /// version snapshot, spte tables, rmap heads), for the "beyond the
    /// machine" check.
    pub fn host_bytes(&self) -> u64 {
        let g = self.gfns();
        g * 8 * 4 + g * self.aliases as u64 * 8 + g * 16
    }

    /// Check everything that can be checked before building anything.
    /// `machine_bytes` is the host's physical memory.
    pub fn validate(&self, machine_bytes: u64) -> Result<(), ConfigError> {
        if self.vcpus == 0 {
            return Err(ConfigError::NoVcpus);
        }
        if self.vcpus > 4096 {
            return Err(ConfigError::TooManyVcpus(self.vcpus));
        }
        if self.gfns() == 0 {
            return Err(ConfigError::NoMemory);
        }
        if self.mem_bytes > machine_bytes || self.host_bytes() > machine_bytes {
            return Err(ConfigError::MemoryBeyondMachine {
                wanted: self.host_bytes().max(self.mem_bytes),
                available: machine_bytes,
            });
        }
        if !(1..=1024).contains(&self.aliases) {
            return Err(ConfigError::Aliases(self.aliases));
        }
        if !(1..=MAX_DESC_EXT).contains(&self.desc_ext) {
            return Err(ConfigError::DescExt(self.desc_ext));
        }
        if self.write_pct > 100 {
            return Err(ConfigError::WritePct(self.write_pct));
        }
        if !self.zap_rate.is_finite() || self.zap_rate < 0.0 {
            return Err(ConfigError::ZapRate(self.zap_rate));
        }
        if self.duration.is_zero() {
            return Err(ConfigError::NoDuration);
        }
        if let Some(b) = self.bug {
            if !b.applies_to().contains(&self.impl_kind) {
                return Err(ConfigError::BugNotApplicable(b, self.impl_kind));
            }
        }
        if let Some(c) = self.chain {
            if !self.impl_kind.chains().contains(&c) {
                return Err(ConfigError::Build(BuildError::ChainNotApplicable(
                    self.impl_kind,
                    c,
                )));
            }
            if self.bug == Some(Bug::BackwardMove) {
                return Err(ConfigError::Build(BuildError::ChainWithBug(
                    Bug::BackwardMove,
                )));
            }
        }
        if self.age_gfns == 0 {
            return Err(ConfigError::AgeGfns);
        }
        Ok(())
    }

    /// The bug, if it lives in the workload.
    pub fn workload_bug(&self) -> Option<Bug> {
        self.bug.filter(|b| b.layer() == BugLayer::Workload)
    }
}
