//! # hypergolix-link
//!
//! The Rust app link to the Hypergolix local service (`hypergolix start`):
//! [`HypergolixLink`] and [`AppObj`], the API of the original Hypergolix
//! 0.1.0 link in Rust idiom, over the same IPC protocol on
//! `ws://127.0.0.1:7772/`. Every async method has a blocking `_threadsafe`
//! twin. The link asks the service for GHIDs as they are (the native GHID
//! dialect), so the addresses it shows match `hypergolix whoami`.
//!
//! ```no_run
//! use hypergolix_link::{ApiId, HypergolixLink, NewObj};
//!
//! # async fn f(friend: hypergolix_link::Ghid) -> hypergolix_link::Result<()> {
//! let link = HypergolixLink::connect("127.0.0.1:7772").await?;
//! link.new_token().await?;
//! let api = ApiId::from_app_bytes([7; 64]);
//! let obj = link
//!     .new_obj(b"v0".to_vec(), NewObj { api_id: api, ..NewObj::default() })
//!     .await?;
//! obj.share(friend).await?;
//! obj.set_state(b"v1".to_vec()).await?; // the friend's callbacks fire
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod conn;
mod error;
mod link;
mod obj;

pub use conn::{Share, ShareResult};
pub use error::{LinkError, Result};
pub use hypergolix_core::engine::{ApiId, AppToken};
pub use hypergolix_core::golix::Ghid;
pub use link::{HypergolixLink, NewObj, DEFAULT_ADDR};
pub use obj::{AppObj, CallbackId};
