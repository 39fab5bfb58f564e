//! `hypergolix start`: the local service. The engine (the WASI component
//! under wasmtime by default, or natively with `--native-engine`) runs on one
//! thread that also owns the local store and, when no remote is configured,
//! an embedded persistence node; tokio serves the app IPC websockets. The
//! host only moves bytes and keeps storage durable: every protocol decision
//! is the engine's (`hypergolix_core::service`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use futures_util::{SinkExt, StreamExt};
use hypergolix_core::engine::{Engine, EngineConfig, KdfParams};
use hypergolix_core::golix::Ghid;
use hypergolix_core::persist::{Node, PersistBackend};
use hypergolix_core::service::{Output, Service, ServiceInput};
use hypergolix_core::wire::ipc::{GhidDialect, NATIVE_GHIDS_SUBPROTOCOL};
use hypergolix_core::wire::remote::Message;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::component::{default_component_path, WasmConfig, WasmService};
use crate::runtime::{default_cache_dir, Runtime};
use crate::serve::redb_store::RedbStore;

/// `hypergolix start` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    /// Where the service keeps its store, keys and the embedded server's data.
    #[arg(long, env = "HYPERGOLIX_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address for app connections. Only loopback addresses are accepted.
    #[arg(long, default_value = "127.0.0.1:7772", env = "HYPERGOLIX_IPC")]
    pub ipc: SocketAddr,
    /// Web page origins allowed to connect (by default, none: any request
    /// carrying an `Origin` header is refused, so web pages cannot drive the
    /// service; native apps send no `Origin`).
    #[arg(long = "allow-origin")]
    pub allow_origins: Vec<String>,
    /// Run the engine natively instead of inside wasmtime.
    #[arg(long)]
    pub native_engine: bool,
    /// The engine component (default: `$HYPERGOLIX_ENGINE_COMPONENT` or the build's output).
    #[arg(long)]
    pub component: Option<PathBuf>,
    /// Read the account password from this environment variable.
    #[arg(long, default_value = "HYPERGOLIX_PASSWORD")]
    pub password_env: String,
    /// Read the account password from this file instead.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Cheap Argon2id parameters. Tests only: never for a real account.
    #[arg(long, hide = true)]
    pub insecure_test_kdf: bool,
    /// Log in to an existing account (this user id) instead of creating one,
    /// when the data directory is new: a second device of the same agent.
    /// Needs the server that holds the account (`--remote`).
    #[arg(long, value_name = "USER_ID")]
    pub login: Option<Ghid>,
    /// A persistence server to sync with (`ws://HOST:PORT/`). Without one,
    /// an embedded store in the data directory plays that part.
    #[arg(long, env = "HYPERGOLIX_REMOTE")]
    pub remote: Option<String>,
    /// Largest app message, in bytes.
    #[arg(long, default_value_t = hypergolix_core::service::DEFAULT_MAX_APP_MESSAGE)]
    pub max_message_bytes: usize,
}

fn data_dir(args: &StartArgs) -> PathBuf {
    args.data_dir.clone().unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(".hypergolix")
    })
}

fn password(args: &StartArgs) -> Result<Vec<u8>, String> {
    if let Some(f) = &args.password_file {
        let p = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        return Ok(p.strip_suffix(b"\n").unwrap_or(&p).to_vec());
    }
    std::env::var(&args.password_env)
        .map(String::into_bytes)
        .map_err(|_| {
            format!(
                "no password: set ${} or pass --password-file (the password protects the account)",
                args.password_env
            )
        })
}

/// The storage key: 32 random bytes in `storage.key` (mode 0600), made on
/// first start.
fn storage_key(dir: &Path) -> Result<[u8; 32], String> {
    let path = dir.join("storage.key");
    if let Ok(b) = std::fs::read(&path) {
        return b
            .as_slice()
            .try_into()
            .map_err(|_| format!("{}: not a 32-byte key", path.display()));
    }
    let mut key = [0u8; 32];
    getrandom(&mut key)?;
    write_private(&path, &key)?;
    Ok(key)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
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
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// 32 bytes from the OS (through std's hasher seeds would be weak; read the
/// kernel's source directly).
fn getrandom(buf: &mut [u8]) -> Result<(), String> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| format!("cannot read the OS random source: {e}"))
}

/// The engine, wherever it runs.
enum Core {
    Native(Box<Service>),
    Wasm(Box<WasmService>),
}

impl Core {
    fn handle(&mut self, input: ServiceInput) -> Result<Vec<Output>, String> {
        match self {
            Core::Native(s) => Ok(s.handle(input)),
            Core::Wasm(s) => s.handle(input).map_err(|e| e.to_string()),
        }
    }
    fn login(&mut self, user: &Ghid, pw: &[u8]) -> Result<Vec<Output>, String> {
        match self {
            Core::Native(s) => s.login(*user, pw).map_err(|e| e.to_string()),
            Core::Wasm(s) => s.login(user, pw).map_err(|e| e.to_string()),
        }
    }

    fn create_account(&mut self, pw: &[u8]) -> Result<Vec<Output>, String> {
        match self {
            Core::Native(s) => s.create_account(pw).map_err(|e| e.to_string()),
            Core::Wasm(s) => s.create_account(pw).map_err(|e| e.to_string()),
        }
    }
}

/// What the IPC tasks tell the engine thread.
enum Event {
    Opened(u64, GhidDialect, mpsc::UnboundedSender<Option<Vec<u8>>>),
    Bytes(u64, Vec<u8>),
    Closed(u64),
    /// The remote connection is up; send to it through this.
    RemoteUp(mpsc::UnboundedSender<Vec<u8>>),
    RemoteBytes(Vec<u8>),
    RemoteDown,
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
    local: RedbStore,
    upstream: Upstream,
    apps: HashMap<u64, mpsc::UnboundedSender<Option<Vec<u8>>>>,
    /// A login to start once the server is reachable.
    login: Option<(Ghid, zeroize::Zeroizing<Vec<u8>>)>,
}

impl EngineLoop {
    /// Carries out outputs in order; server traffic goes to the embedded
    /// node, whose answers are fed back until nothing is left.
    fn apply(&mut self, out: Vec<Output>) -> Result<(), String> {
        let mut pending = std::collections::VecDeque::from(out);
        while let Some(o) = pending.pop_front() {
            match o {
                Output::Store(ws) => {
                    // Durable before anything after it is carried out.
                    self.local
                        .transact(&mut |txn| {
                            for (k, v) in &ws {
                                match v {
                                    Some(v) => txn.put(k, v)?,
                                    None => txn.delete(k)?,
                                }
                            }
                            Ok(())
                        })
                        .map_err(|e| format!("local store: {e}"))?;
                }
                Output::ToServer(b) => match &mut self.upstream {
                    Upstream::Embedded(node) => {
                        let Ok(m) = Message::decode(&b) else { continue };
                        for (_, reply) in node.handle(1, m) {
                            let more = self
                                .core
                                .handle(ServiceInput::ServerBytes(reply.encode()))?;
                            pending.extend(more);
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
                        let _ = tx.send(Some(b));
                    }
                }
                Output::CloseApp(s, why) => {
                    tracing::warn!(session = s, %why, "closing an app connection");
                    if let Some(tx) = self.apps.remove(&s) {
                        let _ = tx.send(None);
                    }
                }
                Output::Ready { user_id, identity } => {
                    say(&format!("user id: {user_id}\nidentity: {identity}"));
                }
                Output::LoginFailed(e) => {
                    tell(&format!("hypergolix start: login failed: {e}"));
                    std::process::exit(1);
                }
                Output::Log(l) => tracing::info!("{l}"),
            }
        }
        Ok(())
    }

    /// Starts the pending login (the server is up).
    fn start_login(&mut self) -> Result<(), String> {
        let Some((user, pw)) = self.login.take() else {
            return Ok(());
        };
        tell(&format!("logging in as {user}…"));
        let out = self.core.login(&user, &pw)?;
        self.apply(out)
    }

    fn run(mut self, events: std_mpsc::Receiver<Event>) {
        while let Ok(ev) = events.recv() {
            let input = match ev {
                Event::Opened(s, dialect, tx) => {
                    self.apps.insert(s, tx);
                    ServiceInput::AppOpened(s, dialect)
                }
                Event::Bytes(s, b) => ServiceInput::AppBytes(s, b),
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
            let up = matches!(input, ServiceInput::ServerUp);
            let mut res = self.core.handle(input).and_then(|out| self.apply(out));
            if up && res.is_ok() {
                res = self.start_login();
            }
            if let Err(e) = res {
                // The store failed: stop rather than acknowledge what is not durable.
                tracing::error!("{e}; stopping");
                std::process::exit(2);
            }
        }
    }
}

/// Every record of a store.
type Records = Vec<(Vec<u8>, Vec<u8>)>;

fn read_all(store: &RedbStore) -> Result<Records, String> {
    store
        .read(&mut |txn| txn.scan_prefix(&[], usize::MAX))
        .map_err(|e| format!("local store: {e}"))
}

/// Runs the service until the process is stopped.
pub async fn run(args: StartArgs) -> Result<(), String> {
    if !args.ipc.ip().is_loopback() {
        return Err(format!(
            "refusing to listen on {}: the IPC port is for this machine only (use 127.0.0.1 or ::1)",
            args.ipc
        ));
    }
    let dir = data_dir(&args);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let key = storage_key(&dir)?;
    let local = RedbStore::open(&dir.join("local.redb")).map_err(|e| e.to_string())?;
    let records = read_all(&local)?;
    let fresh = records.is_empty();
    let mut seed = [0u8; 32];
    getrandom(&mut seed)?;
    let (mut core, first) = if args.native_engine {
        let mut cfg = EngineConfig::new(key);
        if args.insecure_test_kdf {
            cfg.kdf = KdfParams::INSECURE_TEST;
        }
        let (engine, actions) = Engine::restore(cfg, seed, records).map_err(|e| e.to_string())?;
        let mut svc = Service::new(engine);
        svc.set_max_app_message(args.max_message_bytes);
        let out = svc.adopt_actions(actions);
        (Core::Native(Box::new(svc)), out)
    } else {
        let rt = Runtime::new(Some(&default_cache_dir())).map_err(|e| e.to_string())?;
        let path = args
            .component
            .clone()
            .unwrap_or_else(default_component_path);
        let (component, took) = rt.load(&path).map_err(|e| {
            format!(
                "{e} (build it with `cargo build --release -p hypergolix-engine-component --target wasm32-wasip2`, or use --native-engine)"
            )
        })?;
        tracing::info!(?took, "engine component loaded");
        let (svc, out) = WasmService::start(
            &rt,
            &component,
            WasmConfig {
                storage_key: key,
                seed,
                insecure_test_kdf: args.insecure_test_kdf,
            },
            records,
        )
        .map_err(|e| e.to_string())?;
        (Core::Wasm(Box::new(svc)), out)
    };
    let mut first = first;
    let mut login = None;
    if fresh {
        let pw = password(&args)?;
        match args.login {
            Some(user) => login = Some((user, zeroize::Zeroizing::new(pw))),
            None => {
                tell("creating a new account (this takes a moment)…");
                first.extend(core.create_account(&pw)?);
            }
        }
    } else if args.login.is_some() {
        tracing::warn!("--login ignored: this data directory already holds an account");
    }
    let upstream = match &args.remote {
        None => {
            let store = RedbStore::open(&dir.join("server.redb")).map_err(|e| e.to_string())?;
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
        login,
    };
    lp.apply(first)?;
    if embedded {
        let up = lp.core.handle(ServiceInput::ServerUp)?;
        lp.apply(up)?;
        lp.start_login()?;
    }

    let listener = TcpListener::bind(args.ipc)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.ipc))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = std_mpsc::channel::<Event>();
    std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || lp.run(rx))
        .map_err(|e| e.to_string())?;
    if let Some(url) = args.remote.clone() {
        tokio::spawn(remote_link(url, tx.clone()));
    }
    say(&format!("listening on {addr}"));
    let mut next = 1u64;
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept: {e}");
                continue;
            }
        };
        if !is_loopback(peer.ip()) {
            continue;
        }
        let _ = sock.set_nodelay(true);
        let session = next;
        next += 1;
        let tx = tx.clone();
        let origins = args.allow_origins.clone();
        let max = args.max_message_bytes;
        tokio::spawn(async move {
            if let Err(e) = app_connection(sock, session, tx, origins, max).await {
                tracing::debug!(session, "app connection ended: {e}");
            }
        });
    }
}

/// A line on stdout for whoever started the service. Never panics: a
/// closed stdout (a supervisor that went away) must not stop the service.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// A line on stderr for the person running the service; never panics.
fn tell(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Keeps a connection to the remote server, reconnecting with exponential
/// backoff (0.1 s doubling to 10 s); the engine resends what is pending.
async fn remote_link(url: String, events: std_mpsc::Sender<Event>) {
    let mut wait = std::time::Duration::from_millis(100);
    loop {
        // Small request/response messages: Nagle's algorithm would hold them
        // back ~40 ms waiting for delayed ACKs.
        match tokio_tungstenite::connect_async_with_config(url.as_str(), None, true).await {
            Ok((ws, _)) => {
                tracing::info!(%url, "connected to the persistence server");
                wait = std::time::Duration::from_millis(100);
                let (mut sink, mut stream) = ws.split();
                let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
                if events.send(Event::RemoteUp(tx)).is_err() {
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
                        if events.send(Event::RemoteBytes(b.to_vec())).is_err() {
                            return;
                        }
                    }
                }
                writer.abort();
                tracing::warn!(%url, "lost the persistence server");
                if events.send(Event::RemoteDown).is_err() {
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

async fn app_connection(
    sock: tokio::net::TcpStream,
    session: u64,
    events: std_mpsc::Sender<Event>,
    origins: Vec<String>,
    max: usize,
) -> Result<(), String> {
    // The callback's signature is tungstenite's (its error is an HTTP response).
    let mut dialect = GhidDialect::Legacy;
    #[allow(clippy::result_large_err)]
    let check = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if let Some(o) = req.headers().get("origin").and_then(|o| o.to_str().ok()) {
            if !origins.iter().any(|a| a == o) {
                let mut r = ErrorResponse::new(Some(format!("origin {o} is not allowed")));
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
        .map_err(|e| e.to_string())?;
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
    events
        .send(Event::Opened(session, dialect, tx))
        .map_err(|_| "the engine stopped".to_string())?;
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                Some(b) => {
                    if sink.send(Ws::Binary(b.into())).await.is_err() {
                        break;
                    }
                }
                None => {
                    let _ = sink.close().await;
                    break;
                }
            }
        }
    });
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Ws::Binary(b)) => {
                if events.send(Event::Bytes(session, b.to_vec())).is_err() {
                    break;
                }
            }
            Ok(Ws::Close(_)) | Err(_) => break,
            // Text frames are not part of the protocol; pings are answered by
            // tungstenite.
            Ok(_) => {}
        }
    }
    let _ = events.send(Event::Closed(session));
    writer.abort();
    Ok(())
}
