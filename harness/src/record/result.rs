//! The result file, schema `rmap-lab/result/v1`: one JSON object per run,
//! [`RunResult`]. Both producers build it (the simulated VM in
//! `session::run`, the real VM in `render::calibrate`), and `lab compare`,
//! `lab plot`, `lab profile` and the notebook read only this.
//!
//! Files are written atomically (`record::file`): a temporary file in the
//! same directory, `fsync`, then one step to the final name, so a reader
//! never sees half a result, and an interrupted run still leaves a whole one
//! (marked `interrupted`). A run's result goes under a name nobody has used
//! ([`RunResult::save_new`]), so that runs started in the same second keep
//! both their results.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use super::file::write_atomic;
pub use super::machine::Machine;

pub const SCHEMA: &str = "rmap-lab/result/v1";

/// One run, as the result file holds it. Every producer fills the fields
/// every run has; what only one producer has sits in the [`Part`] of the
/// section it belongs to (`config`, `machine`, `counters`, and the top level
/// as [`RunResult::detail`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub schema: String,
    #[serde(rename = "impl")]
    pub impl_name: String,
    pub workload: String,
    pub config: RunConfig,
    pub machine: Machine,
    pub lab_version: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_s: f64,
    pub interrupted: bool,
    pub verdict: Verdict,
    /// Metric name -> latency summary (the names are the producer's:
    /// `rmap_workloads::METRIC_NAMES` for the simulated VM).
    pub metrics: BTreeMap<String, MetricSummary>,
    pub counters: Counters,
    /// Operations per second of the measured phase.
    pub throughput: Throughput,
    /// Role -> event -> value.
    pub perf: BTreeMap<String, BTreeMap<String, PerfValue>>,
    /// Things the reader should know about these numbers.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Round time over the run: `[t_s, round_ns, pages]` per round.
    #[serde(default)]
    pub rounds: Vec<[f64; 3]>,
    /// The top-level fields of one producer.
    #[serde(flatten)]
    pub detail: Part<VmDetail, KvmDetail>,
}

/// What one producer adds to a section of the result file: the simulated
/// VM's fields (`lab run`, `check`, `sweep`, `profile`), the real VM's
/// (`lab calibrate`), or, from any other producer (an older lab, a file
/// written by hand), the keys as they are, kept on re-write.
///
/// A section is `Vm` or `Kvm` only when it has exactly that producer's
/// fields, no more and no fewer; anything else is `Other`, so no key is ever
/// dropped or invented on the way through.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Part<V, K> {
    Vm(V),
    Kvm(K),
    Other(BTreeMap<String, serde_json::Value>),
}

impl<V, K> Default for Part<V, K> {
    fn default() -> Self {
        Part::Other(BTreeMap::new())
    }
}

impl<V, K> Part<V, K> {
    /// The simulated VM's fields, if this is that producer's section.
    pub fn vm(&self) -> Option<&V> {
        match self {
            Part::Vm(v) => Some(v),
            _ => None,
        }
    }

    /// The real VM's fields, if this is that producer's section.
    pub fn kvm(&self) -> Option<&K> {
        match self {
            Part::Kvm(k) => Some(k),
            _ => None,
        }
    }
}

/// An `Option` field that must be present (as `null` when `None`): the
/// simulated VM writes `wp_batch` and `inject_bug` even when unset.
pub(super) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// Every parameter of the run. The first five are every producer's; the
/// rest are the producer's own knobs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunConfig {
    pub vcpus: u32,
    pub seed: u64,
    pub desc_ext: u32,
    pub aliases: u32,
    pub mem_bytes: u64,
    #[serde(flatten)]
    pub part: Part<VmConfig, KvmConfig>,
}

/// The simulated VM's parameters (`rmap_workloads::Config`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    pub duration_s: f64,
    pub warmup_s: f64,
    pub zap_rate: f64,
    pub zap_gfns: u64,
    pub write_pct: u32,
    pub pattern: String,
    pub regions: String,
    pub pin: bool,
    /// gfns per write-protect call; `null`: the whole harvest.
    #[serde(deserialize_with = "present")]
    pub wp_batch: Option<u64>,
    /// `spin` or `park`, as the run used it.
    pub mmu_lock: String,
    /// What was asked for: `auto`, `spin` or `park` (absent in files from
    /// before it was recorded). Runs group on this, not on `mmu_lock`, so
    /// that an `auto` sweep gives one line per design.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmu_lock_choice: Option<String>,
    /// Where `mmu-lock`'s dirty-log round flushed remote TLBs:
    /// `under-lock` or `after-unlock` (absent in files from before the
    /// choice existed, which flushed after the unlock). Other designs flush
    /// after their walk whatever it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlb_flush: Option<String>,
    #[serde(deserialize_with = "present")]
    pub inject_bug: Option<String>,
    pub record_latency: bool,
    pub tlb_burst: u32,
    pub hot_gfns: u64,
    pub gfns: u64,
    /// The chain discipline the run used (`2013`, `6.4`); absent for a
    /// design without chains and in files from before `--chain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// `aging`'s range per `clear_young` call, and its pass period (0:
    /// back to back); absent in files from before the `aging` workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_gfns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_period_s: Option<f64>,
    /// The delays of a perturbed run (`--perturb`); absent: not perturbed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perturb: Option<PerturbConfig>,
    /// Write-protect walks were checked for missed sptes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spte_check: Option<bool>,
}

/// `rmap_workloads::Perturbation`, as the result file keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PerturbConfig {
    /// Probability of a delay at each of a walker's perturbation points.
    pub rate: f64,
    /// ... at each writer-section and fault-path point.
    pub writer_rate: f64,
    /// `spin`, `yield`, `sleep` or `mix`.
    pub delay: String,
    pub max_s: f64,
    /// Delays the run took.
    pub delays: Option<u64>,
}

/// The real VM's parameters (`lab calibrate`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KvmConfig {
    pub iterations: u32,
    pub live_duration_s: f64,
    pub round_interval_s: f64,
    /// `clear` or `get`, as the run used it.
    pub dirty_log_mode: String,
    /// Chosen by `--dirty-log-mode` rather than by what the kernel offers.
    pub dirty_log_mode_forced: bool,
    pub initially_set: bool,
    pub data_pages: u64,
    pub guest: String,
    /// The privilege of the guest's pass loop, 0 or 3 (absent: a result from
    /// before `--guest-cpl`, whose guest ran at CPL 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_cpl: Option<u8>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub lost_writes: u64,
    pub rmap_inconsistencies: u64,
    pub ok: bool,
    #[serde(default)]
    pub lost_write_gfns: Vec<u64>,
    /// sptes a write-protect walk left writable (the missed-spte check);
    /// absent where walks were not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed_sptes: Option<u64>,
    /// Seconds from the start of the run to its first violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_violation_s: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MetricSummary {
    pub count: u64,
    pub min_ns: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub mean_ns: f64,
    /// The full histogram: HdrHistogram V2 + DEFLATE, base64.
    pub hdr: String,
    /// One operation in this many was timed, so `count` is the samples, not
    /// the operations (absent: every operation was timed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_every: Option<u64>,
    /// The resolution of the clock that timed it: the smallest non-zero
    /// difference of two back-to-back reads, in ns (absent: not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_ns: Option<f64>,
}

/// Totals of the measured phase. The first eight are every producer's
/// (0 for work a producer does not do).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct Counters {
    pub walks: u64,
    pub restarts: u64,
    pub restarts_by_reason: BTreeMap<String, u64>,
    pub guest_writes: u64,
    pub faults_fast: u64,
    pub faults_slow: u64,
    pub zaps: u64,
    pub rounds: u64,
    #[serde(flatten)]
    pub part: Part<VmCounters, KvmCounters>,
}

/// The simulated VM's own counters.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct VmCounters {
    pub guest_reads: u64,
    pub faults_raced: u64,
    pub fast_fault_retries: u64,
    pub sptes_zapped: u64,
    pub rounds_empty: u64,
    pub pages_harvested: u64,
    pub pages_copied: u64,
    pub tlb_flushes: u64,
    pub sptes_visited: u64,
    pub sptes_protected: u64,
    pub mmu_lock_holds: u64,
    pub lock_holds_sampled: u64,
    pub lock_holder_preempted: u64,
    /// Rounds of the measured phase the oracle checked.
    pub rounds_checked: u64,
    /// The zapper's open-loop schedule (absent where it is not paced, and
    /// in results from before it): zaps it requested up to the end of the
    /// measured phase, zaps issued (`zaps`), and zaps that started more
    /// than one period after their intended start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zaps_requested: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zaps_issued: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zaps_late: Option<u64>,
    /// vCPU passes completed (`vcpu.pass`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passes: Option<u64>,
    /// vCPU accesses that set their spte's Accessed bit (absent in files
    /// from before the `aging` workload, as every field below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessed_set: Option<u64>,
    /// Aging: rmaps walked, sptes visited, sptes found young (Accessed
    /// set, then cleared), restarts of the lockless aging walks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_walks: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_visited: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_young: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_restarts: Option<u64>,
    /// Aging passes done, and those the schedule asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_passes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_passes_due: Option<u64>,
}

/// The real VM's own counters.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct KvmCounters {
    /// Dirty pages the lockstep rounds harvested.
    pub pages_harvested: u64,
    /// The same (the kernel's word for them).
    pub dirty_pages: u64,
    /// Rounds while the vCPUs wrote, and what they harvested.
    pub rounds_live: u64,
    pub pages_harvested_live: u64,
    /// Passes of the vCPUs over their shares.
    pub passes: u64,
    /// Written pages missing from the next harvest.
    pub lost_pages: u64,
    /// Pages whose word in guest memory is older than the pass that wrote it.
    pub stale_pages: u64,
}

impl Counters {
    /// A counter by its name in the result file (`zaps`,
    /// `restarts_by_reason.REASON`, a producer's own), for `--metric
    /// counter:NAME`.
    pub fn get(&self, name: &str) -> Option<u64> {
        if let Some(reason) = name.strip_prefix("restarts_by_reason.") {
            return Some(self.restarts_by_reason.get(reason).copied().unwrap_or(0));
        }
        match serde_json::to_value(self).ok()?.get(name)? {
            serde_json::Value::Object(_) => None,
            v => v.as_u64(),
        }
    }
}

/// Operations per second of the measured phase, keyed `role.operation` in
/// the file. Each producer fills the rates of the work it does.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct Throughput {
    /// Both VMs: guest writes (the real VM: pages written, one write each,
    /// with dirty logging on).
    #[serde(
        rename = "vcpu.guest_writes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub guest_writes: Option<f64>,
    #[serde(
        rename = "vcpu.faults_fast",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub faults_fast: Option<f64>,
    #[serde(
        rename = "vcpu.faults_slow",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub faults_slow: Option<f64>,
    #[serde(
        rename = "walker.walks",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub walks: Option<f64>,
    /// Both VMs: dirty-log rounds (the real VM: while the vCPUs write).
    #[serde(
        rename = "walker.rounds",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rounds: Option<f64>,
    #[serde(
        rename = "walker.pages",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub pages: Option<f64>,
    #[serde(
        rename = "zapper.zaps",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub zaps: Option<f64>,
    /// Aging passes over the whole memslot (the `aging` workload).
    #[serde(
        rename = "aging.passes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub age_passes: Option<f64>,
    /// The real VM: passes over the shares with dirty logging on, and pages
    /// and passes without it.
    #[serde(
        rename = "vcpu.passes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub passes: Option<f64>,
    #[serde(
        rename = "vcpu.guest_writes_nolog",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub guest_writes_nolog: Option<f64>,
    #[serde(
        rename = "vcpu.passes_nolog",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub passes_nolog: Option<f64>,
    /// Other producers' rates, by their key.
    #[serde(flatten)]
    pub other: BTreeMap<String, f64>,
}

impl Throughput {
    /// A rate by its key in the result file (`walker.walks`), for
    /// `--metric throughput:KEY`.
    pub fn get(&self, key: &str) -> Option<f64> {
        serde_json::to_value(self).ok()?.get(key)?.as_f64()
    }
}

/// The simulated VM's top-level fields.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VmDetail {
    /// How the hardware perf events were grouped (`session::perf`).
    pub perf_hardware_layout: String,
    /// `rounds` keeps one round in this many (absent: every round).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds_sample_every: Option<u64>,
    /// `lab profile`'s sampling interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_interval_s: Option<f64>,
    /// CPU seconds each role's threads used in the measured phase
    /// (`getrusage(RUSAGE_THREAD)`), by role name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_cpu_s: Option<BTreeMap<String, f64>>,
    /// The clock the histograms were timed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockRecord>,
}

/// The clock of a run's histograms (`rmap_workloads::clock::ClockInfo`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClockRecord {
    /// `tsc`, `cntvct` or `monotonic`: what `quanta` reads.
    pub source: String,
    /// Reads are fenced (`lfence; rdtsc; lfence`).
    pub fenced: bool,
    /// Smallest non-zero difference of two back-to-back reads, ns.
    pub resolution_ns: f64,
    /// Mean cost of one read, ns.
    pub read_ns: f64,
}

impl RunResult {
    /// Zaps issued over zaps requested, where the result has both.
    pub fn zaps_issued_share(&self) -> Option<f64> {
        let requested = self.counters.get("zaps_requested")?;
        (requested > 0).then(|| self.counters.zaps as f64 / requested as f64)
    }

    /// CPU seconds the role's threads used in the measured phase.
    pub fn thread_cpu_s(&self, role: &str) -> Option<f64> {
        match &self.detail {
            Part::Vm(d) => d.thread_cpu_s.as_ref()?.get(role).copied(),
            Part::Other(m) => m.get("thread_cpu_s")?.get(role)?.as_f64(),
            Part::Kvm(_) => None,
        }
    }
}

/// The real VM's top-level fields: what only a real kernel has.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KvmDetail {
    pub dirty_log_mode: String,
    /// vCPU pages written per second without dirty logging over with it.
    #[serde(deserialize_with = "present")]
    pub interference_ratio: Option<f64>,
    /// The sentence that says so.
    pub interference_ratio_means: String,
    /// Median over the lockstep rounds of round time per dirty page.
    #[serde(deserialize_with = "present")]
    pub round_ns_per_dirty_page: Option<f64>,
    #[serde(deserialize_with = "present")]
    pub round_ms_per_dirty_gib: Option<f64>,
    /// The kernel test's table, plus the pages written and missing.
    pub per_iteration: Vec<KvmIteration>,
    /// Pages a harvest found dirty with the vCPUs stopped after the last one
    /// (`null`: not run).
    #[serde(deserialize_with = "present")]
    pub quiescent_dirty_pages: Option<u64>,
    pub per_vcpu: Vec<KvmVcpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_nolog: Option<KvmLive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_dirty_log: Option<KvmLive>,
    pub populate_ns: u64,
    #[serde(deserialize_with = "present")]
    pub enable_dirty_log_ns: Option<u64>,
    #[serde(deserialize_with = "present")]
    pub disable_dirty_log_ns: Option<u64>,
    /// `rounds` keeps every lockstep round and one live round in this many.
    pub live_rounds_sampled_every: u64,
    /// KVM's own statistics over every phase, or why there are none (absent:
    /// a result from before the lab read them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kvm_stats: Option<KvmStats>,
    /// What the rounds' write-protect step had to do, told from KVM's
    /// statistics (absent as `kvm_stats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_protect: Option<KvmWriteProtect>,
    /// Median over the iterations of dirty memory time per page written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirty_memory_ns_per_page: Option<f64>,
}

/// A level KVM reports (`pages_4k`): its value before and after a scope.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KvmLevel {
    pub before: u64,
    pub after: u64,
}

/// How KVM's statistics of one kind (the VM's, or its vCPUs' summed)
/// changed over a scope: cumulative ones by their growth, levels before and
/// after.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KvmStatsChange {
    pub counts: BTreeMap<String, u64>,
    pub levels: BTreeMap<String, KvmLevel>,
}

/// KVM's statistics over one scope: the VM's and its vCPUs' (summed).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KvmStatsDelta {
    pub vm: KvmStatsChange,
    pub vcpus: KvmStatsChange,
}

/// KVM's statistics over one iteration's pass and over its round.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KvmIterationStats {
    pub pass: KvmStatsDelta,
    pub round: KvmStatsDelta,
}

/// KVM's statistics over one phase of a calibration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KvmPhaseStats {
    /// `populate`, `live_nolog`, `enable_dirty_log`, `iterations`,
    /// `quiescent_round`, `live_dirty_log` or `disable_dirty_log`.
    pub phase: String,
    pub vm: KvmStatsChange,
    pub vcpus: KvmStatsChange,
}

/// KVM's statistics as read: where from, which exist, and each phase's.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KvmStatsRead {
    /// `KVM_GET_STATS_FD`.
    pub source: String,
    /// The VM's stats id (`kvm-<pid>`).
    pub vm_id: String,
    /// The statistics the VM's and a vCPU's files describe.
    pub vm_stats: Vec<String>,
    pub vcpu_stats: Vec<String>,
    pub phases: Vec<KvmPhaseStats>,
}

/// Why a calibration has no KVM statistics.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KvmStatsUnavailable {
    pub unavailable: String,
}

/// KVM's statistics, or why there are none.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum KvmStats {
    Read(KvmStatsRead),
    Unavailable(KvmStatsUnavailable),
}

/// What the write-protect figure measured (`rmap_workloads::kvm::figure`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KvmWriteProtect {
    /// `rmap-walk`, `partial`, `bitmap-only` or `unknown`.
    pub measured: String,
    /// Whether the figure may be set beside a simulated rmap walk.
    pub rmap_walk: bool,
    /// The sentence the summary prints.
    pub statement: String,
    pub rounds: u64,
    pub sptes_4k_min: u64,
    pub sptes_4k_max: u64,
    pub sptes_huge_max: u64,
    pub dirty_pages_max: u64,
    pub refaults: u64,
    pub refault_pages: u64,
    pub refaults_per_page: f64,
    pub emulated_insns_per_page: f64,
    pub emulated_writes_per_page: f64,
}

/// One lockstep iteration of the real VM.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KvmIteration {
    pub dirty_memory_ns: u64,
    pub get_ns: u64,
    pub clear_ns: u64,
    pub dirty_pages: u64,
    pub written_pages: u64,
    pub lost_pages: u64,
    pub stale_pages: u64,
    /// KVM's statistics over the pass and over the round (absent: not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kvm_stats: Option<KvmIterationStats>,
}

/// One vCPU of the real VM: its share, passes, and the words read back from
/// the first and last page of the share.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KvmVcpu {
    pub id: u32,
    pub first_page: u64,
    pub pages: u64,
    pub passes: u64,
    pub first_word: u64,
    pub last_word: u64,
    pub stale_pages: u64,
}

/// One free-running phase of the real VM.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KvmLive {
    pub elapsed_ns: u64,
    pub passes: u64,
    pub pages: u64,
    pub pages_per_s: f64,
    pub passes_per_s: f64,
    pub capped: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PerfValue {
    pub supported: bool,
    /// Scaled for multiplexing (value * enabled / running), as `perf stat`.
    pub value: Option<f64>,
    pub time_enabled_ns: u64,
    pub time_running_ns: u64,
    /// Why the event is not supported (for example the errno name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Value per operation of the role (for example per write-protect walk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_op: Option<f64>,
}

/// Why a file could not be read as a result.
#[derive(Debug)]
pub struct ResultError(pub String);

impl std::fmt::Display for ResultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ResultError {}

impl RunResult {
    /// Read and validate one result file; the error names the file and the
    /// problem in one line.
    pub fn load(path: &Path) -> Result<RunResult, ResultError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ResultError(format!("{}: cannot read: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| ResultError(format!("{}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> Result<RunResult, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
        match v.get("schema").and_then(|s| s.as_str()) {
            Some(SCHEMA) => {}
            Some(other) => return Err(format!("schema is '{other}', expected '{SCHEMA}'")),
            None => {
                return Err(format!(
                    "not an rmap-lab result (no \"schema\": \"{SCHEMA}\")"
                ))
            }
        }
        serde_json::from_value(v).map_err(|e| format!("invalid {SCHEMA} result: {e}"))
    }

    /// Write atomically to `path` (temporary file, fsync, rename),
    /// replacing what is there, making its directory first: a result's
    /// directory is the `--out` the user asked for.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        write_atomic(path, &self.to_json())
    }

    /// Write atomically to a new file in `dir` (made if need be: the
    /// `--out` the user asked for) named `<base>.json`, or `<base>-<n>.json`
    /// when that is taken, never replacing one (`record::file::write_new`).
    /// Returns the path written.
    pub fn save_new(&self, dir: &Path, base: &str) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        super::file::write_new(dir, base, "json", &self.to_json())
    }

    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a result always serialises")
    }

    pub fn metric(&self, name: &str) -> Option<&MetricSummary> {
        self.metrics.get(name)
    }
}

impl MetricSummary {
    /// Summarise a latency histogram, keeping the whole histogram
    /// (HdrHistogram V2 + DEFLATE, base64) so percentiles can be merged
    /// across runs later.
    pub fn from_histogram(h: &Histogram<u64>) -> MetricSummary {
        use base64::Engine;
        use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(h, &mut bytes)
            .expect("serialising a histogram into a Vec cannot fail");
        MetricSummary {
            count: h.len(),
            min_ns: h.min(),
            p50_ns: h.value_at_quantile(0.50),
            p90_ns: h.value_at_quantile(0.90),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            mean_ns: h.mean(),
            hdr: base64::engine::general_purpose::STANDARD.encode(bytes),
            sample_every: None,
            resolution_ns: None,
        }
    }

    /// The full histogram back from `hdr`.
    pub fn histogram(&self) -> Result<Histogram<u64>, String> {
        use base64::Engine;
        use hdrhistogram::serialization::Deserializer;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.hdr.as_bytes())
            .map_err(|e| format!("histogram is not base64 ({e})"))?;
        Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram does not decode ({e:?})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_survives_the_result_file() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 2).unwrap();
        for v in [100u64, 200, 300, 5_000, 1_000_000] {
            h.record(v).unwrap();
        }
        let s = MetricSummary::from_histogram(&h);
        assert_eq!(s.count, 5);
        assert_eq!(s.min_ns, 100);
        assert!(s.max_ns >= 1_000_000 && s.max_ns < 1_010_000);
        let back = s.histogram().unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        let bad = MetricSummary {
            hdr: "!!".into(),
            ..s
        };
        assert!(bad.histogram().is_err());
    }

    /// A committed result file: loads into the typed sections of its
    /// producer, and writes back exactly what was read.
    fn round_trip(rel: &str) -> RunResult {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../results/reference")
            .join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        let r = RunResult::load(&path).unwrap();
        let back: serde_json::Value = serde_json::to_value(&r).unwrap();
        let read: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, read, "{rel} does not write back as it was read");
        r
    }

    #[test]
    fn reference_results_load_typed_and_write_back_unchanged() {
        for rel in [
            "sweep/concurrent-map-dirty-log-a4-e3-2v-r0.json",
            "sweep/lockless-6.4-dirty-log-a4-e3-32v-r4.json",
            "sweep/mmu-lock-dirty-log-a4-e3-32v-r1.json",
            "sweep/lockless-idle-a4-e3-2v-r0.json",
            "calibrate/sim/seqlock-dirty-log-a1-e3-4v-r0.json",
        ] {
            let r = round_trip(rel);
            let (Part::Vm(cfg), Part::Vm(c), Part::Vm(_), Part::Vm(d)) =
                (&r.config.part, &r.counters.part, &r.machine.part, &r.detail)
            else {
                panic!("{rel}: not read as the simulated VM's: {r:?}")
            };
            assert!(
                ["uniform", "sequential"].contains(&cfg.pattern.as_str()),
                "{rel}"
            );
            assert!(c.sptes_visited >= c.sptes_protected, "{rel}");
            assert!(!d.perf_hardware_layout.is_empty(), "{rel}");
            assert!(r.throughput.guest_writes.is_some() && r.throughput.other.is_empty());
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference/calibrate");
        let mut kvm = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if !name.starts_with("host-kvm-") {
                continue;
            }
            let r = round_trip(&format!("calibrate/{name}"));
            let (Part::Kvm(cfg), Part::Kvm(c), Part::Kvm(m), Part::Kvm(d)) =
                (&r.config.part, &r.counters.part, &r.machine.part, &r.detail)
            else {
                panic!("{name}: not read as the real VM's: {r:?}")
            };
            assert_eq!(cfg.iterations as usize, d.per_iteration.len(), "{name}");
            assert_eq!(c.pages_harvested, c.dirty_pages, "{name}");
            assert!(
                m.kvm.max_vcpus > 0 && r.throughput.passes.is_some(),
                "{name}"
            );
            kvm += 1;
        }
        assert_eq!(kvm, 9, "three runs at each of 1, 2 and 4 vCPUs");
    }

    #[test]
    fn a_section_of_another_producer_is_kept_as_it_is() {
        // The simulated VM's config less one field, plus one of its own:
        // neither producer's, so every key comes back, `null`s included.
        let text = format!(
            r#"{{"schema":"{SCHEMA}","impl":"x","workload":"w",
            "config":{{"vcpus":1,"seed":1,"desc_ext":3,"aliases":1,"mem_bytes":4096,
                      "duration_s":1.0,"wp_batch":null,"mine":[1,2]}},
            "machine":{{"online_cpus":2,"cpu_model":"c","kernel":"k","hostname":"h",
                       "oversubscribed":false,"clock_source":"tsc","worker_threads":3,"gpu":"none"}},
            "lab_version":"0","started_at":"t","duration_s":1.0,"interrupted":false,
            "verdict":{{"lost_writes":0,"rmap_inconsistencies":0,"ok":true,"lost_write_gfns":[]}},
            "metrics":{{}},
            "counters":{{"walks":0,"restarts":0,"restarts_by_reason":{{}},"guest_writes":5,
                        "faults_fast":0,"faults_slow":0,"zaps":0,"rounds":0,"bananas":7}},
            "throughput":{{"vcpu.writes":2.5}},"perf":{{}},"warnings":[],"rounds":[],
            "perf_hardware_layout":"pairs","extra_top":true}}"#
        );
        let r = RunResult::parse(&text).unwrap();
        assert!(
            matches!(r.config.part, Part::Other(ref m) if m["wp_batch"].is_null() && m.len() == 3)
        );
        assert!(matches!(r.machine.part, Part::Other(ref m) if m.len() == 2));
        assert_eq!(r.counters.get("bananas"), Some(7));
        assert_eq!(r.counters.get("guest_writes"), Some(5));
        assert_eq!(r.counters.get("restarts_by_reason.foreign-nulls"), Some(0));
        assert_eq!(r.counters.get("restarts_by_reason"), None);
        assert_eq!(r.throughput.get("vcpu.writes"), Some(2.5));
        assert!(matches!(r.detail, Part::Other(ref m) if m.len() == 2));
        let back = serde_json::to_value(&r).unwrap();
        let read: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, read);
    }

    #[test]
    fn foreign_json_is_named_not_panicked() {
        assert!(RunResult::parse("{").unwrap_err().contains("not JSON"));
        assert!(RunResult::parse("{\"a\":1}")
            .unwrap_err()
            .contains("not an rmap-lab result"));
        assert!(RunResult::parse("{\"schema\":\"other/v9\"}")
            .unwrap_err()
            .contains("expected"));
        assert!(RunResult::parse(&format!("{{\"schema\":\"{SCHEMA}\"}}"))
            .unwrap_err()
            .contains("invalid"));
    }
}

/// Now, as RFC 3339 in UTC with milliseconds (`2026-11-25T18:53:44.120Z`).
pub fn utc_now() -> String {
    utc_stamps(std::time::SystemTime::now()).0
}

/// The one timestamp format of the lab's file names: the RFC 3339 UTC time
/// of [`utc_now`] without its `-` and `:` separators (ISO 8601's basic
/// form), to the millisecond: `20261125T185344.120Z`. It sorts as time
/// does and is unique enough for runs started one after another.
const FILE_STAMP: &str = "%Y%m%dT%H%M%S%.3fZ";
const RFC3339_MS: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

/// `t` as RFC 3339 in UTC with milliseconds, and as a file-name stamp
/// ([`FILE_STAMP`]).
pub fn utc_stamps(t: std::time::SystemTime) -> (String, String) {
    let ts = jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    (
        ts.strftime(RFC3339_MS).to_string(),
        ts.strftime(FILE_STAMP).to_string(),
    )
}

/// The file-name stamp of an RFC 3339 time (a result's `started_at`), or
/// `None` when it is not one.
pub fn file_stamp_of(rfc3339: &str) -> Option<String> {
    let ts: jiff::Timestamp = rfc3339.parse().ok()?;
    Some(ts.strftime(FILE_STAMP).to_string())
}

#[cfg(test)]
mod time_tests {
    use super::{file_stamp_of, utc_stamps};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn utc_stamps_are_rfc3339() {
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // 2000-02-29
        assert_eq!(utc_stamps(t).0, "2000-02-29T00:00:00.123Z");
        assert_eq!(utc_stamps(t).1, "20000229T000000.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_632_824);
        assert_eq!(utc_stamps(t).0, "2026-11-25T18:53:44.000Z");
        assert_eq!(
            file_stamp_of("2026-11-25T18:53:44.120Z").as_deref(),
            Some("20261125T185344.120Z")
        );
        assert_eq!(file_stamp_of("yesterday"), None);
    }
}
