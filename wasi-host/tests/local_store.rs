//! The local service's engine store (redb) runs the engine-local store
//! conformance cases, the same cases IndexedDB runs in Chromium
//! (`web/tests/store_conformance.rs`).

use hypergolix_core::engine::store_conformance::{cases, check, Step};
use hypergolix_wasi_host::local::store::LocalStore;

#[test]
fn redb_local_store_passes_the_conformance_cases() {
    let root = std::env::temp_dir().join(format!("hgx-local-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let cases = cases().expect("cases");
    for (i, case) in cases.iter().enumerate() {
        let path = root.join(format!("case-{i}.redb"));
        let mut store = Some(LocalStore::open(&path).expect("open"));
        for (n, step) in case.steps.iter().enumerate() {
            let s = store.as_ref().expect("open store");
            match step {
                Step::Apply(ws) => s.apply(ws).expect("apply"),
                Step::Reopen => {
                    drop(store.take());
                    store = Some(LocalStore::open(&path).expect("reopen"));
                }
                expectation => {
                    let loaded = s.load().expect("load");
                    if let Err(e) = check(expectation, &loaded) {
                        panic!("{}: step {n}: {e}", case.name);
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}
