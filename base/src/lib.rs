//! What an app needs to speak to Hypergolix, and nothing more: GHIDs
//! (Golix addresses and their text form), the app-facing values (tokens,
//! api_ids, object definitions, requests, replies, pushes) and the 0.1.0 IPC
//! codec with its framing. The Rust link depends on this crate alone; the
//! engine (`hypergolix-core`), the local service and the browser host use it
//! through `hypergolix-core`'s re-exports, so there is one definition of
//! each. No IO, no engine, no keys.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod app;
pub mod error;
pub mod frame;
pub mod ghid;
pub mod ipc;

pub use address::AddressAlgorithm;
pub use app::{
    ApiId, AppPush, AppReply, AppRequest, AppToken, Listed, NewObject, ObjDef, SecretBytes,
    SessionId,
};
pub use error::{Error, Result};
pub use frame::{Frame, WireError};
pub use ghid::Ghid;
