//! The real VM: `/dev/kvm`, two memslots, vCPUs in long mode, and the
//! dirty-log ioctls, timed by the caller.
//!
//! Memslot 0 (the *setup* slot) holds the GDT, the code and the guest page
//! tables ([`guest::Layout`]); it never has a dirty log. Memslot 1 (the
//! *data* slot) is the memory the vCPUs write; dirty logging is switched on
//! and off on it alone with `KVM_SET_USER_MEMORY_REGION` and the
//! `KVM_MEM_LOG_DIRTY_PAGES` flag (a flags-only change, as QEMU and the
//! kernel's selftests do it). Both are anonymous private host mappings.
//!
//! Two dirty-log modes, as in the kernel's `dirty_log_perf_test`:
//!
//! - [`DirtyLogMode::Clear`] (`KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2` enabled,
//!   with `KVM_DIRTY_LOG_INITIALLY_SET` where offered): `KVM_GET_DIRTY_LOG`
//!   only copies the bitmap out, and `KVM_CLEAR_DIRTY_LOG` clears the bits
//!   it is given and write-protects those pages' sptes. With INITIALLY_SET,
//!   enabling dirty logging write-protects nothing: every bit starts set and
//!   the first clear does the work.
//! - [`DirtyLogMode::Get`] (the classic protocol): `KVM_GET_DIRTY_LOG`
//!   fetches-and-clears the bitmap and write-protects the harvested pages
//!   in one call; enabling dirty logging write-protects the whole slot.
//!
//! The host's shadow MMU write-protects by walking each dirty gfn's rmap,
//! which is what the lab's simulated designs model, provided the guest's
//! pages have sptes at all: on `kvm_pvm` a CPL 0 guest has none
//! ([`super::guest`]), and [`super::figure`] tells from KVM's statistics
//! which a run had. Both fds also give KVM's statistics ([`super::stats`]). `kvm-ioctls` 0.25 has
//! no `KVM_CLEAR_DIRTY_LOG` and allocates a fresh bitmap per
//! `KVM_GET_DIRTY_LOG`, so both are issued here directly on the VM fd with
//! a bitmap the caller reuses (an allocation is not part of what is timed).

use super::guest::{self, Layout, Privilege, Share};
use super::stats::StatsFd;
use kvm_bindings::CpuId;
use kvm_bindings::{
    kvm_clear_dirty_log, kvm_dirty_log, kvm_enable_cap, kvm_regs, kvm_segment,
    kvm_userspace_memory_region, KVM_CAP_BINARY_STATS_FD, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
    KVM_DIRTY_LOG_INITIALLY_SET, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE, KVM_MAX_CPUID_ENTRIES,
    KVM_MEM_LOG_DIRTY_PAGES,
};
use kvm_ioctls::{Cap, Kvm, VcpuFd, VmFd};
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;

/// Why the VM could not be used.
#[derive(Debug)]
pub enum VmError {
    /// KVM is absent or lacks something `lab calibrate` needs.
    Unavailable(String),
    /// An ioctl failed on a VM that was set up.
    Failed(String),
}

impl std::fmt::Display for VmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VmError::Unavailable(m) | VmError::Failed(m) => f.write_str(m),
        }
    }
}

/// `what: strerror (errno name)` for a failed ioctl.
fn os_error(what: &str, e: kvm_ioctls::Error) -> String {
    format!("{what}: {}", std::io::Error::from_raw_os_error(e.errno()))
}

/// How a dirty-log round harvests and write-protects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirtyLogMode {
    /// Manual protection: `KVM_GET_DIRTY_LOG` then `KVM_CLEAR_DIRTY_LOG`.
    Clear,
    /// `KVM_GET_DIRTY_LOG` alone (fetch, clear and write-protect).
    Get,
}

impl DirtyLogMode {
    pub fn name(self) -> &'static str {
        match self {
            DirtyLogMode::Clear => "clear",
            DirtyLogMode::Get => "get",
        }
    }
}

// ioctl numbers, as the kernel's _IOW/_IOWR macros build them: direction in
// bits 30-31 (1 = write, 3 = read|write), argument size in 16-29, type 0xAE
// (KVMIO) in 8-15, number in 0-7.
const fn kvm_ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (0xae << 8) | nr
}
/// `_IOW(KVMIO, 0x42, struct kvm_dirty_log)`.
pub const KVM_GET_DIRTY_LOG: u64 = kvm_ioc(1, 0x42, std::mem::size_of::<kvm_dirty_log>());
/// `_IOWR(KVMIO, 0xc0, struct kvm_clear_dirty_log)`.
pub const KVM_CLEAR_DIRTY_LOG: u64 = kvm_ioc(3, 0xc0, std::mem::size_of::<kvm_clear_dirty_log>());

/// An anonymous private mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: u64, what: &str) -> Result<Mapping, VmError> {
        let len = usize::try_from(len)
            .map_err(|_| VmError::Failed(format!("{what}: {len} bytes do not fit")))?;
        // SAFETY: a fresh anonymous mapping chosen by the kernel aliases no
        // Rust object; the result is checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(VmError::Failed(format!(
                "cannot map {what} ({len} bytes): {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(Mapping {
            ptr: NonNull::new(p.cast()).expect("mmap never returns NULL on success"),
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and the VM that
        // used the mapping as guest memory is dropped before (field order of
        // `Vm`), so nothing touches it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

const SETUP_SLOT: u32 = 0;
/// The dirty-logged memslot.
pub const DATA_SLOT: u32 = 1;

/// A VM with its two memslots, ready for vCPUs.
///
/// Field order matters: the VM fd closes before the mappings go away.
pub struct Vm {
    fd: VmFd,
    cpuid: CpuId,
    layout: Layout,
    mode: DirtyLogMode,
    initially_set: bool,
    max_vcpus: usize,
    setup: Mapping,
    data: Mapping,
}

/// Open the KVM device (normally `/dev/kvm`) and check what `lab calibrate`
/// needs, without creating a VM: a cheap probe for the graceful-absence path.
fn open_kvm(device: &Path) -> Result<Kvm, VmError> {
    let cannot = |why: String| {
        VmError::Unavailable(format!(
            "KVM is not usable here: cannot open {}: {why}",
            device.display()
        ))
    };
    let path = CString::new(device.as_os_str().as_bytes())
        .map_err(|_| cannot("the path contains a NUL byte".into()))?;
    let kvm = Kvm::new_with_path(&path)
        .map_err(|e| cannot(std::io::Error::from_raw_os_error(e.errno()).to_string()))?;
    if kvm.get_api_version() != 12 {
        return Err(VmError::Unavailable(format!(
            "KVM is not usable here: /dev/kvm speaks API version {}, expected 12",
            kvm.get_api_version()
        )));
    }
    if !kvm.check_extension(Cap::UserMemory) {
        return Err(VmError::Unavailable(
            "KVM is not usable here: no KVM_CAP_USER_MEMORY".into(),
        ));
    }
    Ok(kvm)
}

impl Vm {
    /// Create a VM whose data memslot has `data_bytes` (a multiple of
    /// [`guest::PAGE_SIZE`]); dirty logging starts off. `want` forces a
    /// dirty-log mode; `None` takes [`DirtyLogMode::Clear`] where the kernel
    /// offers it.
    pub fn new(device: &Path, data_bytes: u64, want: Option<DirtyLogMode>) -> Result<Vm, VmError> {
        let kvm = open_kvm(device)?;
        let fd = kvm.create_vm().map_err(|e| {
            VmError::Unavailable(os_error("KVM is not usable here: KVM_CREATE_VM", e))
        })?;
        let manual_caps = fd.check_extension_raw(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2.into()) as u64;
        let mode = match (
            want,
            manual_caps & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE as u64 != 0,
        ) {
            (Some(DirtyLogMode::Clear), false) => {
                return Err(VmError::Unavailable(
                    "KVM is not usable here: --dirty-log-mode clear needs \
                     KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, which this kernel lacks"
                        .into(),
                ))
            }
            (Some(m), _) => m,
            (None, true) => DirtyLogMode::Clear,
            (None, false) => DirtyLogMode::Get,
        };
        let mut initially_set = false;
        if mode == DirtyLogMode::Clear {
            // As dirty_log_perf_test: both flags where the kernel has them.
            let flags = manual_caps
                & (KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET) as u64;
            let mut cap = kvm_enable_cap {
                cap: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
                ..Default::default()
            };
            cap.args[0] = flags;
            fd.enable_cap(&cap).map_err(|e| {
                VmError::Unavailable(os_error(
                    "KVM is not usable here: enabling KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2",
                    e,
                ))
            })?;
            initially_set = flags & KVM_DIRTY_LOG_INITIALLY_SET as u64 != 0;
        }
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| {
                VmError::Unavailable(os_error(
                    "KVM is not usable here: KVM_GET_SUPPORTED_CPUID",
                    e,
                ))
            })?;
        let layout = Layout::new(data_bytes);
        let setup = Mapping::new(layout.setup_bytes, "the setup memslot")?;
        let data = Mapping::new(data_bytes, "the data memslot")?;
        {
            // SAFETY: the mapping is `len` bytes, readable and writable,
            // zero-filled, and no vCPU exists yet, so this is the only
            // reference to it.
            let bytes = unsafe { std::slice::from_raw_parts_mut(setup.ptr.as_ptr(), setup.len) };
            layout.write_setup(bytes);
        }
        let max_vcpus = kvm.get_max_vcpus();
        let vm = Vm {
            fd,
            cpuid,
            layout,
            mode,
            initially_set,
            max_vcpus,
            setup,
            data,
        };
        vm.set_region(SETUP_SLOT, 0, &vm.setup, 0)
            .map_err(|e| VmError::Unavailable(format!("KVM is not usable here: {e}")))?;
        vm.set_region(DATA_SLOT, guest::DATA_GPA, &vm.data, 0)?;
        Ok(vm)
    }

    /// The most vCPUs this kernel allows in one VM, without creating one.
    pub fn probe_max_vcpus(device: &Path) -> Result<usize, VmError> {
        Ok(open_kvm(device)?.get_max_vcpus())
    }

    fn set_region(&self, slot: u32, gpa: u64, m: &Mapping, flags: u32) -> Result<(), VmError> {
        let region = kvm_userspace_memory_region {
            slot,
            flags,
            guest_phys_addr: gpa,
            memory_size: m.len as u64,
            userspace_addr: m.ptr.as_ptr() as u64,
        };
        // SAFETY: the region describes a live mapping owned by `self`, which
        // outlives the VM fd (field order), so the kernel never sees it
        // unmapped while the VM can use it.
        unsafe { self.fd.set_user_memory_region(region) }.map_err(|e| {
            VmError::Failed(os_error(
                &format!("KVM_SET_USER_MEMORY_REGION (slot {slot})"),
                e,
            ))
        })
    }

    pub fn mode(&self) -> DirtyLogMode {
        self.mode
    }

    /// Whether the dirty bitmap starts all set (KVM_DIRTY_LOG_INITIALLY_SET).
    pub fn initially_set(&self) -> bool {
        self.initially_set
    }

    pub fn max_vcpus(&self) -> usize {
        self.max_vcpus
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Words in the data memslot's dirty bitmap.
    pub fn bitmap_words(&self) -> usize {
        self.layout.data_pages.div_ceil(64) as usize
    }

    /// Switch dirty logging on the data memslot on or off.
    pub fn set_dirty_logging(&self, on: bool) -> Result<(), VmError> {
        let flags = if on { KVM_MEM_LOG_DIRTY_PAGES } else { 0 };
        self.set_region(DATA_SLOT, guest::DATA_GPA, &self.data, flags)
    }

    /// `KVM_GET_DIRTY_LOG` of the data memslot into `bitmap`.
    pub fn get_dirty_log(&self, bitmap: &mut [u64]) -> Result<(), VmError> {
        assert_eq!(bitmap.len(), self.bitmap_words());
        let mut log = kvm_dirty_log {
            slot: DATA_SLOT,
            ..Default::default()
        };
        log.__bindgen_anon_1.dirty_bitmap = bitmap.as_mut_ptr().cast();
        // SAFETY: a VM fd, a `kvm_dirty_log` matching the ioctl number, and a
        // bitmap of one bit per page of the slot (rounded up to 64) that
        // stays borrowed mutably for the call.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), KVM_GET_DIRTY_LOG as _, &log) };
        if r < 0 {
            return Err(VmError::Failed(format!(
                "KVM_GET_DIRTY_LOG: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// `KVM_CLEAR_DIRTY_LOG` of the whole data memslot with the bits in
    /// `bitmap` (what the preceding get returned), as dirty_log_perf_test.
    pub fn clear_dirty_log(&self, bitmap: &mut [u64]) -> Result<(), VmError> {
        assert_eq!(bitmap.len(), self.bitmap_words());
        let mut clear = kvm_clear_dirty_log {
            slot: DATA_SLOT,
            num_pages: u32::try_from(self.layout.data_pages).expect("checked by the caller"),
            first_page: 0,
            ..Default::default()
        };
        clear.__bindgen_anon_1.dirty_bitmap = bitmap.as_mut_ptr().cast();
        // SAFETY: as `get_dirty_log`; the kernel reads `num_pages` bits.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), KVM_CLEAR_DIRTY_LOG as _, &clear) };
        if r < 0 {
            return Err(VmError::Failed(format!(
                "KVM_CLEAR_DIRTY_LOG: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// The first word of data page `page`, as the guest left it.
    ///
    /// Call only while no vCPU is inside `KVM_RUN` (the caller's handshake);
    /// the read is volatile because the guest writes outside Rust's view.
    pub fn data_word(&self, page: u64) -> u64 {
        assert!(page < self.layout.data_pages);
        // SAFETY: in bounds of the live data mapping (checked above) and
        // 8-aligned (page-aligned mapping).
        unsafe {
            self.data
                .ptr
                .as_ptr()
                .add((page * guest::PAGE_SIZE) as usize)
                .cast::<u64>()
                .read_volatile()
        }
    }

    /// Whether this kernel offers binary statistics files
    /// (`KVM_CAP_BINARY_STATS_FD`, Linux 5.14 and later).
    pub fn has_binary_stats(&self) -> bool {
        self.fd.check_extension_raw(KVM_CAP_BINARY_STATS_FD.into()) > 0
    }

    /// The VM's binary statistics file (`KVM_GET_STATS_FD` on the VM fd).
    pub fn stats_fd(&self) -> Result<StatsFd, String> {
        StatsFd::open(&self.fd)
    }

    /// Create vCPU `id` to run the guest over `share`, in long mode at the
    /// start of the code, at privilege `privilege`.
    pub fn create_vcpu(
        &self,
        id: u32,
        share: Share,
        privilege: Privilege,
    ) -> Result<VcpuFd, VmError> {
        let fail = |what: &str, e| VmError::Failed(os_error(&format!("vCPU {id}: {what}"), e));
        let vcpu = self
            .fd
            .create_vcpu(id as u64)
            .map_err(|e| fail("KVM_CREATE_VCPU", e))?;
        // Long mode needs CPUID.LM in the guest's CPUID.
        vcpu.set_cpuid2(&self.cpuid)
            .map_err(|e| fail("KVM_SET_CPUID2", e))?;
        let mut sregs = vcpu.get_sregs().map_err(|e| fail("KVM_GET_SREGS", e))?;
        let (code_selector, data_selector) = privilege.selectors();
        let code = kvm_segment {
            base: 0,
            limit: 0xffff_ffff,
            selector: code_selector,
            type_: 0xb,
            present: 1,
            // The CPL is CS's DPL (and SS's): the GDT entries agree.
            dpl: privilege.cpl(),
            db: 0,
            s: 1,
            l: 1,
            g: 1,
            ..Default::default()
        };
        let data = kvm_segment {
            selector: data_selector,
            type_: 0x3,
            db: 1,
            l: 0,
            ..code
        };
        sregs.cs = code;
        (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
        sregs.tr = kvm_segment {
            base: guest::TSS_GPA,
            limit: guest::TSS_LIMIT,
            selector: guest::TSS_SELECTOR,
            type_: 0xb,
            present: 1,
            s: 0,
            g: 0,
            ..Default::default()
        };
        sregs.gdt.base = guest::GDT_GPA;
        sregs.gdt.limit = guest::GDT_LIMIT;
        const CR0_PE: u64 = 1 << 0;
        const CR0_MP: u64 = 1 << 1;
        const CR0_ET: u64 = 1 << 4;
        const CR0_NE: u64 = 1 << 5;
        const CR0_WP: u64 = 1 << 16;
        const CR0_PG: u64 = 1 << 31;
        const CR4_PAE: u64 = 1 << 5;
        const EFER_LME: u64 = 1 << 8;
        const EFER_LMA: u64 = 1 << 10;
        sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
        sregs.cr3 = guest::PML4_GPA;
        sregs.cr4 = CR4_PAE;
        sregs.efer = EFER_LME | EFER_LMA;
        vcpu.set_sregs(&sregs)
            .map_err(|e| fail("KVM_SET_SREGS", e))?;
        let regs = kvm_regs {
            rip: guest::CODE_GPA,
            rflags: privilege.rflags(),
            rdi: id as u64,
            rsi: share.gva(),
            rdx: share.pages,
            rbx: 1,
            ..Default::default()
        };
        vcpu.set_regs(&regs).map_err(|e| fail("KVM_SET_REGS", e))?;
        Ok(vcpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        // From <linux/kvm.h> as compiled by the kernel: _IOW(0xAE, 0x42,
        // 16 bytes) and _IOWR(0xAE, 0xc0, 24 bytes).
        assert_eq!(KVM_GET_DIRTY_LOG, 0x4010_ae42);
        assert_eq!(KVM_CLEAR_DIRTY_LOG, 0xc018_aec0);
    }
}
