//! The link's one error type.

use hypergolix_base::ipc::IpcErrorCode;

/// What can go wrong talking to the local service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The service could not be reached (is `hypergolix start` running?).
    #[error(
        "cannot reach the Hypergolix service at {addr}: {why} (is `hypergolix start` running?)"
    )]
    Connect {
        /// The address tried.
        addr: String,
        /// The reason.
        why: String,
    },
    /// The connection dropped before the answer came; the link reconnects
    /// on its own, so the request can be retried.
    #[error("the connection to the service dropped before it answered")]
    Disconnected,
    /// The service took longer than the link's timeout to answer.
    #[error("the service did not answer within {0} s")]
    Timeout(u64),
    /// The service refused the request.
    #[error("the service refused: {message} (code {code:?})")]
    Refused {
        /// The IPC error code.
        code: Option<IpcErrorCode>,
        /// The service's message.
        message: String,
    },
    /// The service answered something this link cannot read.
    #[error("unexpected answer from the service: {0}")]
    Protocol(String),
    /// The object was discarded or deleted.
    #[error("the object was discarded or deleted")]
    DeadObject,
    /// The object cannot be changed by this agent (static, or made by another agent).
    #[error("the object is not mutable here: {0}")]
    NotMutable(&'static str),
    /// No app token yet: call `new_token` or `set_token` first.
    #[error("no app token yet: call new_token or set_token first")]
    NoToken,
    /// The object belongs to another link (the seed's `*_obj` methods take
    /// the link's own objects).
    #[error("the object belongs to another link")]
    ForeignObject,
    /// The link was stopped.
    #[error("the link was stopped")]
    Stopped,
}

/// The link's result type.
pub type Result<T> = core::result::Result<T, LinkError>;
