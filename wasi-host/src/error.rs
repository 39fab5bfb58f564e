//! The one error type of the host.

use std::path::PathBuf;

/// Everything the host can fail at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// wasmtime failed to configure, compile, link or run a component.
    #[error("wasmtime: {0:#}")]
    Wasm(wasmtime::Error),
    /// TLS could not be set up (a certificate or key file, a bad config).
    #[error("TLS: {0}")]
    Tls(String),
    /// An embedded service or server could not start, or failed (its reason).
    #[error("{0}")]
    Embed(String),
    /// The engine component refused a call (its message).
    #[error("engine: {0}")]
    Engine(String),
    /// A Golix object failed to parse or verify.
    #[error("{code}: {source}")]
    Golix {
        /// Stable error code.
        code: &'static str,
        /// The protocol error.
        source: hypergolix_core::Error,
    },
}

impl From<wasmtime::Error> for Error {
    fn from(e: wasmtime::Error) -> Self {
        Error::Wasm(e)
    }
}

impl From<hypergolix_core::Error> for Error {
    fn from(e: hypergolix_core::Error) -> Self {
        Error::Golix {
            code: e.code(),
            source: e,
        }
    }
}

/// Result alias for the host.
pub type Result<T> = std::result::Result<T, Error>;
