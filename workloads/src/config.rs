//! What one run does: every parameter of a run ([`Config`]), validated.

use rmap_impls::{Bug, BugLayer, BuildError, ChainKind, ImplKind, LockKind, MAX_DESC_EXT};
use std::fmt;
use std::time::Duration;

/// Guest page size: one gfn.
pub const PAGE_SIZE: u64 = 4096;

/// Host bytes of guest memory per guest page: the source version padded to
/// its own cache line (`CachePadded`: 128 bytes on x86-64, where the
/// adjacent-line prefetcher pairs lines), plus 8 for the destination's copy
/// and 8 for the oracle's snapshot. 256 MiB of guest memory (65,536 pages)
/// takes 9 MiB.
pub const HOST_BYTES_PER_PAGE: u64 =
    std::mem::size_of::<crossbeam_utils::CachePadded<std::sync::atomic::AtomicU64>>() as u64 + 16;

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
    /// The flaw's shape: the rmaps of a few hot gfns dropped to their
    /// single-spte form and grown again, so that descriptors are reused at
    /// once into the same rmap and into others, against continuous
    /// write-protect walks of those gfns, each checked for a missed spte.
    Torture,
    /// The same vCPU traffic while an aging thread test-and-clears Accessed
    /// bits over the whole memslot, as the primary MMU's reclaim does
    /// through the mmu notifier's `clear_young`.
    Aging,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 5] = [
        WorkloadKind::DirtyLog,
        WorkloadKind::Churn,
        WorkloadKind::Idle,
        WorkloadKind::Torture,
        WorkloadKind::Aging,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::DirtyLog => "dirty-log",
            WorkloadKind::Churn => "churn",
            WorkloadKind::Idle => "idle",
            WorkloadKind::Torture => "torture",
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
            WorkloadKind::Torture => "the flaw's shape: a few hot gfns whose rmaps drop to one spte and grow again (descriptors reused at once, into the same rmap and others) against continuous write-protect walks, each checked for a missed spte",
            WorkloadKind::Aging => "the same vCPU traffic (accesses set the spte's Accessed bit) while an aging thread test-and-clears Accessed over the whole memslot in --age-gfns ranges, as reclaim does through clear_young (KVM's kvm_age_gfn); no dirty logging",
        }
    }

    /// Works on a few hot gfns (`Config::hot_gfns`), which every round
    /// write-protects whether dirty or not.
    pub fn hot(self) -> bool {
        matches!(self, WorkloadKind::Churn | WorkloadKind::Torture)
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

/// How a perturbed run delays at a perturbation point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delay {
    /// Busy-wait on the clock.
    Spin,
    /// Give up the CPU once.
    Yield,
    /// Sleep.
    Sleep,
    /// One of the three, at random.
    Mix,
}

impl Delay {
    pub const ALL: [Delay; 4] = [Delay::Spin, Delay::Yield, Delay::Sleep, Delay::Mix];

    pub fn name(self) -> &'static str {
        match self {
            Delay::Spin => "spin",
            Delay::Yield => "yield",
            Delay::Sleep => "sleep",
            Delay::Mix => "mix",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == s)
    }
}

/// Perturbation (rcutorture's fuzzed delays): at every perturbation point a
/// thread passes it waits with a probability (`rate` at a walker's points,
/// `writer_rate` at a writer's and in the fault paths), `delay` says how,
/// for up to `max`; the choices come from the run's seed. The rmap under
/// test is then its perturbed build (`rmap_impls::perturb`), and the run
/// says so.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Perturbation {
    /// Probability of a delay at each walker point passed, in [0, 1].
    pub rate: f64,
    /// ... at each writer-section and fault-path point, in [0, 1]. Lower
    /// than `rate` in `lab check`: a writer delayed inside `mmu_lock`, or a
    /// vCPU inside its fault, holds up the very writes that must happen
    /// inside a walker's window.
    pub writer_rate: f64,
    pub delay: Delay,
    /// Longest delay (spin or sleep; a yield is one yield).
    pub max: Duration,
}

impl fmt::Display for Perturbation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}% of walker points and {}% of writer and fault points, {} up to {:?}",
            self.rate * 100.0,
            self.writer_rate * 100.0,
            self.delay.name(),
            self.max
        )
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

/// Where the dirty-log round's remote TLB flush runs relative to
/// `mmu_lock`, for the design that write-protects under it (`mmu-lock`).
/// Every other design write-protects without `mmu_lock`, so its flush always
/// runs after the walk, outside any lock, whichever is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlbFlush {
    /// Inside `mmu_lock`, at the end of the last write-protect batch: Linux
    /// 3.10's `kvm_vm_ioctl_get_dirty_log` (`if (is_dirty)
    /// kvm_flush_remote_tlbs(kvm)` before `spin_unlock(&kvm->mmu_lock)`), and
    /// so the 2013 baseline. The default.
    UnderLock,
    /// After `mmu_lock` is released: commit 198c74f43f0f ("KVM: MMU: flush
    /// tlb out of mmu lock when write-protect the sptes", 2014) and later.
    AfterUnlock,
}

impl TlbFlush {
    pub const ALL: [TlbFlush; 2] = [TlbFlush::UnderLock, TlbFlush::AfterUnlock];

    pub fn name(self) -> &'static str {
        match self {
            TlbFlush::UnderLock => "under-lock",
            TlbFlush::AfterUnlock => "after-unlock",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }
}

impl fmt::Display for TlbFlush {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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
    /// `mmu_lock` was chosen by the caller's `auto` rule (spin while every
    /// worker thread has a CPU, park once they outnumber the CPUs) rather
    /// than asked for: recorded, so that runs which asked for `auto` group
    /// together whatever kind each got.
    pub mmu_lock_auto: bool,
    /// Where `mmu-lock`'s dirty-log round flushes remote TLBs ([`TlbFlush`]).
    pub tlb_flush: TlbFlush,
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
    /// Delays at the perturbation points (`lab check`); `None`: the rmap's
    /// unperturbed build, whose points compile to nothing.
    pub perturb: Option<Perturbation>,
    /// Check every write-protect walk for a missed spte (`lab check`; the
    /// `torture` workload always does). Off, a run pays one branch per
    /// fault and one per write-protect call for it, and nothing in a walk.
    pub spte_check: bool,
    /// End the run at the first violation (a missed spte or a lost write):
    /// `lab check` measures the time to the first detection.
    pub stop_on_violation: bool,
    /// A dirty-logging run's measured phase goes on past `duration` until
    /// the walker has finished this many measured rounds (`lab check`: a
    /// check that checked no round proved nothing), for at most
    /// [`Config::min_rounds_cap`] more. Zero: the run ends at `duration`.
    pub min_rounds: u64,
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
            mmu_lock_auto: false,
            tlb_flush: TlbFlush::UnderLock,
            bug: None,
            record_latency: true,
            tlb_burst: 4,
            hot_gfns: 8,
            sample_interval: None,
            perturb: None,
            spte_check: false,
            stop_on_violation: false,
            min_rounds: 0,
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
    PerturbRate(f64),
    PerturbMax,
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
            ConfigError::PerturbRate(r) => write!(f, "--perturb {r} is out of range (a probability: 0 for none, up to 1 or 100%)"),
            ConfigError::PerturbMax => write!(f, "--perturb-max must be longer than 0"),
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
        matches!(
            self.workload,
            WorkloadKind::DirtyLog | WorkloadKind::Churn | WorkloadKind::Torture
        )
    }

    /// How much longer than `duration` a run may go on to finish
    /// [`Config::min_rounds`]: ten times the duration, and at least 10 s,
    /// enough on a loaded 2-core machine where one round of a small
    /// memslot takes up to half a second.
    pub fn min_rounds_cap(&self) -> Duration {
        (self.duration * 10).max(Duration::from_secs(10))
    }

    /// The workload ages (an aging thread).
    pub fn aging(&self) -> bool {
        self.workload == WorkloadKind::Aging
    }

    /// The chain discipline the run uses (`None`: the design keeps none).
    pub fn chain_used(&self) -> Option<ChainKind> {
        self.chain.or(self.impl_kind.default_chain())
    }

    /// The workload has a zapper (`churn` and `torture` always zap).
    pub fn zapping(&self) -> bool {
        self.workload.hot() || self.zap_rate > 0.0
    }

    /// Write-protect walks are checked for missed sptes.
    pub fn checks_sptes(&self) -> bool {
        (self.spte_check || self.workload == WorkloadKind::Torture) && self.dirty_logging()
    }

    /// Host bytes the run will allocate, for the "beyond the machine"
    /// check: per gfn, [`HOST_BYTES_PER_PAGE`] for guest memory (the source
    /// page's version on a cache line of its own, the destination's copy,
    /// the oracle's snapshot), 8 per address space for the sptes, and 16
    /// for the rmap head.
    pub fn host_bytes(&self) -> u64 {
        let g = self.gfns();
        g * HOST_BYTES_PER_PAGE + g * self.aliases as u64 * 8 + g * 16
    }

    /// The accesses that make one vCPU *pass* ([`Metric::Pass`]): as many
    /// as the vCPU's slice has pages, the slice being `gfns / vcpus` (at
    /// least 1) whether the vCPUs share the memslot or each writes its own
    /// part. An access is one guest-mode entry that went through (a read, or
    /// `tlb_burst` writes), after whatever faults it took. A pass of a
    /// partitioned sequential run touches every page of the slice once, as a
    /// `dirty_log_perf_test` iteration writes every page of its slice; under
    /// the other patterns it is the same amount of guest work at other pages.
    ///
    /// [`Metric::Pass`]: crate::Metric::Pass
    pub fn pass_accesses(&self) -> u64 {
        (self.gfns() / self.vcpus.max(1) as u64).max(1)
    }

    /// Every guest page has at most one vCPU that writes it: partitioned
    /// slices that do not overlap (not `churn`, whose vCPUs share the hot
    /// gfns). Guest memory then writes a page with a plain store.
    pub fn pages_have_one_writer(&self) -> bool {
        self.regions == Regions::Partitioned
            && self.workload != WorkloadKind::Churn
            && self.vcpus as u64 <= self.gfns()
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
        if let Some(p) = self.perturb {
            for r in [p.rate, p.writer_rate] {
                if !(0.0..=1.0).contains(&r) {
                    return Err(ConfigError::PerturbRate(r));
                }
            }
            if p.max.is_zero() {
                return Err(ConfigError::PerturbMax);
            }
        }
        if let Some(c) = self.chain {
            if !self.impl_kind.chains().contains(&c) {
                return Err(ConfigError::Build(BuildError::ChainNotApplicable(
                    self.impl_kind,
                    c,
                )));
            }
            if self.bug == Some(Bug::FillFromTail) {
                return Err(ConfigError::Build(BuildError::ChainWithBug(
                    Bug::FillFromTail,
                )));
            }
        }
        if self.age_gfns == 0 {
            return Err(ConfigError::AgeGfns);
        }
        Ok(())
    }

    /// Where this run's dirty-log round flushes remote TLBs: under
    /// `mmu_lock` only when asked for and the design write-protects under
    /// it; every other design flushes after its walk, outside any lock.
    pub fn flush_under_lock(&self) -> bool {
        self.tlb_flush == TlbFlush::UnderLock && self.impl_kind == ImplKind::MmuLock
    }

    /// The bug, if it lives in the workload.
    pub fn workload_bug(&self) -> Option<Bug> {
        self.bug.filter(|b| b.layer() == BugLayer::Workload)
    }
}
