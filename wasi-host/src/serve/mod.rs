//! `hypergolix serve`: the persistence server. Runs core's persistence rules
//! natively over an embedded redb store and speaks the 0.1.0 remote protocol
//! over websockets.

pub mod config;
pub mod conn;
pub mod hub;
pub mod pg_store;
pub mod redb_store;

use std::sync::Arc;

use hypergolix_core::persist::{PersistBackend, Persister};
use tokio::net::TcpListener;

pub use config::{ServeArgs, ServeConfig};
use hub::Hub;

/// Runs the server until Ctrl-C or SIGTERM. Prints `listening on ADDR` on
/// stdout once ready (with port 0, the address shows the chosen port).
pub async fn run(cfg: ServeConfig) -> Result<(), String> {
    if let Some(url) = cfg.postgres.clone() {
        let node = format!("{}-{}", std::process::id(), cfg.listen);
        let store = std::thread::spawn(move || pg_store::PgStore::connect(&url, &node))
            .join()
            .map_err(|_| "PostgreSQL connection thread panicked".to_string())?
            .map_err(|e| e.to_string())?;
        tracing::info!("connected to PostgreSQL");
        let (tx, rx) = tokio::sync::mpsc::channel(65_536);
        store
            .listen(move |sub, obj| {
                if tx.try_send((sub, obj)).is_err() {
                    tracing::warn!("relay queue full; dropping a nudge");
                }
            })
            .map_err(|e| e.to_string())?;
        return serve_with(cfg, Arc::new(store), Some(rx)).await;
    }
    let store = redb_store::RedbStore::open(&cfg.store).map_err(|e| e.to_string())?;
    tracing::info!(store = %cfg.store.display(), "opened embedded store");
    serve_with(cfg, Arc::new(store), None).await
}

/// How long a client has to finish its TLS handshake.
const TLS_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

/// A relay of other nodes' commits: `(subscription, object GHID)`.
pub type Nudges =
    tokio::sync::mpsc::Receiver<(hypergolix_core::golix::Ghid, hypergolix_core::golix::Ghid)>;

/// Runs the server over any backend; `nudges` carries other nodes' commits.
pub async fn serve_with<B: PersistBackend + 'static>(
    cfg: ServeConfig,
    backend: Arc<B>,
    nudges: Option<Nudges>,
) -> Result<(), String> {
    let tls = match &cfg.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(
            crate::tls::server_config(cert, key).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let hub = Hub::start(backend, Persister::default(), cfg.batch);
    if let Some(rx) = nudges {
        tokio::spawn(hub.clone().relay(rx));
    }
    println!("listening on {addr}");
    tracing::info!(%addr, tls = tls.is_some(), max_message_bytes = cfg.max_message_bytes, queue_len = cfg.queue_len, "hypergolix serve ready");
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (hub, max, queue) = (hub.clone(), cfg.max_message_bytes, cfg.queue_len);
                    match &tls {
                        None => {
                            tokio::spawn(conn::serve_connection(stream, Some(peer), hub, max, queue));
                        }
                        Some(acceptor) => {
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                // A peer that never finishes its handshake
                                // does not hold a task for ever.
                                match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
                                    Ok(Ok(s)) => conn::serve_connection(s, Some(peer), hub, max, queue).await,
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
                return Ok(());
            }
        }
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
