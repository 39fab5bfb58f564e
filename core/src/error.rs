//! The one error type of `hypergolix-core`.

use thiserror::Error;

/// Which Golix object type an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// Identity container.
    Gidc,
    /// Encrypted object container.
    Geoc,
    /// Static binding.
    Gobs,
    /// Dynamic binding frame.
    Gobd,
    /// Debinding.
    Gdxx,
    /// Asymmetric request.
    Garq,
    /// Secret serialization (`SH`).
    Secret,
    /// Exported private keys (`GPRV`).
    PrivateKeys,
    /// An engine record: local state, account state, app payloads.
    Record,
}

impl core::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ObjectKind::Gidc => "GIDC",
            ObjectKind::Geoc => "GEOC",
            ObjectKind::Gobs => "GOBS",
            ObjectKind::Gobd => "GOBD",
            ObjectKind::Gdxx => "GDXX",
            ObjectKind::Garq => "GARQ",
            ObjectKind::Secret => "SH",
            ObjectKind::PrivateKeys => "GPRV",
            ObjectKind::Record => "engine record",
        })
    }
}

/// Every failure `hypergolix-core` can report. Each distinct protocol failure is
/// its own variant so callers (and golden vectors) can tell them apart; see
/// [`Error::code`] for the stable short names.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before a field that must be present.
    #[error("truncated {kind}: needed {needed} bytes, got {got}")]
    Truncated {
        /// Object being parsed.
        kind: ObjectKind,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// Bytes remain after the last field of an object.
    #[error("{kind} has {extra} trailing bytes")]
    TrailingBytes {
        /// Object being parsed.
        kind: ObjectKind,
        /// How many bytes follow the object.
        extra: usize,
    },
    /// The magic number is not one of the six Golix object types.
    #[error("unknown magic number {0:02x?}")]
    UnknownMagic([u8; 4]),
    /// The version field is not the one version this implementation supports.
    #[error("unsupported {kind} version {version}")]
    UnsupportedVersion {
        /// Object being parsed.
        kind: ObjectKind,
        /// The version found.
        version: u32,
    },
    /// The cipher suite byte names no suite this build knows.
    #[error("unknown cipher suite {0:#04x}")]
    UnknownSuite(u8),
    /// The suite is known (its layout can be parsed) but its cryptography is not implemented.
    #[error("cipher suite {0:#04x} can be parsed but not verified or created by this build")]
    UnsupportedSuite(u8),
    /// The address algorithm byte names no algorithm this build knows.
    #[error("unknown address algorithm {0:#04x}")]
    UnknownAddressAlgorithm(u8),
    /// The object's file hash does not match its content.
    #[error("{kind} file hash does not match its content")]
    HashMismatch {
        /// Object being checked.
        kind: ObjectKind,
    },
    /// The dynamic hash of a first GOBD frame does not match its content.
    #[error("dynamic hash of a first GOBD frame does not match its content")]
    DynamicHashMismatch,
    /// A GOBD frame's counter and target vector do not fit together.
    #[error("illegal dynamic frame: {0}")]
    IllegalFrame(&'static str),
    /// A length field is inconsistent (not a whole number of GHIDs, too large, ...).
    #[error("invalid length: {0}")]
    InvalidLength(&'static str),
    /// The signature does not verify under the signer's public key.
    #[error("signature verification failed")]
    BadSignature,
    /// A GARQ's MAC does not verify.
    #[error("request MAC verification failed")]
    BadMac,
    /// A public key is malformed (not a valid curve point or not canonically encoded).
    #[error("invalid {0} public key")]
    InvalidKey(&'static str),
    /// A public key is weak (small order or outside the prime-order subgroup).
    #[error("weak {0} public key rejected")]
    WeakKey(&'static str),
    /// A key agreement produced a non-contributory (all-zero) result.
    #[error("key agreement was not contributory")]
    NonContributory,
    /// An object's cipher suite differs from its signer's identity (or a secret's from its container).
    #[error("cipher suite mismatch: object {object:#04x}, key {key:#04x}")]
    SuiteMismatch {
        /// Suite byte of the object.
        object: u8,
        /// Suite of the identity or secret used with it.
        key: u8,
    },
    /// The identity supplied is not the one the object names.
    #[error("identity mismatch: object names a different author, binder or recipient")]
    WrongIdentity,
    /// A GARQ is addressed to someone else.
    #[error("request is addressed to another recipient")]
    WrongRecipient,
    /// The author named inside a GARQ is unknown to the caller.
    #[error("request author is unknown")]
    UnknownAuthor,
    /// Authenticated decryption failed (wrong secret, tampered payload).
    #[error("decryption failed")]
    DecryptionFailed,
    /// A GARQ's inner container could not be parsed.
    #[error("malformed request payload: {0}")]
    MalformedRequest(&'static str),
    /// A GHID's text form could not be decoded.
    #[error("invalid GHID text")]
    InvalidGhidText,
    /// An argument to a constructor was out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A share names a recipient whose identity the persistence server does
    /// not have (yet: a new agent publishes it when it first connects).
    #[error("the recipient's identity is not known to the server yet")]
    UnknownRecipient,
    /// A persistence rule refused an object or request.
    #[error("refused: {reason}: {detail}")]
    Refused {
        /// Which rule.
        reason: Refusal,
        /// Why, for people.
        detail: String,
    },
    /// A storage backend failed (IO, database, lock).
    #[error("storage: {0}")]
    Storage(String),
    /// The password does not open this account (nothing was changed).
    #[error("wrong password for this account")]
    WrongPassword,
    /// Recovery words that are not a phrase at all (word count, a word not
    /// in the list, checksum); nothing was tried or changed.
    #[error("these are not recovery words: {0}")]
    BadRecoveryWords(String),
    /// A valid phrase that does not open this account (another account's,
    /// or replaced since); nothing was changed.
    #[error("these recovery words do not open this account (they may belong to another account, or have been replaced)")]
    WrongRecoveryWords,
    /// An export file that does not open: not one, corrupted or cut short
    /// (nothing was written).
    #[error("export file: {0}")]
    CorruptExport(&'static str),
    /// No object with that address is known to this agent (or it is private
    /// to another app token, which looks the same from outside).
    #[error("unknown object")]
    UnknownObject,
    /// The operation is not allowed on this object or in this session.
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// The engine cannot do this yet (not logged in, login in progress).
    #[error("not ready: {0}")]
    NotReady(&'static str),
    /// A wire message could not be decoded.
    #[error("wire: {0}")]
    Wire(#[from] crate::wire::WireError),
}

/// Why the persistence rules refused something (each maps to one NAK code of
/// the remote protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// The object does not parse.
    Malformed,
    /// Its hash or signature is wrong.
    VerificationFailed,
    /// Its signer or recipient identity is not known here.
    InvalidIdentity,
    /// A container nothing binds.
    UnboundContainer,
    /// The object, or its target, was debound.
    AlreadyDebound,
    /// The target is of a type this object cannot target.
    InvalidTarget,
    /// The signer may not do this (wrong binder, debinder or recipient).
    InconsistentAuthor,
    /// The object named does not exist.
    DoesNotExist,
    /// A dynamic frame breaks the frame rules (counter, cycle, chain depth).
    IllegalDynamicFrame,
    /// The cipher suite cannot be verified by this build.
    UnsupportedSuite,
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Refusal::Malformed => "malformed",
            Refusal::VerificationFailed => "verification failed",
            Refusal::InvalidIdentity => "invalid identity",
            Refusal::UnboundContainer => "unbound container",
            Refusal::AlreadyDebound => "already debound",
            Refusal::InvalidTarget => "invalid target",
            Refusal::InconsistentAuthor => "inconsistent author",
            Refusal::DoesNotExist => "does not exist",
            Refusal::IllegalDynamicFrame => "illegal dynamic frame",
            Refusal::UnsupportedSuite => "unsupported suite",
        })
    }
}

impl Error {
    /// Shorthand for a refusal.
    pub fn refused(reason: Refusal, detail: impl Into<String>) -> Self {
        Error::Refused {
            reason,
            detail: detail.into(),
        }
    }
}

impl Error {
    /// A stable short name for the error, used by golden vectors and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Truncated { .. } => "truncated",
            Error::TrailingBytes { .. } => "trailing_bytes",
            Error::UnknownMagic(_) => "unknown_magic",
            Error::UnsupportedVersion { .. } => "unsupported_version",
            Error::UnknownSuite(_) => "unknown_suite",
            Error::UnsupportedSuite(_) => "unsupported_suite",
            Error::UnknownAddressAlgorithm(_) => "unknown_address_algorithm",
            Error::HashMismatch { .. } => "hash_mismatch",
            Error::DynamicHashMismatch => "dynamic_hash_mismatch",
            Error::IllegalFrame(_) => "illegal_frame",
            Error::InvalidLength(_) => "invalid_length",
            Error::BadSignature => "bad_signature",
            Error::BadMac => "bad_mac",
            Error::InvalidKey(_) => "invalid_key",
            Error::WeakKey(_) => "weak_key",
            Error::NonContributory => "non_contributory",
            Error::SuiteMismatch { .. } => "suite_mismatch",
            Error::WrongIdentity => "wrong_identity",
            Error::WrongRecipient => "wrong_recipient",
            Error::UnknownAuthor => "unknown_author",
            Error::DecryptionFailed => "decryption_failed",
            Error::MalformedRequest(_) => "malformed_request",
            Error::InvalidGhidText => "invalid_ghid_text",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::UnknownRecipient => "unknown_recipient",
            Error::Refused { .. } => "refused",
            Error::Storage(_) => "storage",
            Error::WrongPassword => "wrong_password",
            Error::BadRecoveryWords(_) => "bad_recovery_words",
            Error::WrongRecoveryWords => "wrong_recovery_words",
            Error::CorruptExport(_) => "corrupt_export",
            Error::UnknownObject => "unknown_object",
            Error::NotAllowed(_) => "not_allowed",
            Error::NotReady(_) => "not_ready",
            Error::Wire(_) => "wire",
        }
    }
}

impl Error {
    /// The IPC code the local service answers an app with when the engine
    /// refuses its request.
    pub fn ipc_code(&self) -> crate::wire::ipc::IpcErrorCode {
        use crate::wire::ipc::IpcErrorCode;
        match self {
            Error::UnknownObject => IpcErrorCode::DoesNotExist,
            Error::UnknownRecipient => IpcErrorCode::UnknownRecipient,
            Error::NotAllowed(_) | Error::NotReady(_) => IpcErrorCode::IpcError,
            Error::WrongIdentity | Error::UnknownAuthor => IpcErrorCode::InconsistentAuthor,
            Error::BadSignature | Error::HashMismatch { .. } | Error::BadMac => {
                IpcErrorCode::VerificationFailure
            }
            Error::InvalidKey(_) | Error::WeakKey(_) => IpcErrorCode::InvalidIdentity,
            Error::IllegalFrame(_) => IpcErrorCode::IllegalDynamicFrame,
            Error::Truncated { .. }
            | Error::TrailingBytes { .. }
            | Error::UnknownMagic(_)
            | Error::UnsupportedVersion { .. } => IpcErrorCode::MalformedGolixPrimitive,
            Error::Refused { .. } => IpcErrorCode::RemoteNak,
            _ => IpcErrorCode::Exception,
        }
    }
}

/// The app-facing crate's errors are the engine's of the same name (same
/// codes, same messages).
impl From<hypergolix_base::Error> for Error {
    fn from(e: hypergolix_base::Error) -> Self {
        match e {
            hypergolix_base::Error::UnknownAddressAlgorithm(b) => Error::UnknownAddressAlgorithm(b),
            hypergolix_base::Error::InvalidLength(why) => Error::InvalidLength(why),
            hypergolix_base::Error::InvalidGhidText => Error::InvalidGhidText,
        }
    }
}

/// Result alias for `hypergolix-core`.
pub type Result<T> = core::result::Result<T, Error>;
