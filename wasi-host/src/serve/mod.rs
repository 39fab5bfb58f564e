//! `hypergolix serve`: the persistence server. Runs core's persistence rules
//! natively over an embedded redb store and speaks the 0.1.0 remote protocol
//! over websockets.

pub mod config;
pub mod conn;
pub mod hub;
pub mod redb_store;

use std::sync::Arc;

use hypergolix_core::persist::{PersistBackend, Persister};
use tokio::net::TcpListener;

pub use config::{ServeArgs, ServeConfig};
use hub::Hub;

/// Runs the server until Ctrl-C or SIGTERM. Prints `listening on ADDR` on
/// stdout once ready (with port 0, the address shows the chosen port).
pub async fn run(cfg: ServeConfig) -> Result<(), String> {
    let store = redb_store::RedbStore::open(&cfg.store).map_err(|e| e.to_string())?;
    tracing::info!(store = %cfg.store.display(), "opened embedded store");
    serve_with(cfg, Arc::new(store)).await
}

/// Runs the server over any backend.
pub async fn serve_with<B: PersistBackend + 'static>(
    cfg: ServeConfig,
    backend: Arc<B>,
) -> Result<(), String> {
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let hub = Hub::start(backend, Persister::default(), cfg.batch);
    println!("listening on {addr}");
    tracing::info!(%addr, max_message_bytes = cfg.max_message_bytes, queue_len = cfg.queue_len, "hypergolix serve ready");
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(conn::serve_connection(stream, hub.clone(), cfg.max_message_bytes, cfg.queue_len));
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
