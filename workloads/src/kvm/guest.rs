//! The guest `lab calibrate` runs: its machine code, its memory layout and
//! the page tables the host writes for it before the first `KVM_RUN`.
//!
//! Every vCPU runs the same 38 bytes of 64-bit code (below, with their
//! assembly), entered in long mode with 4-level paging already on, so the
//! guest needs no boot code. A *pass* writes one word to the first 8 bytes
//! of every page of the vCPU's share of the data memslot, then executes
//! `out 0xe9, al`: KVM cannot handle that port itself, so `KVM_RUN` returns
//! to the host with `KVM_EXIT_IO`, which is how the host learns that the
//! pass is complete. The next `KVM_RUN` starts the next pass. The host
//! therefore decides when a pass starts (it may hold a vCPU between passes)
//! and counts passes exactly, which makes the dirty log checkable: after a
//! pass of every vCPU, every data page must be in the next dirty-log
//! harvest, and every page must hold the value of its owner's last pass.
//!
//! The word written is `pass << 32 | vcpu_id` ([`pass_value`]): the pass
//! number counts from 1, so a page that still reads 0 was never written.
//! The code uses only general-purpose registers (no SSE, no x87: this
//! machine's `kvm_pvm` instruction emulator rejects them) and no stack.
//!
//! **Privilege.** The loop runs at CPL 3 ([`Privilege::User`], the default)
//! or at CPL 0 ([`Privilege::Kernel`], where the kernel's
//! `dirty_log_perf_test` runs its guest). On hardware virtualisation
//! (VT-x, SVM) the two are the same to the MMU. On `kvm_pvm`, KVM's
//! software virtualisation, they are not: PVM runs a guest's user mode
//! directly on the hardware through shadow page tables, so each first write
//! to a page faults into KVM, which installs a 4 KiB spte and adds it to the
//! gfn's rmap (KVM's statistics: `pf_fixed` one per page, `pages_4k` one per
//! page). A guest's CPL 0 that does not speak PVM's paravirtual interface
//! is *emulated* instead, instruction by instruction (`insn_emulation` 4
//! per page for this loop, about one exit per 1,000 of them; this host's
//! `kvm_pvm` has `pvm_emul_batch=1024`): no spte is ever installed (`pages_4k`
//! stays 0), each write reaches KVM as an emulated write
//! (`mmu_pte_write` one per page), and the dirty log is set by the
//! emulator. Measured on this machine's 6.18 host kernel with `kvm_pvm`;
//! [`super::figure`] tells the two apart from the statistics of every run.
//! In user mode RFLAGS.IOPL is 3, so the `out` that ends a pass is allowed
//! and still exits to the host.
//!
//! Guest-physical layout (identity-mapped, so guest-virtual = physical):
//!
//! | GPA | memslot | what |
//! | --- | --- | --- |
//! | `0x0000` | 0 (setup) | GDT: null, 64-bit code `0x08`, data `0x10`, TSS `0x18`, user data `0x28`, user code `0x30` (Linux's `__USER_DS`/`__USER_CS` slots) |
//! | `0x0800` | 0 | the 64-bit TSS (all zero: no stack switches ever happen) |
//! | `0x1000` | 0 | the code |
//! | `0x2000` | 0 | PML4 |
//! | `0x3000` | 0 | PDPT |
//! | `0x4000` | 0 | the page directory of the setup region (2 MiB pages) |
//! | `0x5000`.. | 0 | page directories of the data region, then its page tables |
//! | [`DATA_GPA`].. | 1 (data, dirty-logged) | the memory the vCPUs write |
//!
//! The data region is mapped with 4 KiB guest PTEs, so each data page has
//! its own 4 KiB shadow PTE (spte) and its own rmap entry on the host, as in
//! the kernel's `dirty_log_perf_test`. Every entry has the User bit, so the
//! same tables serve both privileges (CR4 sets neither SMEP nor SMAP).
//! Guest page tables live in the setup memslot, which has no dirty log, and
//! their Accessed and Dirty bits are preset, so the host never writes to
//! them while the guest runs and the data memslot's dirty log holds exactly
//! the guest's own writes.

/// A guest page (and a dirty-log bit) covers this many bytes.
pub const PAGE_SIZE: u64 = 4096;
/// Where the data memslot starts, guest-physical and guest-virtual.
pub const DATA_GPA: u64 = 1 << 30;
/// The largest data memslot the layout supports (one PML4 entry of 4 KiB
/// pages, less the first GiB used for the setup region).
pub const MAX_DATA_BYTES: u64 = 256 << 30;
/// The I/O port the guest writes to at the end of each pass.
pub const PASS_PORT: u16 = 0xe9;

/// Guest-physical address of the GDT.
pub const GDT_GPA: u64 = 0x0000;
/// Guest-physical address of the 64-bit TSS.
pub const TSS_GPA: u64 = 0x0800;
/// Guest-physical address of the code; the vCPUs start here.
pub const CODE_GPA: u64 = 0x1000;
/// Guest-physical address of the PML4 (CR3).
pub const PML4_GPA: u64 = 0x2000;
const PDPT_GPA: u64 = 0x3000;
const PD_SETUP_GPA: u64 = 0x4000;
const FIRST_DATA_PD_GPA: u64 = 0x5000;

/// Selectors of the GDT entries.
pub const CODE_SELECTOR: u16 = 0x08;
pub const DATA_SELECTOR: u16 = 0x10;
pub const TSS_SELECTOR: u16 = 0x18;
/// User-mode data and code, with RPL 3 (Linux's `__USER_DS`, `__USER_CS`).
pub const USER_DATA_SELECTOR: u16 = 0x28 | 3;
pub const USER_CODE_SELECTOR: u16 = 0x30 | 3;
/// GDT limit: seven 8-byte slots (the TSS descriptor takes two).
pub const GDT_LIMIT: u16 = 7 * 8 - 1;

/// The privilege level the guest's pass loop runs at (module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// CPL 0, as `dirty_log_perf_test`'s guest.
    Kernel,
    /// CPL 3, with RFLAGS.IOPL 3 for the `out` at the end of a pass.
    User,
}

impl Privilege {
    pub fn cpl(self) -> u8 {
        match self {
            Privilege::Kernel => 0,
            Privilege::User => 3,
        }
    }

    /// (code, data) selectors, RPL included.
    pub fn selectors(self) -> (u16, u16) {
        match self {
            Privilege::Kernel => (CODE_SELECTOR, DATA_SELECTOR),
            Privilege::User => (USER_CODE_SELECTOR, USER_DATA_SELECTOR),
        }
    }

    /// RFLAGS at entry: bit 1 (always set) and, in user mode, IOPL 3.
    pub fn rflags(self) -> u64 {
        match self {
            Privilege::Kernel => 0x2,
            Privilege::User => 0x2 | 3 << 12,
        }
    }
}
/// TSS limit: the 104-byte 64-bit TSS.
pub const TSS_LIMIT: u32 = 0x67;

/// The guest, entered with `rdi` = vCPU id, `rsi` = first byte of its share,
/// `rdx` = pages in its share (at least 1), `rbx` = 1 (the first pass).
/// Checked against GNU `as` + `objdump -d -M intel`.
#[rustfmt::skip]
pub const GUEST_CODE: [u8; 38] = [
    // top:
    0x48, 0x89, 0xd8,                         // 00: mov  rax, rbx       ; the pass number
    0x48, 0xc1, 0xe0, 0x20,                   // 03: shl  rax, 32
    0x48, 0x09, 0xf8,                         // 07: or   rax, rdi       ; | vCPU id
    0x48, 0x89, 0xd1,                         // 0a: mov  rcx, rdx       ; pages left
    0x49, 0x89, 0xf0,                         // 0d: mov  r8, rsi        ; cursor
    // page:
    0x49, 0x89, 0x00,                         // 10: mov  [r8], rax      ; dirty the page
    0x49, 0x81, 0xc0, 0x00, 0x10, 0x00, 0x00, // 13: add  r8, 4096
    0x48, 0xff, 0xc9,                         // 1a: dec  rcx
    0x75, 0xf1,                               // 1d: jnz  page
    0xe6, PASS_PORT as u8,                    // 1f: out  0xe9, al       ; pass done: exit to the host
    0x48, 0xff, 0xc3,                         // 21: inc  rbx
    0xeb, 0xda,                               // 24: jmp  top
];

/// The word a vCPU writes to each page of its share in pass `pass`.
pub fn pass_value(pass: u64, vcpu: u32) -> u64 {
    (pass << 32) | vcpu as u64
}

/// A vCPU's share of the data memslot: pages `first .. first + pages`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    pub first: u64,
    pub pages: u64,
}

impl Share {
    /// Guest-virtual address of the share's first page.
    pub fn gva(&self) -> u64 {
        DATA_GPA + self.first * PAGE_SIZE
    }
}

/// Split `pages` data pages between `vcpus` vCPUs in contiguous shares that
/// cover every page once; the first `pages % vcpus` shares get one page
/// more. Every share has at least one page when `pages >= vcpus`.
pub fn shares(pages: u64, vcpus: u32) -> Vec<Share> {
    let n = vcpus.max(1) as u64;
    let (each, rest) = (pages / n, pages % n);
    let mut first = 0;
    (0..n)
        .map(|i| {
            let s = Share {
                first,
                pages: each + (i < rest) as u64,
            };
            first += s.pages;
            s
        })
        .collect()
}

// Page-table entry bits.
const PTE_PRESENT: u64 = 1 << 0;
const PTE_WRITABLE: u64 = 1 << 1;
const PTE_USER: u64 = 1 << 2;
const PTE_ACCESSED: u64 = 1 << 5;
const PTE_DIRTY: u64 = 1 << 6;
const PTE_LARGE: u64 = 1 << 7;
/// Upper levels: present, writable, user, accessed.
const TABLE: u64 = PTE_PRESENT | PTE_WRITABLE | PTE_USER | PTE_ACCESSED;
/// Leaves: also dirty, so the guest's first write does not make KVM set D in
/// a guest page table.
const LEAF: u64 = TABLE | PTE_DIRTY;
const SIZE_2M: u64 = 2 << 20;
const SIZE_1G: u64 = 1 << 30;

/// Where everything of the setup memslot goes for a data memslot of
/// `data_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub data_pages: u64,
    /// Page directories of the data region (one per GiB).
    data_pds: u64,
    /// Page tables of the data region (one per 2 MiB).
    data_pts: u64,
    /// Size of the setup memslot at GPA 0: a multiple of 2 MiB.
    pub setup_bytes: u64,
}

impl Layout {
    /// The layout for `data_bytes` of data (a positive multiple of
    /// [`PAGE_SIZE`], at most [`MAX_DATA_BYTES`]; the caller checks).
    pub fn new(data_bytes: u64) -> Layout {
        debug_assert!(data_bytes > 0 && data_bytes.is_multiple_of(PAGE_SIZE));
        debug_assert!(data_bytes <= MAX_DATA_BYTES);
        let data_pages = data_bytes / PAGE_SIZE;
        let data_pds = data_bytes.div_ceil(SIZE_1G);
        let data_pts = data_pages.div_ceil(512);
        let used = FIRST_DATA_PD_GPA + (data_pds + data_pts) * PAGE_SIZE;
        Layout {
            data_pages,
            data_pds,
            data_pts,
            setup_bytes: used.div_ceil(SIZE_2M) * SIZE_2M,
        }
    }

    fn first_pt_gpa(&self) -> u64 {
        FIRST_DATA_PD_GPA + self.data_pds * PAGE_SIZE
    }

    /// Write the GDT, TSS, code and page tables into `setup`, the host view
    /// of the setup memslot (`setup_bytes` long, zeroed).
    pub fn write_setup(&self, setup: &mut [u8]) {
        assert_eq!(setup.len() as u64, self.setup_bytes);
        let mut put = |gpa: u64, v: u64| {
            let at = gpa as usize;
            setup[at..at + 8].copy_from_slice(&v.to_le_bytes());
        };
        // GDT. Code: G, L, P, S, type 0xb (execute/read, accessed).
        put(GDT_GPA + CODE_SELECTOR as u64, 0x00af_9b00_0000_ffff);
        // Data: G, D/B, P, S, type 0x3 (read/write, accessed).
        put(GDT_GPA + DATA_SELECTOR as u64, 0x00cf_9300_0000_ffff);
        // 64-bit TSS descriptor (16 bytes): P, type 0xb (busy TSS).
        let (base, limit) = (TSS_GPA, TSS_LIMIT as u64);
        let low = (limit & 0xffff)
            | (base & 0xff_ffff) << 16
            | 0x8b << 40
            | ((limit >> 16) & 0xf) << 48
            | ((base >> 24) & 0xff) << 56;
        put(GDT_GPA + TSS_SELECTOR as u64, low);
        put(GDT_GPA + TSS_SELECTOR as u64 + 8, base >> 32);
        // User data and code: as above with DPL 3 (access bytes 0xf3, 0xfb).
        put(
            GDT_GPA + (USER_DATA_SELECTOR & !3) as u64,
            0x00cf_f300_0000_ffff,
        );
        put(
            GDT_GPA + (USER_CODE_SELECTOR & !3) as u64,
            0x00af_fb00_0000_ffff,
        );

        // Paging: PML4[0] -> PDPT; PDPT[0] -> the setup PD of 2 MiB pages.
        put(PML4_GPA, PDPT_GPA | TABLE);
        put(PDPT_GPA, PD_SETUP_GPA | TABLE);
        for i in 0..self.setup_bytes / SIZE_2M {
            put(PD_SETUP_GPA + i * 8, (i * SIZE_2M) | LEAF | PTE_LARGE);
        }
        // The data region: PDPT[1..] -> one PD per GiB, PD entries -> one
        // page table per 2 MiB, PTE per 4 KiB page.
        for d in 0..self.data_pds {
            let pdpt_index = DATA_GPA / SIZE_1G + d;
            put(
                PDPT_GPA + pdpt_index * 8,
                (FIRST_DATA_PD_GPA + d * PAGE_SIZE) | TABLE,
            );
        }
        for t in 0..self.data_pts {
            // Table t maps data bytes [t * 2 MiB, (t + 1) * 2 MiB).
            let pd = FIRST_DATA_PD_GPA + (t / 512) * PAGE_SIZE;
            put(
                pd + (t % 512) * 8,
                (self.first_pt_gpa() + t * PAGE_SIZE) | TABLE,
            );
        }
        for page in 0..self.data_pages {
            let pte = self.first_pt_gpa() + page * 8;
            put(pte, (DATA_GPA + page * PAGE_SIZE) | LEAF);
        }
        setup[CODE_GPA as usize..CODE_GPA as usize + GUEST_CODE.len()].copy_from_slice(&GUEST_CODE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walk the guest page tables in `setup` as the MMU would (4-level,
    /// 2 MiB leaves allowed) and return the physical address of `gva`.
    fn translate(setup: &[u8], gva: u64) -> Option<u64> {
        let read = |gpa: u64| {
            let at = gpa as usize;
            u64::from_le_bytes(setup[at..at + 8].try_into().unwrap())
        };
        let mut table = PML4_GPA;
        for (level, shift) in [(4, 39), (3, 30), (2, 21), (1, 12)] {
            let e = read(table + ((gva >> shift) & 511) * 8);
            if e & PTE_PRESENT == 0 || e & PTE_WRITABLE == 0 {
                return None;
            }
            assert_eq!(e & PTE_USER, PTE_USER, "user mode may use every entry");
            let frame = e & 0x000f_ffff_ffff_f000;
            if level == 2 && e & PTE_LARGE != 0 {
                return Some((frame & !(SIZE_2M - 1)) + (gva & (SIZE_2M - 1)));
            }
            if level == 1 {
                assert_eq!(e & PTE_DIRTY, PTE_DIRTY, "leaf D preset");
                return Some(frame + (gva & 0xfff));
            }
            table = frame;
        }
        unreachable!()
    }

    #[test]
    fn shares_cover_every_page_once() {
        for (pages, vcpus) in [(10, 3), (8, 8), (1000, 7), (5, 1)] {
            let s = shares(pages, vcpus);
            assert_eq!(s.len(), vcpus as usize);
            assert_eq!(s[0].first, 0);
            for w in s.windows(2) {
                assert_eq!(w[0].first + w[0].pages, w[1].first);
            }
            let last = s.last().unwrap();
            assert_eq!(last.first + last.pages, pages);
            let (min, max) = (
                s.iter().map(|x| x.pages).min().unwrap(),
                s.iter().map(|x| x.pages).max().unwrap(),
            );
            assert!(min >= 1 && max - min <= 1, "{pages} over {vcpus}: {s:?}");
        }
    }

    #[test]
    fn page_tables_map_setup_and_every_data_page_identically() {
        // 3 GiB + 12 KiB: three full page directories and a partial fourth,
        // a partial last page table.
        let data = (3 << 30) + 3 * PAGE_SIZE;
        let l = Layout::new(data);
        assert_eq!(l.data_pages, data / PAGE_SIZE);
        assert_eq!(l.setup_bytes % SIZE_2M, 0);
        assert!(l.setup_bytes <= DATA_GPA);
        let mut setup = vec![0u8; l.setup_bytes as usize];
        l.write_setup(&mut setup);
        for gva in [CODE_GPA, CODE_GPA + 37, PML4_GPA, l.setup_bytes - 8] {
            assert_eq!(translate(&setup, gva), Some(gva));
        }
        let pages = [0, 1, 511, 512, 262_143, 262_144, l.data_pages - 1];
        for p in pages {
            let gva = DATA_GPA + p * PAGE_SIZE + 8;
            assert_eq!(translate(&setup, gva), Some(gva), "data page {p}");
        }
        // One page past the end is not mapped.
        assert_eq!(translate(&setup, DATA_GPA + data), None);
        assert_eq!(
            setup[CODE_GPA as usize..CODE_GPA as usize + GUEST_CODE.len()],
            GUEST_CODE
        );
    }

    #[test]
    fn gdt_descriptors_decode() {
        let l = Layout::new(PAGE_SIZE);
        let mut setup = vec![0u8; l.setup_bytes as usize];
        l.write_setup(&mut setup);
        let word =
            |at: u64| u64::from_le_bytes(setup[at as usize..at as usize + 8].try_into().unwrap());
        let code = word(CODE_SELECTOR as u64);
        assert_eq!((code >> 40) & 0xff, 0x9b, "present, code, execute/read");
        assert_eq!((code >> 53) & 1, 1, "L: 64-bit code");
        let tss = word(TSS_SELECTOR as u64);
        let base =
            ((tss >> 16) & 0xff_ffff) | ((tss >> 56) << 24) | (word(TSS_SELECTOR as u64 + 8) << 32);
        assert_eq!(base, TSS_GPA);
        assert_eq!(tss & 0xffff, TSS_LIMIT as u64);
        assert_eq!((tss >> 40) & 0xff, 0x8b, "present, busy 64-bit TSS");
        let user_code = word((USER_CODE_SELECTOR & !3) as u64);
        let user_data = word((USER_DATA_SELECTOR & !3) as u64);
        assert_eq!((user_code >> 40) & 0xff, 0xfb, "present, DPL 3, code");
        assert_eq!((user_code >> 53) & 1, 1, "L: 64-bit code");
        assert_eq!((user_data >> 40) & 0xff, 0xf3, "present, DPL 3, data");
        assert!((USER_CODE_SELECTOR & !3) as u64 + 8 <= GDT_LIMIT as u64 + 1);
        assert_eq!(Privilege::User.selectors().0 & 3, 3, "RPL 3");
        assert_eq!(Privilege::User.rflags() >> 12 & 3, 3, "IOPL 3");
    }

    #[test]
    fn the_pass_loop_jumps_where_the_comments_say() {
        // jnz page: rel8 from the end of the jnz (0x1f) back to 0x10.
        assert_eq!(0x1f + GUEST_CODE[0x1e] as i8 as i64, 0x10);
        // jmp top: from 0x26 back to 0.
        assert_eq!(0x26 + GUEST_CODE[0x25] as i8 as i64, 0);
        assert_eq!(GUEST_CODE[0x20], PASS_PORT as u8);
        assert_eq!(pass_value(3, 7), (3 << 32) | 7);
    }
}
