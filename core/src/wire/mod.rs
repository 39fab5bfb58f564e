//! Wire protocols: the message framing shared by the Hypergolix 0.1.0 remote
//! (service ↔ persistence server) and IPC (app ↔ service) protocols, and the
//! commands of both. Documented in `docs/protocol/remote.md` and
//! `docs/protocol/ipc.md`.

pub use hypergolix_base::{frame, ipc};
pub mod remote;

pub use frame::{Frame, WireError};
