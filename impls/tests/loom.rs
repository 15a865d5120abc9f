#![cfg(loom)]
use rmap_impls::*;
#[test]
fn smoke() {
    loom::model(|| {
        let cfg = RmapConfig {
            gfns: 2,
            desc_ext: 2,
            mmu_lock: LockKind::Park,
            page_descs: 4,
        };
        let r = build(ImplKind::LocklessGen, &cfg, None).unwrap();
        let _ = r;
    });
}
