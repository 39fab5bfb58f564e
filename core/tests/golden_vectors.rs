//! The golden vectors, natively. The same check runs as wasm in headless
//! Chromium (`web/tests/golden_vectors.rs`) and as a WASI module under wasmtime
//! (`wasi-host`, `hypergolix selftest`).
#![cfg(feature = "vectors")]

#[test]
fn golden_vectors_pass_natively() {
    let report = hypergolix_core::golix::vectors::check_all(include_str!("../../vectors/golix-cs3.json"));
    print!("{}", report.render());
    assert!(report.ok(), "{}", report.render());
    // Every identity and vector in the file was checked.
    assert!(report.passed >= 60, "only {} vectors", report.passed);
}
