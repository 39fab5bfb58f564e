//! The connection to the service, on the link's own IO thread: one
//! websocket (offering the native-GHID subprotocol), requests matched to
//! answers by token, pushes answered `AK` and dispatched to the objects and
//! handlers, and reconnection with backoff (re-sending `?I` and the token
//! first, as 0.1.0 does).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hypergolix_base::app::{ApiId, AppToken};
use hypergolix_base::ipc::{IpcMessage, IpcRequest, Side, WireObjDef, NATIVE_GHIDS_SUBPROTOCOL};
use hypergolix_base::Ghid;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::error::{LinkError, Result};
use crate::obj::ObjInner;

/// How long a request may wait for its answer.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);

/// A share handler: called on the link's thread with each object shared
/// with this agent under the handler's api_id.
pub type ShareHandler = Arc<dyn Fn(Share) + Send + Sync>;

/// Called with the outcome of each share this app made (`^S` / `^F`).
pub type ShareResultHandler = Arc<dyn Fn(ShareResult) + Send + Sync>;

/// An object shared with this agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// The object (fetch it with `HypergolixLink::get`).
    pub address: Ghid,
    /// The identity that shared it.
    pub origin: Ghid,
    /// Its api_id.
    pub api_id: ApiId,
}

/// Whether a share reached its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareResult {
    /// The object.
    pub address: Ghid,
    /// The recipient.
    pub recipient: Ghid,
    /// True for `^S`, false for `^F`.
    pub delivered: bool,
}

/// An answer body with its arrival number.
type Answer = core::result::Result<(Vec<u8>, u64), LinkError>;

/// What the service pushed about an object while the link was fetching it.
enum Late {
    /// A newer state.
    State { state: Vec<u8>, is_link: bool },
    /// The author deleted it.
    Deleted,
}

/// An address being fetched (`>O`) by `count` requests, and the newest push
/// about it that arrived meanwhile, with its arrival number.
#[derive(Default)]
struct Fetching {
    count: usize,
    late: Option<(u64, Late)>,
}

/// Unregisters a fetch however it ends.
struct FetchGuard<'a> {
    core: &'a Core,
    address: Ghid,
}

impl Drop for FetchGuard<'_> {
    fn drop(&mut self) {
        let mut fetching = guard(&self.core.fetching);
        if let Some(f) = fetching.get_mut(&self.address) {
            f.count -= 1;
            if f.count == 0 {
                fetching.remove(&self.address);
            }
        }
    }
}

/// State shared by the IO task and the API (no reference back to the
/// runtime, so dropping the last link handle ends everything).
pub(crate) struct Core {
    pub addr: String,
    pending: Mutex<HashMap<u16, oneshot::Sender<Answer>>>,
    next_token: Mutex<u16>,
    out: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    connected: watch::Sender<bool>,
    pub whoami: Mutex<Option<Ghid>>,
    pub token: Mutex<Option<AppToken>>,
    pub objs: Mutex<HashMap<Ghid, Weak<ObjInner>>>,
    pub share_handlers: Mutex<HashMap<[u8; 65], ShareHandler>>,
    pub share_result: Mutex<Option<ShareResultHandler>>,
    /// Callbacks run in order on the link's dispatch thread, not on the IO
    /// thread, so they may call the link's `_threadsafe` methods.
    dispatch: Mutex<std::sync::mpsc::Sender<Job>>,
    /// Async callbacks run in order on the link's runtime.
    async_jobs: mpsc::UnboundedSender<AsyncJob>,
    stopped: AtomicBool,
    /// Arrival number of the last message from the service (over every
    /// connection): orders answers against pushes, which the service may
    /// send right after an answer, before the link has made the object.
    rx: AtomicU64,
    fetching: Mutex<HashMap<Ghid, Fetching>>,
}

/// A callback invocation queued for the dispatch thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Async callback invocations, awaited one after another on the link's
/// runtime.
pub(crate) type AsyncJob = futures_util::future::BoxFuture<'static, ()>;

/// Awaits queued async callback invocations in order; a panicking one is
/// logged and the next runs.
pub(crate) async fn run_async_jobs(mut queue: mpsc::UnboundedReceiver<AsyncJob>) {
    while let Some(job) = queue.recv().await {
        if tokio::spawn(job).await.is_err() {
            tracing::error!("a Hypergolix async callback panicked");
        }
    }
}

/// Locks a mutex; a poisoned one (a panicking callback) is still usable.
pub(crate) fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking callback must not wedge the link: the data is still valid.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Core {
    /// The shared state, and the queue of async callback invocations for
    /// [`run_async_jobs`] on the link's runtime.
    pub fn new(addr: String) -> Result<(Arc<Self>, mpsc::UnboundedReceiver<AsyncJob>)> {
        let (async_jobs, async_queue) = mpsc::unbounded_channel();
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("hypergolix-link-callbacks".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    // A panicking callback must not stop later ones.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a Hypergolix callback panicked");
                    }
                }
            })
            .map_err(|e| LinkError::Connect {
                addr: addr.clone(),
                why: format!("cannot start the callback thread: {e}"),
            })?;
        let core = Arc::new(Self {
            addr,
            pending: Mutex::new(HashMap::new()),
            next_token: Mutex::new(0),
            out: Mutex::new(None),
            connected: watch::channel(false).0,
            whoami: Mutex::new(None),
            token: Mutex::new(None),
            objs: Mutex::new(HashMap::new()),
            share_handlers: Mutex::new(HashMap::new()),
            share_result: Mutex::new(None),
            dispatch: Mutex::new(jobs),
            async_jobs,
            stopped: AtomicBool::new(false),
            rx: AtomicU64::new(0),
            fetching: Mutex::new(HashMap::new()),
        });
        Ok((core, async_queue))
    }

    /// Queues a callback invocation.
    pub fn dispatch(&self, job: Job) {
        let _ = guard(&self.dispatch).send(job);
    }

    /// Queues an async callback invocation.
    pub fn dispatch_async(&self, job: AsyncJob) {
        let _ = self.async_jobs.send(job);
    }

    /// `>O`: an object's definition and the arrival number of what it
    /// holds. A push that arrived after the answer (the service may send
    /// one before the link has made the object) is applied to it, and a
    /// delete after the answer is [`LinkError::DeadObject`]. `now`: on the
    /// current connection, connected or not yet (the handshake's refresh).
    pub async fn fetch(&self, address: Ghid, now: bool) -> Result<(WireObjDef, u64)> {
        guard(&self.fetching).entry(address).or_default().count += 1;
        let _registered = FetchGuard {
            core: self,
            address,
        };
        let request = IpcRequest::GetObject(address);
        let (body, seq) = if now {
            self.request_now(request).await?
        } else {
            self.request_seq(request).await?
        };
        let mut def = parse_def(&body)?;
        def.address.get_or_insert(address);
        let late = guard(&self.fetching)
            .get_mut(&address)
            .and_then(|f| f.late.take_if(|(at, _)| *at > seq));
        match late {
            None => Ok((def, seq)),
            Some((_, Late::Deleted)) => Err(LinkError::DeadObject),
            Some((at, Late::State { state, is_link })) => {
                def.state = state;
                def.is_link = is_link;
                Ok((def, at))
            }
        }
    }

    /// Remembers a push about an address being fetched.
    fn late(&self, address: Ghid, seq: u64, what: impl FnOnce() -> Late) {
        if let Some(f) = guard(&self.fetching).get_mut(&address) {
            f.late = Some((seq, what()));
        }
    }

    /// Sends a request once connected and waits for its answer body and
    /// the answer's arrival number.
    pub async fn request_seq(&self, request: IpcRequest) -> Result<(Vec<u8>, u64)> {
        let mut up = self.connected.subscribe();
        tokio::time::timeout(
            TIMEOUT,
            up.wait_for(|c| *c || self.stopped.load(Ordering::Acquire)),
        )
        .await
        .map_err(|_| LinkError::Timeout(TIMEOUT.as_secs()))?
        .map_err(|_| LinkError::Stopped)?;
        if self.stopped.load(Ordering::Acquire) {
            return Err(LinkError::Stopped);
        }
        self.request_now(request).await
    }

    /// The link is stopping: nothing more is sent, waiters are released.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        *guard(&self.out) = None;
        self.connected.send_replace(false);
        for (_, tx) in guard(&self.pending).drain() {
            let _ = tx.send(Err(LinkError::Stopped));
        }
    }

    /// Sends a request on the current connection, connected or not yet.
    async fn request_now(&self, request: IpcRequest) -> Result<(Vec<u8>, u64)> {
        let (tx, rx) = oneshot::channel();
        let token = {
            let mut pending = guard(&self.pending);
            let mut next = guard(&self.next_token);
            // Skip tokens still waiting (after 65,536 requests in flight).
            while pending.contains_key(&*next) {
                *next = next.wrapping_add(1);
            }
            let t = *next;
            *next = next.wrapping_add(1);
            pending.insert(t, tx);
            t
        };
        let bytes = IpcMessage::Request { token, request }.encode();
        let sent = guard(&self.out)
            .as_ref()
            .map(|o| o.send(bytes).is_ok())
            .unwrap_or(false);
        if !sent {
            guard(&self.pending).remove(&token);
            return Err(LinkError::Disconnected);
        }
        match tokio::time::timeout(TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(LinkError::Disconnected),
            Err(_) => {
                guard(&self.pending).remove(&token);
                Err(LinkError::Timeout(TIMEOUT.as_secs()))
            }
        }
    }

    fn fail_pending(&self) {
        for (_, tx) in guard(&self.pending).drain() {
            let _ = tx.send(Err(LinkError::Disconnected));
        }
    }

    fn reply(&self, token: u16, body: Vec<u8>) {
        if let Some(o) = guard(&self.out).as_ref() {
            let _ = o.send(IpcMessage::Ack { token, body }.encode());
        }
    }

    /// One message from the service.
    fn incoming(&self, bytes: &[u8]) {
        // Only the reader task counts, one message after another.
        let seq = self.rx.fetch_add(1, Ordering::AcqRel) + 1;
        let m = match IpcMessage::decode(Side::Service, bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("ignored a malformed message from the service: {e}");
                return;
            }
        };
        match m {
            IpcMessage::Ack { token, body } => {
                if let Some(tx) = guard(&self.pending).remove(&token) {
                    let _ = tx.send(Ok((body, seq)));
                }
            }
            IpcMessage::Nak {
                token,
                code,
                message,
            } => {
                if let Some(tx) = guard(&self.pending).remove(&token) {
                    let _ = tx.send(Err(LinkError::Refused { code, message }));
                }
            }
            IpcMessage::Request { token, request } => self.push(token, request, seq),
            IpcMessage::Unknown { token, code } => {
                if let Some(o) = guard(&self.out).as_ref() {
                    let _ = o.send(IpcMessage::unknown_code_nak(token, code).encode());
                }
            }
        }
    }

    /// A push from the service: answered first (as 0.1.0), then dispatched.
    fn push(&self, token: u16, request: IpcRequest, seq: u64) {
        match request {
            IpcRequest::PushUpdate(def) => {
                self.reply(token, vec![1]);
                let Some(address) = def.address else {
                    return;
                };
                self.late(address, seq, || Late::State {
                    state: def.state.clone(),
                    is_link: def.is_link,
                });
                if let Some(obj) = self.obj(address) {
                    obj.pushed(def, seq, self);
                }
            }
            IpcRequest::PushDelete(g) => {
                self.reply(token, vec![1]);
                if let Some(obj) = self.obj(g) {
                    obj.deleted(self);
                }
                self.late(g, seq, || Late::Deleted);
            }
            IpcRequest::PushShare {
                address,
                origin,
                api_id,
            } => {
                self.reply(token, vec![1]);
                let handler = guard(&self.share_handlers).get(&api_id.0).cloned();
                match handler {
                    Some(h) => self.dispatch(Box::new(move || {
                        h(Share {
                            address,
                            origin,
                            api_id,
                        })
                    })),
                    None => tracing::debug!(%address, "a share for an api_id with no handler"),
                }
            }
            IpcRequest::ShareSuccess { address, recipient }
            | IpcRequest::ShareFailure { address, recipient } => {
                let delivered = matches!(request, IpcRequest::ShareSuccess { .. });
                self.reply(token, Vec::new());
                let handler = guard(&self.share_result).clone();
                if let Some(h) = handler {
                    self.dispatch(Box::new(move || {
                        h(ShareResult {
                            address,
                            recipient,
                            delivered,
                        })
                    }));
                }
            }
            other => {
                tracing::warn!(code = ?other.code(), "the service sent a link-only command");
            }
        }
    }

    fn obj(&self, g: Ghid) -> Option<Arc<ObjInner>> {
        let mut objs = guard(&self.objs);
        match objs.get(&g).map(Weak::upgrade) {
            Some(Some(o)) => Some(o),
            Some(None) => {
                objs.remove(&g);
                None
            }
            None => None,
        }
    }
}

/// Connects once; the socket's halves are served by tasks on the runtime.
async fn open(core: &Arc<Core>) -> core::result::Result<tokio::task::JoinHandle<()>, String> {
    // `unix:PATH`: the service's Unix-domain socket (`--ipc unix:PATH`).
    let unix = core.addr.strip_prefix("unix:");
    let url = match unix {
        Some(_) => "ws://localhost/".to_string(),
        None => format!("ws://{}/", core.addr),
    };
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    let proto = NATIVE_GHIDS_SUBPROTOCOL
        .parse()
        .map_err(|_| "subprotocol header".to_string())?;
    req.headers_mut().insert("sec-websocket-protocol", proto);
    match unix {
        #[cfg(unix)]
        Some(path) => {
            let sock = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| format!("{path}: {e}"))?;
            let (ws, _) = tokio_tungstenite::client_async(req, sock)
                .await
                .map_err(|e| e.to_string())?;
            Ok(serve(core, ws))
        }
        #[cfg(not(unix))]
        Some(_) => Err("unix: addresses need a Unix platform".into()),
        None => {
            let (ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
                .await
                .map_err(|e| e.to_string())?;
            Ok(serve(core, ws))
        }
    }
}

/// Serves a connected websocket: a writer task for what the link sends,
/// and the returned task reading what the service sends.
fn serve<S>(
    core: &Arc<Core>,
    ws: tokio_tungstenite::WebSocketStream<S>,
) -> tokio::task::JoinHandle<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    *guard(&core.out) = Some(tx);
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if sink.send(Ws::Binary(b.into())).await.is_err() {
                break;
            }
        }
    });
    let c = Arc::clone(core);
    tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            if let Ws::Binary(b) = msg {
                c.incoming(&b);
            }
        }
        writer.abort();
    })
}

/// After each (re)connection: who we are, and our token again.
async fn handshake(core: &Arc<Core>) -> Result<()> {
    let (body, _) = core.request_now(IpcRequest::Whoami).await?;
    let me = Ghid::from_bytes(&body).map_err(|e| LinkError::Protocol(e.to_string()))?;
    *guard(&core.whoami) = Some(me);
    let token = *guard(&core.token);
    if let Some(t) = token {
        core.request_now(IpcRequest::SetToken(t)).await?;
    }
    // A new connection starts with no api_ids and no tracked objects at the
    // service: register them again, and fetch every object this link handed
    // out (what changed meanwhile reaches its callbacks).
    let apis: Vec<[u8; 65]> = guard(&core.share_handlers).keys().copied().collect();
    for a in apis {
        core.request_now(IpcRequest::RegisterApi(ApiId(a))).await?;
    }
    let objs: Vec<Arc<ObjInner>> = guard(&core.objs)
        .values()
        .filter_map(Weak::upgrade)
        .collect();
    for o in objs {
        // An object that is gone meanwhile just stays as it was (a delete
        // pushed meanwhile has reached it).
        if let Ok((def, seq)) = core.fetch(o.address(), true).await {
            o.refreshed(def, seq, core);
        }
    }
    Ok(())
}

/// The first connection (errors are returned), then the IO loop forever:
/// reconnects with backoff (50 ms doubling to 5 s) after a drop.
pub(crate) async fn run(core: Arc<Core>, first: oneshot::Sender<Result<()>>) {
    let mut first = Some(first);
    let mut wait = Duration::from_millis(50);
    loop {
        match open(&core).await {
            Ok(reader) => {
                let shook = handshake(&core).await;
                match shook {
                    Ok(()) => {
                        wait = Duration::from_millis(50);
                        core.connected.send_replace(true);
                        if let Some(f) = first.take() {
                            let _ = f.send(Ok(()));
                        }
                        let _ = reader.await;
                        tracing::warn!(addr = %core.addr, "lost the Hypergolix service; reconnecting");
                    }
                    Err(e) => {
                        reader.abort();
                        if let Some(f) = first.take() {
                            let _ = f.send(Err(e));
                            return;
                        }
                    }
                }
                core.connected.send_replace(false);
                *guard(&core.out) = None;
                core.fail_pending();
            }
            Err(why) => {
                if let Some(f) = first.take() {
                    let _ = f.send(Err(LinkError::Connect {
                        addr: core.addr.clone(),
                        why,
                    }));
                    return;
                }
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// An object definition from an `AK` body.
pub(crate) fn parse_def(body: &[u8]) -> Result<WireObjDef> {
    WireObjDef::parse(*b"AK", body).map_err(|e| LinkError::Protocol(e.to_string()))
}

/// A GHID from an `AK` body.
pub(crate) fn parse_ghid(body: &[u8]) -> Result<Ghid> {
    Ghid::from_bytes(body).map_err(|e| LinkError::Protocol(e.to_string()))
}
