//! The golden vectors as wasm in headless Chromium (wasm-bindgen-test).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn golden_vectors_pass_in_the_browser() {
    let report =
        hypergolix_core::golix::vectors::check_all(include_str!("../../vectors/golix-cs3.json"));
    web_sys_log(&report.render());
    assert!(report.ok(), "{}", report.render());
    assert!(report.passed > 50);
}

#[wasm_bindgen_test]
fn js_binding_reports_typed_errors() {
    let err = hypergolix_web::object_ghid(b"GEOX....").err();
    assert!(err.is_some());
}

fn web_sys_log(s: &str) {
    wasm_bindgen_test::console_log!("{}", s);
}
