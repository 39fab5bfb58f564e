//! # hypergolix-web
//!
//! The Hypergolix engine in a browser page or Web Worker: the same sans-IO
//! engine and IPC service as the local service (`hypergolix_core::service`),
//! with the browser doing the IO — records in IndexedDB, the persistence
//! server over a WebSocket (both through `web-sys`), randomness from the
//! platform's CSPRNG. Every cryptographic operation is the engine's own
//! pure Rust; nothing uses WebCrypto.
//!
//! JavaScript sees one class, [`WebEngine`]: open it (create an account,
//! unlock this browser's copy of one, or log in to one from the server with
//! its user id and password), then open *sessions* on it that speak the
//! 0.1.0 IPC protocol byte for byte, as a websocket to `hypergolix start`
//! would. The npm package `hypergolix` wraps a session in the same
//! `HypergolixLink`/`AppObj` API it offers for the local service.
//!
//! Module map: [`host`] (the loop that owns the engine and the store),
//! [`store`] (IndexedDB and memory), [`server`] (the server link),
//! [`lock`] (one engine per database), [`error`].
//!
//! Every exported method takes `&self` and none holds a borrow across an
//! await: JavaScript may call back into the engine from any callback.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
mod host;
mod lock;
mod server;
mod socket;
pub mod store;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_channel::oneshot;
use hypergolix_core::engine::keys::{
    lock_storage_key, unlock_storage_key, unlock_storage_key_for_account,
};
use hypergolix_core::engine::{Engine, EngineConfig, KdfParams, SessionId};
use hypergolix_core::golix::Ghid;
use hypergolix_core::service::{Policy, Service};
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};
use zeroize::Zeroizing;

pub use error::{Result, WebError};
use host::{Event, Host, Status};
use store::{LocalStore, Meta, StoreKind};

/// The platform's CSPRNG (`crypto.getRandomValues`; `node:crypto` in Node).
pub(crate) struct Rng;

impl rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if let Err(e) = self.try_fill_bytes(dest) {
            // No randomness means no keys: nothing safe can go on.
            wasm_bindgen::throw_str(&format!("hypergolix: no random source: {e}"));
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> core::result::Result<(), rand_core::Error> {
        getrandom::getrandom(dest).map_err(|e| rand_core::Error::from(e.code()))
    }
}

impl rand_core::CryptoRng for Rng {}

fn random32() -> Result<Zeroizing<[u8; 32]>> {
    let mut b = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(&mut b[..]).map_err(|e| WebError::Js(format!("no random source: {e}")))?;
    Ok(b)
}

/// The default IndexedDB database name.
pub const DEFAULT_DATABASE: &str = "hypergolix";
/// How long an unlock waits for the server to check a password changed on
/// another device.
const PROBE_WAIT_MS: u32 = 4_000;

/// How long logging in waits for the server by default.
const DEFAULT_LOGIN_TIMEOUT_MS: u32 = 30_000;

/// The options of [`WebEngine::open`], read from a JavaScript object.
struct Options {
    server: String,
    password: Zeroizing<Vec<u8>>,
    user_id: Option<Ghid>,
    create: bool,
    /// With `user_id`: recover the account with these words, under `password`.
    recovery_words: Option<Zeroizing<String>>,
    /// Restore the account from this export file (opened with `password`,
    /// or with `recovery_words` for a file locked with them).
    import: Option<Vec<u8>>,
    database: String,
    storage: StoreKind,
    on_log: Option<Function>,
    timeout_ms: u32,
}

fn get(o: &JsValue, name: &str) -> Result<Option<JsValue>> {
    let v = Reflect::get(o, &name.into()).map_err(|e| WebError::js(&e))?;
    Ok((!v.is_undefined() && !v.is_null()).then_some(v))
}

fn string(o: &JsValue, name: &str) -> Result<Option<String>> {
    get(o, name)?
        .map(|v| {
            v.as_string()
                .ok_or_else(|| WebError::BadOption(format!("`{name}` must be a string")))
        })
        .transpose()
}

impl Options {
    fn parse(o: &JsValue) -> Result<Self> {
        if !o.is_object() {
            return Err(WebError::BadOption(
                "open() takes an options object: { server, password, userId?, create? }".into(),
            ));
        }
        let server = string(o, "server")?.ok_or_else(|| {
            WebError::BadOption("`server` (ws://… or wss://…) is required".into())
        })?;
        if !(server.starts_with("ws://") || server.starts_with("wss://")) {
            return Err(WebError::BadOption(format!(
                "`server` must be a ws:// or wss:// URL, not \"{server}\""
            )));
        }
        let password = Zeroizing::new(
            string(o, "password")?
                .ok_or_else(|| WebError::BadOption("`password` is required".into()))?
                .into_bytes(),
        );
        if password.is_empty() {
            return Err(WebError::BadOption("the password is empty".into()));
        }
        let user_id = string(o, "userId")?
            .map(|t| {
                t.trim().parse::<Ghid>().map_err(|_| {
                    WebError::BadOption(format!("`userId` is not a user id (a GHID): \"{t}\""))
                })
            })
            .transpose()?;
        let create = match get(o, "create")? {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| WebError::BadOption("`create` must be true or false".into()))?,
        };
        if create && user_id.is_some() {
            return Err(WebError::BadOption(
                "give `create: true` for a new account or `userId` for an existing one, not both"
                    .into(),
            ));
        }
        let recovery_words = string(o, "recoveryWords")?.map(Zeroizing::new);
        let import = get(o, "import")?
            .map(|v| {
                v.dyn_into::<js_sys::Uint8Array>()
                    .map(|a| a.to_vec())
                    .map_err(|_| WebError::BadOption("`import` must be a Uint8Array".into()))
            })
            .transpose()?;
        if import.is_some() && (create || user_id.is_some()) {
            return Err(WebError::BadOption(
                "`import` restores the account its file holds: give no `create` or `userId`".into(),
            ));
        }
        if let Some(w) = recovery_words.as_ref().filter(|_| import.is_none()) {
            if user_id.is_none() {
                return Err(WebError::BadOption(
                    "`recoveryWords` recover an existing account: give its `userId` too".into(),
                ));
            }
            // A mistyped phrase is refused before anything is opened.
            hypergolix_core::engine::recovery::parse_words(w)?;
        }
        let storage = match string(o, "storage")?.as_deref() {
            None | Some("indexeddb") => StoreKind::IndexedDb,
            Some("memory") => StoreKind::Memory,
            Some(other) => {
                return Err(WebError::BadOption(format!(
                    "`storage` is \"indexeddb\" or \"memory\", not \"{other}\""
                )))
            }
        };
        let on_log = get(o, "onLog")?
            .map(|v| {
                v.dyn_into::<Function>()
                    .map_err(|_| WebError::BadOption("`onLog` must be a function".into()))
            })
            .transpose()?;
        let timeout_ms = match get(o, "timeoutMs")? {
            None => DEFAULT_LOGIN_TIMEOUT_MS,
            Some(v) => v
                .as_f64()
                .filter(|t| *t >= 1.0 && *t <= 3_600_000.0)
                .ok_or_else(|| {
                    WebError::BadOption("`timeoutMs` must be a number of milliseconds".into())
                })? as u32,
        };
        Ok(Self {
            server,
            password,
            user_id,
            create,
            recovery_words,
            import,
            database: string(o, "database")?.unwrap_or_else(|| DEFAULT_DATABASE.into()),
            storage,
            on_log,
            timeout_ms,
        })
    }
}

/// Where log lines go: `onLog`, or the console.
#[derive(Clone)]
pub(crate) enum Logger {
    Console,
    Js(Function),
}

impl Logger {
    pub(crate) fn say(&self, line: &str) {
        match self {
            Logger::Console => web_sys::console::info_1(&line.into()),
            Logger::Js(f) => {
                let _ = f.call1(&JsValue::UNDEFINED, &line.into());
            }
        }
    }
}

struct Inner {
    events: UnboundedSender<Event>,
    status: Rc<RefCell<Status>>,
    next_session: Cell<u32>,
    database: String,
    server: String,
    /// A new account's recovery words until `takeRecoveryWords` hands
    /// them over (once).
    words: RefCell<Option<Zeroizing<String>>>,
}

impl Inner {
    fn send(&self, ev: Event) -> Result<()> {
        self.events.unbounded_send(ev).map_err(|_| WebError::Closed)
    }
}

/// Asks the loop for its progress (now, or once synced) as a Promise of
/// `{ online, synced, loading, pending }`.
fn progress(inner: &Rc<Inner>, ask: fn(oneshot::Sender<host::Progress>) -> Event) -> Promise {
    let inner = inner.clone();
    future_to_promise(async move {
        let (tx, rx) = oneshot::channel();
        inner.send(ask(tx))?;
        let p = rx.await.map_err(|_| JsValue::from(WebError::Closed))?;
        let o = Object::new();
        let pending = js_sys::Array::new();
        for l in &p.pending {
            pending.push(&l.into());
        }
        Reflect::set(&o, &"online".into(), &p.online.into())?;
        Reflect::set(&o, &"synced".into(), &p.synced.into())?;
        Reflect::set(&o, &"loading".into(), &(p.loading as f64).into())?;
        Reflect::set(&o, &"pending".into(), &pending)?;
        Ok(o.into())
    })
}

/// The engine in this page or worker. See the crate documentation.
#[wasm_bindgen]
pub struct WebEngine {
    inner: Rc<Inner>,
}

fn engine_config(key: &[u8; 32]) -> EngineConfig {
    let mut cfg = EngineConfig::new(*key);
    cfg.kdf = KdfParams::DEFAULT;
    cfg
}

/// What `open` decided to do with the database.
struct Start {
    service: Service,
    outputs: hypergolix_core::engine::Step<hypergolix_core::service::Output>,
    storage_key: Zeroizing<[u8; 32]>,
    meta: Option<Meta>,
    /// The first write replaces every record held (a recovery over a copy
    /// whose password is lost).
    replace: bool,
    /// A new account's recovery words, to be shown once.
    words: Option<Zeroizing<String>>,
}

/// The host's clock for the service, in milliseconds: `performance.now()`
/// (monotonic, in pages, workers and Node), else the wall clock.
pub(crate) fn now() -> u64 {
    let monotonic = Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .filter(|p| !p.is_undefined())
        .and_then(|p| {
            let f: Function = Reflect::get(&p, &"now".into()).ok()?.dyn_into().ok()?;
            f.call0(&p).ok()?.as_f64()
        });
    monotonic.unwrap_or_else(js_sys::Date::now) as u64
}

/// The service under the page's policy: `timeoutMs` bounds a login.
fn policed(mut service: Service, opts: &Options) -> Service {
    service.set_policy(Policy {
        login_wait_ms: opts.timeout_ms.into(),
        ..Policy::default()
    });
    service
}

/// What opening an account in a fresh engine gives: its first outputs,
/// the account's user id, and a new account's recovery words.
type Opened = (
    hypergolix_core::engine::Step<hypergolix_core::service::Output>,
    Ghid,
    Option<Zeroizing<String>>,
);

/// A fresh engine for this database, under a new storage key locked with
/// the password; `open` starts its account in it (created, logged in or
/// recovered).
fn fresh(
    opts: &Options,
    seed: [u8; 32],
    open: &dyn Fn(&mut Service) -> Result<Opened>,
) -> Result<Start> {
    let key = random32()?;
    let locked = lock_storage_key(&opts.password, &key, KdfParams::DEFAULT, &mut Rng)?;
    let mut service = policed(Service::new(Engine::new(engine_config(&key), seed)), opts);
    let (outputs, user_id, words) = open(&mut service)?;
    Ok(Start {
        service,
        outputs,
        storage_key: key,
        meta: Some(Meta {
            user_id,
            locked_key: locked,
            account_lock: None,
        }),
        replace: false,
        words,
    })
}

fn start(
    opts: &Options,
    held: Option<Meta>,
    records: impl FnOnce() -> Option<store::Records>,
) -> Result<Start> {
    let seed = random32()?;
    if let Some(file) = &opts.import {
        return imported(opts, held, file, *seed);
    }
    match (opts.create, held, opts.user_id) {
        (true, Some(m), _) => Err(WebError::HasAccount(
            opts.database.clone(),
            m.user_id.to_text(),
        )),
        (true, None, _) => fresh(opts, *seed, &|service| {
            let (outputs, words) = service.create_account_with_words(&opts.password)?;
            let user_id = service.engine().user_id().ok_or(WebError::Core(
                hypergolix_core::Error::NotReady("no account"),
            ))?;
            Ok((outputs, user_id, Some(words)))
        }),
        // Recovery: on a new device, or over this browser's copy of the same
        // account (locked under a password that is lost). The copy is
        // replaced only by the first write, which comes once the words
        // opened the account: wrong words leave it as it was.
        (false, held, Some(user_id)) if opts.recovery_words.is_some() => {
            if let Some(m) = held.as_ref().filter(|m| m.user_id != user_id) {
                return Err(WebError::OtherAccount {
                    database: opts.database.clone(),
                    held: m.user_id.to_text(),
                    asked: user_id.to_text(),
                });
            }
            let words = opts
                .recovery_words
                .as_ref()
                .ok_or_else(|| WebError::BadOption("no recovery words".into()))?;
            let start = fresh(opts, *seed, &|service| {
                let outputs = service.open_recover(user_id, words, &opts.password, now())?;
                Ok((outputs, user_id, None))
            })?;
            Ok(Start {
                replace: held.is_some(),
                ..start
            })
        }
        (false, Some(m), asked) => {
            if let Some(asked) = asked.filter(|a| *a != m.user_id) {
                return Err(WebError::OtherAccount {
                    database: opts.database.clone(),
                    held: m.user_id.to_text(),
                    asked: asked.to_text(),
                });
            }
            let key = unlock_storage_key(&opts.password, &m.locked_key).map_err(|e| match e {
                hypergolix_core::Error::WrongPassword => {
                    WebError::LocalWrongPassword(opts.database.clone())
                }
                e => e.into(),
            })?;
            let records = records().unwrap_or_default();
            let (engine, step) = Engine::restore(engine_config(&key), *seed, records)?;
            if engine.user_id() != Some(m.user_id) {
                return Err(WebError::Storage(format!(
                    "the database \"{}\" names the account {} but its records hold another",
                    opts.database, m.user_id
                )));
            }
            let mut service = policed(Service::new(engine), opts);
            let outputs = service.adopt_step(step);
            // A database from before the account lock gets one with the
            // engine's next write.
            let meta = m.account_lock.is_none().then(|| Meta {
                account_lock: None,
                ..m.clone()
            });
            Ok(Start {
                service,
                outputs,
                storage_key: key,
                meta,
                replace: false,
                words: None,
            })
        }
        // Starts once the server link is up; the service's policy decides
        // how long it may take and when the page is told.
        (false, None, Some(user_id)) => fresh(opts, *seed, &|service| {
            let outputs = service.open_login(user_id, &opts.password, now())?;
            Ok((outputs, user_id, None))
        }),
        (false, None, None) => Err(WebError::NoAccount(opts.database.clone())),
    }
}

/// Restores the account of an export file into an empty database: opened
/// with the password (or words), its records restore an engine of the
/// account it names; they are all written, with the storage key locked
/// under `password`, in the engine's first write.
fn imported(opts: &Options, held: Option<Meta>, file: &[u8], seed: [u8; 32]) -> Result<Start> {
    use hypergolix_core::engine::export::{peek_export, read_export, ExportSecret, SecretKind};
    if let Some(m) = held {
        return Err(WebError::HasAccount(
            opts.database.clone(),
            m.user_id.to_text(),
        ));
    }
    let (user_id, kind) = peek_export(file)?;
    let secret = match (kind, &opts.recovery_words) {
        (SecretKind::Words, Some(w)) => ExportSecret::Words(w),
        (SecretKind::Words, None) => {
            return Err(WebError::BadOption(
                "this export file opens with recovery words: give `recoveryWords`".into(),
            ))
        }
        (SecretKind::Password, _) => ExportSecret::Password(&opts.password),
    };
    let e = read_export(file, secret)?;
    let (engine, step) = Engine::restore(engine_config(&e.storage_key), seed, e.records.clone())?;
    if engine.user_id() != Some(user_id) {
        return Err(WebError::Core(hypergolix_core::Error::CorruptExport(
            "its records are of another account than its header says",
        )));
    }
    let mut rng = Rng;
    let locked = lock_storage_key(&opts.password, &e.storage_key, KdfParams::DEFAULT, &mut rng)?;
    let mut service = policed(Service::new(engine), opts);
    let mut outputs = service.adopt_step(step);
    // Every record of the file goes with the first write.
    let mut writes: Vec<_> = e.records.into_iter().map(|(k, v)| (k, Some(v))).collect();
    writes.append(&mut outputs.store);
    outputs.store = writes;
    Ok(Start {
        service,
        outputs,
        storage_key: e.storage_key,
        meta: Some(Meta {
            user_id,
            locked_key: locked,
            account_lock: None,
        }),
        replace: false,
        words: None,
    })
}

/// The server link's log lines, as the engine's. One function for every
/// link, so the link's code is in the wasm once.
fn link_logger(log: &Logger) -> impl Fn(&str) + 'static {
    let log = log.clone();
    move |l| log.say(&format!("hypergolix: {l}"))
}

/// This browser's copy did not open with the password, which may have
/// been changed on another device: a throwaway engine in memory opens the
/// account root with it from the server and derives the account key, which
/// unlocks the copy's second lock. The copy is then locked under this
/// password, and opens as usual: nothing in it is lost.
async fn follow_password_change(opts: &Options, store: &LocalStore, log: &Logger) -> Result<Start> {
    let held = store
        .meta()
        .await?
        .ok_or_else(|| WebError::NoAccount(opts.database.clone()))?;
    let Some(account_lock) = held.account_lock.clone() else {
        return Err(WebError::LocalWrongPassword(opts.database.clone()));
    };
    let account_key = probe_account_key(opts, held.user_id, log).await?;
    let storage_key = unlock_storage_key_for_account(&account_key, &account_lock)
        .map_err(|_| WebError::LocalWrongPassword(opts.database.clone()))?;
    let seed = random32()?;
    let records = store.load().await?;
    let (engine, step) = Engine::restore(engine_config(&storage_key), *seed, records)?;
    if engine.user_id() != Some(held.user_id) {
        return Err(WebError::Storage(format!(
            "the database \"{}\" names the account {} but its records hold another",
            opts.database, held.user_id
        )));
    }
    let mut rng = Rng;
    let meta = Meta {
        user_id: held.user_id,
        locked_key: lock_storage_key(&opts.password, &storage_key, KdfParams::DEFAULT, &mut rng)?,
        account_lock: Some(account_lock),
    };
    store.apply(&[], Some(&meta)).await?;
    log.say("hypergolix: the password was changed on another device; this browser's copy now opens with the new one");
    let mut service = policed(Service::new(engine), opts);
    let outputs = service.adopt_step(step);
    Ok(Start {
        service,
        outputs,
        storage_key,
        meta: None,
        replace: false,
        words: None,
    })
}

/// Logs in with `opts.password` on a throwaway engine in memory (the
/// server must be reachable) and returns its account key.
async fn probe_account_key(
    opts: &Options,
    user_id: Ghid,
    log: &Logger,
) -> Result<Zeroizing<[u8; 32]>> {
    let store = LocalStore::open(StoreKind::Memory, "").await?;
    let key = random32()?;
    let seed = random32()?;
    let mut service = Service::new(Engine::new(engine_config(&key), *seed));
    // Someone waits at an unlock prompt: an unreachable server is given up
    // on sooner than a login's (the copy then stays locked).
    service.set_policy(Policy {
        login_wait_ms: u64::from(opts.timeout_ms.min(PROBE_WAIT_MS)),
        ..Policy::default()
    });
    let outputs = service.open_login(user_id, &opts.password, now())?;
    let status = Rc::new(RefCell::new(Status::default()));
    let (stop_link, link_stopped) = oneshot::channel();
    let mut host = Host::new(
        service,
        store,
        None,
        status,
        stop_link,
        key,
        KdfParams::DEFAULT,
        log.clone(),
    );
    let (ready_tx, ready_rx) = oneshot::channel();
    host.ready = Some(ready_tx);
    let (probe_tx, probe_rx) = oneshot::channel();
    host.probe = Some(probe_tx);
    let (events, rx) = unbounded();
    host.wake = Some(events.clone());
    spawn_local(host::run(host, outputs, rx));
    spawn_local(server::run(
        opts.server.clone(),
        events.clone(),
        link_stopped,
        link_logger(log),
    ));
    // The key as soon as the root opens; a failed login says why.
    let got = match futures_util::future::select(probe_rx, ready_rx).await {
        futures_util::future::Either::Left((Ok(Some(k)), _)) => Ok(k),
        futures_util::future::Either::Right((Ok(Err(e)), _)) => Err(e),
        _ => Err(WebError::Closed),
    };
    let (tx, rx) = oneshot::channel();
    if events.unbounded_send(Event::Stop(tx)).is_ok() {
        let _ = rx.await;
    }
    got
}

#[wasm_bindgen]
impl WebEngine {
    /// Opens the engine. `options`:
    /// - `server` (required): the persistence server, `ws://…` or `wss://…`;
    /// - `password` (required);
    /// - `create: true`: a new account (the database must hold none);
    /// - `userId`: an existing account — unlocked from this browser's
    ///   database if it holds it, else fetched from the server (a new device);
    /// - `import` (a `Uint8Array`): restore the account of an export file
    ///   into this database, which must hold none (`password` opens the
    ///   file and locks the database; `recoveryWords` for a file locked
    ///   with them);
    /// - `recoveryWords` with `userId`: recover the account with its 12
    ///   recovery words and set `password` as its new password (the
    ///   password is lost); a copy of it this browser holds, which the
    ///   lost password locked, is replaced once the words opened it;
    /// - neither: the account this browser's database holds;
    /// - `database` (default `"hypergolix"`): the IndexedDB database;
    /// - `storage`: `"indexeddb"` (default) or `"memory"` (nothing kept);
    /// - `onLog(line)`: where log lines go (default: the console);
    /// - `timeoutMs` (default 30000): how long a login on a new device may take
    ///   to open the account (waiting for the server included); its objects
    ///   are then awaited up to a minute more (the service's policy).
    ///
    /// Rejects with a `HypergolixError` whose `code` says why
    /// (`wrong_password`, `in_use`, `no_account`, `unreachable`, …).
    pub async fn open(options: JsValue) -> core::result::Result<WebEngine, JsValue> {
        Ok(Self::open_inner(&options).await?)
    }

    async fn open_inner(options: &JsValue) -> Result<WebEngine> {
        let opts = Options::parse(options)?;
        let log = opts.on_log.clone().map_or(Logger::Console, Logger::Js);
        let lock = match opts.storage {
            StoreKind::IndexedDb => lock::acquire(&opts.database).await?,
            StoreKind::Memory => None,
        };
        let store = match LocalStore::open(opts.storage, &opts.database).await {
            Ok(s) => s,
            Err(e) => {
                if let Some(l) = lock {
                    l.release().await;
                }
                return Err(e);
            }
        };
        let prepared = async {
            let held = store.meta().await?;
            let records = if held.is_some()
                && !opts.create
                && opts.recovery_words.is_none()
                && opts.import.is_none()
            {
                Some(store.load().await?)
            } else {
                None
            };
            start(&opts, held, || records)
        }
        .await;
        // The password did not open this browser's copy: it may have been
        // changed on another device. The account root says.
        let prepared = match prepared {
            Err(WebError::LocalWrongPassword(db)) => follow_password_change(&opts, &store, &log)
                .await
                .map_err(|e| match e {
                    WebError::LoginFailed { code, .. } if code == "wrong_password" => {
                        WebError::LocalWrongPassword(db)
                    }
                    WebError::Unreachable(_) | WebError::LoginFailed { .. } => {
                        WebError::LocalWrongPassword(db)
                    }
                    e => e,
                }),
            other => other,
        };
        let s = match prepared {
            Ok(s) => s,
            Err(e) => {
                // Refused: let the database go at once (an open connection
                // would block deleting it).
                store.close();
                if let Some(l) = lock {
                    l.release().await;
                }
                return Err(e);
            }
        };
        let status = Rc::new(RefCell::new(Status::default()));
        let (stop_link, link_stopped) = oneshot::channel();
        let mut host = Host::new(
            s.service,
            store,
            lock,
            status.clone(),
            stop_link,
            s.storage_key,
            KdfParams::DEFAULT,
            log.clone(),
        );
        host.pending_meta = s.meta;
        host.pending_replace = s.replace;
        let (ready_tx, ready_rx) = oneshot::channel();
        host.ready = Some(ready_tx);

        let (events, rx) = unbounded();
        host.wake = Some(events.clone());
        spawn_local(host::run(host, s.outputs, rx));
        spawn_local(server::run(
            opts.server.clone(),
            events.clone(),
            link_stopped,
            link_logger(&log),
        ));
        let engine = WebEngine {
            inner: Rc::new(Inner {
                events,
                status,
                next_session: Cell::new(1),
                database: opts.database.clone(),
                server: opts.server.clone(),
                words: RefCell::new(s.words),
            }),
        };
        // The service's policy bounds the wait (`timeoutMs`).
        let outcome = match ready_rx.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(WebError::LoginFailed { code, .. })) if code == "unreachable" => {
                Err(WebError::Unreachable(opts.server.clone()))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(engine
                .inner
                .status
                .borrow()
                .failure
                .clone()
                .map_or(WebError::Closed, WebError::Storage)),
        };
        match outcome {
            Ok(()) => Ok(engine),
            Err(e) => {
                engine.stop().await;
                Err(e)
            }
        }
    }

    async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.send(Event::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The account's user id (what logs in on another device), as text.
    #[wasm_bindgen(getter, js_name = userId)]
    pub fn user_id(&self) -> Option<String> {
        self.inner.status.borrow().account.map(|(u, _)| u.to_text())
    }

    /// The identity (what others share with), as text.
    #[wasm_bindgen(getter)]
    pub fn identity(&self) -> Option<String> {
        self.inner.status.borrow().account.map(|(_, i)| i.to_text())
    }

    /// Whether the persistence server is connected.
    #[wasm_bindgen(getter)]
    pub fn online(&self) -> bool {
        self.inner.status.borrow().online
    }

    /// Whether the engine has stopped (closed, or after a storage failure:
    /// see `failure`).
    #[wasm_bindgen(getter)]
    pub fn closed(&self) -> bool {
        self.inner.status.borrow().stopped
    }

    /// Why the engine stopped on its own, if it did.
    #[wasm_bindgen(getter)]
    pub fn failure(&self) -> Option<String> {
        self.inner.status.borrow().failure.clone()
    }

    /// The IndexedDB database name.
    #[wasm_bindgen(getter)]
    pub fn database(&self) -> String {
        self.inner.database.clone()
    }

    /// The persistence server URL.
    #[wasm_bindgen(getter)]
    pub fn server(&self) -> String {
        self.inner.server.clone()
    }

    /// Opens an app session: the engine calls `onMessage(Uint8Array)` with
    /// each IPC message for the app and `onClose(reason)` if it closes the
    /// session. Returns the session number for [`WebEngine::send`].
    #[wasm_bindgen(js_name = openSession)]
    pub fn open_session(
        &self,
        on_message: Function,
        on_close: Function,
    ) -> core::result::Result<u32, JsValue> {
        let id = self.inner.next_session.get();
        self.inner.next_session.set(id.wrapping_add(1).max(1));
        self.inner
            .send(Event::AppOpened(SessionId::from(id), on_message, on_close))?;
        Ok(id)
    }

    /// Sends one IPC message from an app session.
    pub fn send(&self, session: u32, message: &[u8]) -> core::result::Result<(), JsValue> {
        Ok(self
            .inner
            .send(Event::AppBytes(session.into(), message.to_vec()))?)
    }

    /// Closes an app session (its api_ids and objects are forgotten; its
    /// token is free again).
    #[wasm_bindgen(js_name = closeSession)]
    pub fn close_session(&self, session: u32) {
        let _ = self.inner.send(Event::AppClosed(session.into()));
    }

    /// Changes the account's password (and this browser's lock), given the
    /// current one: it is checked against the account the server holds, so
    /// the server must be reachable. Resolves when both are stored; rejects
    /// with `wrong_password` (nothing changed) if `current` is not it.
    #[wasm_bindgen(js_name = changePassword)]
    pub fn change_password(&self, current: String, password: String) -> Promise {
        let inner = self.inner.clone();
        let current = Zeroizing::new(current.into_bytes());
        let password = Zeroizing::new(password.into_bytes());
        future_to_promise(async move {
            if password.is_empty() {
                return Err(WebError::BadOption("the password is empty".into()).into());
            }
            let (tx, rx) = oneshot::channel();
            inner.send(Event::ChangePassword(current, password, tx))?;
            match rx.await {
                Ok(r) => r.map(|()| JsValue::UNDEFINED).map_err(Into::into),
                Err(_) => Err(WebError::Closed.into()),
            }
        })
    }

    /// The recovery words made with a new account (`create: true`), once:
    /// later calls, and engines that did not create their account, give
    /// `undefined`. Show them to the user and keep them nowhere.
    #[wasm_bindgen(js_name = takeRecoveryWords)]
    pub fn take_recovery_words(&self) -> Option<String> {
        self.inner.words.borrow_mut().take().map(|w| w.to_string())
    }

    /// The account in one encrypted file (`hypergolix import` and
    /// `import` here read it), locked with the account password, which must
    /// open this browser's copy: resolves to the file's bytes.
    #[wasm_bindgen(js_name = exportAccount)]
    pub fn export_account(&self, password: String) -> Promise {
        let inner = self.inner.clone();
        let password = Zeroizing::new(password.into_bytes());
        future_to_promise(async move {
            let (tx, rx) = oneshot::channel();
            inner.send(Event::Export(password, tx))?;
            match rx.await {
                Ok(r) => r
                    .map(|b| JsValue::from(js_sys::Uint8Array::from(b.as_slice())))
                    .map_err(Into::into),
                Err(_) => Err(WebError::Closed.into()),
            }
        })
    }

    /// New recovery words for the account, given its current password
    /// (checked against the account on the server, which must be
    /// connected): resolves to the 12 words, to show once. Words made
    /// before stop opening the account.
    #[wasm_bindgen(js_name = recoveryWords)]
    pub fn recovery_words(&self, password: String) -> Promise {
        let inner = self.inner.clone();
        let password = Zeroizing::new(password.into_bytes());
        future_to_promise(async move {
            let (tx, rx) = oneshot::channel();
            inner.send(Event::RecoveryWords(password, tx))?;
            match rx.await {
                Ok(r) => r.map(|w| JsValue::from(w.as_str())).map_err(Into::into),
                Err(_) => Err(WebError::Closed.into()),
            }
        })
    }

    /// Resolves to `{ online, synced, loading, pending }`: whether the
    /// server is connected, whether everything acknowledged has reached it,
    /// how many known objects are not read yet, and a line per kind of work
    /// still pending.
    pub fn status(&self) -> Promise {
        progress(&self.inner, Event::Status)
    }

    /// Resolves to the same as `status()` once everything acknowledged has
    /// reached the server and every known object is read: at once if that
    /// is so now, else right after the step that gets there (no polling).
    /// Rejects with `closed` if the engine stops first.
    #[wasm_bindgen(js_name = whenSynced)]
    pub fn when_synced(&self) -> Promise {
        progress(&self.inner, Event::WhenSynced)
    }

    /// Stops the engine after what was already sent to it; resolves when
    /// its last write is stored and the database is released.
    pub fn close(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let (tx, rx) = oneshot::channel();
            if inner.send(Event::Stop(tx)).is_ok() {
                let _ = rx.await;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Deletes an IndexedDB database and everything in it (this browser's
    /// copy of an account; what reached the server stays there). Refused
    /// while an engine has it open.
    #[wasm_bindgen(js_name = deleteDatabase)]
    pub async fn delete_database(name: String) -> core::result::Result<(), JsValue> {
        let lock = lock::acquire(&name).await?;
        let r = LocalStore::destroy(&name).await;
        drop(lock);
        Ok(r?)
    }
}

/// Parses any Golix object and returns its GHID in text form, or throws a
/// JavaScript error naming the failure (its stable code and message).
#[wasm_bindgen(js_name = objectGhid)]
pub fn object_ghid(bytes: &[u8]) -> core::result::Result<String, JsError> {
    hypergolix_core::golix::GolixObject::parse(bytes)
        .map(|o| o.ghid().to_text())
        .map_err(|e| JsError::new(&format!("{}: {}", e.code(), e)))
}

/// Runs the portable Golix benchmark (`hypergolix_core::golix::portable_bench`)
/// here, about `budget_ms` per operation, timed with `performance.now()`;
/// returns `name<TAB>ns<TAB>MB/s` lines.
#[cfg(feature = "bench")]
#[wasm_bindgen(js_name = benchPortable)]
pub fn bench_portable(budget_ms: f64) -> core::result::Result<String, JsError> {
    let perf = Reflect::get(&js_sys::global(), &"performance".into())
        .map_err(|_| JsError::new("no performance object"))?;
    let now: Function = Reflect::get(&perf, &"now".into())
        .map_err(|_| JsError::new("no performance.now"))?
        .dyn_into()
        .map_err(|_| JsError::new("performance.now is not a function"))?;
    let now_ns = || {
        now.call0(&perf)
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0)
            * 1e6
    };
    hypergolix_core::golix::portable_bench::run(&now_ns, budget_ms)
        .map(|rows| hypergolix_core::golix::portable_bench::render(&rows))
        .map_err(|e| JsError::new(&e.to_string()))
}
