//! `AppObj`: one Hypergolix object as an app sees it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hypergolix_base::app::ApiId;
use hypergolix_base::ghid::GHID_LEN;
use hypergolix_base::ipc::{IpcRequest, WireObjDef};
use hypergolix_base::Ghid;

use crate::conn::{guard, parse_ghid, Core};
use crate::error::{LinkError, Result};
use crate::link::{HypergolixLink, LinkInner};
use futures_util::future::BoxFuture;

/// An update callback: called on the link's callback thread with the object
/// after each update pushed by the service, and once more when the object is
/// deleted (then `is_alive()` is false).
pub type Callback = Arc<dyn Fn(&AppObj) + Send + Sync>;

/// An async update callback: its future is awaited on the link's runtime,
/// after the previous async callback's, for the same events as a
/// [`Callback`].
pub type AsyncCallback = Arc<dyn Fn(AppObj) -> BoxFuture<'static, ()> + Send + Sync>;

/// Identifies a callback for [`AppObj::remove_callback`] and
/// [`AppObj::remove_async_callback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

#[derive(Clone)]
struct Meta {
    address: Ghid,
    author: Ghid,
    api_id: ApiId,
    private: bool,
    dynamic: bool,
    is_link: bool,
    legroom: u8,
    state: Vec<u8>,
    alive: bool,
    /// Arrival number of the message `state` came from: an answer older
    /// than a push already applied never overwrites it.
    seq: u64,
}

pub(crate) struct ObjInner {
    pub(crate) link: Arc<LinkInner>,
    meta: Mutex<Meta>,
    callbacks: Mutex<Vec<(CallbackId, Callback)>>,
    async_callbacks: Mutex<Vec<(CallbackId, AsyncCallback)>>,
    next_cb: AtomicU64,
}

/// One object: its address, author, api_id, flags and current state, with
/// the operations of the 0.1.0 `AppObj` (update, share, freeze, hold,
/// discard, delete, sync) and update callbacks. Cheap to clone: clones are
/// the same object. The link keeps an object up to date while any clone of
/// it is alive.
///
/// Every async method has a blocking `_threadsafe` twin for code outside an
/// async runtime (callbacks included).
#[derive(Clone)]
pub struct AppObj(pub(crate) Arc<ObjInner>);

impl core::fmt::Debug for AppObj {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.meta();
        f.debug_struct("AppObj")
            .field("address", &m.address)
            .field("dynamic", &m.dynamic)
            .field("private", &m.private)
            .field("alive", &m.alive)
            .field("state_len", &m.state.len())
            .finish()
    }
}

impl ObjInner {
    /// An update pushed by the service: new state, then the callbacks.
    pub(crate) fn pushed(self: &Arc<Self>, def: WireObjDef, seq: u64, core: &Core) {
        {
            let mut m = guard(&self.meta);
            m.state = def.state;
            m.is_link = def.is_link;
            m.seq = seq;
        }
        self.notify(core);
    }

    /// Fetched again after a reconnect: callbacks run if it changed while
    /// the link was away (unless a newer push reached it first).
    pub(crate) fn refreshed(self: &Arc<Self>, def: WireObjDef, seq: u64, core: &Core) {
        let changed = {
            let mut m = guard(&self.meta);
            if seq < m.seq {
                return;
            }
            let changed = m.state != def.state || !m.alive;
            m.state = def.state;
            m.is_link = def.is_link;
            m.alive = true;
            m.seq = seq;
            changed
        };
        if changed {
            self.notify(core);
        }
    }

    pub(crate) fn address(&self) -> Ghid {
        guard(&self.meta).address
    }

    /// The object was deleted by its author.
    pub(crate) fn deleted(self: &Arc<Self>, core: &Core) {
        guard(&self.meta).alive = false;
        self.notify(core);
    }

    fn notify(self: &Arc<Self>, core: &Core) {
        let cbs: Vec<Callback> = guard(&self.callbacks)
            .iter()
            .map(|(_, c)| Arc::clone(c))
            .collect();
        let acbs: Vec<AsyncCallback> = guard(&self.async_callbacks)
            .iter()
            .map(|(_, c)| Arc::clone(c))
            .collect();
        if !cbs.is_empty() {
            let obj = AppObj(Arc::clone(self));
            core.dispatch(Box::new(move || {
                for c in cbs {
                    c(&obj);
                }
            }));
        }
        if !acbs.is_empty() {
            let obj = AppObj(Arc::clone(self));
            core.dispatch_async(Box::pin(async move {
                for c in acbs {
                    c(obj.clone()).await;
                }
            }));
        }
    }
}

impl AppObj {
    /// Builds the handle for an object definition, or refreshes the one the
    /// link already tracks (so every handle of an address is the same object).
    /// `seq`: the arrival number of the message `def`'s state came from.
    pub(crate) fn track(link: &Arc<LinkInner>, def: WireObjDef, seq: u64) -> Result<Self> {
        let address = def
            .address
            .ok_or_else(|| LinkError::Protocol("an object without an address".into()))?;
        let meta = Meta {
            address,
            author: def
                .author
                .ok_or_else(|| LinkError::Protocol("an object without an author".into()))?,
            api_id: def.api_id.unwrap_or_else(ApiId::default_bytes),
            private: def.private,
            dynamic: def.dynamic,
            is_link: def.is_link,
            legroom: def.legroom,
            state: def.state,
            alive: true,
            seq,
        };
        let mut objs = guard(&link.core.objs);
        if let Some(existing) = objs.get(&address).and_then(std::sync::Weak::upgrade) {
            let mut m = guard(&existing.meta);
            // The service answers legroom 0 (as 0.1.0 does): keep the one
            // this link made the object with.
            let legroom = if meta.legroom == 0 {
                m.legroom
            } else {
                meta.legroom
            };
            if m.seq > seq {
                // A push newer than this answer already reached it.
                *m = Meta {
                    legroom,
                    state: std::mem::take(&mut m.state),
                    is_link: m.is_link,
                    alive: m.alive,
                    seq: m.seq,
                    ..meta
                };
            } else {
                *m = Meta { legroom, ..meta };
            }
            drop(m);
            return Ok(Self(existing));
        }
        let inner = Arc::new(ObjInner {
            link: Arc::clone(link),
            meta: Mutex::new(meta),
            callbacks: Mutex::new(Vec::new()),
            async_callbacks: Mutex::new(Vec::new()),
            next_cb: AtomicU64::new(1),
        });
        objs.insert(address, Arc::downgrade(&inner));
        Ok(Self(inner))
    }

    fn meta(&self) -> Meta {
        guard(&self.0.meta).clone()
    }

    fn live_address(&self) -> Result<Ghid> {
        let m = guard(&self.0.meta);
        if m.alive {
            Ok(m.address)
        } else {
            Err(LinkError::DeadObject)
        }
    }

    /// The link this object belongs to.
    pub fn link(&self) -> HypergolixLink {
        HypergolixLink {
            inner: Arc::clone(&self.0.link),
        }
    }

    /// The address: the dynamic GHID, or the GHID of a static object.
    pub fn address(&self) -> Ghid {
        guard(&self.0.meta).address
    }

    /// The identity that made the object.
    pub fn author(&self) -> Ghid {
        guard(&self.0.meta).author
    }

    /// The app schema the object belongs to.
    pub fn api_id(&self) -> ApiId {
        guard(&self.0.meta).api_id
    }

    /// Visible only to the app token that made it.
    pub fn is_private(&self) -> bool {
        guard(&self.0.meta).private
    }

    /// Dynamic (can be updated) rather than static.
    pub fn is_dynamic(&self) -> bool {
        guard(&self.0.meta).dynamic
    }

    /// Made by this agent.
    pub fn is_owned(&self) -> bool {
        guard(&self.0.meta).author == self.0.link.whoami
    }

    /// Whether this app can update it: dynamic, made by this agent, alive.
    pub fn is_mutable(&self) -> bool {
        let m = guard(&self.0.meta);
        m.dynamic && m.alive && m.author == self.0.link.whoami
    }

    /// Whether its state is the address of another object.
    pub fn is_link(&self) -> bool {
        guard(&self.0.meta).is_link
    }

    /// The address a link object points to.
    pub fn link_address(&self) -> Option<Ghid> {
        let m = guard(&self.0.meta);
        if m.is_link {
            Ghid::from_bytes(&m.state).ok()
        } else {
            None
        }
    }

    /// How many earlier targets each frame carries (the seed's `_legroom`),
    /// as this link made the object; 0 for a static object and for objects
    /// fetched with `get` (the service does not say, as in 0.1.0).
    pub fn legroom(&self) -> u8 {
        guard(&self.0.meta).legroom
    }

    /// False once discarded here or deleted by its author.
    pub fn is_alive(&self) -> bool {
        guard(&self.0.meta).alive
    }

    /// The current state.
    pub fn state(&self) -> Vec<u8> {
        guard(&self.0.meta).state.clone()
    }

    /// Replaces the state: encrypted, signed and delivered to everyone the
    /// object is shared with. Returns once the service has it on disk.
    ///
    /// ```no_run
    /// # async fn f(obj: hypergolix_link::AppObj) -> hypergolix_link::Result<()> {
    /// obj.set_state(b"hello again".to_vec()).await?;
    /// assert_eq!(obj.state(), b"hello again");
    /// # Ok(()) }
    /// ```
    pub async fn set_state(&self, state: Vec<u8>) -> Result<()> {
        let address = self.live_address()?;
        let m = self.meta();
        if !m.dynamic {
            return Err(LinkError::NotMutable(
                "a static object's state is set once, when it is made",
            ));
        }
        if m.author != self.0.link.whoami {
            return Err(LinkError::NotMutable("only the author can update"));
        }
        let def = WireObjDef {
            address: Some(address),
            author: None,
            private: m.private,
            dynamic: true,
            legroom: 0,
            api_id: Some(m.api_id),
            is_link: m.is_link,
            state: state.clone(),
        };
        let before = guard(&self.0.meta).seq;
        let (_, seq) = self.0.link.call_seq(IpcRequest::UpdateObject(def)).await?;
        let mut m = guard(&self.0.meta);
        // A state pushed meanwhile is newer than this one.
        if m.seq == before {
            m.state = state;
            m.seq = seq;
        }
        Ok(())
    }

    /// Blocking [`AppObj::set_state`].
    pub fn set_state_threadsafe(&self, state: Vec<u8>) -> Result<()> {
        self.0.link.block(self.set_state(state))
    }

    /// Asks the service to fetch the newest state from the server now.
    pub async fn sync(&self) -> Result<()> {
        let a = self.live_address()?;
        self.0.link.call(IpcRequest::SyncObject(a)).await?;
        Ok(())
    }

    /// Blocking [`AppObj::sync`].
    pub fn sync_threadsafe(&self) -> Result<()> {
        self.0.link.block(self.sync())
    }

    /// Shares the object with another identity (its `whoami`). Whether it
    /// arrived is told to [`HypergolixLink::on_share_result`].
    ///
    /// ```no_run
    /// # async fn f(obj: hypergolix_link::AppObj, friend: hypergolix_link::Ghid) -> hypergolix_link::Result<()> {
    /// obj.share(friend).await?;
    /// # Ok(()) }
    /// ```
    pub async fn share(&self, recipient: Ghid) -> Result<()> {
        let address = self.live_address()?;
        if self.is_private() {
            return Err(LinkError::NotMutable("private objects cannot be shared"));
        }
        self.0
            .link
            .call(IpcRequest::ShareObject { address, recipient })
            .await?;
        Ok(())
    }

    /// Blocking [`AppObj::share`].
    pub fn share_threadsafe(&self, recipient: Ghid) -> Result<()> {
        self.0.link.block(self.share(recipient))
    }

    /// Takes a share back (the owner only, dynamic objects only): the
    /// object's next frame, published at once, is encrypted under a new key
    /// that the other recipients and the owner's other devices get and
    /// `recipient` never does. It keeps what it already read; it reads
    /// nothing published from then on (`docs/protocol/revocation.md`).
    ///
    /// ```no_run
    /// # async fn f(obj: hypergolix_link::AppObj, friend: hypergolix_link::Ghid) -> hypergolix_link::Result<()> {
    /// obj.unshare(friend).await?;
    /// assert!(!obj.shared_with().await?.contains(&friend));
    /// # Ok(()) }
    /// ```
    pub async fn unshare(&self, recipient: Ghid) -> Result<()> {
        let address = self.live_address()?;
        if !self.is_owned() {
            return Err(LinkError::NotMutable(
                "only the owner can take a share back",
            ));
        }
        if !self.is_dynamic() {
            return Err(LinkError::NotMutable(
                "a static object cannot be unshared (delete it instead)",
            ));
        }
        self.0
            .link
            .call(IpcRequest::UnshareObject { address, recipient })
            .await?;
        Ok(())
    }

    /// Blocking [`AppObj::unshare`].
    pub fn unshare_threadsafe(&self, recipient: Ghid) -> Result<()> {
        self.0.link.block(self.unshare(recipient))
    }

    /// The identities this agent shared the object with and has not taken
    /// it back from.
    pub async fn shared_with(&self) -> Result<Vec<Ghid>> {
        let address = self.live_address()?;
        let body = self.0.link.call(IpcRequest::SharedWith(address)).await?;
        if body.len() % GHID_LEN != 0 {
            return Err(LinkError::Protocol(format!(
                "a shared-with answer of {} bytes is not a list of GHIDs",
                body.len()
            )));
        }
        body.chunks(GHID_LEN).map(parse_ghid).collect()
    }

    /// Blocking [`AppObj::shared_with`].
    pub fn shared_with_threadsafe(&self) -> Result<Vec<Ghid>> {
        self.0.link.block(self.shared_with())
    }

    /// A static snapshot of a dynamic object's current state.
    ///
    /// ```no_run
    /// # async fn f(obj: hypergolix_link::AppObj) -> hypergolix_link::Result<()> {
    /// let snapshot = obj.freeze().await?;
    /// assert!(!snapshot.is_dynamic());
    /// # Ok(()) }
    /// ```
    pub async fn freeze(&self) -> Result<AppObj> {
        let a = self.live_address()?;
        if !self.is_dynamic() {
            return Err(LinkError::NotMutable("static objects cannot be frozen"));
        }
        let body = self.0.link.call(IpcRequest::FreezeObject(a)).await?;
        let frozen = parse_ghid(&body)?;
        self.link().get(frozen).await
    }

    /// Blocking [`AppObj::freeze`].
    pub fn freeze_threadsafe(&self) -> Result<AppObj> {
        self.0.link.block(self.freeze())
    }

    /// Keeps the object at the server even if its author lets it go.
    pub async fn hold(&self) -> Result<()> {
        let a = self.live_address()?;
        self.0.link.call(IpcRequest::HoldObject(a)).await?;
        Ok(())
    }

    /// Blocking [`AppObj::hold`].
    pub fn hold_threadsafe(&self) -> Result<()> {
        self.0.link.block(self.hold())
    }

    /// Stops following the object (no more updates); this handle dies.
    pub async fn discard(&self) -> Result<()> {
        let a = self.live_address()?;
        self.0.link.call(IpcRequest::DiscardObject(a)).await?;
        guard(&self.0.meta).alive = false;
        Ok(())
    }

    /// Blocking [`AppObj::discard`].
    pub fn discard_threadsafe(&self) -> Result<()> {
        self.0.link.block(self.discard())
    }

    /// Deletes the object everywhere (its author only); recipients are told.
    ///
    /// ```no_run
    /// # async fn f(obj: hypergolix_link::AppObj) -> hypergolix_link::Result<()> {
    /// obj.delete().await?;
    /// assert!(!obj.is_alive());
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self) -> Result<()> {
        let a = self.live_address()?;
        self.0.link.call(IpcRequest::DeleteObject(a)).await?;
        guard(&self.0.meta).alive = false;
        Ok(())
    }

    /// Blocking [`AppObj::delete`].
    pub fn delete_threadsafe(&self) -> Result<()> {
        self.0.link.block(self.delete())
    }

    fn add<C>(&self, list: &Mutex<Vec<(CallbackId, C)>>, f: C, front: bool) -> CallbackId {
        let id = CallbackId(self.0.next_cb.fetch_add(1, Ordering::Relaxed));
        let mut cbs = guard(list);
        if front {
            cbs.insert(0, (id, f));
        } else {
            cbs.push((id, f));
        }
        id
    }

    fn remove<C>(list: &Mutex<Vec<(CallbackId, C)>>, id: CallbackId) -> bool {
        let mut cbs = guard(list);
        let before = cbs.len();
        cbs.retain(|(i, _)| *i != id);
        cbs.len() != before
    }

    fn ids<C>(list: &Mutex<Vec<(CallbackId, C)>>) -> Vec<CallbackId> {
        guard(list).iter().map(|(i, _)| *i).collect()
    }

    /// Adds a threadsafe callback after the others.
    pub(crate) fn push_callback(&self, f: Callback) -> CallbackId {
        self.add(&self.0.callbacks, f, false)
    }

    /// Adds an async callback after the others.
    pub(crate) fn push_async_callback(&self, f: AsyncCallback) -> CallbackId {
        self.add(&self.0.async_callbacks, f, false)
    }

    /// Adds a callback after the others; it runs on the link's callback
    /// thread after every pushed update (and once on delete).
    ///
    /// ```no_run
    /// # fn f(obj: hypergolix_link::AppObj) {
    /// let id = obj.append_callback(|o| println!("now {:?}", o.state()));
    /// obj.remove_callback(id);
    /// # }
    /// ```
    pub fn append_callback(&self, f: impl Fn(&AppObj) + Send + Sync + 'static) -> CallbackId {
        self.push_callback(Arc::new(f))
    }

    /// Adds a callback before the others.
    pub fn prepend_callback(&self, f: impl Fn(&AppObj) + Send + Sync + 'static) -> CallbackId {
        self.add(&self.0.callbacks, Arc::new(f), true)
    }

    /// Removes one callback; false if it was not there.
    pub fn remove_callback(&self, id: CallbackId) -> bool {
        Self::remove(&self.0.callbacks, id)
    }

    /// Removes every callback.
    pub fn clear_callbacks(&self) {
        guard(&self.0.callbacks).clear();
    }

    /// The threadsafe callbacks, in the order they run.
    pub fn callbacks(&self) -> Vec<CallbackId> {
        Self::ids(&self.0.callbacks)
    }

    /// Adds an async callback after the other async ones. Its future runs
    /// on the link's runtime (so it may await the link's async methods,
    /// never its `_threadsafe` ones), after each pushed update and once on
    /// delete; the futures of one object's callbacks are awaited in order.
    ///
    /// ```no_run
    /// # fn f(obj: hypergolix_link::AppObj) {
    /// obj.append_async_callback(|o| async move {
    ///     if let Ok(copy) = o.link().get(o.address()).await {
    ///         println!("now {:?}", copy.state());
    ///     }
    /// });
    /// # }
    /// ```
    pub fn append_async_callback<F, Fut>(&self, f: F) -> CallbackId
    where
        F: Fn(AppObj) -> Fut + Send + Sync + 'static,
        Fut: core::future::Future<Output = ()> + Send + 'static,
    {
        self.push_async_callback(Arc::new(move |o| Box::pin(f(o))))
    }

    /// Adds an async callback before the other async ones.
    pub fn prepend_async_callback<F, Fut>(&self, f: F) -> CallbackId
    where
        F: Fn(AppObj) -> Fut + Send + Sync + 'static,
        Fut: core::future::Future<Output = ()> + Send + 'static,
    {
        self.add(
            &self.0.async_callbacks,
            Arc::new(move |o| Box::pin(f(o))),
            true,
        )
    }

    /// Removes one async callback; false if it was not there.
    pub fn remove_async_callback(&self, id: CallbackId) -> bool {
        Self::remove(&self.0.async_callbacks, id)
    }

    /// Removes every async callback.
    pub fn clear_async_callbacks(&self) {
        guard(&self.0.async_callbacks).clear();
    }

    /// The async callbacks, in the order they run.
    pub fn async_callbacks(&self) -> Vec<CallbackId> {
        Self::ids(&self.0.async_callbacks)
    }
}
