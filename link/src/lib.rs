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
//!
//! ## The seed's names
//!
//! The original README's Python API is here by name too, with the seed's
//! semantics, for apps and people coming from the Python link; each is a
//! thin alias of the Rust idiom beside it. `*_async` in Python is the plain
//! `async fn` here; `*_threadsafe` is the same.
//!
//! | Seed (Python)                                  | Seed name here                                  | Rust idiom                          |
//! |------------------------------------------------|-------------------------------------------------|-------------------------------------|
//! | `link.app_token`                               | [`HypergolixLink::app_token`]                   | [`HypergolixLink::token`]           |
//! | `link.whoami_*()`                              | [`HypergolixLink::whoami`] (known from connect) |                                     |
//! | `link.get_obj_*(ghid)`                         | [`HypergolixLink::get_obj`]                     | [`HypergolixLink::get`]             |
//! | `link.new_obj_*(state, api_id, dynamic, private, _legroom)` | [`HypergolixLink::new_obj`] with [`NewObj`] |                          |
//! | `link.update_obj_*(obj, state)`                | [`HypergolixLink::update_obj`]                  | [`AppObj::set_state`]               |
//! | `link.share_obj_*`, `freeze_obj_*`, `hold_obj_*`, `discard_obj_*`, `delete_obj_*` | [`HypergolixLink::share_obj`] … [`HypergolixLink::delete_obj`] | [`AppObj::share`] … [`AppObj::delete`] |
//! | `AppObj.from_threadsafe(embed, state, …)` / `from_async` | [`AppObj::from_threadsafe`] / [`AppObj::from_async`] with [`NewObj`] and [`Callbacks`] | [`HypergolixLink::new_obj`] |
//! | `obj.update_*(state)`, `obj.state = …`         | [`AppObj::update`]                              | [`AppObj::set_state`]               |
//! | `obj.private`, `obj.mutable`, `obj._legroom`   | [`AppObj::is_private`], [`AppObj::is_mutable`], [`AppObj::legroom`] |                 |
//! | `append/prepend/remove/clear_threadsafe_callback(s)`, `threadsafe_callbacks` | [`AppObj::append_threadsafe_callback`] … | [`AppObj::append_callback`] … |
//! | `append/prepend/remove/clear_async_callback(s)`, `async_callbacks` | [`AppObj::append_async_callback`] …     |                                     |
//!
//! Semantics as in the seed: a static object's state is set once, when it
//! is made, so setting it again is [`LinkError::NotMutable`] (the seed's
//! `AttributeError`); only the author updates a dynamic object; a call on a
//! deleted or discarded object is [`LinkError::DeadObject`] (the seed's
//! `ValueError`); removing a callback that is not registered returns
//! `false` (the seed raises `ValueError`). Threadsafe callbacks run on the
//! link's callback thread, async ones on its runtime, each kind in
//! registration order.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod conn;
mod error;
mod link;
mod obj;
mod seed;

pub use conn::{Share, ShareResult};
pub use error::{LinkError, Result};
pub use hypergolix_base::app::{ApiId, AppToken, Listed, SecretBytes};
pub use hypergolix_base::Ghid;
pub use link::{HypergolixLink, NewObj, DEFAULT_ADDR};
pub use obj::{AppObj, AsyncCallback, Callback, CallbackId};
pub use seed::Callbacks;
