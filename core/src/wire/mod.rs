//! Wire protocols: the message framing shared by the Hypergolix 0.1.0 remote
//! (service ↔ persistence server) and IPC (app ↔ service) protocols, and the
//! remote protocol's commands. Documented in `docs/protocol/remote.md`.

pub mod frame;
pub mod remote;

pub use frame::{Frame, WireError};
