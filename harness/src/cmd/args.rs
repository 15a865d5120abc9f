//! The flags several commands share, spelt and parsed the same way in every
//! command (the README's flag table lists them), and their translation into
//! a validated `rmap_workloads::Config`.
//!
//! - A flag that names designs, workloads or counts (`--impl`, `--vcpus`,
//!   `--workload`, `--aliases`, `--desc-ext`) always takes a comma-separated
//!   list, parsed by one value parser; a command that runs one thing takes
//!   the list's one value ([`one`]) and says "takes one value here (lab
//!   sweep runs several)" otherwise.
//! - Names come from the types that own them (`ImplKind::ALL`,
//!   `WorkloadKind::ALL`, `Bug::ALL`, ...) as clap possible values, so an
//!   unknown name gets clap's list of the valid ones and its "did you mean"
//!   hint, and the shell completions (`lab completions`) offer them.
//! - Durations and sizes go through `record::units` (`300ms`, `64MiB`).

use crate::record::error::{LabError, LabResult};
use crate::record::machine::{machine_memory, online_cpus};
use crate::record::units::{parse_duration, parse_size};
use crate::render::plot::Format;
use crate::session::perf::PerfSpec;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::Args;
use rmap_impls::{Bug, ChainKind, ImplKind, LockKind};
use rmap_workloads::{Config, Delay, Pattern, Perturbation, Regions, TlbFlush, WorkloadKind};
use std::path::PathBuf;
use std::time::Duration;

/// A value parser over a fixed set of names (with their help), mapping the
/// chosen name back through `from_name`.
fn names<T: Clone + Send + Sync + 'static>(
    values: Vec<PossibleValue>,
    from_name: fn(&str) -> Option<T>,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(values)
        .map(move |s| from_name(&s).expect("clap checked the name against the possible values"))
}

/// `--impl`'s values: one design, or `all` / `correct`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImplSel {
    All,
    Correct,
    One(ImplKind),
}

/// The parser of `--impl` in every command.
pub fn impl_parser() -> impl TypedValueParser<Value = ImplSel> {
    let mut v = vec![
        PossibleValue::new("all").help("every design"),
        PossibleValue::new("correct").help("every design but lockless"),
    ];
    v.extend(
        ImplKind::ALL
            .iter()
            .map(|k| PossibleValue::new(k.name()).help(k.description())),
    );
    names(v, |s| match s {
        "all" => Some(ImplSel::All),
        "correct" => Some(ImplSel::Correct),
        _ => ImplKind::from_name(s).map(ImplSel::One),
    })
}

/// The designs `--impl` names, in the order named, `all` and `correct`
/// expanded.
pub fn impls(sel: &[ImplSel]) -> Vec<ImplKind> {
    sel.iter()
        .flat_map(|s| match s {
            ImplSel::All => ImplKind::ALL.to_vec(),
            ImplSel::Correct => ImplKind::correct().collect(),
            ImplSel::One(k) => vec![*k],
        })
        .collect()
}

/// The one value of a list flag in a command that runs one thing.
pub fn one<T: Copy>(flag: &str, values: &[T]) -> LabResult<T> {
    match values {
        [v] => Ok(*v),
        _ => Err(LabError::usage(format!(
            "{flag} takes one value here (lab sweep runs several)"
        ))),
    }
}

fn workload_parser() -> impl TypedValueParser<Value = WorkloadKind> {
    names(
        WorkloadKind::ALL
            .iter()
            .map(|w| PossibleValue::new(w.name()).help(w.description()))
            .collect(),
        WorkloadKind::from_name,
    )
}

fn pattern_parser() -> impl TypedValueParser<Value = Pattern> {
    let all = [Pattern::Uniform, Pattern::Zipf, Pattern::Sequential];
    names(
        all.iter().map(|p| PossibleValue::new(p.name())).collect(),
        Pattern::from_name,
    )
}

fn regions_parser() -> impl TypedValueParser<Value = Regions> {
    let all = [Regions::Shared, Regions::Partitioned];
    names(
        all.iter().map(|r| PossibleValue::new(r.name())).collect(),
        Regions::from_name,
    )
}

/// The parser of `--inject-bug`.
pub fn bug_parser() -> impl TypedValueParser<Value = Bug> {
    names(
        Bug::ALL
            .iter()
            .map(|b| PossibleValue::new(b.name()).help(b.description()))
            .collect(),
        Bug::from_name,
    )
}

/// `--mmu-lock`: the kernel's spinning lock, a parking lock, or `auto`
/// (spin while every worker thread has a CPU, park once they outnumber the
/// CPUs; the output says which was used).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockChoice {
    Auto,
    Kind(LockKind),
}

fn lock_parser() -> impl TypedValueParser<Value = LockChoice> {
    let v = vec![
        PossibleValue::new("auto")
            .help("spin while every thread has a CPU, park once threads outnumber CPUs"),
        PossibleValue::new(LockKind::Spin.name())
            .help("a fair FIFO ticket lock, as the kernel's spin_lock"),
        PossibleValue::new(LockKind::Park.name()).help("a futex mutex"),
    ];
    names(v, |s| match s {
        "auto" => Some(LockChoice::Auto),
        _ => s.parse::<LockKind>().ok().map(LockChoice::Kind),
    })
}

fn tlb_flush_parser() -> impl TypedValueParser<Value = TlbFlush> {
    names(
        TlbFlush::ALL
            .iter()
            .map(|t| {
                PossibleValue::new(t.name()).help(match t {
                    TlbFlush::UnderLock => "inside mmu_lock, as Linux 3.10",
                    TlbFlush::AfterUnlock => "after mmu_lock, as commit 198c74f43f0f (2014)",
                })
            })
            .collect(),
        TlbFlush::from_name,
    )
}

fn delay_parser() -> impl TypedValueParser<Value = Delay> {
    names(
        Delay::ALL
            .iter()
            .map(|d| PossibleValue::new(d.name()))
            .collect(),
        Delay::from_name,
    )
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

fn chain_parser() -> impl TypedValueParser<Value = ChainKind> {
    names(
        ChainKind::ALL
            .iter()
            .map(|c| {
                PossibleValue::new(c.name()).help(match c {
                    ChainKind::Y2013 => "the design's 2013 chain",
                    ChainKind::Linux64 => "Linux 6.4's chain",
                })
            })
            .collect(),
        ChainKind::from_name,
    )
}

/// One point of the workload/aliases/desc_ext matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    pub workload: WorkloadKind,
    pub aliases: u32,
    pub desc_ext: usize,
}

/// Workload parameters (the README's "How the simulated VM works"). The
/// defaults measure for 10 s after a 0.5 s warmup. `--workload`,
/// `--aliases` and `--desc-ext` take lists (`1,4,16`) for `lab sweep`;
/// every other command wants one value.
#[derive(Args, Clone, Debug)]
pub struct VmArgs {
    /// Workload: dirty-log, churn, idle, torture or aging (a list for lab sweep).
    #[arg(long, value_name = "NAME", default_value = "dirty-log", value_delimiter = ',', value_parser = workload_parser())]
    pub workload: Vec<WorkloadKind>,
    /// Guest memory (one memslot): 256MiB (2^20 bytes each) or 256MB (10^6).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub mem: u64,
    /// Address spaces mapping the memory (sptes per gfn, so chain length; a list for lab sweep).
    #[arg(long, value_name = "N", default_value = "4", value_delimiter = ',')]
    pub aliases: Vec<u32>,
    /// spte references per rmap descriptor (3: KVM 2013, 14: KVM since 6.4; a list for lab sweep).
    #[arg(long, value_name = "N", default_value = "3", value_delimiter = ',')]
    pub desc_ext: Vec<u32>,
    /// Measured time, e.g. 10s or 300ms.
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time run before measuring starts.
    #[arg(long, value_name = "TIME", default_value = "500ms", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Zaps (mmu-notifier invalidations) per second.
    #[arg(long, value_name = "PER_S", default_value_t = 2000.0)]
    pub zap_rate: f64,
    /// gfns per zap.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub zap_gfns: u64,
    /// Share of guest accesses that are writes, in percent.
    #[arg(long, value_name = "PCT", default_value_t = 80)]
    pub write_pct: u32,
    /// Which page a vCPU touches next.
    #[arg(long, value_name = "NAME", default_value = "uniform", value_parser = pattern_parser())]
    pub pattern: Pattern,
    /// Whether vCPUs share memory or each has its own slice.
    #[arg(long, value_name = "NAME", default_value = "shared", value_parser = regions_parser())]
    pub regions: Regions,
    /// Random seed.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Pin worker threads to CPUs.
    #[arg(long)]
    pub pin: bool,
    /// gfns per write-protect call (default: the whole harvest, as 2013's mmu-lock).
    #[arg(long, value_name = "N")]
    pub wp_batch: Option<u64>,
    /// mmu_lock kind: spin (a fair FIFO ticket lock, as the kernel's), park (a futex mutex),
    /// or auto (spin while every worker thread has a CPU, park once they outnumber the CPUs).
    #[arg(long, value_name = "KIND", default_value = "auto", value_parser = lock_parser())]
    pub mmu_lock: LockChoice,
    /// Where mmu-lock's dirty-log round flushes remote TLBs: under-lock (inside mmu_lock, as
    /// Linux 3.10) or after-unlock (commit 198c74f43f0f, 2014). The other designs
    /// write-protect without mmu_lock and always flush after their walk.
    #[arg(long, value_name = "WHERE", default_value = "under-lock", value_parser = tlb_flush_parser())]
    pub tlb_flush: TlbFlush,
    /// Inject a deliberate bug (see `lab list`).
    #[arg(long, value_name = "NAME", value_parser = bug_parser())]
    pub inject_bug: Option<Bug>,
    /// Do not record latency histograms (counters only; shows what measuring costs).
    #[arg(long)]
    pub no_latency: bool,
    /// Guest writes per guest-mode entry (writes through one cached translation).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub tlb_burst: u32,
    /// churn, torture: number of hot gfns.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub hot_gfns: u64,
    /// Perturb: at each of a walker's perturbation points, delay with this probability (5%, 0.05; off).
    #[arg(long, value_name = "RATE", default_value = "off", value_parser = parse_rate)]
    pub perturb: f64,
    /// ... and at each writer-section and fault-path point with this one (default: a tenth of --perturb).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub perturb_writers: Option<f64>,
    /// How a perturbed run delays: spin, yield, sleep or mix.
    #[arg(long, value_name = "HOW", default_value = "mix", value_parser = delay_parser())]
    pub perturb_delay: Delay,
    /// Longest perturbation delay.
    #[arg(long, value_name = "TIME", default_value = "100us", value_parser = parse_duration)]
    pub perturb_max: Duration,
    /// Chain discipline: 2013 (the design's 2013 one) or 6.4 (Linux 6.4's)
    /// [default: the design's, see `lab list`].
    #[arg(long, value_name = "CHAIN", value_parser = chain_parser())]
    pub chain: Option<ChainKind>,
    /// aging: gfns per clear_young call (one Rmap::age range; 512 is 2 MiB).
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub age_gfns: u64,
    /// aging: start a pass over the whole memslot every this long (0s: back to back).
    #[arg(long, value_name = "TIME", default_value = "0s", value_parser = parse_duration)]
    pub age_period: Duration,
}

/// Where output goes and how a run shows itself. `--out` is the directory
/// the command writes into; each command says its default.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Directory the result files go into [default: results].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No progress on stderr: neither the bar (on a terminal) nor the plain
    /// progress lines (otherwise).
    #[arg(long)]
    pub no_progress: bool,
    /// Perf counters: default, off, or a comma-separated list of events (see `lab list`).
    #[arg(long, value_name = "EVENTS", default_value = "default")]
    pub perf: PerfSpec,
}

/// `--image-format`, for every command that draws plots.
#[derive(Args, Debug, Clone)]
pub struct ImageArgs {
    /// Image formats of the plots.
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "svg,png",
        value_delimiter = ','
    )]
    pub image_format: Vec<Format>,
}

impl ImageArgs {
    /// The formats asked for, sorted and without duplicates.
    pub fn formats(&self) -> Vec<Format> {
        crate::render::plot::formats(&self.image_format)
    }
}

/// The directory results go into when `--out` is not given.
pub const RESULTS_DIR: &str = "results";

impl VmArgs {
    /// Every (workload, aliases, desc_ext) the flags name, workload slowest.
    pub fn points(&self) -> Vec<Point> {
        let mut v = Vec::new();
        for &workload in &self.workload {
            for &aliases in &self.aliases {
                for &desc_ext in &self.desc_ext {
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
        Ok(Point {
            workload: one("--workload", &self.workload)?,
            aliases: one("--aliases", &self.aliases)?,
            desc_ext: one("--desc-ext", &self.desc_ext)? as usize,
        })
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
            min_rounds: 0,
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
