//! The one error type of the app-facing crate.

/// What parsing a GHID, an api_id or an app's values can fail at. The
/// engine (`hypergolix-core`) maps each to its own error of the same name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The address algorithm byte names no algorithm this build knows.
    #[error("unknown address algorithm {0:#04x}")]
    UnknownAddressAlgorithm(u8),
    /// A length is wrong (a GHID is 65 bytes, an api_id 64 or 65, ...).
    #[error("invalid length: {0}")]
    InvalidLength(&'static str),
    /// A GHID's text form could not be decoded.
    #[error("invalid GHID text")]
    InvalidGhidText,
}

/// Result alias of the crate.
pub type Result<T> = core::result::Result<T, Error>;
