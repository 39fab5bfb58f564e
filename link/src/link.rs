//! `HypergolixLink`: an app's connection to the local service.

use std::future::Future;
use std::sync::Arc;

use hypergolix_base::app::Listed;
use hypergolix_base::app::{ApiId, AppToken, SecretBytes};
use hypergolix_base::ipc::{parse_listing, IpcRequest, WireObjDef};
use hypergolix_base::Ghid;
use tokio::sync::oneshot;

use crate::conn::{guard, parse_ghid, run, run_async_jobs, Core, Share, ShareResult};
use crate::error::{LinkError, Result};
use crate::obj::AppObj;

/// Where the service listens by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7772";

/// The link's runtime and shared state; the runtime stops when the last
/// link or object handle goes.
pub(crate) struct LinkInner {
    pub core: Arc<Core>,
    pub whoami: Ghid,
    runtime: std::sync::Mutex<Option<tokio::runtime::Runtime>>,
}

impl Drop for LinkInner {
    fn drop(&mut self) {
        self.stop();
    }
}

impl LinkInner {
    /// Closes the connection and ends the IO thread.
    fn stop(&self) {
        self.core.stop();
        if let Some(rt) = guard(&self.runtime).take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Possibly on the link's own IO thread (the last handle went
                // inside a callback's task): shut it down from outside.
                let _ = std::thread::Builder::new()
                    .name("hypergolix-link-stop".into())
                    .spawn(move || rt.shutdown_background());
            } else {
                rt.shutdown_background();
            }
        }
    }

    /// Sends a request from the link's own runtime and awaits the answer
    /// here, so the async API works under any executor (the future awaited
    /// is a plain channel).
    pub async fn call(&self, request: IpcRequest) -> Result<Vec<u8>> {
        Ok(self.call_seq(request).await?.0)
    }

    /// [`LinkInner::call`], with the answer's arrival number.
    pub async fn call_seq(&self, request: IpcRequest) -> Result<(Vec<u8>, u64)> {
        self.on_runtime(move |core| async move { core.request_seq(request).await })
            .await
    }

    /// `>O` from the link's runtime ([`Core::fetch`]).
    pub async fn fetch(&self, address: Ghid) -> Result<(WireObjDef, u64)> {
        self.on_runtime(move |core| async move { core.fetch(address, false).await })
            .await
    }

    async fn on_runtime<T, F>(&self, job: impl FnOnce(Arc<Core>) -> F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let work = job(Arc::clone(&self.core));
        guard(&self.runtime)
            .as_ref()
            .ok_or(LinkError::Stopped)?
            .spawn(async move {
                let _ = tx.send(work.await);
            });
        rx.await.map_err(|_| LinkError::Stopped)?
    }

    /// Waits for a link future on this thread. The future's IO runs on the
    /// link's runtime ([`LinkInner::call`]), so this thread only parks until
    /// the answer comes: it works from any thread that is not an async
    /// worker (there it would block the worker: await instead).
    pub fn block<T>(&self, f: impl Future<Output = Result<T>>) -> Result<T> {
        futures_executor::block_on(f)
    }
}

/// Options for a new object (the defaults: dynamic, shared-able, the
/// default api_id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewObj {
    /// The app schema (share handlers are registered per api_id).
    pub api_id: ApiId,
    /// Dynamic (updatable) or static.
    pub dynamic: bool,
    /// Visible only to this app token (never shared).
    pub private: bool,
    /// How many earlier targets each frame of a dynamic object carries, so
    /// a reader that missed frames can still follow the chain (the seed's
    /// `_legroom`); 0 takes the service's default (7, as in 0.1.0).
    pub legroom: u8,
}

impl Default for NewObj {
    fn default() -> Self {
        Self {
            api_id: ApiId::default_bytes(),
            dynamic: true,
            private: false,
            legroom: 0,
        }
    }
}

/// An app's link to the Hypergolix local service (`hypergolix start`),
/// speaking the 0.1.0 IPC protocol over `ws://127.0.0.1:7772/`. It owns a
/// small IO thread, reconnects on its own (re-sending its token, its
/// api_ids, and fetching every object it hands out again), and runs
/// callbacks in order on a callback thread. Cheap to clone. The async
/// methods work under any executor.
///
/// The connection ends when every handle of the link and of its objects is
/// gone — or at [`HypergolixLink::stop`], which a program must call when a
/// handler or callback holds a handle (that is a cycle, so dropping never
/// ends it).
///
/// Every async method has a blocking `_threadsafe` twin for code that is
/// not async (callbacks included; in async code, await the async one).
///
/// ```no_run
/// use hypergolix_link::{HypergolixLink, NewObj};
///
/// # fn main() -> hypergolix_link::Result<()> {
/// let link = HypergolixLink::connect_threadsafe("127.0.0.1:7772")?;
/// link.new_token_threadsafe()?;
/// let obj = link.new_obj_threadsafe(b"hello".to_vec(), NewObj::default())?;
/// obj.set_state_threadsafe(b"hello, world".to_vec())?;
/// println!("{} made {}", link.whoami(), obj.address());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HypergolixLink {
    pub(crate) inner: Arc<LinkInner>,
}

impl core::fmt::Debug for HypergolixLink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HypergolixLink")
            .field("addr", &self.inner.core.addr)
            .field("whoami", &self.inner.whoami)
            .finish()
    }
}

impl HypergolixLink {
    fn start(
        addr: &str,
    ) -> Result<(
        tokio::runtime::Runtime,
        Arc<Core>,
        oneshot::Receiver<Result<()>>,
    )> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hypergolix-link-io")
            .enable_all()
            .build()
            .map_err(|e| LinkError::Connect {
                addr: addr.to_string(),
                why: format!("cannot start the IO thread: {e}"),
            })?;
        let (core, async_jobs) = Core::new(addr.to_string())?;
        runtime.spawn(run_async_jobs(async_jobs));
        let (tx, rx) = oneshot::channel();
        runtime.spawn(run(Arc::clone(&core), tx));
        Ok((runtime, core, rx))
    }

    /// The link, once the first connection is made; the runtime is shut
    /// down if it was not.
    fn finish(
        runtime: tokio::runtime::Runtime,
        core: Arc<Core>,
        first: Result<()>,
    ) -> Result<Self> {
        let whoami =
            match first.and_then(|()| (*guard(&core.whoami)).ok_or(LinkError::Disconnected)) {
                Ok(w) => w,
                Err(e) => {
                    runtime.shutdown_background();
                    return Err(e);
                }
            };
        Ok(Self {
            inner: Arc::new(LinkInner {
                core,
                whoami,
                runtime: std::sync::Mutex::new(Some(runtime)),
            }),
        })
    }

    /// Connects to the service at `addr`: `host:port` (e.g.
    /// [`DEFAULT_ADDR`]), or `unix:PATH` for a service listening on a
    /// Unix-domain socket (`hypergolix start --ipc unix:PATH`).
    ///
    /// ```no_run
    /// # async fn f() -> hypergolix_link::Result<()> {
    /// let link = hypergolix_link::HypergolixLink::connect("127.0.0.1:7772").await?;
    /// println!("I am {}", link.whoami());
    /// # Ok(()) }
    /// ```
    pub async fn connect(addr: &str) -> Result<Self> {
        let (runtime, core, first) = Self::start(addr)?;
        let got = first.await.unwrap_or(Err(LinkError::Stopped));
        Self::finish(runtime, core, got)
    }

    /// Blocking [`HypergolixLink::connect`].
    pub fn connect_threadsafe(addr: &str) -> Result<Self> {
        let (runtime, core, first) = Self::start(addr)?;
        let got = futures_executor::block_on(first).unwrap_or(Err(LinkError::Stopped));
        Self::finish(runtime, core, got)
    }

    /// Closes the connection now (as dropping every handle of this link and
    /// its objects does); later calls fail with [`LinkError::Stopped`].
    /// The service frees the app token, so another link can use it.
    pub fn stop(&self) {
        self.inner.stop();
    }

    /// The agent's identity: what others share with.
    pub fn whoami(&self) -> Ghid {
        self.inner.whoami
    }

    /// This app's token, once set.
    pub fn token(&self) -> Option<AppToken> {
        *guard(&self.inner.core.token)
    }

    /// Gets a new app token (a new app installation). Keep it: with
    /// [`HypergolixLink::set_token`] it finds this app's private objects
    /// and startup object again.
    ///
    /// ```no_run
    /// # async fn f(link: hypergolix_link::HypergolixLink) -> hypergolix_link::Result<()> {
    /// let token = link.new_token().await?;
    /// std::fs::write("app.token", token.0).expect("save the token");
    /// # Ok(()) }
    /// ```
    pub async fn new_token(&self) -> Result<AppToken> {
        let body = self
            .inner
            .call(IpcRequest::SetToken(AppToken::NULL))
            .await?;
        let t = AppToken(
            body.as_slice()
                .try_into()
                .map_err(|_| LinkError::Protocol("a token is 16 bytes".into()))?,
        );
        *guard(&self.inner.core.token) = Some(t);
        Ok(t)
    }

    /// Blocking [`HypergolixLink::new_token`].
    pub fn new_token_threadsafe(&self) -> Result<AppToken> {
        self.inner.block(self.new_token())
    }

    /// Uses an existing token; returns the app's startup object, if one was
    /// registered.
    ///
    /// ```no_run
    /// # async fn f(link: hypergolix_link::HypergolixLink, token: hypergolix_link::AppToken) -> hypergolix_link::Result<()> {
    /// if let Some(start) = link.set_token(token).await? {
    ///     let obj = link.get(start).await?;
    ///     println!("welcome back: {:?}", obj.state());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn set_token(&self, token: AppToken) -> Result<Option<Ghid>> {
        self.inner.call(IpcRequest::SetToken(token)).await?;
        *guard(&self.inner.core.token) = Some(token);
        self.startup().await
    }

    /// Blocking [`HypergolixLink::set_token`].
    pub fn set_token_threadsafe(&self, token: AppToken) -> Result<Option<Ghid>> {
        self.inner.block(self.set_token(token))
    }

    /// The app's startup object, if one was registered.
    pub async fn startup(&self) -> Result<Option<Ghid>> {
        let body = self.inner.call(IpcRequest::GetStartup).await?;
        if body.is_empty() {
            Ok(None)
        } else {
            parse_ghid(&body).map(Some)
        }
    }

    /// Blocking [`HypergolixLink::startup`].
    pub fn startup_threadsafe(&self) -> Result<Option<Ghid>> {
        self.inner.block(self.startup())
    }

    /// Makes `obj` the object [`HypergolixLink::set_token`] returns.
    pub async fn register_startup(&self, obj: &AppObj) -> Result<()> {
        self.inner
            .call(IpcRequest::RegisterStartup(obj.address()))
            .await?;
        Ok(())
    }

    /// Blocking [`HypergolixLink::register_startup`].
    pub fn register_startup_threadsafe(&self, obj: &AppObj) -> Result<()> {
        self.inner.block(self.register_startup(obj))
    }

    /// Forgets the startup object.
    pub async fn deregister_startup(&self) -> Result<()> {
        self.inner.call(IpcRequest::DeregisterStartup).await?;
        Ok(())
    }

    /// Blocking [`HypergolixLink::deregister_startup`].
    pub fn deregister_startup_threadsafe(&self) -> Result<()> {
        self.inner.block(self.deregister_startup())
    }

    /// Receives objects shared with this agent under `api_id`: the handler
    /// runs on the callback thread (it may call `_threadsafe` methods).
    /// Shares that arrived while no app had the api_id registered are
    /// delivered now.
    ///
    /// ```no_run
    /// # async fn f(link: hypergolix_link::HypergolixLink, api: hypergolix_link::ApiId) -> hypergolix_link::Result<()> {
    /// let l = link.clone();
    /// link.register_api(api, move |share| {
    ///     if let Ok(obj) = l.get_threadsafe(share.address) {
    ///         println!("{} shared {:?}", share.origin, obj.state());
    ///     }
    /// })
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn register_api(
        &self,
        api_id: ApiId,
        handler: impl Fn(Share) + Send + Sync + 'static,
    ) -> Result<()> {
        guard(&self.inner.core.share_handlers).insert(api_id.0, Arc::new(handler));
        let r = self.inner.call(IpcRequest::RegisterApi(api_id)).await;
        if r.is_err() {
            guard(&self.inner.core.share_handlers).remove(&api_id.0);
        }
        r.map(drop)
    }

    /// Blocking [`HypergolixLink::register_api`].
    pub fn register_api_threadsafe(
        &self,
        api_id: ApiId,
        handler: impl Fn(Share) + Send + Sync + 'static,
    ) -> Result<()> {
        self.inner.block(self.register_api(api_id, handler))
    }

    /// Stops receiving shares for `api_id`.
    pub async fn deregister_api(&self, api_id: ApiId) -> Result<()> {
        self.inner.call(IpcRequest::DeregisterApi(api_id)).await?;
        guard(&self.inner.core.share_handlers).remove(&api_id.0);
        Ok(())
    }

    /// Blocking [`HypergolixLink::deregister_api`].
    pub fn deregister_api_threadsafe(&self, api_id: ApiId) -> Result<()> {
        self.inner.block(self.deregister_api(api_id))
    }

    /// Tells `handler` whether each share this app made reached its recipient.
    pub fn on_share_result(&self, handler: impl Fn(ShareResult) + Send + Sync + 'static) {
        *guard(&self.inner.core.share_result) = Some(Arc::new(handler));
    }

    /// Fetches an object (one shared with this agent, or this agent's own).
    ///
    /// ```no_run
    /// # async fn f(link: hypergolix_link::HypergolixLink, address: hypergolix_link::Ghid) -> hypergolix_link::Result<()> {
    /// let obj = link.get(address).await?;
    /// obj.append_callback(|o| println!("updated: {:?}", o.state()));
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, address: Ghid) -> Result<AppObj> {
        let (def, seq) = self.inner.fetch(address).await?;
        AppObj::track(&self.inner, def, seq)
    }

    /// Blocking [`HypergolixLink::get`].
    pub fn get_threadsafe(&self, address: Ghid) -> Result<AppObj> {
        self.inner.block(self.get(address))
    }

    /// The objects this app may see, without reading them: every object of
    /// the agent (its own and those shared with it) that is not private,
    /// and this app token's private ones, in address order. A local
    /// service of this project only (`?L`; 0.1.0 had no such request).
    ///
    /// ```no_run
    /// # async fn f(link: hypergolix_link::HypergolixLink) -> hypergolix_link::Result<()> {
    /// for o in link.list_objects().await? {
    ///     println!("{} by {}: {} bytes", o.address, o.author, o.size);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_objects(&self) -> Result<Vec<Listed>> {
        let body = self.inner.call(IpcRequest::ListObjects).await?;
        parse_listing(&body).map_err(|e| LinkError::Protocol(e.to_string()))
    }

    /// Blocking [`HypergolixLink::list_objects`].
    pub fn list_objects_threadsafe(&self) -> Result<Vec<Listed>> {
        self.inner.block(self.list_objects())
    }

    /// Changes the account password (`!P`, a service of this project
    /// only). The service checks `current` against the account as the
    /// persistence server holds it; a wrong one is refused and changes
    /// nothing. Other devices keep working; new ones log in with `new`.
    pub async fn change_password(&self, current: &[u8], new: &[u8]) -> Result<()> {
        if current.len() > usize::from(u16::MAX) {
            return Err(LinkError::Protocol(
                "the current password is too long".into(),
            ));
        }
        self.inner
            .call(IpcRequest::ChangePassword {
                current: SecretBytes::new(current),
                new: SecretBytes::new(new),
            })
            .await?;
        Ok(())
    }

    /// Blocking [`HypergolixLink::change_password`].
    pub fn change_password_threadsafe(&self, current: &[u8], new: &[u8]) -> Result<()> {
        self.inner.block(self.change_password(current, new))
    }

    /// New recovery words for the account (`?W`, a service of this project
    /// only): twelve words to show the user once. Words made before stop
    /// opening the account. Needs the current password.
    pub async fn recovery_words(&self, password: &[u8]) -> Result<SecretBytes> {
        let body = self
            .inner
            .call(IpcRequest::RecoveryWords(SecretBytes::new(password)))
            .await?;
        Ok(SecretBytes(body.into()))
    }

    /// Blocking [`HypergolixLink::recovery_words`].
    pub fn recovery_words_threadsafe(&self, password: &[u8]) -> Result<SecretBytes> {
        self.inner.block(self.recovery_words(password))
    }

    async fn create(&self, state: Vec<u8>, opts: NewObj, is_link: bool) -> Result<AppObj> {
        if opts.private && self.token().is_none() {
            return Err(LinkError::NoToken);
        }
        let def = WireObjDef {
            address: None,
            author: None,
            private: opts.private,
            dynamic: opts.dynamic,
            legroom: opts.legroom,
            api_id: Some(opts.api_id),
            is_link,
            state,
        };
        let mut local = def.clone();
        let (body, seq) = self.inner.call_seq(IpcRequest::NewObject(def)).await?;
        local.address = Some(parse_ghid(&body)?);
        local.author = Some(self.inner.whoami);
        AppObj::track(&self.inner, local, seq)
    }

    /// Creates an object with this state.
    ///
    /// ```no_run
    /// # async fn f(link: hypergolix_link::HypergolixLink) -> hypergolix_link::Result<()> {
    /// use hypergolix_link::NewObj;
    /// let note = link.new_obj(b"buy milk".to_vec(), NewObj::default()).await?;
    /// let secret = link
    ///     .new_obj(b"diary".to_vec(), NewObj { private: true, ..NewObj::default() })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn new_obj(&self, state: Vec<u8>, opts: NewObj) -> Result<AppObj> {
        self.create(state, opts, false).await
    }

    /// Blocking [`HypergolixLink::new_obj`].
    pub fn new_obj_threadsafe(&self, state: Vec<u8>, opts: NewObj) -> Result<AppObj> {
        self.inner.block(self.new_obj(state, opts))
    }

    /// Creates a link object: its state is the address of `target`.
    pub async fn new_link(&self, target: Ghid, opts: NewObj) -> Result<AppObj> {
        self.create(target.to_bytes().to_vec(), opts, true).await
    }

    /// Blocking [`HypergolixLink::new_link`].
    pub fn new_link_threadsafe(&self, target: Ghid, opts: NewObj) -> Result<AppObj> {
        self.inner.block(self.new_link(target, opts))
    }
}
