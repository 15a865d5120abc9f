//! KVM's own statistics, read through the binary statistics interface
//! (`KVM_GET_STATS_FD`, Linux 5.14 and later; `KVM_CAP_BINARY_STATS_FD`).
//!
//! `KVM_GET_STATS_FD` on a VM fd or a vCPU fd returns a read-only file that
//! describes itself: a header ([`kvm_stats_header`]: name size, number of
//! descriptors, and the offsets of the id string, the descriptor block and
//! the data block), then one descriptor per statistic (flags with its type
//! and unit, the number of `u64` it holds, its offset in the data block,
//! and its NUL-padded name), then the data. The descriptors are read once
//! ([`Schema`]); every reading afterwards is one `pread` of the data block.
//! Nothing here assumes which statistics exist or where they lie: a kernel
//! that adds, drops or moves one is read as it describes itself.
//!
//! The statistics a calibration looks at (names and meanings as in Linux
//! 6.1, `arch/x86/kvm/x86.c`, `arch/x86/kvm/mmu/`, `virt/kvm/kvm_main.c`;
//! this machine's 6.18 host reports the same names):
//!
//! | where | name | what |
//! | --- | --- | --- |
//! | VM | `pages_4k`, `pages_2m`, `pages_1g` | leaf sptes the MMU holds now, by size (an *instant* statistic); the shadow MMU counts one in `__rmap_add` for each rmap entry it adds and drops it with the spte |
//! | VM | `mmu_pte_write` | emulated guest writes KVM checked against its shadow page tables (`kvm_mmu_pte_write`, counted while the VM has any indirect shadow page) |
//! | VM | `mmu_flooded`, `mmu_unsync`, `mmu_shadow_zapped`, `mmu_pde_zapped`, `mmu_recycled`, `mmu_cache_miss` | shadow pages zapped for too many emulated writes, left unsync, zapped, recycled, allocated |
//! | VM | `remote_tlb_flush_requests`, `remote_tlb_flush` | remote TLB flushes asked for, and those that had to kick a vCPU in guest mode |
//! | vCPU | `exits`, `io_exits`, `halt_exits`, `mmio_exits` | exits from guest mode |
//! | vCPU | `pf_taken`, `pf_fixed`, `pf_fast`, `pf_emulate`, `pf_spurious`, `pf_guest` | page faults KVM handled; fixed (an spte installed or made writable, the lockless ones included); fixed without `mmu_lock`; fixed by emulating the instruction; found already fixed; reflected to the guest |
//! | vCPU | `insn_emulation` | instructions KVM emulated |
//!
//! [`kvm_stats_header`]: kvm_bindings::kvm_stats_header

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

/// `_IO(KVMIO, 0xce)`: no argument, returns a new file descriptor.
pub const KVM_GET_STATS_FD: u64 = 0xae << 8 | 0xce;

/// Size of `struct kvm_stats_header` (six `u32`).
const HEADER_BYTES: usize = 24;
/// Size of `struct kvm_stats_desc` before its name.
const DESC_BYTES: usize = 16;
/// Refuse a file that claims more than this (a corrupt header, not a kernel).
const MAX_DESCS: usize = 4096;
const MAX_NAME: usize = 4096;

/// How a statistic changes, from bits 0-3 of its descriptor's flags
/// (`KVM_STATS_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only grows (`exits`, `pf_fixed`): a phase's cost is after - before.
    Cumulative,
    /// A level (`pages_4k`): read before and after.
    Instant,
    /// A high-water mark (`max_mmu_rmap_size`).
    Peak,
    /// A histogram (several `u64`); kept out of readings.
    Histogram,
    /// A type this code does not know (a newer kernel); kept out.
    Unknown(u32),
}

impl Kind {
    fn from_flags(flags: u32) -> Kind {
        match flags & kvm_bindings::KVM_STATS_TYPE_MASK {
            kvm_bindings::KVM_STATS_TYPE_CUMULATIVE => Kind::Cumulative,
            kvm_bindings::KVM_STATS_TYPE_INSTANT => Kind::Instant,
            kvm_bindings::KVM_STATS_TYPE_PEAK => Kind::Peak,
            kvm_bindings::KVM_STATS_TYPE_LINEAR_HIST | kvm_bindings::KVM_STATS_TYPE_LOG_HIST => {
                Kind::Histogram
            }
            t => Kind::Unknown(t),
        }
    }
}

/// One statistic's descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desc {
    pub name: String,
    pub kind: Kind,
    /// `u64` items (1 for everything but histograms).
    pub size: u16,
    /// Byte offset in the data block.
    pub offset: u32,
}

/// What a stats file says about itself: its id and its descriptors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// `kvm-<pid>` for a VM, `kvm-<pid>/vcpu-<n>` for a vCPU.
    pub id: String,
    pub descs: Vec<Desc>,
    data_offset: u64,
    /// Bytes of the data block that hold the descriptors' values.
    data_len: usize,
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

/// A NUL-terminated (or NUL-padded) string in `bytes`.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Schema {
    /// Parse the header, the id and the descriptors at the start of a stats
    /// file whose first bytes are `file` (everything up to the data block
    /// at least; a whole file image works too).
    pub fn parse(file: &[u8]) -> Result<Schema, String> {
        let field = |i: usize| {
            u32_at(file, i * 4).ok_or_else(|| {
                format!(
                    "the header needs {HEADER_BYTES} bytes, the file has {}",
                    file.len()
                )
            })
        };
        let (name_size, num_desc) = (field(1)? as usize, field(2)? as usize);
        let (id_offset, desc_offset, data_offset) =
            (field(3)? as usize, field(4)? as usize, field(5)? as u64);
        if name_size == 0 || name_size > MAX_NAME || num_desc > MAX_DESCS {
            return Err(format!(
                "implausible header: name_size {name_size}, num_desc {num_desc}"
            ));
        }
        let id = file
            .get(id_offset..id_offset + name_size)
            .map(c_string)
            .ok_or_else(|| format!("the id at {id_offset} lies past the end"))?;
        let stride = DESC_BYTES + name_size;
        let mut descs = Vec::with_capacity(num_desc);
        let mut data_len = 0usize;
        for i in 0..num_desc {
            let at = desc_offset + i * stride;
            let d = file
                .get(at..at + stride)
                .ok_or_else(|| format!("descriptor {i} at {at} lies past the end"))?;
            let flags = u32_at(d, 0).expect("in the slice");
            let size = u16_at(d, 6).expect("in the slice");
            let offset = u32_at(d, 8).expect("in the slice");
            let name = c_string(&d[DESC_BYTES..]);
            if name.is_empty() {
                return Err(format!("descriptor {i} has no name"));
            }
            data_len = data_len.max(offset as usize + size as usize * 8);
            descs.push(Desc {
                name,
                kind: Kind::from_flags(flags),
                size,
                offset,
            });
        }
        Ok(Schema {
            id,
            descs,
            data_offset,
            data_len,
        })
    }

    /// The scalar statistics (not histograms, not unknown types) in
    /// `data`, the data block (or a prefix holding every value).
    pub fn values(&self, data: &[u8]) -> Result<Stats, String> {
        let mut out = Stats::default();
        for d in &self.descs {
            let kind = match d.kind {
                Kind::Cumulative | Kind::Instant | Kind::Peak if d.size == 1 => d.kind,
                _ => continue,
            };
            let at = d.offset as usize;
            let v = data
                .get(at..at + 8)
                .ok_or_else(|| format!("{} at {at} lies past the data block", d.name))?;
            let v = u64::from_ne_bytes(v.try_into().expect("8 bytes"));
            out.values.insert(d.name.clone(), (kind, v));
        }
        Ok(out)
    }
}

/// One reading of one stats file: every scalar statistic by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    values: BTreeMap<String, (Kind, u64)>,
}

impl Stats {
    pub fn get(&self, name: &str) -> Option<u64> {
        self.values.get(name).map(|&(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Add `other`'s values to these (to sum vCPUs).
    fn add(&mut self, other: &Stats) {
        for (name, &(kind, v)) in &other.values {
            let e = self.values.entry(name.clone()).or_insert((kind, 0));
            e.1 = match kind {
                // The sum of levels is the VM's level; of peaks, an upper bound.
                Kind::Cumulative | Kind::Instant => e.1.wrapping_add(v),
                _ => e.1.max(v),
            };
        }
    }
}

/// An open stats file and its schema.
pub struct StatsFd {
    file: File,
    schema: Schema,
}

impl StatsFd {
    /// `KVM_GET_STATS_FD` on `fd` (a VM or vCPU fd), then its schema.
    /// Errors are one line naming the step that failed.
    pub fn open(fd: &impl AsRawFd) -> Result<StatsFd, String> {
        // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new file
        // descriptor or -1; `fd` is a live VM or vCPU fd borrowed for the call.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), KVM_GET_STATS_FD as _) };
        if r < 0 {
            return Err(format!(
                "KVM_GET_STATS_FD: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `r` is a descriptor the kernel just created for us and
        // nothing else owns.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(r) });
        let bad = |e: String| format!("KVM statistics: {e}");
        let mut header = [0u8; HEADER_BYTES];
        file.read_exact_at(&mut header, 0)
            .map_err(|e| bad(format!("reading the header: {e}")))?;
        // The header, id and descriptors all lie before the data block.
        let data_offset = u32_at(&header, 20).expect("in the header") as usize;
        if !(HEADER_BYTES..=1 << 24).contains(&data_offset) {
            return Err(bad(format!("implausible data offset {data_offset}")));
        }
        let mut head = vec![0u8; data_offset];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| bad(format!("reading the descriptors: {e}")))?;
        let schema = Schema::parse(&head).map_err(bad)?;
        Ok(StatsFd { file, schema })
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Read every scalar statistic now (one `pread`).
    pub fn read(&self) -> Result<Stats, String> {
        let mut data = vec![0u8; self.schema.data_len];
        self.file
            .read_exact_at(&mut data, self.schema.data_offset)
            .map_err(|e| format!("reading KVM statistics: {e}"))?;
        self.schema.values(&data)
    }
}

/// The VM's statistics and the sum of its vCPUs' at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    pub vm: Stats,
    pub vcpus: Stats,
}

/// The VM's stats file and every vCPU's, read together.
pub struct Sampler {
    vm: StatsFd,
    vcpus: Vec<StatsFd>,
}

impl Sampler {
    pub fn new(vm: StatsFd, vcpus: Vec<StatsFd>) -> Sampler {
        Sampler { vm, vcpus }
    }

    pub fn read(&self) -> Result<Reading, String> {
        let mut sum = Stats::default();
        for v in &self.vcpus {
            sum.add(&v.read()?);
        }
        Ok(Reading {
            vm: self.vm.read()?,
            vcpus: sum,
        })
    }

    pub fn vm_schema(&self) -> &Schema {
        &self.vm.schema
    }
}

/// How one scope's statistics changed: cumulative ones by how much they
/// grew, levels (instant and peak) by their value before and after.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub counts: BTreeMap<String, u64>,
    pub levels: BTreeMap<String, (u64, u64)>,
}

impl Change {
    pub fn between(before: &Stats, after: &Stats) -> Change {
        let mut c = Change::default();
        for (name, &(kind, a)) in &after.values {
            let Some(b) = before.get(name) else { continue };
            match kind {
                Kind::Cumulative => {
                    c.counts.insert(name.clone(), a.wrapping_sub(b));
                }
                _ => {
                    c.levels.insert(name.clone(), (b, a));
                }
            }
        }
        c
    }

    /// How much a cumulative statistic grew (0 if this kernel lacks it).
    pub fn count(&self, name: &str) -> u64 {
        self.counts.get(name).copied().unwrap_or(0)
    }

    /// A level before and after, if this kernel has it.
    pub fn level(&self, name: &str) -> Option<(u64, u64)> {
        self.levels.get(name).copied()
    }
}

/// What changed in the VM and in its vCPUs (summed) between two readings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub vm: Change,
    pub vcpus: Change,
}

impl Delta {
    pub fn between(before: &Reading, after: &Reading) -> Delta {
        Delta {
            vm: Change::between(&before.vm, &after.vm),
            vcpus: Change::between(&before.vcpus, &after.vcpus),
        }
    }

    /// A cumulative statistic's growth, from the VM or the vCPUs, whichever
    /// has it (their names are disjoint in Linux 6.1 to 6.18).
    pub fn count(&self, name: &str) -> u64 {
        self.vm.count(name) + self.vcpus.count(name)
    }

    pub fn level(&self, name: &str) -> Option<(u64, u64)> {
        self.vm.level(name).or_else(|| self.vcpus.level(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stats file image as the kernel lays it out: header, id, the
    /// descriptors (each 16 bytes + `name_size`), then the data block.
    pub(crate) fn image(id: &str, stats: &[(&str, u32, u16, &[u64])]) -> Vec<u8> {
        let name_size = 48usize;
        let id_offset = HEADER_BYTES;
        let desc_offset = id_offset + name_size;
        let data_offset = desc_offset + stats.len() * (DESC_BYTES + name_size);
        let mut buf = Vec::new();
        for v in [
            0u32,
            name_size as u32,
            stats.len() as u32,
            id_offset as u32,
            desc_offset as u32,
            data_offset as u32,
        ] {
            buf.extend_from_slice(&v.to_ne_bytes());
        }
        let padded = |s: &str, buf: &mut Vec<u8>| {
            let mut b = s.as_bytes().to_vec();
            b.resize(name_size, 0);
            buf.extend_from_slice(&b);
        };
        padded(id, &mut buf);
        let mut data = Vec::new();
        for (name, flags, size, values) in stats {
            assert_eq!(*size as usize, values.len());
            buf.extend_from_slice(&flags.to_ne_bytes());
            buf.extend_from_slice(&0i16.to_ne_bytes());
            buf.extend_from_slice(&size.to_ne_bytes());
            buf.extend_from_slice(&(data.len() as u32).to_ne_bytes());
            buf.extend_from_slice(&0u32.to_ne_bytes());
            padded(name, &mut buf);
            for v in *values {
                data.extend_from_slice(&v.to_ne_bytes());
            }
        }
        assert_eq!(buf.len(), data_offset);
        buf.extend_from_slice(&data);
        buf
    }

    const CUMULATIVE: u32 = kvm_bindings::KVM_STATS_TYPE_CUMULATIVE;
    const INSTANT: u32 = kvm_bindings::KVM_STATS_TYPE_INSTANT;
    const LOG_HIST: u32 = kvm_bindings::KVM_STATS_TYPE_LOG_HIST;

    #[test]
    fn parses_header_descriptors_and_data_without_a_fixed_layout() {
        let file = image(
            "kvm-42/vcpu-1",
            &[
                ("exits", CUMULATIVE, 1, &[1234]),
                ("halt_wait_hist", LOG_HIST, 3, &[1, 2, 3]),
                (
                    "pages_4k",
                    INSTANT | kvm_bindings::KVM_STATS_UNIT_NONE,
                    1,
                    &[7],
                ),
                ("pf_fixed", CUMULATIVE, 1, &[u64::MAX]),
                ("from_the_future", 9, 1, &[5]),
            ],
        );
        let s = Schema::parse(&file).unwrap();
        assert_eq!(s.id, "kvm-42/vcpu-1");
        let names: Vec<_> = s.descs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "exits",
                "halt_wait_hist",
                "pages_4k",
                "pf_fixed",
                "from_the_future"
            ]
        );
        assert_eq!(s.descs[1].kind, Kind::Histogram);
        assert_eq!(s.descs[1].size, 3);
        assert_eq!(
            s.descs[2].offset, 32,
            "after exits and the 3-item histogram"
        );
        assert_eq!(s.descs[4].kind, Kind::Unknown(9));
        let data = &file[s.data_offset as usize..];
        assert_eq!(s.data_len, data.len());
        let v = s.values(data).unwrap();
        assert_eq!(v.get("exits"), Some(1234));
        assert_eq!(v.get("pages_4k"), Some(7));
        assert_eq!(v.get("pf_fixed"), Some(u64::MAX));
        assert_eq!(v.get("halt_wait_hist"), None, "histograms are left out");
        assert_eq!(v.get("from_the_future"), None, "unknown types are left out");
    }

    #[test]
    fn malformed_files_are_refused_not_misread() {
        let file = image("kvm-1", &[("exits", CUMULATIVE, 1, &[1])]);
        assert!(Schema::parse(&file[..10]).unwrap_err().contains("header"));
        // Cut inside the descriptor block.
        assert!(Schema::parse(&file[..HEADER_BYTES + 48 + 8])
            .unwrap_err()
            .contains("descriptor 0"));
        let mut huge = file.clone();
        huge[8..12].copy_from_slice(&100_000u32.to_ne_bytes());
        assert!(Schema::parse(&huge).unwrap_err().contains("implausible"));
        let s = Schema::parse(&file).unwrap();
        assert!(s.values(&[0u8; 4]).unwrap_err().contains("exits"));
    }

    #[test]
    fn deltas_subtract_counts_and_keep_levels() {
        let schema = |exits, pages| {
            let f = image(
                "kvm-1",
                &[
                    ("exits", CUMULATIVE, 1, &[exits]),
                    ("pages_4k", INSTANT, 1, &[pages]),
                ],
            );
            let s = Schema::parse(&f).unwrap();
            s.values(&f[s.data_offset as usize..]).unwrap()
        };
        let (b, a) = (schema(10, 5), schema(25, 3));
        let c = Change::between(&b, &a);
        assert_eq!(c.count("exits"), 15);
        assert_eq!(c.level("pages_4k"), Some((5, 3)));
        assert_eq!(c.count("pf_fast"), 0);
        // vCPUs sum.
        let mut sum = Stats::default();
        sum.add(&b);
        sum.add(&a);
        assert_eq!(sum.get("exits"), Some(35));
        assert_eq!(sum.get("pages_4k"), Some(8));
    }
}
