//! The browser host in a dedicated Web Worker: IndexedDB conformance and an
//! engine that creates an account, keeps objects and is unlocked again.
#![cfg(target_arch = "wasm32")]

mod common;

use hypergolix_web::store::StoreKind;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[wasm_bindgen_test]
async fn indexeddb_passes_the_conformance_cases_in_a_worker() {
    common::store_conformance(StoreKind::IndexedDb).await;
}

#[wasm_bindgen_test]
async fn an_engine_runs_in_a_worker() {
    common::engine_lifecycle().await;
}
