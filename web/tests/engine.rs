//! The browser engine in a page (headless Chromium): refusals, an account
//! on IndexedDB, objects made offline, unlock and password change.
#![cfg(target_arch = "wasm32")]

mod common;

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn an_engine_lives_on_indexeddb() {
    common::engine_lifecycle().await;
}
