//! The persistence server's rules, sans-IO: which objects are accepted, what a
//! binding holds, what a debinding clears, frame-counter monotonicity, cycle
//! rejection, garbage collection, and who is told what. They run over a
//! transactional key-value store ([`store::PersistTxn`]); hosts supply the
//! backend (memory here; the embedded store and PostgreSQL in `wasi-host`).
//! The rules and every deviation from the spec: `docs/protocol/persistence.md`.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod dispatch;
pub mod keys;
pub mod node;
pub mod rules;
pub mod store;
pub mod subs;
pub mod transfer;

pub use dispatch::{Dispatcher, Input, Query, Route, SubOp};
pub use node::{ConnId, Node};
pub use rules::{Checked, Notification, Persister, PublishOutcome};
pub use store::{MemoryStore, PersistBackend, PersistTxn};
pub use subs::{Applied, Subscriptions};
