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
    /// A setting, flag or configuration file is wrong (which, and why).
    #[error("{0}")]
    Config(String),
    /// The data directory or its service is not in the state the command
    /// needs (another service runs on it, it holds no account, ...).
    #[error("{0}")]
    State(String),
    /// The service manager (systemd, launchd) refused or failed.
    #[error("{0}")]
    Unit(String),
    /// An IPC peer that this service does not serve (another user, a
    /// non-loopback address).
    #[error("{0}")]
    Peer(String),
    /// The local store failed (nothing more is acknowledged than it holds).
    #[error("{0}")]
    Store(String),
    /// The local service could not start or go on.
    #[error("{0}")]
    Service(String),
    /// Logging in failed.
    #[error("login failed: {message}")]
    Login {
        /// The stable code (`wrong_password`, `unreachable`, `timeout`, ...).
        code: String,
        /// What went wrong, for people.
        message: String,
    },
    /// The persistence server could not be reached (why, in words: refused,
    /// a certificate not trusted, ...).
    #[error("{0}")]
    Connect(String),
    /// The persistence server could not start or go on.
    #[error("{0}")]
    Serve(String),
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
