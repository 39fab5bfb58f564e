//! `hypergolix serve`: the persistence server. Runs core's persistence rules
//! natively over an embedded redb store and speaks the 0.1.0 remote protocol
//! over websockets.

pub mod config;
pub mod conn;
pub mod hub;
pub mod metrics;
pub mod pg_store;
pub mod redb_store;
pub mod relay;
pub mod www;

use std::sync::Arc;

use hypergolix_core::persist::{PersistBackend, Persister};
use tokio::net::TcpListener;

pub use config::{ServeArgs, ServeConfig};
use hub::Hub;

use crate::error::{Error, Result};

/// Where a server is told it listens: its websocket address and, with
/// `--metrics`, the metrics address.
pub type OnReady = Box<dyn FnOnce(std::net::SocketAddr, Option<std::net::SocketAddr>) + Send>;

/// How a server is driven: when it stops, and who learns where it listens.
pub struct Lifecycle {
    /// Resolves when the server must stop.
    pub stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    /// Called once it listens.
    pub ready: OnReady,
}

impl Lifecycle {
    /// The command's: Ctrl-C or SIGTERM, and `listening on ADDR` (then
    /// `metrics on http://ADDR/metrics`) on stdout.
    pub fn terminal() -> Self {
        Self {
            stop: Box::pin(shutdown_signal()),
            ready: Box::new(|addr, metrics| {
                println!("listening on {addr}");
                if let Some(at) = metrics {
                    println!("metrics on http://{at}/metrics");
                }
            }),
        }
    }
}

/// Runs the server until Ctrl-C or SIGTERM. Prints `listening on ADDR` on
/// stdout once ready (with port 0, the address shows the chosen port).
pub async fn run(cfg: ServeConfig) -> Result<()> {
    run_with(cfg, Lifecycle::terminal()).await
}

/// [`run`], driven by `life` (the embedding API, [`crate::embed`]).
/// Returns once connections are closed and the last batch is committed;
/// every acknowledged publish is durable by then (a publish is
/// acknowledged only after its commit).
pub async fn run_with(cfg: ServeConfig, life: Lifecycle) -> Result<()> {
    if let Some(url) = cfg.postgres.clone() {
        let node = format!("{}-{}", std::process::id(), cfg.listen);
        let store = std::thread::spawn(move || pg_store::PgStore::connect(&url, &node))
            .join()
            .map_err(|_| Error::Serve("PostgreSQL connection thread panicked".into()))?
            .map_err(|e| Error::Serve(e.to_string()))?;
        tracing::info!("connected to PostgreSQL");
        // The relay task holds the only strong reference: once the server
        // drops it, the listener sees it gone and ends.
        let nudges = Arc::new(relay::Nudges::new(RELAY_BOUND));
        let (on_nudge, on_lost, alive) = (
            Arc::downgrade(&nudges),
            Arc::downgrade(&nudges),
            Arc::downgrade(&nudges),
        );
        store
            .listen(
                move |sub, obj| {
                    if let Some(n) = on_nudge.upgrade() {
                        n.nudge(sub, obj);
                    }
                },
                move || {
                    if let Some(n) = on_lost.upgrade() {
                        n.lost();
                    }
                },
                move || alive.strong_count() > 0,
            )
            .map_err(|e| Error::Serve(e.to_string()))?;
        return serve_with(cfg, Arc::new(store), Some(nudges), life).await;
    }
    let store = redb_store::RedbStore::open(&cfg.store).map_err(|e| Error::Serve(e.to_string()))?;
    tracing::info!(store = %cfg.store.display(), "opened embedded store");
    serve_with(cfg, Arc::new(store), None, life).await
}

/// How long a client has to finish its TLS handshake.
const TLS_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

/// Most distinct nudges waiting for the relay; past that the node catches
/// up from the store instead (see [`relay`]).
const RELAY_BOUND: usize = 65_536;

/// Runs the server over any backend; `nudges` carries other nodes' commits.
pub async fn serve_with<B: PersistBackend + 'static>(
    cfg: ServeConfig,
    backend: Arc<B>,
    nudges: Option<Arc<relay::Nudges>>,
    life: Lifecycle,
) -> Result<()> {
    let tls = match &cfg.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
            cert, key,
        )?)),
        None => None,
    };
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| Error::Serve(format!("cannot listen on {}: {e}", cfg.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Serve(e.to_string()))?;
    let (hub, writer) = Hub::start(
        backend,
        Persister::default(),
        cfg.batch,
        Arc::new(metrics::Metrics::new()),
    );
    // Every task that holds the hub, so that stopping releases the store.
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(rx) = nudges {
        tasks.spawn(hub.clone().relay(rx));
    }
    let metrics_at = match cfg.metrics {
        Some(m) => {
            let l = TcpListener::bind(m)
                .await
                .map_err(|e| Error::Serve(format!("cannot serve metrics on {m}: {e}")))?;
            let at = l.local_addr().map_err(|e| Error::Serve(e.to_string()))?;
            let h = hub.clone();
            // Loopback only (checked in the config); any local user.
            tasks.spawn(crate::http::serve_http(
                l,
                false,
                |_, _| true,
                move |path| {
                    let h = h.clone();
                    async move { answer_metrics(&h, &path).await }
                },
            ));
            Some(at)
        }
        None => None,
    };
    let www = cfg.www.clone().map(Arc::new);
    if let Some(w) = &www {
        tracing::info!(dir = %w.display(), "serving the web app");
    }
    (life.ready)(addr, metrics_at);
    tracing::info!(%addr, tls = tls.is_some(), max_message_bytes = cfg.max_message_bytes, queue_len = cfg.queue_len, "hypergolix serve ready");
    let mut shutdown = life.stop;
    loop {
        // Reap finished connection tasks as we go.
        while tasks.try_join_next().is_some() {}
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (hub, max, queue) = (hub.clone(), cfg.max_message_bytes, cfg.queue_len);
                    let www = www.clone();
                    match &tls {
                        None => {
                            match www {
                                Some(w) => tasks.spawn(www::route(stream, Some(peer), w, hub, max, queue)),
                                None => tasks.spawn(conn::serve_connection(stream, Some(peer), hub, max, queue)),
                            };
                        }
                        Some(acceptor) => {
                            let acceptor = acceptor.clone();
                            tasks.spawn(async move {
                                // A peer that never finishes its handshake
                                // does not hold a task for ever.
                                match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
                                    Ok(Ok(s)) => match www {
                                        Some(w) => www::route(s, Some(peer), w, hub, max, queue).await,
                                        None => conn::serve_connection(s, Some(peer), hub, max, queue).await,
                                    },
                                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                                }
                            });
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                break;
            }
        }
    }
    // Connections go first (a publish not yet acknowledged is not
    // promised), then the writer finishes the batch it holds and ends once
    // the hub is gone; the store closes with the last reference.
    tasks.shutdown().await;
    drop(hub);
    let _ = writer.await;
    Ok(())
}

/// `/healthz`: 200 when the store answers a read; `/metrics`: every metric.
async fn answer_metrics<B: PersistBackend + 'static>(
    hub: &Hub<B>,
    path: &str,
) -> crate::http::Answer {
    use crate::http::{OPENMETRICS, TEXT};
    match path {
        "/healthz" => match hub.healthy().await {
            Ok(()) => ("200 OK", TEXT, "ok\n".into()),
            Err(e) => ("503 Service Unavailable", TEXT, format!("store: {e}\n")),
        },
        "/metrics" => ("200 OK", OPENMETRICS, hub.metrics.render()),
        _ => ("404 Not Found", TEXT, "not found\n".into()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
