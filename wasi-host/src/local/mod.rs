//! `hypergolix start`: the local service. The engine (the WASI component
//! under wasmtime by default, or natively with `--native-engine`) runs on one
//! thread that also owns the local store and, when no remote is configured,
//! an embedded persistence node; tokio serves the app IPC websockets. The
//! host only moves bytes and keeps storage durable: every protocol decision
//! is the engine's (`hypergolix_core::service`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hypergolix_core::engine::{Engine, EngineConfig, KdfParams, Step};
use hypergolix_core::golix::Ghid;
use hypergolix_core::persist::Node;
use hypergolix_core::service::{Output, Policy, Service, ServiceInput};
use hypergolix_core::wire::ipc::{GhidDialect, NATIVE_GHIDS_SUBPROTOCOL};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::component::{load_engine, WasmConfig, WasmService};
use crate::runtime::{default_cache_dir, Runtime};
use crate::serve::redb_store::RedbStore;

pub mod account;
pub mod control;
pub mod export;
pub mod peer;
pub mod settings;
pub mod store;
mod toml_file;
pub mod unit;

use control::{AccountFile, PidFile};
use peer::IpcTrust;
use settings::{DirArgs, FileConfig, IpcAddr, NetArgs, PasswordArgs, Settings};
use store::LocalStore;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// How the engine is run.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Run the engine natively instead of inside wasmtime.
    #[arg(long)]
    pub native_engine: bool,
    /// Run this engine component instead of the one built into the binary.
    #[arg(long, env = "HYPERGOLIX_ENGINE_COMPONENT")]
    pub component: Option<PathBuf>,
    /// Cheap Argon2id parameters. Tests only: never for a real account.
    #[arg(long, hide = true)]
    pub insecure_test_kdf: bool,
}

impl EngineArgs {
    /// The native engine's configuration under the storage `key`, with
    /// these arguments' Argon2id settings.
    pub fn engine_config(&self, key: [u8; 32]) -> EngineConfig {
        let mut cfg = EngineConfig::new(key);
        if self.insecure_test_kdf {
            cfg.kdf = KdfParams::INSECURE_TEST;
        }
        cfg
    }
}

/// What every account command needs: where, which network, which
/// password, which engine.
#[derive(Debug, Clone, clap::Args)]
pub struct AccountArgs {
    /// The data directory.
    #[command(flatten)]
    pub dir: DirArgs,
    /// Network settings (over `config.toml`).
    #[command(flatten)]
    pub net: NetArgs,
    /// The password's source (needed only when the data directory is new).
    #[command(flatten)]
    pub password: PasswordArgs,
    /// The engine.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `hypergolix start` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    /// Data directory, network, password, engine.
    #[command(flatten)]
    pub account: AccountArgs,
    /// Log in to an existing account (this user id) instead of creating one,
    /// when the data directory is new: a second device of the same agent.
    /// Needs the server that holds the account (`--remote`).
    #[arg(long, value_name = "USER_ID")]
    pub login: Option<Ghid>,
    /// Run in the background: output goes to `service.log` in the data
    /// directory, the pid to `service.toml`; `hypergolix stop` ends it.
    #[arg(long, short = 'd')]
    pub background: bool,
    /// With `login`: recover the account with these recovery words instead
    /// of its password, which is set anew (`hypergolix recover`).
    #[arg(skip)]
    pub words: settings::GivenWords,
}

/// `hypergolix login` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// The user id of the account (`hypergolix whoami` on a device that has it).
    pub user_id: Ghid,
    /// Data directory (must not hold an account yet), network (the server
    /// that holds the account is needed), password, engine.
    #[command(flatten)]
    pub account: AccountArgs,
}

impl StartArgs {
    /// `create-account`: start's set-up without a login.
    pub fn create(account: AccountArgs) -> Self {
        Self {
            account,
            login: None,
            background: false,
            words: Default::default(),
        }
    }

    /// `recover`: a login with recovery words (checked before anything is
    /// set up) and a new password.
    pub fn recover(a: account::RecoverArgs) -> Result<Self> {
        let words = account::read_words(a.words_file.as_deref())?;
        Ok(Self {
            account: a.account,
            login: Some(a.user_id),
            background: false,
            words: settings::GivenWords(Some(words)),
        })
    }
}

impl From<LoginArgs> for StartArgs {
    fn from(a: LoginArgs) -> Self {
        Self {
            account: a.account,
            login: Some(a.user_id),
            background: false,
            words: Default::default(),
        }
    }
}

/// What [`run`] does once the account is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serve apps until stopped (`start`).
    Serve,
    /// Create or log in to the account, then return (`create-account`, `login`).
    SetupOnly,
}

/// The storage key: 32 random bytes in `storage.key` (mode 0600), made on
/// first start.
fn storage_key(dir: &Path) -> Result<[u8; 32]> {
    let path = dir.join("storage.key");
    if let Ok(b) = std::fs::read(&path) {
        return b
            .as_slice()
            .try_into()
            .map_err(|_| Error::Service(format!("{}: not a 32-byte key", path.display())));
    }
    let mut key = [0u8; 32];
    getrandom(&mut key)?;
    write_private(&path, &key)?;
    Ok(key)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| Error::Service(format!("{}: {e}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::Service(format!("{}: {e}", path.display())))
}

/// The wall clock in ms since the Unix epoch (0 if it reads before it).
pub(crate) fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// 32 bytes from the OS (through std's hasher seeds would be weak; read the
/// kernel's source directly).
fn getrandom(buf: &mut [u8]) -> Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| Error::Service(format!("cannot read the OS random source: {e}")))
}

/// The engine, wherever it runs.
enum Core {
    Native(Box<Service>),
    Wasm(Box<WasmService>),
}

impl Core {
    fn handle(&mut self, input: ServiceInput) -> Result<Step<Output>> {
        match self {
            Core::Native(s) => {
                s.set_wall_clock(crate::local::wall_clock_ms());
                Ok(s.handle(input))
            }
            Core::Wasm(s) => s.handle(input),
        }
    }
    fn open_login(&mut self, user: &Ghid, pw: &[u8], now: u64) -> Result<Step<Output>> {
        match self {
            Core::Native(s) => s
                .open_login(*user, pw, now)
                .map_err(|e| Error::Service(e.to_string())),
            Core::Wasm(s) => s.open_login(user, pw, now),
        }
    }

    fn next_deadline(&mut self) -> Result<Option<u64>> {
        match self {
            Core::Native(s) => Ok(s.next_deadline()),
            Core::Wasm(s) => s.next_deadline(),
        }
    }

    /// Creates the account; with `with_words`, its recovery words too.
    fn create_account(
        &mut self,
        pw: &[u8],
        with_words: bool,
    ) -> Result<(Step<Output>, Option<Zeroizing<String>>)> {
        match self {
            Core::Native(s) if with_words => s
                .create_account_with_words(pw)
                .map(|(step, words)| (step, Some(words)))
                .map_err(|e| Error::Service(e.to_string())),
            Core::Native(s) => s
                .create_account(pw)
                .map(|step| (step, None))
                .map_err(|e| Error::Service(e.to_string())),
            Core::Wasm(s) => s.create_account(pw, with_words),
        }
    }

    fn open_recover(
        &mut self,
        user: &Ghid,
        words: &str,
        new_password: &[u8],
        now: u64,
    ) -> Result<Step<Output>> {
        match self {
            Core::Native(s) => s
                .open_recover(*user, words, new_password, now)
                .map_err(|e| Error::Service(e.to_string())),
            Core::Wasm(s) => s.open_recover(user, words, new_password, now),
        }
    }

    fn pending_work(&mut self) -> Result<Vec<String>> {
        match self {
            Core::Native(s) => Ok(s.engine().pending_work()),
            Core::Wasm(s) => s.pending_work(),
        }
    }

    fn loading(&mut self) -> Result<usize> {
        match self {
            Core::Native(s) => Ok(s.engine().loading()),
            Core::Wasm(s) => s.loading(),
        }
    }

    fn locked_frames(&mut self) -> Result<u64> {
        match self {
            Core::Native(s) => Ok(s.engine().stats().locked_frames),
            Core::Wasm(s) => s.locked_frames(),
        }
    }
}

/// Where the service's lines for the person running it go: the command
/// prints them (stdout for what scripts read, stderr for the rest); an
/// embedding program gets them as log events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    /// `hypergolix start` and friends: stdout and stderr.
    Terminal,
    /// Embedded in another program: `tracing` events only.
    Log,
}

impl Voice {
    /// A line for whoever started the service (stdout: `listening on`,
    /// `user id:`). Never panics: a closed stdout (a supervisor that went
    /// away) must not stop the service.
    fn say(self, line: &str) {
        match self {
            Voice::Terminal => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
            Voice::Log => tracing::info!("{line}"),
        }
    }

    /// A message for the person running the service (stderr).
    fn tell(self, line: &str) {
        match self {
            Voice::Terminal => {
                use std::io::Write;
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            Voice::Log => tracing::info!("{line}"),
        }
    }
}

/// How often the engine thread is woken to tell the service the time
/// (`ServiceInput::Tick`) while it has a deadline.
const TICK: Duration = Duration::from_millis(250);

/// Events queued for the engine before IO tasks wait (backpressure: a
/// flooding app is read no faster than the engine handles it).
const EVENT_QUEUE: usize = 1024;

/// The most events one store write covers (see `EngineLoop::run`).
const GROUP_MAX: usize = 64;

/// Messages queued for one app before it counts as not reading (and is
/// closed with 1008).
const APP_QUEUE: usize = 4096;

/// What an event asks of the engine loop.
enum Next {
    /// A step of the engine.
    Input(ServiceInput),
    /// Nothing (answered by the host, or a tick before any deadline).
    Skip,
    /// Stop.
    Shutdown,
}

/// What the engine sends an app connection's writer.
#[derive(Debug)]
enum ToApp {
    /// One websocket message.
    Bytes(Vec<u8>),
    /// Close with this code and reason.
    Close(CloseCode, String),
}

/// What the IPC tasks tell the engine thread.
enum Event {
    Opened(u64, GhidDialect, mpsc::Sender<ToApp>),
    Bytes(u64, Vec<u8>),
    /// A message over the connection's rate limit.
    OverLimit(u64, Vec<u8>),
    Closed(u64),
    /// Stop after the event being handled (SIGTERM, SIGINT, setup done).
    Shutdown,
    /// Time passed (the service's deadlines).
    Tick,
    /// The remote connection is up; send to it through this.
    RemoteUp(mpsc::UnboundedSender<Vec<u8>>),
    RemoteBytes(Vec<u8>),
    RemoteDown,
    /// What the metrics port reports, asked for by a scrape.
    Stats(tokio::sync::oneshot::Sender<Stats>),
}

impl Event {
    /// Whether the event changes where the engine's outputs go: it never
    /// joins a group commit after other steps (`EngineLoop::run`).
    fn is_barrier(&self) -> bool {
        matches!(
            self,
            Event::Opened(..) | Event::Closed(_) | Event::RemoteUp(_) | Event::RemoteDown
        )
    }
}

/// The service's state as the metrics port reports it.
#[derive(Debug, Clone, Copy)]
struct Stats {
    apps: usize,
    server_up: bool,
    pending: usize,
    loading: usize,
    locked_frames: u64,
}

/// Where the engine's server traffic goes.
enum Upstream {
    /// The embedded persistence node (no socket: it runs on the engine thread).
    Embedded(Node<RedbStore>),
    /// A remote server, when connected.
    Remote(Option<mpsc::UnboundedSender<Vec<u8>>>),
}

/// The engine thread: the service, the local store, the embedded node.
struct EngineLoop {
    core: Core,
    local: LocalStore,
    upstream: Upstream,
    apps: HashMap<u64, mpsc::Sender<ToApp>>,
    /// The data directory (for `account.toml`).
    dir: PathBuf,
    /// Told how opening the account goes, until apps may come in
    /// (`hypergolix login`, `start --login` before it listens, setup).
    ready: Option<std_mpsc::Sender<Progress>>,
    /// Where lines for people go.
    voice: Voice,
    /// The service's clock starts here.
    clock: std::time::Instant,
}

/// How opening the account goes (the service decides; see
/// `hypergolix_core::service::Policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Progress {
    /// Objects still to be read.
    Loading(usize),
    /// Apps may come in; `missing` objects were not read in time.
    Loaded { missing: usize },
}

impl EngineLoop {
    /// Carries out a step: its early outputs, its store write (durably),
    /// then the rest; server traffic goes to the embedded node, whose
    /// answers are fed back, step by step, until nothing is left.
    fn apply(&mut self, step: Step<Output>) -> Result<()> {
        let mut pending = std::collections::VecDeque::from([step]);
        while let Some(step) = pending.pop_front() {
            for o in step.early {
                self.output(o, &mut pending)?;
            }
            if !step.store.is_empty() {
                // Durable before anything in `then` is carried out.
                self.local.apply(&step.store)?;
            }
            for o in step.then {
                self.output(o, &mut pending)?;
            }
        }
        Ok(())
    }

    /// Carries out one output; the embedded node's answers join `pending`.
    fn output(
        &mut self,
        o: Output,
        pending: &mut std::collections::VecDeque<Step<Output>>,
    ) -> Result<()> {
        match o {
            Output::ToServer(b) => match &mut self.upstream {
                Upstream::Embedded(node) => {
                    for (_, reply) in node.handle_bytes(1, &b) {
                        let more = self
                            .core
                            .handle(ServiceInput::ServerBytes(reply.encode()))?;
                        pending.push_back(more);
                    }
                }
                Upstream::Remote(Some(tx)) => {
                    let _ = tx.send(b);
                }
                // Offline: the engine keeps its outbox and resends on reconnect.
                Upstream::Remote(None) => {}
            },
            Output::ToApp(s, b) => {
                if let Some(tx) = self.apps.get(&s) {
                    if tx.try_send(ToApp::Bytes(b)).is_err() {
                        // Full: the app does not read. Dropping its
                        // sender makes the writer close the connection.
                        tracing::warn!(session = s, "an app does not read its messages; closing");
                        self.apps.remove(&s);
                    }
                }
            }
            Output::CloseApp(s, why) => {
                tracing::warn!(session = s, %why, "closing an app connection");
                if let Some(tx) = self.apps.remove(&s) {
                    let _ = tx.try_send(ToApp::Close(CloseCode::Policy, why));
                }
            }
            Output::Ready { user_id, identity } => {
                AccountFile::write(&self.dir, &user_id, &identity)?;
                self.voice
                    .say(&format!("user id: {user_id}\nidentity: {identity}"));
            }
            Output::Loading(left) => self.tell(Progress::Loading(left)),
            Output::Loaded { missing } => {
                self.tell(Progress::Loaded { missing });
                self.ready = None;
            }
            // Ends the engine loop: the service cannot go on.
            Output::LoginFailed { code, message } => {
                return Err(Error::Login { code, message });
            }
            Output::Log(l) => tracing::info!("{l}"),
            // This host asks for account changes over IPC only.
            Output::HostReply(_) => {}
        }
        Ok(())
    }

    fn tell(&self, p: Progress) {
        if let Some(tx) = &self.ready {
            let _ = tx.send(p);
        }
    }

    /// The service's clock: milliseconds since the loop was made.
    fn now(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// What one event asks of the engine, if anything (the host-side
    /// bookkeeping of the event done).
    fn take(&mut self, ev: Event) -> Result<Next> {
        let input = match ev {
            Event::Stats(tx) => {
                // A scrape that cannot be answered gets a 503 (the
                // sender is dropped); it never stops the engine.
                if let (Ok(pending), Ok(loading), Ok(locked_frames)) = (
                    self.core.pending_work(),
                    self.core.loading(),
                    self.core.locked_frames(),
                ) {
                    let _ = tx.send(Stats {
                        apps: self.apps.len(),
                        server_up: !matches!(self.upstream, Upstream::Remote(None)),
                        pending: pending.len(),
                        loading,
                        locked_frames,
                    });
                }
                return Ok(Next::Skip);
            }
            Event::Opened(s, dialect, tx) => {
                self.apps.insert(s, tx);
                ServiceInput::AppOpened(s, dialect)
            }
            Event::Bytes(s, b) => ServiceInput::AppBytes(s, b),
            Event::OverLimit(s, b) => ServiceInput::AppOverLimit(s, b),
            // Everything acknowledged is already durable: just stop.
            Event::Shutdown => return Ok(Next::Shutdown),
            Event::Tick => {
                match self.core.next_deadline() {
                    Ok(Some(d)) if d <= self.now() => {}
                    Ok(_) => return Ok(Next::Skip),
                    Err(e) => return Err(e),
                }
                ServiceInput::Tick(self.now())
            }
            Event::Closed(s) => {
                self.apps.remove(&s);
                ServiceInput::AppClosed(s)
            }
            Event::RemoteUp(tx) => {
                self.upstream = Upstream::Remote(Some(tx));
                ServiceInput::ServerUp
            }
            Event::RemoteBytes(b) => ServiceInput::ServerBytes(b),
            Event::RemoteDown => {
                self.upstream = Upstream::Remote(None);
                ServiceInput::ServerDown
            }
        };
        Ok(Next::Input(input))
    }

    /// Handles events until shut down, on its own thread: a step's store
    /// write (an fsync) then never holds up the IO tasks, so what a step
    /// sends before its write (see `docs/engine.md`) leaves at once. `Err`
    /// when it had to stop: a failed login, or a store that failed (nothing
    /// more is acknowledged than is durable).
    ///
    /// Group commit: the events already queued when one is taken (up to
    /// [`GROUP_MAX`]) are handled with it and their steps joined
    /// ([`Step::followed_by`]), so one store write, one fsync, covers them
    /// all. While a write is in flight, acknowledgements from the server
    /// and apps' next requests queue up; before, each paid its own fsync.
    /// A joined step's early actions wait for the joint write: later than
    /// needed, never earlier.
    fn run(mut self, mut events: mpsc::Receiver<Event>) -> Result<()> {
        // An event that ends a group, kept for the next one.
        let mut carried: Option<Event> = None;
        loop {
            let Some(first) = carried.take().or_else(|| events.blocking_recv()) else {
                return Ok(());
            };
            let mut step: Option<Step<Output>> = None;
            let mut shutdown = false;
            let mut next = Some(first);
            let mut taken = 0;
            while let Some(ev) = next.take() {
                // Events that change where outputs go (a connection up or
                // down, an app opened or closed) start a group of their own:
                // the outputs of the steps before them go where they would
                // have gone one step at a time.
                if step.is_some() && ev.is_barrier() {
                    carried = Some(ev);
                    break;
                }
                taken += 1;
                match self.take(ev).and_then(|n| match n {
                    Next::Input(input) => self.core.handle(input).map(Some),
                    Next::Skip => Ok(None),
                    Next::Shutdown => {
                        shutdown = true;
                        Ok(None)
                    }
                }) {
                    Ok(Some(out)) => {
                        step = Some(match step {
                            Some(s) => s.followed_by(out),
                            None => out,
                        });
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // The events before this one were handled: carry
                        // their step out, as one at a time would have, then
                        // stop.
                        if let Some(step) = step.take() {
                            if let Err(e2) = self.apply(step) {
                                tracing::error!("{e2}");
                            }
                        }
                        tracing::error!("{e}; stopping");
                        return Err(e);
                    }
                }
                if shutdown {
                    break;
                }
                if taken < GROUP_MAX {
                    next = events.try_recv().ok();
                }
            }
            if let Some(step) = step {
                if let Err(e) = self.apply(step) {
                    tracing::error!("{e}; stopping");
                    return Err(e);
                }
            }
            // Everything acknowledged is already durable: just stop.
            if shutdown {
                return Ok(());
            }
        }
    }
}

/// A task that is aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The engine thread, and how the IO side learns that it stopped.
struct EngineThread {
    handle: std::thread::JoinHandle<Result<()>>,
    /// Fires when the loop has ended (for whatever reason).
    ended: tokio::sync::oneshot::Receiver<()>,
}

impl EngineThread {
    fn spawn(lp: EngineLoop, events: mpsc::Receiver<Event>) -> Result<Self> {
        let (done, ended) = tokio::sync::oneshot::channel();
        let handle = std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                let r = lp.run(events);
                let _ = done.send(());
                r
            })
            .map_err(|e| Error::Service(e.to_string()))?;
        Ok(Self { handle, ended })
    }

    /// Asks the loop to stop after the event it is handling (everything
    /// acknowledged is already stored), then waits for it: its result.
    async fn stop(self, events: &mpsc::Sender<Event>) -> Result<()> {
        // A loop that already ended has dropped its receiver: the send
        // fails, and the join says why it ended.
        let _ = events.send(Event::Shutdown).await;
        self.join().await
    }

    /// Waits for the thread to end: its result.
    async fn join(self) -> Result<()> {
        tokio::task::spawn_blocking(move || {
            self.handle
                .join()
                .unwrap_or_else(|_| Err(Error::Service("the engine thread panicked".into())))
        })
        .await
        .map_err(|e| Error::Service(e.to_string()))?
    }
}

/// What an embedding program learns once the service is up.
#[derive(Debug, Clone)]
pub struct Started {
    /// Where apps connect (`127.0.0.1:PORT`, or `unix:PATH`).
    pub ipc: String,
    /// The account's user id and identity.
    pub account: Option<(Ghid, Ghid)>,
}

/// How [`run_with`] is driven by its caller.
pub struct Control {
    /// Lines for people: printed, or logged.
    pub voice: Voice,
    /// Resolves when the service must stop (the command: SIGTERM/SIGINT);
    /// its value is said in the "stopping" line.
    pub stop: std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>,
    /// Told where apps connect once the service listens.
    pub started: Option<tokio::sync::oneshot::Sender<Started>>,
    /// Runs inside another program: the pid file says so, and `hypergolix
    /// stop` refuses to signal that program.
    pub embedded: bool,
}

impl Control {
    /// The command's: stdout/stderr, and SIGTERM or SIGINT.
    pub fn terminal() -> Self {
        Self {
            voice: Voice::Terminal,
            stop: Box::pin(async { stop_signal().await.to_string() }),
            started: None,
            embedded: false,
        }
    }
}

/// The engine, opened and with its first actions applied: what
/// [`run_with`] hands to the engine thread.
struct Opened {
    lp: EngineLoop,
    /// Told how opening the account goes (a login, or setup).
    ready_rx: std_mpsc::Receiver<Progress>,
    /// A login on a new device: apps wait until the account is read.
    logging_in: bool,
}

/// Opens the stores, compiles or restores the engine, creates the account
/// or queues the login, and applies the first actions. Blocking work
/// (component compilation, Argon2id, reading the store, a password prompt).
fn open_engine(
    args: StartArgs,
    mode: Mode,
    settings: &Settings,
    dir: PathBuf,
    voice: Voice,
) -> Result<Opened> {
    let key = storage_key(&dir)?;
    let local = LocalStore::open(&dir.join("local.redb"))?;
    let records = local.load()?;
    let fresh = records.is_empty();
    if mode == Mode::SetupOnly && !fresh {
        return Err(Error::Service(format!(
            "{} already holds an account (`hypergolix whoami` shows it); use another --data-dir",
            dir.display()
        )));
    }
    if args.login.is_some() && fresh && settings.remote.is_none() {
        return Err(
            Error::Config("logging in needs the persistence server that holds the account: pass --remote ws://HOST:PORT/ or `hypergolix config set remote …`"
                .into()),
        );
    }
    let mut seed = [0u8; 32];
    getrandom(&mut seed)?;
    let policy = Policy {
        max_app_message: settings.max_message_bytes,
        ..Policy::default()
    };
    let (mut core, first) = if args.account.engine.native_engine {
        let cfg = args.account.engine.engine_config(key);
        let (engine, step) =
            Engine::restore(cfg, seed, records).map_err(|e| Error::Service(e.to_string()))?;
        let mut svc = Service::new(engine);
        svc.set_policy(policy);
        let out = svc.adopt_step(step);
        (Core::Native(Box::new(svc)), out)
    } else {
        let rt = Runtime::new(Some(&default_cache_dir()))?;
        let file = args.account.engine.component.as_deref();
        let (component, took) = load_engine(&rt, file)?;
        tracing::info!(?took, "engine component loaded");
        let (svc, out) = WasmService::start(
            &rt,
            &component,
            WasmConfig {
                storage_key: key,
                seed,
                insecure_test_kdf: args.account.engine.insecure_test_kdf,
                policy,
            },
            records,
        )
        .map_err(|e| match file {
            Some(f) => Error::Service(format!(
                "{e} ({} may be from another version: it must implement this host's wit/engine.wit)",
                f.display()
            )),
            None => e,
        })?;
        (Core::Wasm(Box::new(svc)), out)
    };
    // The restored engine's step, then the new account's, in that order.
    let mut first = vec![first];
    let mut login = None;
    if fresh {
        let recovering = args.words.0.is_some();
        let pw = args
            .account
            .password
            .get(args.login.is_none() || recovering)?;
        match args.login {
            Some(user) => login = Some((user, pw)),
            None => {
                voice.tell("creating a new account (this takes a moment)…");
                // Words only for a person at a terminal (or the setup
                // command's own output), never into a log: a service in
                // the background or under a service manager says how to
                // make them instead.
                use std::io::IsTerminal;
                let show = voice == Voice::Terminal
                    && (mode == Mode::SetupOnly || std::io::stderr().is_terminal());
                let (step, words) = core.create_account(&pw, show)?;
                first.push(step);
                match words {
                    Some(w) => account::show_words(w.as_str()),
                    None => voice.tell(
                        "this account has no recovery words yet: run `hypergolix recovery-words` \
                         to make them (they restore it if the password is lost)",
                    ),
                }
            }
        }
    } else if args.login.is_some() {
        tracing::warn!("--login ignored: this data directory already holds an account");
    }
    let upstream = match &settings.remote {
        None => {
            let store = RedbStore::open(&dir.join("server.redb"))
                .map_err(|e| Error::Service(e.to_string()))?;
            Upstream::Embedded(Node::new(store))
        }
        Some(_) => Upstream::Remote(None),
    };
    let embedded = matches!(upstream, Upstream::Embedded(_));
    let mut lp = EngineLoop {
        core,
        local,
        upstream,
        apps: HashMap::new(),
        dir,
        ready: None,
        voice,
        clock: std::time::Instant::now(),
    };
    // A login on a new device: apps are let in once the service says the
    // account's objects are read, so their first request does not see
    // `unknown object`.
    let logging_in = login.is_some();
    let (ready_tx, ready_rx) = std_mpsc::channel();
    if mode == Mode::SetupOnly || logging_in {
        lp.ready = Some(ready_tx);
    }
    for step in first {
        lp.apply(step)?;
    }
    if let Some((user, pw)) = login {
        // Starts once the server is up (the remote link is not yet).
        let out = match &args.words.0 {
            Some(words) => {
                voice.tell(&format!("recovering {user} with its recovery words…"));
                lp.core.open_recover(&user, words, &pw, lp.now())?
            }
            None => {
                voice.tell(&format!("logging in as {user}…"));
                lp.core.open_login(&user, &pw, lp.now())?
            }
        };
        lp.apply(out)?;
    }
    if embedded {
        let up = lp.core.handle(ServiceInput::ServerUp)?;
        lp.apply(up)?;
    }
    Ok(Opened {
        lp,
        ready_rx,
        logging_in,
    })
}

/// Runs the service in the foreground until SIGTERM or SIGINT
/// ([`Mode::Serve`]), or until the account is open ([`Mode::SetupOnly`]).
pub async fn run(args: StartArgs, mode: Mode) -> Result<()> {
    run_with(args, mode, Control::terminal()).await
}

/// [`run`], driven by `control`: where its lines go, when it stops, and who
/// is told once it listens (the embedding API, [`crate::embed`]). Returns
/// once the engine has stopped: every write acknowledged to an app is in
/// the store by then.
pub async fn run_with(args: StartArgs, mode: Mode, control: Control) -> Result<()> {
    let Control {
        voice,
        stop,
        started,
        embedded: in_program,
    } = control;
    let dir = args.account.dir.create()?;
    let settings = Settings::resolve(&args.account.net, &FileConfig::read(&dir)?)?;
    if let Some(p) = control::running(&dir)? {
        return Err(Error::Service(format!(
            "a service already runs on {} (pid {}, apps connect on {})",
            dir.display(),
            p.pid,
            settings::ipc_url(&p.ipc)
        )));
    }
    // Compiling the engine, reading the store and Argon2id block: off the
    // caller's runtime (an embedding program's tasks keep running).
    let creating = args.login.is_none();
    let opened = {
        let (dir, settings) = (dir.clone(), settings.clone());
        tokio::task::spawn_blocking(move || open_engine(args, mode, &settings, dir, voice))
            .await
            .map_err(|e| Error::Service(e.to_string()))??
    };
    let Opened {
        lp,
        ready_rx,
        logging_in,
    } = opened;

    let tls = match settings.remote {
        Some(_) => Some(crate::tls::client_config(settings.ca_file.as_deref())?),
        None => None,
    };
    let (tx, rx) = mpsc::channel::<Event>(EVENT_QUEUE);
    let mut engine = EngineThread::spawn(lp, rx)?;
    let _ticker = AbortOnDrop(tokio::spawn(ticker(tx.clone())));
    // The server link ends with this function, however it returns.
    let _remote = match (settings.remote.clone(), tls) {
        (Some(url), Some(tls)) => {
            Some(AbortOnDrop(tokio::spawn(remote_link(url, tls, tx.clone()))))
        }
        _ => None,
    };
    if mode == Mode::SetupOnly {
        // The engine thread reports Ready, or stops on a failed login.
        let got = tokio::task::spawn_blocking(move || wait_until_loaded(&ready_rx, voice))
            .await
            .map_err(|e| Error::Service(e.to_string()))?;
        // The engine's own reason first (a failed login), then the wait's.
        engine.stop(&tx).await?;
        got?;
        if settings.remote.is_some() && creating {
            voice.tell("the account is published to the server when the service next starts");
        }
        return Ok(());
    }

    if logging_in {
        let got = tokio::task::spawn_blocking(move || wait_until_loaded(&ready_rx, voice))
            .await
            .map_err(|e| Error::Service(e.to_string()))?;
        if let Err(e) = got {
            // The engine's own reason (a failed login) over the wait's.
            engine.join().await?;
            return Err(e);
        }
    }
    // Both ports before the pid file: a failure here stops the engine (its
    // stores close) and leaves no pid file behind.
    let ports = async {
        let listener = Listener::bind(settings.ipc.clone().in_dir(&dir)).await?;
        let metrics = match settings.metrics {
            Some(m) => Some(
                TcpListener::bind(m)
                    .await
                    .map_err(|e| Error::Service(format!("cannot serve metrics on {m}: {e}")))?,
            ),
            None => None,
        };
        Ok::<_, Error>((listener, metrics))
    };
    let (listener, metrics_listener) = match ports.await {
        Ok(p) => p,
        Err(e) => {
            let _ = engine.stop(&tx).await;
            return Err(e);
        }
    };
    let shown = listener.to_string();
    let pid_file = PidFile {
        pid: std::process::id(),
        ipc: shown.clone(),
        remote: settings.remote.clone(),
        started: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        start_ticks: control::start_ticks(std::process::id()),
        embedded: in_program,
    };
    if let Err(e) = pid_file.write(&dir) {
        let _ = engine.stop(&tx).await;
        listener.remove_socket_file();
        return Err(e);
    }
    // The health and metrics port: the IPC port's own-user check, then
    // GET /healthz and /metrics.
    let _metrics = match metrics_listener {
        Some(l) => {
            if let Ok(at) = l.local_addr() {
                voice.say(&format!("metrics on http://{at}/metrics"));
            }
            let events = tx.clone();
            let trust = settings.ipc_trust;
            Some(AbortOnDrop(tokio::spawn(crate::http::serve_http(
                l,
                true,
                move |local, peer| match peer::admit_tcp(trust, local, peer) {
                    Ok(()) => true,
                    Err(why) => {
                        tracing::warn!("metrics port: {why}");
                        false
                    }
                },
                move |path| {
                    let events = events.clone();
                    async move { answer_metrics(&events, &path).await }
                },
            ))))
        }
        None => None,
    };
    voice.say(&format!("listening on {shown}"));
    if let Some(tx) = started {
        let account = AccountFile::read(&dir)
            .ok()
            .and_then(|a| Some((a.user_id.parse().ok()?, a.identity.parse().ok()?)));
        let _ = tx.send(Started {
            ipc: shown.clone(),
            account,
        });
    }
    let limits = Limits {
        origins: settings.allow_origins.clone(),
        max_bytes: settings.max_message_bytes,
        per_second: settings.max_requests_per_second,
    };
    let trust = settings.ipc_trust;
    let mut next = 1u64;
    let mut stop = stop;
    let mut engine_died = false;
    // The app connections, closed when the service stops.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let conn = tokio::select! {
            r = listener.accept(trust) => r,
            why = &mut stop => {
                voice.tell(&format!("stopping ({why})"));
                break;
            }
            _ = &mut engine.ended => {
                engine_died = true;
                break;
            }
        };
        let session = next;
        next += 1;
        let tx = tx.clone();
        let limits = limits.clone();
        // Connections the peer check refused are dropped unread.
        match conn {
            Accepted::Tcp(sock) => {
                let _ = sock.set_nodelay(true);
                conns.spawn(async move {
                    if let Err(e) = app_connection(sock, true, session, tx, limits).await {
                        tracing::debug!(session, "app connection ended: {e}");
                    }
                });
            }
            Accepted::Unix(sock) => {
                conns.spawn(async move {
                    if let Err(e) = app_connection(sock, false, session, tx, limits).await {
                        tracing::debug!(session, "app connection ended: {e}");
                    }
                });
            }
        }
    }
    let ended = engine.stop(&tx).await;
    conns.shutdown().await;
    listener.remove_socket_file();
    PidFile::remove_own(&dir);
    match ended {
        Err(e) => Err(e),
        Ok(()) if engine_died => Err(Error::Service("the engine stopped".into())),
        Ok(()) => Ok(()),
    }
}

/// The IPC listener: loopback TCP or a Unix-domain socket.
enum Listener {
    Tcp(TcpListener, std::net::SocketAddr),
    Unix(tokio::net::UnixListener, PathBuf),
}

/// A connection the peer check let in.
enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

/// Longest Unix socket path (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

impl Listener {
    async fn bind(addr: IpcAddr) -> Result<Self> {
        match addr {
            IpcAddr::Tcp(a) => {
                let l = TcpListener::bind(a)
                    .await
                    .map_err(|e| Error::Service(format!("cannot listen on {a}: {e}")))?;
                let local = l.local_addr().map_err(|e| Error::Service(e.to_string()))?;
                Ok(Listener::Tcp(l, local))
            }
            IpcAddr::Unix(p) => {
                use std::os::unix::fs::{FileTypeExt, PermissionsExt};
                if p.as_os_str().len() > MAX_SOCKET_PATH {
                    return Err(Error::Service(format!(
                        "{}: a Unix socket path is at most {MAX_SOCKET_PATH} bytes",
                        p.display()
                    )));
                }
                // No service runs on this data directory (checked before),
                // so a socket left here is a crashed one's.
                match std::fs::symlink_metadata(&p) {
                    Ok(m) if m.file_type().is_socket() => {
                        if std::os::unix::net::UnixStream::connect(&p).is_ok() {
                            return Err(Error::Service(format!(
                                "{}: another service listens on this socket; refusing to take it over",
                                p.display()
                            )));
                        }
                        std::fs::remove_file(&p)
                            .map_err(|e| Error::Service(format!("{}: {e}", p.display())))?
                    }
                    Ok(_) => {
                        return Err(Error::Service(format!(
                            "{} exists and is not a socket; refusing to replace it",
                            p.display()
                        )))
                    }
                    Err(_) => {}
                }
                let l = tokio::net::UnixListener::bind(&p).map_err(|e| {
                    Error::Service(format!("cannot listen on {}: {e}", p.display()))
                })?;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| Error::Service(format!("{}: {e}", p.display())))?;
                Ok(Listener::Unix(l, p))
            }
        }
    }

    /// The next connection whose peer may drive the service (`trust`);
    /// others are logged and dropped before anything is read from them.
    async fn accept(&self, trust: IpcTrust) -> Accepted {
        loop {
            match self {
                Listener::Tcp(l, local) => match l.accept().await {
                    Ok((sock, peer)) => {
                        if !is_loopback(peer.ip()) {
                            continue;
                        }
                        match peer::admit_tcp(trust, *local, peer) {
                            Ok(()) => return Accepted::Tcp(sock),
                            Err(why) => tracing::warn!("{why}"),
                        }
                    }
                    Err(e) => accept_failed(e).await,
                },
                Listener::Unix(l, _) => match l.accept().await {
                    Ok((sock, _)) => {
                        let uid = sock.peer_cred().ok().map(|c| c.uid());
                        match peer::admit_unix(trust, uid) {
                            Ok(()) => return Accepted::Unix(sock),
                            Err(why) => tracing::warn!("{why}"),
                        }
                    }
                    Err(e) => accept_failed(e).await,
                },
            }
        }
    }

    /// Removes the socket file of a Unix listener (at shutdown).
    fn remove_socket_file(&self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listener::Tcp(_, a) => write!(f, "{a}"),
            Listener::Unix(_, p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// An accept that failed (out of file descriptors, say): logged, and a
/// short pause so the loop does not spin.
async fn accept_failed(e: std::io::Error) {
    tracing::warn!("accept: {e}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// `/healthz`: 200 while the engine answers; `/metrics`: apps, the server
/// link, pending work and objects still loading, in OpenMetrics text.
async fn answer_metrics(events: &mpsc::Sender<Event>, path: &str) -> crate::http::Answer {
    use crate::http::{OPENMETRICS, TEXT};
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;
    let stats = async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        events.send(Event::Stats(tx)).await.ok()?;
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .ok()?
            .ok()
    };
    match (path, stats.await) {
        ("/healthz", Some(_)) => ("200 OK", TEXT, "ok\n".into()),
        ("/metrics", Some(s)) => {
            let mut r = prometheus_client::registry::Registry::with_prefix("hypergolix_service");
            let gauge = |n: usize| {
                let g: Gauge = Gauge::default();
                g.set(i64::try_from(n).unwrap_or(i64::MAX));
                g
            };
            r.register("apps", "App connections open now", gauge(s.apps));
            r.register(
                "server_connected",
                "1 when the persistence server (or the embedded store) is reachable",
                gauge(usize::from(s.server_up)),
            );
            r.register(
                "pending_work",
                "Outbox entries and objects not yet on the server",
                gauge(s.pending),
            );
            r.register(
                "loading",
                "Objects of the account not read from the server yet",
                gauge(s.loading),
            );
            let locked: Counter = Counter::default();
            locked.inc_by(s.locked_frames);
            r.register(
                "unreadable_frames",
                "Verified frames no key this agent holds decrypts (a key rotation not \
                 learned yet, or access taken back by the owner)",
                locked,
            );
            let mut out = String::new();
            let _ = prometheus_client::encoding::text::encode(&mut out, &r);
            ("200 OK", OPENMETRICS, out)
        }
        ("/healthz" | "/metrics", None) => (
            "503 Service Unavailable",
            TEXT,
            "the engine does not answer\n".into(),
        ),
        _ => ("404 Not Found", TEXT, "not found\n".into()),
    }
}

/// Resolves on SIGTERM or SIGINT, with the signal's name.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // No signal handling: never resolve (kill -9 is safe anyway).
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Per-connection limits.
#[derive(Debug, Clone)]
struct Limits {
    /// Allowed web origins.
    origins: Vec<String>,
    /// Largest message.
    max_bytes: usize,
    /// Requests per second (0 = none); bursts of twice that pass.
    per_second: u32,
}

/// A token bucket: `rate` per second, holding at most `2 × rate`.
struct Bucket {
    rate: f64,
    tokens: f64,
    at: std::time::Instant,
}

impl Bucket {
    fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate),
            tokens: 2.0 * f64::from(rate),
            at: std::time::Instant::now(),
        }
    }

    /// Takes one token; false when empty (and always true with no limit).
    fn take(&mut self) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let now = std::time::Instant::now();
        let add = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + add).min(2.0 * self.rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Waits until the service lets apps in: the account is open and every
/// object it lists read, or the service's wait for them ended (it says so in
/// its log, and so does this). `Err` if the engine stopped first (a failed
/// login ends the engine loop with its reason).
fn wait_until_loaded(ready: &std_mpsc::Receiver<Progress>, voice: Voice) -> Result<()> {
    let stopped = || Error::Service("the engine stopped before the account was ready".into());
    let mut said = false;
    loop {
        match ready.recv().map_err(|_| stopped())? {
            Progress::Loading(left) => {
                if !said {
                    said = true;
                    voice.tell(&format!(
                        "reading the account's objects from the server ({left} to go)…"
                    ));
                }
            }
            Progress::Loaded { missing: 0 } => return Ok(()),
            Progress::Loaded { missing } => {
                voice.tell(&format!(
                    "{missing} of the account's objects are not on the server yet; going on without them (they are read when they arrive)"
                ));
                return Ok(());
            }
        }
    }
}

/// Wakes the engine thread every [`TICK`] so the service sees time pass
/// (it ignores a tick while it has no deadline).
async fn ticker(events: mpsc::Sender<Event>) {
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        // A full queue means the engine is busy: the next tick will do.
        if let Err(mpsc::error::TrySendError::Closed(_)) = events.try_send(Event::Tick) {
            return;
        }
    }
}

/// Keeps a connection to the remote server, reconnecting with exponential
/// backoff (0.1 s doubling to 10 s); the engine resends what is pending.
async fn remote_link(
    url: String,
    tls: std::sync::Arc<rustls::ClientConfig>,
    events: mpsc::Sender<Event>,
) {
    let mut wait = std::time::Duration::from_millis(100);
    loop {
        // Nagle off (small request/response messages); TLS for wss://.
        match crate::tls::connect(&url, Some(tls.clone())).await {
            Ok(ws) => {
                tracing::info!(%url, "connected to the persistence server");
                wait = std::time::Duration::from_millis(100);
                let (mut sink, mut stream) = ws.split();
                let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
                if events.send(Event::RemoteUp(tx)).await.is_err() {
                    return;
                }
                let writer = tokio::spawn(async move {
                    while let Some(b) = rx.recv().await {
                        if sink.send(Ws::Binary(b.into())).await.is_err() {
                            break;
                        }
                    }
                });
                while let Some(Ok(msg)) = stream.next().await {
                    if let Ws::Binary(b) = msg {
                        if events.send(Event::RemoteBytes(b.to_vec())).await.is_err() {
                            return;
                        }
                    }
                }
                writer.abort();
                tracing::warn!(%url, "lost the persistence server");
                if events.send(Event::RemoteDown).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(%url, "cannot reach the persistence server: {e}"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_secs(10));
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

/// Whether a `Host` header names this machine's loopback (`localhost`,
/// `127.x.y.z`, `[::1]`, with or without a port): a web page that reached
/// the port through DNS rebinding sends its own host name.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(is_loopback)
}

/// Serves one app connection (`tcp`: over loopback TCP, where the `Host`
/// header is checked too).
async fn app_connection<S>(
    sock: S,
    tcp: bool,
    session: u64,
    events: mpsc::Sender<Event>,
    limits: Limits,
) -> Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Limits {
        origins,
        max_bytes: max,
        per_second,
    } = limits;
    let mut bucket = Bucket::new(per_second);
    // The callback's signature is tungstenite's (its error is an HTTP response).
    let mut dialect = GhidDialect::Legacy;
    #[allow(clippy::result_large_err)]
    let check =
        |req: &Request, mut resp: Response| -> std::result::Result<Response, ErrorResponse> {
            if tcp {
                let host = req.headers().get("host").and_then(|h| h.to_str().ok());
                if !host.is_some_and(is_loopback_host) {
                    let mut r = ErrorResponse::new(Some(format!(
                        "host {} is not this machine's loopback",
                        host.unwrap_or("(none)")
                    )));
                    *r.status_mut() = StatusCode::FORBIDDEN;
                    return Err(r);
                }
            }
            // Every Origin header must be allowed (one that is not text is not).
            for o in req.headers().get_all("origin") {
                let text = o.to_str().unwrap_or("");
                if text.is_empty() || !origins.iter().any(|a| a == text) {
                    let mut r = ErrorResponse::new(Some(format!(
                        "origin {} is not allowed",
                        String::from_utf8_lossy(o.as_bytes())
                    )));
                    *r.status_mut() = StatusCode::FORBIDDEN;
                    return Err(r);
                }
            }
            let offered = req
                .headers()
                .get_all("sec-websocket-protocol")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','));
            dialect = GhidDialect::from_offered(offered);
            if dialect == GhidDialect::Native {
                resp.headers_mut().insert(
                    "sec-websocket-protocol",
                    HeaderValue::from_static(NATIVE_GHIDS_SUBPROTOCOL),
                );
            }
            Ok(resp)
        };
    let mut cfg = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    cfg.max_message_size = Some(max);
    cfg.max_frame_size = Some(max);
    let ws = tokio_tungstenite::accept_hdr_async_with_config(sock, check, Some(cfg))
        .await
        .map_err(|e| Error::Service(e.to_string()))?;
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<ToApp>(APP_QUEUE);
    events
        .send(Event::Opened(session, dialect, tx.clone()))
        .await
        .map_err(|_| Error::Service("the engine stopped".into()))?;
    let mut writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                ToApp::Bytes(b) => {
                    if sink.send(Ws::Binary(b.into())).await.is_err() {
                        break;
                    }
                }
                ToApp::Close(code, why) => {
                    // A close frame's reason is at most 123 bytes.
                    let mut reason = why;
                    while reason.len() > 123 {
                        reason.pop();
                    }
                    let frame = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    let _ = sink.send(Ws::Close(Some(frame))).await;
                    let _ = sink.close().await;
                    return;
                }
            }
        }
        // The engine let go of this connection without a reason: it fell
        // too far behind (or is already closed, and this is a no-op).
        let frame = CloseFrame {
            code: CloseCode::Policy,
            reason: "the app did not read its messages".into(),
        };
        let _ = sink.send(Ws::Close(Some(frame))).await;
        let _ = sink.close().await;
    });
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Ws::Binary(b)) => {
                // Answers to the service's pushes do not count.
                let answer = matches!(b.get(2..4), Some(b"AK" | b"NK"));
                let ev = if answer || bucket.take() {
                    Event::Bytes(session, b.to_vec())
                } else {
                    // The NK needs only the header: do not queue the body.
                    Event::OverLimit(session, b[..b.len().min(6)].to_vec())
                };
                if events.send(ev).await.is_err() {
                    break;
                }
            }
            Err(tokio_tungstenite::tungstenite::Error::Capacity(e)) => {
                // Too big to read, so too big to answer with NK (its token
                // is inside): close with 1009 and the reason.
                tracing::warn!(session, "closing an app connection: {e}");
                let _ = tx.try_send(ToApp::Close(
                    CloseCode::Size,
                    format!("{e} (limit {max} bytes)"),
                ));
                break;
            }
            Ok(Ws::Close(_)) | Err(_) => break,
            // Text frames are not part of the protocol; pings are answered by
            // tungstenite.
            Ok(_) => {}
        }
    }
    let _ = events.send(Event::Closed(session)).await;
    drop(tx);
    // Let a close frame go out; then stop writing either way.
    if tokio::time::timeout(std::time::Duration::from_secs(1), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    Ok(())
}
