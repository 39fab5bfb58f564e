//! # hypergolix-wasi-host
//!
//! The native host of the Hypergolix engine. It runs WebAssembly components
//! built for `wasm32-wasip2` under wasmtime, with compiled code cached on disk
//! so later starts skip compilation. The host owns IO; the engine owns logic.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod component;
pub mod embed;
pub mod error;
pub mod http;
pub mod inspect;
pub mod local;
pub mod runtime;
pub mod serve;
pub mod tls;

pub use error::{Error, Result};
