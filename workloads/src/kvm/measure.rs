//! The measurement loop: vCPU threads, the host's handshake with them, and
//! the phases of one calibration.
//!
//! Each vCPU has a thread that calls `KVM_RUN` once per guest pass (the
//! guest exits with an `out` at the end of every pass, [`super::guest`]).
//! Between passes the thread asks the shared `Control` whether it may run
//! another: it may when the host has granted it a pass (*lockstep*: one
//! credit per vCPU per iteration, as the kernel's `dirty_log_perf_test`
//! does it) or when the host lets all vCPUs run freely (*live*). Every
//! completed pass is counted under the control's mutex, so the host always
//! knows exactly how many passes each vCPU finished, and, once no vCPU is
//! inside `KVM_RUN`, exactly what every data page holds and which pages the
//! guest dirtied since the last harvest.
//!
//! The phases, in order:
//!
//! 1. **populate**: one pass of every vCPU, dirty logging off (each first
//!    write faults in an spte). Timed from the grant to the last vCPU done.
//! 2. **live, no dirty log**: vCPUs run freely for `--duration` (and at
//!    least [`MIN_LIVE_PASSES`] passes each); the baseline throughput.
//! 3. **enable** dirty logging on the data memslot (timed).
//! 4. **iterations** (`--iterations`): each vCPU does one pass, then the
//!    host harvests with `KVM_GET_DIRTY_LOG` (+ `KVM_CLEAR_DIRTY_LOG` in
//!    clear mode) while the vCPUs wait. Every data page was written once,
//!    so every page must be in the harvest (a missing one is a write the
//!    previous round's write-protect let through: a lost write), and every
//!    page must hold `pass << 32 | vcpu` for its owner's last pass.
//! 5. **quiescent round**: one more harvest with the vCPUs stopped; it must
//!    be empty (the previous round cleared everything, nothing wrote since).
//! 6. **live, dirty log**: vCPUs run freely for `--duration` while the host
//!    runs rounds back to back, as a migration thread would: the rounds'
//!    write-protect walks compete with the vCPUs' write faults for
//!    `mmu_lock`. Its throughput against phase 2 is the interference ratio.
//! 7. **disable** dirty logging (timed).
//!
//! All times come from `std::time::Instant` (CLOCK_MONOTONIC, as the kernel
//! test): every timed operation is an ioctl of microseconds or more.
//!
//! **KVM's statistics.** Where the kernel has binary statistics files
//! ([`super::stats`]), the host reads the VM's and every vCPU's at each
//! phase boundary and, in the iterations, before the pass, between the pass
//! and the round, and after the round; never inside a timed step. Each
//! phase and each iteration's pass and round carry the change ([`Delta`]),
//! and [`Calibration::write_protect`] tells from them what the rounds'
//! write-protect step had to do ([`super::figure`]). The live rounds, run
//! by the ten thousand back to back, get their phase's change only: reading
//! the VM's and every vCPU's file around each would slow the very rounds
//! whose rate the phase measures.

use super::figure::{self, RoundEvidence, WriteProtect};
use super::guest::{self, Privilege, Share};
use super::stats::{Delta, Reading, Sampler, StatsFd};
use super::vm::{DirtyLogMode, Vm, VmError};
use hdrhistogram::Histogram;
use kvm_ioctls::{VcpuExit, VcpuFd};
use std::path::Path;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Each vCPU completes at least this many passes in each live phase, however
/// short `--duration` is, so that each phase has a pass-time sample.
pub const MIN_LIVE_PASSES: u64 = 2;
/// A live phase stops after this multiple of `--duration` even if a vCPU has
/// not reached [`MIN_LIVE_PASSES`] (a warning says so).
const LIVE_CAP_FACTOR: u32 = 20;

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub vcpus: u32,
    pub mem_bytes: u64,
    pub iterations: u32,
    /// Length of each live phase.
    pub live: Duration,
    /// Forced dirty-log mode; `None` = clear where available.
    pub mode: Option<DirtyLogMode>,
    /// Pause between the rounds of the live phase with dirty logging
    /// (zero: back to back, as a migration thread that never copies).
    pub round_interval: Duration,
    /// The privilege the guest's pass loop runs at ([`guest`], module doc).
    pub privilege: Privilege,
}

/// A new latency histogram in ns: 1 ns to an hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// One dirty-log round.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Round {
    /// Seconds since the calibration started, at the start of the round.
    pub t_s: f64,
    pub get_ns: u64,
    /// `KVM_CLEAR_DIRTY_LOG` time; 0 in get mode.
    pub clear_ns: u64,
    /// Pages set in the harvested bitmap.
    pub dirty_pages: u64,
}

impl Round {
    pub fn round_ns(&self) -> u64 {
        self.get_ns + self.clear_ns
    }
}

/// One lockstep iteration (phase 4).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Iteration {
    /// From granting the pass to the last vCPU finishing it
    /// (dirty_log_perf_test's "dirty memory time").
    pub dirty_memory_ns: u64,
    pub round: Round,
    /// Pages the guest wrote in this iteration's pass.
    pub written_pages: u64,
    /// Written pages missing from the harvest.
    pub lost_pages: u64,
    /// Pages whose first word is not their owner's last pass value.
    pub stale_pages: u64,
    /// KVM's statistics over the pass and over the round (None: not read).
    pub pass_stats: Option<Delta>,
    pub round_stats: Option<Delta>,
}

/// A free-running phase (2 or 6).
#[derive(Clone, Debug)]
pub struct Live {
    pub elapsed_ns: u64,
    pub passes: u64,
    /// Pages written by completed passes.
    pub pages: u64,
    /// Time of each pass, one sample per completed pass.
    pub pass_ns: Histogram<u64>,
    /// The phase was cut at its time cap before every vCPU had
    /// [`MIN_LIVE_PASSES`] passes.
    pub capped: bool,
}

impl Live {
    fn new() -> Live {
        Live {
            elapsed_ns: 0,
            passes: 0,
            pages: 0,
            pass_ns: new_histogram(),
            capped: false,
        }
    }

    /// Pages written per second.
    pub fn pages_per_s(&self) -> f64 {
        if self.elapsed_ns == 0 {
            0.0
        } else {
            self.pages as f64 * 1e9 / self.elapsed_ns as f64
        }
    }

    pub fn passes_per_s(&self) -> f64 {
        if self.elapsed_ns == 0 {
            0.0
        } else {
            self.passes as f64 * 1e9 / self.elapsed_ns as f64
        }
    }
}

/// What the host found for one vCPU at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuReport {
    pub id: u32,
    pub share: Share,
    /// Passes completed over the whole calibration.
    pub passes: u64,
    /// First word of the first and last page of the share, read back from
    /// guest memory after the last pass.
    pub first_word: u64,
    pub last_word: u64,
    /// Pages of the share not holding `pass_value(passes, id)`.
    pub stale_pages: u64,
}

/// KVM's statistics over one phase of the calibration.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseStats {
    /// `populate`, `live_nolog`, `enable_dirty_log`, `iterations`,
    /// `quiescent_round`, `live_dirty_log` or `disable_dirty_log`.
    pub phase: &'static str,
    pub delta: Delta,
}

/// Where KVM's statistics came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsSource {
    /// The VM's stats id (`kvm-<pid>`).
    pub vm_id: String,
    /// Statistics the VM's and the first vCPU's files describe.
    pub vm_stats: Vec<String>,
    pub vcpu_stats: Vec<String>,
}

/// Everything one calibration measured.
#[derive(Clone, Debug)]
pub struct Calibration {
    pub mode: DirtyLogMode,
    pub privilege: Privilege,
    pub initially_set: bool,
    pub max_vcpus: usize,
    pub data_pages: u64,
    pub started: std::time::SystemTime,
    pub elapsed: Duration,
    pub interrupted: bool,
    pub populate_ns: u64,
    /// Per-vCPU time of its populate pass.
    pub populate_pass_ns: Histogram<u64>,
    pub enable_ns: Option<u64>,
    pub disable_ns: Option<u64>,
    pub iterations: Vec<Iteration>,
    /// Pages in a harvest taken with every vCPU stopped right after the last
    /// iteration's round; must be 0.
    pub quiescent_dirty_pages: Option<u64>,
    pub nolog: Option<Live>,
    pub log: Option<Live>,
    /// Rounds run back to back during the live phase with dirty logging.
    pub live_rounds: Vec<Round>,
    pub vcpus: Vec<VcpuReport>,
    /// Pages written by every completed pass of every vCPU.
    pub guest_writes: u64,
    /// KVM's statistics files, or why there are none.
    pub stats_source: Result<StatsSource, String>,
    /// KVM's statistics over each phase that ran, in order.
    pub phase_stats: Vec<PhaseStats>,
}

impl Calibration {
    /// What the lockstep rounds' write-protect step had to do, from KVM's
    /// statistics ([`figure::assess`]).
    pub fn write_protect(&self) -> WriteProtect {
        let evidence: Vec<_> = self
            .iterations
            .iter()
            .filter_map(|i| {
                Some(RoundEvidence {
                    dirty_pages: i.round.dirty_pages,
                    written_pages: i.written_pages,
                    pass: i.pass_stats.as_ref()?,
                    round: i.round_stats.as_ref()?,
                })
            })
            .collect();
        figure::assess(&evidence)
    }

    /// KVM's statistics over phase `name`, if it ran and they were read.
    pub fn phase(&self, name: &str) -> Option<&Delta> {
        self.phase_stats
            .iter()
            .find(|p| p.phase == name)
            .map(|p| &p.delta)
    }

    pub fn lost_pages(&self) -> u64 {
        self.iterations.iter().map(|i| i.lost_pages).sum()
    }

    pub fn stale_pages(&self) -> u64 {
        self.iterations.iter().map(|i| i.stale_pages).sum::<u64>()
            + self.vcpus.iter().map(|v| v.stale_pages).sum::<u64>()
    }

    /// Nothing lost, nothing stale, the quiescent harvest empty.
    pub fn ok(&self) -> bool {
        self.lost_pages() == 0
            && self.stale_pages() == 0
            && self.quiescent_dirty_pages.unwrap_or(0) == 0
    }

    /// vCPU throughput without dirty logging over throughput with it
    /// (pages written per second); 1.0 is no interference.
    pub fn interference_ratio(&self) -> Option<f64> {
        let (a, b) = (self.nolog.as_ref()?, self.log.as_ref()?);
        (b.pages_per_s() > 0.0).then(|| a.pages_per_s() / b.pages_per_s())
    }
}

/// What a vCPU thread may do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Populate,
    Nolog,
    Iterations,
    Log,
}

impl Phase {
    const COUNT: usize = 4;
    fn index(self) -> usize {
        self as usize
    }
}

/// The host/vCPU handshake, all under one mutex.
struct State {
    quit: bool,
    /// vCPUs start passes without credits.
    free_run: bool,
    phase: Phase,
    /// Passes each vCPU may still start (lockstep).
    credit: Vec<u64>,
    /// vCPU is inside a pass (`KVM_RUN`).
    running: Vec<bool>,
    /// Passes completed.
    done: Vec<u64>,
    /// The first vCPU failure, which ends the calibration.
    error: Option<String>,
}

struct Control {
    state: Mutex<State>,
    /// Signalled on every change of `State`.
    changed: Condvar,
}

impl Control {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A vCPU thread never panics while holding the lock; if one did,
        // the data is still consistent counters, so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>, timeout: Duration) -> MutexGuard<'a, State> {
        self.changed
            .wait_timeout(g, timeout)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0)
    }

    /// Wait until no vCPU is in a pass and no credit is left; returns the
    /// guard, or the vCPU error.
    fn wait_idle(&self) -> Result<MutexGuard<'_, State>, VmError> {
        let mut g = self.lock();
        loop {
            if let Some(e) = &g.error {
                return Err(VmError::Failed(e.clone()));
            }
            if !g.running.iter().any(|&r| r) && g.credit.iter().all(|&c| c == 0) {
                return Ok(g);
            }
            g = self.wait(g, Duration::from_millis(100));
        }
    }
}

/// Run one pass of the guest: `KVM_RUN` until its `out` to the pass port.
fn run_pass(vcpu: &mut VcpuFd, id: u32) -> Result<(), String> {
    loop {
        match vcpu.run() {
            Ok(VcpuExit::IoOut(port, _)) if port == guest::PASS_PORT => return Ok(()),
            Ok(VcpuExit::Intr) => continue,
            Ok(exit) => {
                let what = format!("{exit:?}");
                let rip = vcpu.get_regs().map(|r| r.rip).unwrap_or(0);
                return Err(format!(
                    "vCPU {id}: unexpected exit {what} at guest rip {rip:#x}"
                ));
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
            Err(e) => {
                return Err(format!(
                    "vCPU {id}: KVM_RUN: {}",
                    std::io::Error::from_raw_os_error(e.errno())
                ))
            }
        }
    }
}

/// A vCPU thread: passes as the control allows; returns its pass times per
/// phase.
fn vcpu_thread(id: u32, mut vcpu: VcpuFd, ctl: &Control) -> Vec<Histogram<u64>> {
    let i = id as usize;
    let mut hist: Vec<Histogram<u64>> = (0..Phase::COUNT).map(|_| new_histogram()).collect();
    loop {
        let phase = {
            let mut g = ctl.lock();
            loop {
                if g.quit {
                    return hist;
                }
                if g.free_run {
                    break;
                }
                if g.credit[i] > 0 {
                    g.credit[i] -= 1;
                    break;
                }
                g = ctl.changed.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            g.running[i] = true;
            g.phase
        };
        let t0 = Instant::now();
        let r = run_pass(&mut vcpu, id);
        let took = ns(t0.elapsed());
        let mut g = ctl.lock();
        g.running[i] = false;
        match r {
            Ok(()) => {
                g.done[i] += 1;
                if g.phase == phase {
                    hist[phase.index()].saturating_record(took);
                }
            }
            Err(e) => {
                g.error.get_or_insert(e);
                g.quit = true;
            }
        }
        ctl.changed.notify_all();
    }
}

/// The host side of one calibration.
struct Host<'a> {
    vm: &'a Vm,
    /// Set by the caller to stop early (Ctrl-C): the host checks it between
    /// steps and skips to the end, keeping what it measured.
    stop: &'a AtomicBool,
    ctl: &'a Control,
    shares: &'a [Share],
    start: Instant,
    bitmap: Vec<u64>,
    /// KVM's statistics files; dropped at the first failed read.
    sampler: Option<Sampler>,
    /// The reading at the end of the previous phase.
    mark: Option<Reading>,
}

impl Host<'_> {
    /// Read KVM's statistics now. A failed read ends sampling and is
    /// recorded; the calibration goes on without statistics.
    fn sample(&mut self, cal: &mut Calibration) -> Option<Reading> {
        match self.sampler.as_ref()?.read() {
            Ok(r) => Some(r),
            Err(e) => {
                cal.stats_source = Err(format!("reading KVM statistics failed mid-run: {e}"));
                cal.phase_stats.clear();
                self.sampler = None;
                None
            }
        }
    }

    /// Close phase `phase`: record KVM's statistics since the last mark.
    fn end_phase(&mut self, phase: &'static str, cal: &mut Calibration) {
        let now = self.sample(cal);
        if let (Some(before), Some(after)) = (&self.mark, &now) {
            cal.phase_stats.push(PhaseStats {
                phase,
                delta: Delta::between(before, after),
            });
        }
        self.mark = now;
    }

    /// Grant every vCPU one pass and wait until all are done; returns the
    /// time from the grant to the last completion.
    fn lockstep_pass(&self, phase: Phase) -> Result<u64, VmError> {
        let t0 = Instant::now();
        {
            let mut g = self.ctl.lock();
            g.phase = phase;
            g.credit.iter_mut().for_each(|c| *c += 1);
            self.ctl.changed.notify_all();
        }
        drop(self.ctl.wait_idle()?);
        Ok(ns(t0.elapsed()))
    }

    fn done(&self) -> Vec<u64> {
        self.ctl.lock().done.clone()
    }

    /// Harvest the dirty log (and clear it in clear mode), timed.
    fn round(&mut self) -> Result<Round, VmError> {
        let t_s = self.start.elapsed().as_secs_f64();
        let t0 = Instant::now();
        self.vm.get_dirty_log(&mut self.bitmap)?;
        let get_ns = ns(t0.elapsed());
        let mut clear_ns = 0;
        if self.vm.mode() == DirtyLogMode::Clear {
            let t0 = Instant::now();
            self.vm.clear_dirty_log(&mut self.bitmap)?;
            clear_ns = ns(t0.elapsed());
        }
        let dirty_pages = self.bitmap.iter().map(|w| w.count_ones() as u64).sum();
        Ok(Round {
            t_s,
            get_ns,
            clear_ns,
            dirty_pages,
        })
    }

    fn interrupted(&self) -> bool {
        // Relaxed: a flag polled between steps; nothing is published with it.
        self.stop.load(Ordering::Relaxed)
    }

    /// Data pages (of every share) whose bit is clear in the last harvest.
    fn missing_from_bitmap(&self) -> u64 {
        (0..self.vm.layout().data_pages)
            .filter(|&p| self.bitmap[(p / 64) as usize] & (1 << (p % 64)) == 0)
            .count() as u64
    }

    /// Pages of vCPU `i`'s share not holding its pass-`passes` value.
    fn stale_in_share(&self, i: usize, passes: u64) -> u64 {
        let s = self.shares[i];
        let want = guest::pass_value(passes, i as u32);
        (s.first..s.first + s.pages)
            .filter(|&p| self.vm.data_word(p) != want)
            .count() as u64
    }

    fn stale_pages(&self, done: &[u64]) -> u64 {
        (0..self.shares.len())
            .map(|i| self.stale_in_share(i, done[i]))
            .sum()
    }

    /// Let the vCPUs run freely for `live` (and until each has
    /// [`MIN_LIVE_PASSES`] passes), running `between` over and over on the
    /// host meanwhile; then stop them at the end of their current pass.
    fn live_phase(
        &mut self,
        phase: Phase,
        live: Duration,
        mut between: impl FnMut(&mut Self) -> Result<(), VmError>,
    ) -> Result<Live, VmError> {
        let before = self.done();
        let t0 = Instant::now();
        {
            let mut g = self.ctl.lock();
            g.phase = phase;
            g.free_run = true;
            self.ctl.changed.notify_all();
        }
        let cap = live * LIVE_CAP_FACTOR;
        let mut capped = false;
        let mut checked = t0;
        loop {
            between(self)?;
            // Look at the clock and the vCPUs' progress once a millisecond,
            // not after every round: the mutex is the vCPUs' too.
            if checked.elapsed() < Duration::from_millis(1) {
                continue;
            }
            checked = Instant::now();
            let elapsed = t0.elapsed();
            let g = self.ctl.lock();
            if let Some(e) = &g.error {
                return Err(VmError::Failed(e.clone()));
            }
            let enough = g
                .done
                .iter()
                .zip(&before)
                .all(|(d, b)| d - b >= MIN_LIVE_PASSES);
            if self.interrupted() || (elapsed >= live && enough) {
                break;
            }
            if elapsed >= cap.max(Duration::from_secs(10)) {
                capped = true;
                break;
            }
        }
        {
            let mut g = self.ctl.lock();
            g.free_run = false;
        }
        let after = {
            let g = self.ctl.wait_idle()?;
            g.done.clone()
        };
        let mut out = Live::new();
        out.elapsed_ns = ns(t0.elapsed());
        out.capped = capped;
        for (i, s) in self.shares.iter().enumerate() {
            let n = after[i] - before[i];
            out.passes += n;
            out.pages += n * s.pages;
        }
        Ok(out)
    }
}

/// Run one calibration on a fresh VM of the KVM device `device`. Setting
/// `stop` ends it early; what was measured is kept and marked interrupted.
pub fn calibrate_on(device: &Path, plan: &Plan, stop: &AtomicBool) -> Result<Calibration, VmError> {
    let vm = Vm::new(device, plan.mem_bytes, plan.mode)?;
    let shares = guest::shares(vm.layout().data_pages, plan.vcpus);
    let n = plan.vcpus as usize;
    let mut vcpus = Vec::with_capacity(n);
    for (id, s) in shares.iter().enumerate() {
        vcpus.push(vm.create_vcpu(id as u32, *s, plan.privilege)?);
    }
    let sampler = open_stats(&vm, &vcpus);
    let ctl = Control {
        state: Mutex::new(State {
            quit: false,
            free_run: false,
            phase: Phase::Populate,
            credit: vec![0; n],
            running: vec![false; n],
            done: vec![0; n],
            error: None,
        }),
        changed: Condvar::new(),
    };
    let started = std::time::SystemTime::now();
    let mut cal = Calibration {
        mode: vm.mode(),
        privilege: plan.privilege,
        initially_set: vm.initially_set(),
        max_vcpus: vm.max_vcpus(),
        data_pages: vm.layout().data_pages,
        started,
        elapsed: Duration::ZERO,
        interrupted: false,
        populate_ns: 0,
        populate_pass_ns: new_histogram(),
        enable_ns: None,
        disable_ns: None,
        iterations: Vec::new(),
        quiescent_dirty_pages: None,
        nolog: None,
        log: None,
        live_rounds: Vec::new(),
        vcpus: Vec::new(),
        guest_writes: 0,
        stats_source: sampler
            .as_ref()
            .map(|(_, src)| src.clone())
            .map_err(Clone::clone),
        phase_stats: Vec::new(),
    };
    let mut host = Host {
        vm: &vm,
        stop,
        ctl: &ctl,
        shares: &shares,
        start: Instant::now(),
        bitmap: vec![0; vm.bitmap_words()],
        sampler: sampler.ok().map(|(s, _)| s),
        mark: None,
    };
    let hists = std::thread::scope(|scope| {
        let threads: Vec<_> = vcpus
            .into_iter()
            .enumerate()
            .map(|(id, v)| {
                let ctl = &ctl;
                std::thread::Builder::new()
                    .name(format!("vcpu{id}"))
                    .spawn_scoped(scope, move || vcpu_thread(id as u32, v, ctl))
                    .expect("spawning a vCPU thread")
            })
            .collect();
        let r = host_phases(plan, &mut host, &mut cal);
        {
            let mut g = ctl.lock();
            g.quit = true;
            ctl.changed.notify_all();
        }
        let hists: Vec<Vec<Histogram<u64>>> = threads
            .into_iter()
            .map(|t| t.join().expect("a vCPU thread panicked"))
            .collect();
        r.map(|()| hists)
    })?;
    let merged = |p: Phase| {
        let mut h = new_histogram();
        for v in &hists {
            h.add(&v[p.index()]).expect("same bounds");
        }
        h
    };
    cal.populate_pass_ns = merged(Phase::Populate);
    if let Some(l) = cal.nolog.as_mut() {
        l.pass_ns = merged(Phase::Nolog);
    }
    if let Some(l) = cal.log.as_mut() {
        l.pass_ns = merged(Phase::Log);
    }
    // The guest really ran: read every page back against its owner's count.
    let done = host.done();
    cal.guest_writes = shares.iter().zip(&done).map(|(s, d)| s.pages * d).sum();
    cal.vcpus = shares
        .iter()
        .enumerate()
        .map(|(i, s)| VcpuReport {
            id: i as u32,
            share: *s,
            passes: done[i],
            first_word: vm.data_word(s.first),
            last_word: vm.data_word(s.first + s.pages - 1),
            stale_pages: host.stale_in_share(i, done[i]),
        })
        .collect();
    cal.elapsed = host.start.elapsed();
    cal.interrupted = host.interrupted();
    Ok(cal)
}

/// The VM's and every vCPU's statistics files, or why there are none.
fn open_stats(vm: &Vm, vcpus: &[VcpuFd]) -> Result<(Sampler, StatsSource), String> {
    if !vm.has_binary_stats() {
        return Err("this kernel lacks KVM_CAP_BINARY_STATS_FD (Linux 5.14 and later)".into());
    }
    let vm_file = vm.stats_fd()?;
    let vcpu_files = vcpus
        .iter()
        .map(StatsFd::open)
        .collect::<Result<Vec<_>, _>>()?;
    let names = |f: &StatsFd| f.schema().descs.iter().map(|d| d.name.clone()).collect();
    let source = StatsSource {
        vm_id: vm_file.schema().id.clone(),
        vm_stats: names(&vm_file),
        vcpu_stats: vcpu_files.first().map(names).unwrap_or_default(),
    };
    Ok((Sampler::new(vm_file, vcpu_files), source))
}

/// Phases 1-7 (module doc); stops early, keeping what it has, on Ctrl-C.
fn host_phases(plan: &Plan, host: &mut Host, cal: &mut Calibration) -> Result<(), VmError> {
    host.mark = host.sample(cal);
    cal.populate_ns = host.lockstep_pass(Phase::Populate)?;
    host.end_phase("populate", cal);
    if host.interrupted() {
        return Ok(());
    }
    cal.nolog = Some(host.live_phase(Phase::Nolog, plan.live, |h| {
        // Nothing to do on the host: wait for the vCPUs or the clock.
        let g = h.ctl.lock();
        drop(h.ctl.wait(g, Duration::from_millis(10)));
        Ok(())
    })?);
    host.end_phase("live_nolog", cal);
    if host.interrupted() {
        return Ok(());
    }
    let t0 = Instant::now();
    host.vm.set_dirty_logging(true)?;
    cal.enable_ns = Some(ns(t0.elapsed()));
    host.end_phase("enable_dirty_log", cal);

    for _ in 0..plan.iterations {
        if host.interrupted() {
            break;
        }
        let before_pass = host.sample(cal);
        let dirty_memory_ns = host.lockstep_pass(Phase::Iterations)?;
        let done = host.done();
        let stale_pages = host.stale_pages(&done);
        let before_round = host.sample(cal);
        let round = host.round()?;
        let after_round = host.sample(cal);
        let delta = |a: &Option<Reading>, b: &Option<Reading>| {
            Some(Delta::between(a.as_ref()?, b.as_ref()?))
        };
        cal.iterations.push(Iteration {
            dirty_memory_ns,
            round,
            written_pages: host.shares.iter().map(|s| s.pages).sum(),
            lost_pages: host.missing_from_bitmap(),
            stale_pages,
            pass_stats: delta(&before_pass, &before_round),
            round_stats: delta(&before_round, &after_round),
        });
    }
    host.end_phase("iterations", cal);
    if !cal.iterations.is_empty() {
        cal.quiescent_dirty_pages = Some(host.round()?.dirty_pages);
        host.end_phase("quiescent_round", cal);
    }
    if !host.interrupted() {
        let mut rounds = Vec::new();
        cal.log = Some(host.live_phase(Phase::Log, plan.live, |h| {
            rounds.push(h.round()?);
            if !plan.round_interval.is_zero() {
                std::thread::sleep(plan.round_interval);
            }
            Ok(())
        })?);
        cal.live_rounds = rounds;
        host.end_phase("live_dirty_log", cal);
    }
    let t0 = Instant::now();
    host.vm.set_dirty_logging(false)?;
    cal.disable_ns = Some(ns(t0.elapsed()));
    host.end_phase("disable_dirty_log", cal);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_counts_every_kind_of_failure() {
        let it = Iteration {
            written_pages: 64,
            ..Default::default()
        };
        let mut cal = Calibration {
            mode: DirtyLogMode::Clear,
            privilege: Privilege::User,
            initially_set: true,
            max_vcpus: 1,
            data_pages: 64,
            started: std::time::SystemTime::now(),
            elapsed: Duration::ZERO,
            interrupted: false,
            populate_ns: 1,
            populate_pass_ns: new_histogram(),
            enable_ns: None,
            disable_ns: None,
            iterations: vec![it.clone(), it],
            quiescent_dirty_pages: Some(0),
            nolog: None,
            log: None,
            live_rounds: vec![],
            vcpus: vec![],
            guest_writes: 128,
            stats_source: Err("not read".into()),
            phase_stats: vec![],
        };
        assert!(cal.ok());
        assert_eq!(cal.interference_ratio(), None);
        cal.iterations[1].lost_pages = 3;
        assert_eq!(cal.lost_pages(), 3);
        assert!(!cal.ok());
        cal.iterations[1].lost_pages = 0;
        cal.quiescent_dirty_pages = Some(1);
        assert!(!cal.ok());
        cal.quiescent_dirty_pages = Some(0);
        cal.iterations[0].stale_pages = 2;
        assert!(!cal.ok());
        cal.iterations[0].stale_pages = 0;
        let live = |pages, elapsed_ns| Live {
            elapsed_ns,
            pages,
            ..Live::new()
        };
        cal.nolog = Some(live(1000, 1_000_000_000));
        cal.log = Some(live(500, 1_000_000_000));
        assert_eq!(cal.interference_ratio(), Some(2.0));
    }
}
