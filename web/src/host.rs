//! The host loop: the one task that owns the engine (`Service`) and the
//! store. JavaScript calls and the server link only queue [`Event`]s; the
//! loop takes them one at a time, feeds the engine, and carries out its
//! steps in order, awaiting each store write before what comes after it.
//! Nothing here is borrowed across an await that JavaScript could re-enter:
//! the loop owns its state outright, and what JavaScript shares with it
//! ([`Status`]) is only read or written between awaits.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender};
use futures_channel::oneshot;
use futures_util::StreamExt;
use hypergolix_core::engine::export::{write_export_locked, Export, SecretKind};
use hypergolix_core::engine::keys::{
    lock_storage_key, lock_storage_key_for_account, unlock_storage_key,
};
use hypergolix_core::engine::{AppReply, KdfParams, SessionId, Step};
use hypergolix_core::golix::Ghid;
use hypergolix_core::service::{Output, Service, ServiceInput};
use hypergolix_core::wire::ipc::GhidDialect;
use js_sys::{Function, Uint8Array};
use wasm_bindgen::JsValue;
use zeroize::Zeroizing;

use crate::error::{describe, Result, WebError};
use crate::lock::DbLock;
use crate::server::Stop;
use crate::store::{LocalStore, Meta};

/// What the loop is told.
pub enum Event {
    /// An app session opened: its message and close callbacks.
    AppOpened(SessionId, Function, Function),
    /// One IPC message from an app session.
    AppBytes(SessionId, Vec<u8>),
    /// An app session closed.
    AppClosed(SessionId),
    /// The server link is up: send through this.
    ServerUp(UnboundedSender<Vec<u8>>),
    /// One message from the server.
    ServerBytes(Vec<u8>),
    /// The server link went down.
    ServerDown,
    /// Change the password (the account's and the local lock's): the
    /// current one, the new one.
    ChangePassword(
        Zeroizing<Vec<u8>>,
        Zeroizing<Vec<u8>>,
        oneshot::Sender<Result<()>>,
    ),
    /// An export file of the account, locked with the password (the one
    /// that opens this browser's copy now).
    Export(Zeroizing<Vec<u8>>, oneshot::Sender<Result<Vec<u8>>>),
    /// New recovery words (the current password; told the words).
    RecoveryWords(
        Zeroizing<Vec<u8>>,
        oneshot::Sender<Result<Zeroizing<String>>>,
    ),
    /// Report progress.
    Status(oneshot::Sender<Progress>),
    /// Report progress once everything is synced (at once if it is now).
    WhenSynced(oneshot::Sender<Progress>),
    /// A deadline of the service's may have passed.
    Tick,
    /// Stop after what is queued before this; told when stopped.
    Stop(oneshot::Sender<()>),
}

/// What the JavaScript side can read at any time.
#[derive(Debug, Default)]
pub struct Status {
    /// The account, once ready.
    pub account: Option<(Ghid, Ghid)>,
    /// Whether the server link is up.
    pub online: bool,
    /// Whether the loop has stopped (closed, or a store failure).
    pub stopped: bool,
    /// Why it stopped on its own, if it did.
    pub failure: Option<String>,
}

/// Pending work, for `status()`.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Whether the server link is up.
    pub online: bool,
    /// Whether everything acknowledged has reached the server.
    pub synced: bool,
    /// Objects known but not read yet (see `Engine::loading`).
    pub loading: usize,
    /// A line per kind of pending work.
    pub pending: Vec<String>,
}

struct AppSink {
    on_message: Function,
    on_close: Function,
}

/// An account change under way, and who waits for it.
enum Changing {
    /// A password change: the new password (the storage key is re-locked
    /// under it once the account took it).
    Password(Zeroizing<Vec<u8>>, oneshot::Sender<Result<()>>),
    /// New recovery words.
    Words(oneshot::Sender<Result<Zeroizing<String>>>),
}

/// Refusal of a second account change while one is under way.
fn busy() -> WebError {
    WebError::BadOption("an account change is already under way".into())
}

/// The loop's state. Built by `WebEngine::open`, then moved into [`run`].
pub struct Host {
    pub(crate) service: Service,
    pub(crate) store: LocalStore,
    pub(crate) lock: Option<DbLock>,
    pub(crate) server: Option<UnboundedSender<Vec<u8>>>,
    pub(crate) stop_link: Option<Stop>,
    pub(crate) status: Rc<RefCell<Status>>,
    /// Written with the next store batch (a new account's lock record).
    pub(crate) pending_meta: Option<Meta>,
    /// The next store batch first removes every record held (a recovery
    /// over a copy whose password is lost).
    pub(crate) pending_replace: bool,
    /// Told once apps may come in (the service's `Loaded`), or that the
    /// login failed.
    pub(crate) ready: Option<oneshot::Sender<Result<(Ghid, Ghid)>>>,
    /// This loop's own queue, for waking it at the service's deadline.
    pub(crate) wake: Option<futures_channel::mpsc::UnboundedSender<Event>>,
    /// The deadline a timer is set for.
    armed: Option<u64>,
    /// The storage key and the KDF for re-locking it on a password change.
    pub(crate) storage_key: Zeroizing<[u8; 32]>,
    pub(crate) kdf: KdfParams,
    pub(crate) log: crate::Logger,
    apps: HashMap<SessionId, AppSink>,
    /// Told, after the step that gets there, once everything is synced.
    synced_waiters: Vec<oneshot::Sender<Progress>>,
    /// A password change under way: the new password (to re-lock the
    /// storage key with once the account took it) and who waits for it.
    changing: Option<Changing>,
    /// A probe of the password (see `follow_password_change` in lib.rs):
    /// told the account key as soon as the root opens, after which nothing
    /// more is sent to the server (the throwaway engine must not publish:
    /// a key rotation it made would be lost with it).
    pub(crate) probe: Option<oneshot::Sender<Option<Zeroizing<[u8; 32]>>>>,
    /// The engine's answer to the host's own request, once it came.
    host_reply: Option<std::result::Result<AppReply, hypergolix_core::Error>>,
}

impl Host {
    /// A host around a service and its store.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        service: Service,
        store: LocalStore,
        lock: Option<DbLock>,
        status: Rc<RefCell<Status>>,
        stop_link: Stop,
        storage_key: Zeroizing<[u8; 32]>,
        kdf: KdfParams,
        log: crate::Logger,
    ) -> Self {
        Self {
            service,
            store,
            lock,
            server: None,
            stop_link: Some(stop_link),
            status,
            pending_meta: None,
            pending_replace: false,
            ready: None,
            wake: None,
            armed: None,
            storage_key,
            kdf,
            log,
            apps: HashMap::new(),
            synced_waiters: Vec::new(),
            changing: None,
            probe: None,
            host_reply: None,
        }
    }

    pub(crate) fn say(&self, line: &str) {
        self.log.say(&format!("hypergolix: {line}"));
    }

    /// Carries out a step: its early outputs, its store write (complete
    /// before anything after it), then the rest.
    pub async fn apply(&mut self, step: Step<Output>) -> Result<()> {
        self.outputs(step.early);
        if !step.store.is_empty() {
            let mut meta = self.pending_meta.take();
            if let Some(m) = meta.as_mut() {
                self.fill_account_lock(m)?;
            }
            let replace = std::mem::take(&mut self.pending_replace);
            self.store
                .apply_replacing(&step.store, meta.as_ref(), replace)
                .await?;
        }
        self.outputs(step.then);
        self.arm();
        self.tell_synced();
        Ok(())
    }

    /// What `status()` reports.
    fn progress(&self) -> Progress {
        let e = self.service.engine();
        Progress {
            online: self.server.is_some(),
            synced: e.is_synced(),
            loading: e.loading(),
            pending: e.pending_work(),
        }
    }

    /// Answers those waiting for `whenSynced` if everything is synced now
    /// (checked only while someone waits: it walks the object table).
    fn tell_synced(&mut self) {
        if self.synced_waiters.is_empty() {
            return;
        }
        let e = self.service.engine();
        if !(e.is_synced() && e.loading() == 0) {
            return;
        }
        let p = self.progress();
        for w in self.synced_waiters.drain(..) {
            let _ = w.send(p.clone());
        }
    }

    /// Sets a timer for the service's next deadline (one at a time; a tick
    /// that comes early is harmless).
    fn arm(&mut self) {
        let Some(deadline) = self.service.next_deadline() else {
            return;
        };
        if self.armed == Some(deadline) {
            return;
        }
        let Some(wake) = self.wake.clone() else {
            return;
        };
        self.armed = Some(deadline);
        let wait = deadline.saturating_sub(crate::now());
        wasm_bindgen_futures::spawn_local(async move {
            gloo_timers::future::sleep(std::time::Duration::from_millis(wait)).await;
            let _ = wake.unbounded_send(Event::Tick);
        });
    }

    fn outputs(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::ToServer(b) => {
                    if let Some(tx) = self.server.as_ref().filter(|_| self.stop_link.is_some()) {
                        // A closed link is noticed by the link task; the
                        // engine resends its outbox when it is back.
                        let _ = tx.unbounded_send(b);
                    }
                }
                Output::ToApp(s, b) => {
                    if let Some(app) = self.apps.get(&s) {
                        let f = app.on_message.clone();
                        let bytes: JsValue = Uint8Array::from(b.as_slice()).into();
                        if let Err(e) = f.call1(&JsValue::UNDEFINED, &bytes) {
                            self.say(&format!("an app's message handler threw: {}", describe(&e)));
                        }
                    }
                }
                Output::CloseApp(s, why) => {
                    if let Some(app) = self.apps.remove(&s) {
                        let _ = app.on_close.call1(&JsValue::UNDEFINED, &why.into());
                    }
                }
                Output::Ready { user_id, identity } => {
                    self.status.borrow_mut().account = Some((user_id, identity));
                    if let Some(tx) = self.probe.take() {
                        // The rest of this step, and every later one, stays
                        // here: the server link goes.
                        self.server = None;
                        if let Some(stop) = self.stop_link.take() {
                            let _ = stop.send(());
                        }
                        let _ = tx.send(self.service.engine().account_lock_key());
                    }
                }
                Output::Loading(left) => {
                    self.say(&format!("reading the account's objects ({left} to go)…"));
                }
                Output::Loaded { .. } => self.tell_ready(),
                Output::LoginFailed { code, message } => {
                    if let Some(tx) = self.ready.take() {
                        let _ = tx.send(Err(WebError::LoginFailed { code, message }));
                    }
                }
                Output::Log(l) => self.say(&l),
                Output::HostReply(r) => self.host_reply = Some(r),
            }
        }
    }

    /// Tells `open` that apps may come in.
    fn tell_ready(&mut self) {
        let Some(account) = self.status.borrow().account else {
            return;
        };
        if let Some(tx) = self.ready.take() {
            let _ = tx.send(Ok(account));
        }
    }

    async fn step(&mut self, ev: Event) -> Result<()> {
        let input = match ev {
            Event::AppOpened(s, on_message, on_close) => {
                self.apps.insert(
                    s,
                    AppSink {
                        on_message,
                        on_close,
                    },
                );
                ServiceInput::AppOpened(s, GhidDialect::Native)
            }
            Event::AppBytes(s, b) => ServiceInput::AppBytes(s, b),
            Event::AppClosed(s) => {
                if self.apps.remove(&s).is_none() {
                    return Ok(());
                }
                ServiceInput::AppClosed(s)
            }
            Event::ServerUp(tx) => {
                self.server = Some(tx);
                self.status.borrow_mut().online = true;
                ServiceInput::ServerUp
            }
            Event::ServerBytes(b) => ServiceInput::ServerBytes(b),
            Event::Tick => {
                self.armed = None;
                ServiceInput::Tick(crate::now())
            }
            Event::ServerDown => {
                self.server = None;
                self.status.borrow_mut().online = false;
                ServiceInput::ServerDown
            }
            Event::ChangePassword(current, new, done) => {
                if self.changing.is_some() {
                    let _ = done.send(Err(busy()));
                    return Ok(());
                }
                let out = match self.service.change_password(&current, &new) {
                    Ok(out) => out,
                    Err(e) => {
                        let _ = done.send(Err(e.into()));
                        return Ok(());
                    }
                };
                self.changing = Some(Changing::Password(new, done));
                self.apply(out).await?;
                return self.finish_change().await;
            }
            Event::Export(password, done) => {
                let _ = done.send(self.export(&password).await);
                return Ok(());
            }
            Event::RecoveryWords(password, done) => {
                if self.changing.is_some() {
                    let _ = done.send(Err(busy()));
                    return Ok(());
                }
                let out = match self.service.recovery_words(&password) {
                    Ok(out) => out,
                    Err(e) => {
                        let _ = done.send(Err(e.into()));
                        return Ok(());
                    }
                };
                self.changing = Some(Changing::Words(done));
                self.apply(out).await?;
                return self.finish_change().await;
            }
            Event::Status(tx) => {
                let _ = tx.send(self.progress());
                return Ok(());
            }
            Event::WhenSynced(tx) => {
                self.synced_waiters.push(tx);
                self.tell_synced();
                return Ok(());
            }
            // `run` takes `Stop` before it reaches a step.
            Event::Stop(done) => {
                let _ = done.send(());
                return Ok(());
            }
        };
        // Date.now(): the wall clock (`?L` shows when objects changed).
        self.service.set_wall_clock(js_sys::Date::now() as u64);
        let out = self.service.handle(input);
        self.apply(out).await?;
        self.finish_change().await
    }

    /// Once the engine answered an account change: after a password
    /// change the storage key is locked under the new password (so this
    /// browser opens with it); the caller is told. A store failure stops
    /// the loop.
    async fn finish_change(&mut self) -> Result<()> {
        let Some(reply) = self.host_reply.take() else {
            return Ok(());
        };
        let (new, done) = match self.changing.take() {
            None => return Ok(()),
            Some(Changing::Words(done)) => {
                let _ = done.send(match reply {
                    Ok(AppReply::Words(w)) => String::from_utf8(w.0.to_vec())
                        .map(Zeroizing::new)
                        .map_err(|_| WebError::Storage("recovery words that are not text".into())),
                    Ok(_) => Err(WebError::Storage(
                        "the engine answered something else".into(),
                    )),
                    Err(e) => Err(e.into()),
                });
                return Ok(());
            }
            Some(Changing::Password(new, done)) => (new, done),
        };
        if let Err(e) = reply {
            let _ = done.send(Err(e.into()));
            return Ok(());
        }
        let relocked = self.relock(&new).await;
        match relocked {
            Err(WebError::Storage(m)) => {
                let _ = done.send(Err(WebError::Storage(m.clone())));
                Err(WebError::Storage(m))
            }
            r => {
                let _ = done.send(r);
                Ok(())
            }
        }
    }

    /// The account in one file (`hypergolix_core::engine::export`): the
    /// records as stored, the storage key locked under `password`.
    async fn export(&mut self, password: &[u8]) -> Result<Vec<u8>> {
        let engine = self.service.engine();
        let user_id = engine
            .user_id()
            .ok_or(WebError::Core(hypergolix_core::Error::NotReady(
                "no account yet",
            )))?;
        // The password that opens this browser's copy now (its lock
        // follows changes made on other devices); that lock is the file's.
        let lock = match self.store.meta().await? {
            Some(m)
                if unlock_storage_key(password, &m.locked_key)
                    .is_ok_and(|k| *k == *self.storage_key) =>
            {
                m.locked_key
            }
            _ => return Err(WebError::Core(hypergolix_core::Error::WrongPassword)),
        };
        let e = Export {
            user_id,
            storage_key: self.storage_key.clone(),
            records: self.store.load().await?,
            objects: Vec::new(),
        };
        let mut rng = crate::Rng;
        Ok(write_export_locked(
            &e,
            SecretKind::Password,
            &lock,
            &mut rng,
        )?)
    }

    /// Adds the second lock (under the account key) to `meta` once the
    /// engine holds the account.
    pub(crate) fn fill_account_lock(&self, meta: &mut Meta) -> Result<()> {
        if meta.account_lock.is_some() {
            return Ok(());
        }
        if let Some(k) = self.service.engine().account_lock_key() {
            let mut rng = crate::Rng;
            meta.account_lock = Some(lock_storage_key_for_account(
                &k,
                &self.storage_key,
                &mut rng,
            )?);
        }
        Ok(())
    }

    /// Locks the storage key under `pw` from now on.
    async fn relock(&mut self, pw: &[u8]) -> Result<()> {
        let user_id = self.service.engine().user_id().ok_or(WebError::Core(
            hypergolix_core::Error::NotReady("no account yet"),
        ))?;
        let mut rng = crate::Rng;
        let locked = lock_storage_key(pw, &self.storage_key, self.kdf, &mut rng)?;
        let mut meta = Meta {
            user_id,
            locked_key: locked,
            account_lock: None,
        };
        self.fill_account_lock(&mut meta)?;
        self.store.apply(&[], Some(&meta)).await
    }

    /// Stops the server link and closes every app session.
    fn shutdown(&mut self) {
        if let Some(stop) = self.stop_link.take() {
            let _ = stop.send(());
        }
        self.server = None;
        for (_, app) in self.apps.drain() {
            let _ = app
                .on_close
                .call1(&JsValue::UNDEFINED, &"the engine was closed".into());
        }
        self.status.borrow_mut().online = false;
        // Those still waiting for `whenSynced` are told the engine is gone.
        self.synced_waiters.clear();
    }
}

/// Runs the loop: first the outputs `open` started with, then each event
/// until [`Event::Stop`]. A failed store write stops it: nothing after the
/// write is carried out, so nothing unwritten is acknowledged. The store is
/// closed and the database lock released before `Stop` is answered, so the
/// database can be opened again at once.
pub async fn run(mut host: Host, first: Step<Output>, mut events: UnboundedReceiver<Event>) {
    let mut stopped_by = None;
    let mut failure = host.apply(first).await.err();
    if failure.is_none() {
        while let Some(ev) = events.next().await {
            if let Event::Stop(done) = ev {
                stopped_by = Some(done);
                break;
            }
            if let Err(e) = host.step(ev).await {
                failure = Some(e);
                break;
            }
        }
    }
    if let Some(e) = failure {
        host.say(&format!("stopping: {e}"));
        host.status.borrow_mut().failure = Some(e.to_string());
        if let Some(tx) = host.ready.take() {
            let _ = tx.send(Err(e));
        }
    }
    host.shutdown();
    events.close();
    let Host {
        store,
        lock,
        status,
        ..
    } = host;
    store.close();
    if let Some(l) = lock {
        l.release().await;
    }
    status.borrow_mut().stopped = true;
    if let Some(done) = stopped_by {
        let _ = done.send(());
    }
    // Whoever still waits is told the engine is gone.
    while let Some(ev) = events.next().await {
        match ev {
            Event::Stop(done) => {
                let _ = done.send(());
            }
            Event::ChangePassword(_, _, done) => {
                let _ = done.send(Err(WebError::Closed));
            }
            Event::RecoveryWords(_, done) => {
                let _ = done.send(Err(WebError::Closed));
            }
            Event::Export(_, done) => {
                let _ = done.send(Err(WebError::Closed));
            }
            _ => {}
        }
    }
}
