//! The engine-local store conformance cases on IndexedDB in headless
//! Chromium (the same cases redb runs in `wasi-host/tests/local_store.rs`),
//! and on the memory store.
#![cfg(target_arch = "wasm32")]

mod common;

use hypergolix_web::store::StoreKind;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn indexeddb_passes_the_local_store_conformance_cases() {
    common::store_conformance(StoreKind::IndexedDb).await;
}

#[wasm_bindgen_test]
async fn memory_store_passes_the_local_store_conformance_cases() {
    common::store_conformance(StoreKind::Memory).await;
}
