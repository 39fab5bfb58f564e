//! # hypergolix-core
//!
//! Everything Hypergolix does that is not IO: the Golix protocol ([`golix`]),
//! the engine ([`engine`]: the agent that apps talk to) and the persistence
//! rules ([`persist`]). Hosts (the
//! browser crate `hypergolix-web`, the native `wasi-host`) own every socket,
//! file and timer and feed inputs in.
//!
//! Which type to reach for:
//! - parse or inspect any object: [`golix::GolixObject::parse`];
//! - create objects: [`golix::FirstParty`] (`make_container`, `make_first_frame`, ...);
//! - verify objects: [`golix::SecondParty`] with each type's `verify`;
//! - share keys: [`golix::FirstParty::make_request`] / [`golix::FirstParty::open_request`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod engine;
pub mod error;
pub mod golix;
pub mod persist;
pub mod service;

pub use error::{Error, ObjectKind, Refusal, Result};
pub mod wire;
