//! The persistence conformance suite (every rule, each on its own fresh store)
//! against the in-memory backend. `wasi-host` runs the same suite against the
//! embedded store and PostgreSQL.
#![cfg(feature = "conformance")]

use hypergolix_core::persist::conformance::run_all;
use hypergolix_core::persist::MemoryStore;

#[test]
fn memory_backend_passes_conformance() {
    let results = run_all(MemoryStore::new);
    let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    for (name, r) in &results {
        println!(
            "{name}: {}",
            if r.is_ok() {
                "ok".to_string()
            } else {
                format!("{r:?}")
            }
        );
    }
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(results.len() >= 13);
}
