//! The golden vectors, natively. The same check runs as wasm in headless
//! Chromium (`web/tests/golden_vectors.rs`) and as a WASI module under wasmtime
//! (`hypergolix selftest` in `wasi-host`).

const VECTORS: &str = include_str!("../../vectors/golix-cs3.json");

#[test]
fn golden_vectors_pass_natively() {
    let report = hypergolix_core::golix::vectors::check_all(VECTORS);
    print!("{}", report.render());
    assert!(report.ok(), "{}", report.render());
    // Every identity and vector in the file was checked.
    let file: serde_json::Value = serde_json::from_str(VECTORS).expect("json");
    let expected = file["identities"].as_array().map_or(0, Vec::len)
        + file["vectors"].as_array().map_or(0, Vec::len);
    assert_eq!(report.passed, expected);
    assert!(expected > 50);
}
