//! # hypergolix-web
//!
//! The browser host of the Hypergolix engine. For now it exposes the Golix
//! protocol helpers to JavaScript; the engine, IndexedDB storage and websockets
//! arrive with the browser issue.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use wasm_bindgen::prelude::*;

/// Parses any Golix object and returns its GHID in text form, or throws a
/// JavaScript error naming the failure (its stable code and message).
#[wasm_bindgen(js_name = objectGhid)]
pub fn object_ghid(bytes: &[u8]) -> Result<String, JsError> {
    hypergolix_core::golix::GolixObject::parse(bytes)
        .map(|o| o.ghid().to_text())
        .map_err(|e| JsError::new(&format!("{}: {}", e.code(), e)))
}
