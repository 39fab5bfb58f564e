//! The seed's names: the original Hypergolix README's `HypergolixLink` and
//! `AppObj` API over the Rust idiom of this crate (the table is in the
//! crate documentation).

use hypergolix_base::Ghid;

use crate::error::{LinkError, Result};
use crate::link::{HypergolixLink, NewObj};
use crate::obj::{AppObj, AsyncCallback, Callback};

/// The callbacks an object starts with (`AppObj::from_*`'s
/// `threadsafe_callbacks` and `async_callbacks`), in the order they run.
#[derive(Default, Clone)]
pub struct Callbacks {
    /// Run on the link's callback thread.
    pub threadsafe: Vec<Callback>,
    /// Awaited on the link's runtime.
    pub asynchronous: Vec<AsyncCallback>,
}

impl core::fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Callbacks")
            .field("threadsafe", &self.threadsafe.len())
            .field("asynchronous", &self.asynchronous.len())
            .finish()
    }
}

impl HypergolixLink {
    /// The seed's `app_token`: this app's token, once set.
    pub fn app_token(&self) -> Option<hypergolix_base::app::AppToken> {
        self.token()
    }

    /// The seed's `get_obj_async`: [`HypergolixLink::get`].
    pub async fn get_obj(&self, address: Ghid) -> Result<AppObj> {
        self.get(address).await
    }

    /// The seed's `get_obj_threadsafe`.
    pub fn get_obj_threadsafe(&self, address: Ghid) -> Result<AppObj> {
        self.get_threadsafe(address)
    }

    /// Checks that `obj` came from this link (the seed's `*_obj` methods
    /// take the link's own objects).
    fn own<'a>(&self, obj: &'a AppObj) -> Result<&'a AppObj> {
        if std::sync::Arc::ptr_eq(&obj.0.link, &self.inner) {
            Ok(obj)
        } else {
            Err(LinkError::ForeignObject)
        }
    }

    /// The seed's `update_obj_async`: [`AppObj::set_state`].
    pub async fn update_obj(&self, obj: &AppObj, state: Vec<u8>) -> Result<()> {
        self.own(obj)?.set_state(state).await
    }

    /// The seed's `update_obj_threadsafe`.
    pub fn update_obj_threadsafe(&self, obj: &AppObj, state: Vec<u8>) -> Result<()> {
        self.inner.block(self.update_obj(obj, state))
    }

    /// The seed's `share_obj_async`: [`AppObj::share`].
    pub async fn share_obj(&self, obj: &AppObj, recipient: Ghid) -> Result<()> {
        self.own(obj)?.share(recipient).await
    }

    /// The seed's `share_obj_threadsafe`.
    pub fn share_obj_threadsafe(&self, obj: &AppObj, recipient: Ghid) -> Result<()> {
        self.inner.block(self.share_obj(obj, recipient))
    }

    /// The seed's `freeze_obj_async`: [`AppObj::freeze`].
    pub async fn freeze_obj(&self, obj: &AppObj) -> Result<AppObj> {
        self.own(obj)?.freeze().await
    }

    /// The seed's `freeze_obj_threadsafe`.
    pub fn freeze_obj_threadsafe(&self, obj: &AppObj) -> Result<AppObj> {
        self.inner.block(self.freeze_obj(obj))
    }

    /// The seed's `hold_obj_async`: [`AppObj::hold`].
    pub async fn hold_obj(&self, obj: &AppObj) -> Result<()> {
        self.own(obj)?.hold().await
    }

    /// The seed's `hold_obj_threadsafe`.
    pub fn hold_obj_threadsafe(&self, obj: &AppObj) -> Result<()> {
        self.inner.block(self.hold_obj(obj))
    }

    /// The seed's `discard_obj_async`: [`AppObj::discard`].
    pub async fn discard_obj(&self, obj: &AppObj) -> Result<()> {
        self.own(obj)?.discard().await
    }

    /// The seed's `discard_obj_threadsafe`.
    pub fn discard_obj_threadsafe(&self, obj: &AppObj) -> Result<()> {
        self.inner.block(self.discard_obj(obj))
    }

    /// The seed's `delete_obj_async`: [`AppObj::delete`].
    pub async fn delete_obj(&self, obj: &AppObj) -> Result<()> {
        self.own(obj)?.delete().await
    }

    /// The seed's `delete_obj_threadsafe`.
    pub fn delete_obj_threadsafe(&self, obj: &AppObj) -> Result<()> {
        self.inner.block(self.delete_obj(obj))
    }
}

impl AppObj {
    /// The seed's `await AppObj.from_async(embed, state, api_id, private,
    /// dynamic, threadsafe_callbacks, async_callbacks, _legroom)`: a new
    /// object made by `embed`'s agent, with its callbacks in place before
    /// anything can update it.
    ///
    /// ```no_run
    /// use hypergolix_link::{AppObj, Callbacks, HypergolixLink, NewObj};
    /// use std::sync::Arc;
    ///
    /// # async fn f(link: HypergolixLink) -> hypergolix_link::Result<()> {
    /// let obj = AppObj::from_async(
    ///     &link,
    ///     b"hello".to_vec(),
    ///     NewObj { legroom: 3, ..NewObj::default() },
    ///     Callbacks {
    ///         threadsafe: vec![Arc::new(|o: &AppObj| println!("{:?}", o.state()))],
    ///         ..Callbacks::default()
    ///     },
    /// )
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn from_async(
        embed: &HypergolixLink,
        state: Vec<u8>,
        opts: NewObj,
        callbacks: Callbacks,
    ) -> Result<AppObj> {
        let obj = embed.new_obj(state, opts).await?;
        for c in callbacks.threadsafe {
            obj.push_callback(c);
        }
        for c in callbacks.asynchronous {
            obj.push_async_callback(c);
        }
        Ok(obj)
    }

    /// The seed's `AppObj.from_threadsafe(...)`: blocking
    /// [`AppObj::from_async`].
    pub fn from_threadsafe(
        embed: &HypergolixLink,
        state: Vec<u8>,
        opts: NewObj,
        callbacks: Callbacks,
    ) -> Result<AppObj> {
        embed
            .inner
            .block(Self::from_async(embed, state, opts, callbacks))
    }

    /// The seed's `update_async`: [`AppObj::set_state`].
    pub async fn update(&self, state: Vec<u8>) -> Result<()> {
        self.set_state(state).await
    }

    /// The seed's `update_threadsafe`.
    pub fn update_threadsafe(&self, state: Vec<u8>) -> Result<()> {
        self.set_state_threadsafe(state)
    }

    /// The seed's `append_threadsafe_callback`: [`AppObj::append_callback`].
    pub fn append_threadsafe_callback(
        &self,
        f: impl Fn(&AppObj) + Send + Sync + 'static,
    ) -> crate::CallbackId {
        self.append_callback(f)
    }

    /// The seed's `prepend_threadsafe_callback`: [`AppObj::prepend_callback`].
    pub fn prepend_threadsafe_callback(
        &self,
        f: impl Fn(&AppObj) + Send + Sync + 'static,
    ) -> crate::CallbackId {
        self.prepend_callback(f)
    }

    /// The seed's `remove_threadsafe_callback`: [`AppObj::remove_callback`].
    pub fn remove_threadsafe_callback(&self, id: crate::CallbackId) -> bool {
        self.remove_callback(id)
    }

    /// The seed's `clear_threadsafe_callbacks`: [`AppObj::clear_callbacks`].
    pub fn clear_threadsafe_callbacks(&self) {
        self.clear_callbacks();
    }

    /// The seed's `threadsafe_callbacks`: [`AppObj::callbacks`].
    pub fn threadsafe_callbacks(&self) -> Vec<crate::CallbackId> {
        self.callbacks()
    }
}
