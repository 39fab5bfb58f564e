//! Hypergolix inside another tokio program (an edge gateway): a local
//! service for the program's apps and/or a persistence server, started
//! with a builder, stopped with a handle. Nothing here takes over stdout,
//! stderr or signals: what the commands print goes to `tracing` events, and
//! the program decides when to stop.
//!
//! ```no_run
//! # async fn gateway() -> Result<(), hypergolix_wasi_host::Error> {
//! use hypergolix_wasi_host::embed::{ServerBuilder, ServiceBuilder};
//!
//! let server = ServerBuilder::new("/var/lib/gateway/server.redb").start().await?;
//! let service = ServiceBuilder::new("/var/lib/gateway/agent")
//!     .remote(server.url())
//!     .password(b"from the gateway's secret store".to_vec())
//!     .start()
//!     .await?;
//! // Apps (or the Rust link, in this process) connect to service.ipc().
//! let link = hypergolix_link::HypergolixLink::connect(service.ipc()).await;
//! # drop(link);
//! service.shutdown().await?; // after its last acknowledged write is stored
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Both run on the caller's tokio runtime (a multi-threaded one: the local
//! service's engine has a thread of its own beside it). Each `shutdown`
//! returns once the part has stopped: every write it acknowledged is in its
//! store, and the store is closed (the same data directory or store file
//! can be opened again at once).

use std::net::SocketAddr;
use std::path::PathBuf;

use hypergolix_core::golix::Ghid;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::local::settings::{DirArgs, GivenPassword, IpcAddr, NetArgs, PasswordArgs};
use crate::local::{self, AccountArgs, Control, EngineArgs, Mode, StartArgs, Voice};
use crate::serve::{self, Lifecycle, ServeArgs, ServeConfig};

fn failed(what: &str, why: impl std::fmt::Display) -> Error {
    Error::Embed(format!("{what}: {why}"))
}

/// The task of a part (`what`) that is running.
type Task = tokio::task::JoinHandle<Result<()>>;

/// How a part's task ended, as this module's result.
async fn finished(what: &str, task: Task) -> Result<()> {
    match task.await {
        Ok(r) => r.map_err(|e| failed(what, e)),
        Err(e) => Err(failed(what, e)),
    }
}

/// Why a part's task ended before it was up.
async fn ended_early(what: &str, task: Task) -> Error {
    match finished(what, task).await {
        Err(e) => e,
        Ok(()) => failed(what, "stopped before it listened"),
    }
}

/// Builds a persistence server ([`crate::serve`]) on an embedded store.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    args: ServeArgs,
}

impl ServerBuilder {
    /// A server on the redb store file `store`, listening on a free
    /// loopback port.
    pub fn new(store: impl Into<PathBuf>) -> Self {
        Self {
            args: ServeArgs {
                store: Some(store.into()),
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                ..ServeArgs::default()
            },
        }
    }

    /// Listens on `addr` instead.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.args.listen = Some(addr);
        self
    }

    /// Uses PostgreSQL at `url` instead of the store file.
    pub fn postgres(mut self, url: impl Into<String>) -> Self {
        self.args.postgres = Some(url.into());
        self
    }

    /// Serves `wss://` with this certificate chain and key (PEM files).
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.args.tls_cert = Some(cert.into());
        self.args.tls_key = Some(key.into());
        self
    }

    /// Serves `/healthz` and `/metrics` on this loopback address.
    pub fn metrics(mut self, addr: SocketAddr) -> Self {
        self.args.metrics = Some(addr);
        self
    }

    /// Starts it; resolves once it listens.
    pub async fn start(self) -> Result<Server> {
        let cfg = ServeConfig::resolve(&self.args).map_err(|e| failed("server", e))?;
        let tls = cfg.tls.is_some();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let life = Lifecycle {
            stop: Box::pin(async move {
                let _ = stop_rx.await;
            }),
            ready: Box::new(move |addr, metrics| {
                let _ = ready_tx.send((addr, metrics));
            }),
        };
        let task = tokio::spawn(serve::run_with(cfg, life));
        match ready_rx.await {
            Ok((addr, metrics)) => Ok(Server {
                addr,
                metrics,
                tls,
                stop: stop_tx,
                task,
            }),
            // It ended before listening: say why.
            Err(_) => Err(ended_early("server", task).await),
        }
    }
}

/// A running persistence server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
    tls: bool,
    stop: oneshot::Sender<()>,
    task: Task,
}

impl Server {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its URL for a local service's `remote` (`ws://` or, with TLS,
    /// `wss://localhost:PORT/`).
    pub fn url(&self) -> String {
        if self.tls {
            format!("wss://localhost:{}/", self.addr.port())
        } else {
            format!("ws://{}/", self.addr)
        }
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// Stops it: connections close, the last batch is committed, the store
    /// is closed.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(());
        finished("server", self.task).await
    }
}

/// Builds a local service ([`crate::local`]) on a data directory.
pub struct ServiceBuilder {
    args: StartArgs,
    password: Option<Zeroizing<Vec<u8>>>,
}

impl ServiceBuilder {
    /// A service on the data directory `dir` (created, mode 0700, if
    /// missing), its engine in wasmtime, listening for apps on a free
    /// loopback port, with an embedded persistence store unless
    /// [`ServiceBuilder::remote`] is set.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            args: StartArgs {
                account: AccountArgs {
                    dir: DirArgs {
                        data_dir: Some(dir.into()),
                    },
                    net: NetArgs {
                        ipc: Some(IpcAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 0)))),
                        ..NetArgs::default()
                    },
                    password: PasswordArgs {
                        // Never read from the environment: only what
                        // `password` gives.
                        password_env: String::new(),
                        password_file: None,
                        password_stdin: false,
                        given: GivenPassword::default(),
                        given_only: true,
                    },
                    engine: EngineArgs {
                        native_engine: false,
                        component: None,
                        insecure_test_kdf: false,
                    },
                },
                login: None,
                words: Default::default(),
                background: false,
            },
            password: None,
        }
    }

    /// Where apps connect: a loopback address, or a Unix socket.
    pub fn ipc(mut self, addr: IpcAddr) -> Self {
        self.args.account.net.ipc = Some(addr);
        self
    }

    /// Syncs through the persistence server at `url` (`ws://` or `wss://`).
    pub fn remote(mut self, url: impl Into<String>) -> Self {
        self.args.account.net.remote = Some(url.into());
        self
    }

    /// Trusts the CA certificates of this PEM file for `wss://`.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.args.account.net.ca_file = Some(path.into());
        self
    }

    /// The account password, needed when the data directory is new (to
    /// create the account, or to log in with [`ServiceBuilder::login`]).
    pub fn password(mut self, password: Vec<u8>) -> Self {
        self.password = Some(Zeroizing::new(password));
        self
    }

    /// On a new data directory, logs in to this existing account (a new
    /// device) instead of creating one; needs [`ServiceBuilder::remote`].
    pub fn login(mut self, user_id: Ghid) -> Self {
        self.args.login = Some(user_id);
        self
    }

    /// Runs the engine natively instead of in wasmtime.
    pub fn native_engine(mut self, native: bool) -> Self {
        self.args.account.engine.native_engine = native;
        self
    }

    /// Cheap Argon2id parameters: tests only, never a real account.
    pub fn insecure_test_kdf(mut self) -> Self {
        self.args.account.engine.insecure_test_kdf = true;
        self
    }

    /// Starts it; resolves once apps can connect (for a new device, once
    /// the account's objects are read).
    pub async fn start(self) -> Result<Service> {
        let mut args = self.args;
        args.account.password.given = GivenPassword(self.password);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (started_tx, started_rx) = oneshot::channel();
        let control = Control {
            voice: Voice::Log,
            stop: Box::pin(async move {
                let _ = stop_rx.await;
                "the embedding program asked".to_string()
            }),
            started: Some(started_tx),
            embedded: true,
        };
        let task = tokio::spawn(local::run_with(args, Mode::Serve, control));
        match started_rx.await {
            Ok(s) => Ok(Service {
                started: s,
                stop: stop_tx,
                task,
            }),
            Err(_) => Err(ended_early("service", task).await),
        }
    }
}

/// A running local service.
#[derive(Debug)]
pub struct Service {
    started: local::Started,
    stop: oneshot::Sender<()>,
    task: Task,
}

impl Service {
    /// What a link connects to: `127.0.0.1:PORT`, or `unix:PATH`.
    pub fn ipc(&self) -> &str {
        &self.started.ipc
    }

    /// The account's user id (what another device logs in with).
    pub fn user_id(&self) -> Option<Ghid> {
        self.started.account.map(|(u, _)| u)
    }

    /// The account's identity (what others share with).
    pub fn identity(&self) -> Option<Ghid> {
        self.started.account.map(|(_, i)| i)
    }

    /// Stops it; returns once the engine has stopped, after its last
    /// acknowledged write is in the store.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(());
        finished("service", self.task).await
    }
}
