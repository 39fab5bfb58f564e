//! One websocket connection speaking the remote protocol.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hypergolix_core::persist::dispatch::{publish_answer, route_bytes};
use hypergolix_core::persist::subs::subscribe_answer;
use hypergolix_core::persist::{Applied, PersistBackend, Route};
use hypergolix_core::wire::remote::{Message, Request};
use hypergolix_core::Error;
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as Ws;

use super::hub::{ConnHandle, Hub, Pushed};

/// Serves one connection (TCP, or TLS over TCP) from `peer` until it closes.
pub async fn serve_connection<B, S>(
    stream: S,
    peer: Option<std::net::SocketAddr>,
    hub: Arc<Hub<B>>,
    max_message_bytes: usize,
    queue_len: usize,
) where
    B: PersistBackend + 'static,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(max_message_bytes);
    config.max_frame_size = Some(max_message_bytes);
    // A small read buffer (the default, 128 KiB, is allocated up front): idle
    // subscribed connections must be cheap. Larger messages still arrive whole.
    // The write buffer grows only while messages are queued between flushes.
    config.read_buffer_size = 8192;
    let ws = match tokio_tungstenite::accept_async_with_config(stream, Some(config)).await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(?peer, error = %e, "websocket handshake failed");
            return;
        }
    };
    let _live = hub.metrics.connection();
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(queue_len);
    let conn = ConnHandle {
        id: hub.connection_id(),
        tx,
        kill: Arc::new(Notify::new()),
        tokens: Arc::new(AtomicU64::new(1)),
    };
    tracing::debug!(conn = conn.id, ?peer, "connected");
    let (close_tx, mut close_rx) = mpsc::channel::<CloseFrame>(1);
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(bytes) => {
                        // Write everything already queued, then flush once.
                        if sink.feed(Ws::Binary(bytes.into())).await.is_err() { break }
                        let mut failed = false;
                        while let Ok(more) = rx.try_recv() {
                            if sink.feed(Ws::Binary(more.into())).await.is_err() { failed = true; break }
                        }
                        if failed || sink.flush().await.is_err() { break }
                    }
                    None => break,
                },
                Some(frame) = close_rx.recv() => {
                    // Flush what is queued, then close.
                    while let Ok(bytes) = rx.try_recv() {
                        if sink.feed(Ws::Binary(bytes.into())).await.is_err() { break }
                    }
                    let _ = sink.send(Ws::Close(Some(frame))).await;
                    break;
                }
            }
        }
        let _ = sink.close().await;
    });

    hub.join(&conn);
    let close = |code: CloseCode, reason: &str| CloseFrame {
        code,
        reason: reason.to_string().into(),
    };
    let mut close_with: Option<CloseFrame> = None;
    let mut last_publish: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let msg = tokio::select! {
            m = source.next() => m,
            _ = conn.kill.notified() => {
                close_with = Some(close(CloseCode::Again, "outbound queue full"));
                break;
            }
        };
        let bytes = match msg {
            None | Some(Ok(Ws::Close(_))) => break,
            Some(Ok(Ws::Binary(b))) => b,
            Some(Ok(Ws::Text(_))) => {
                close_with = Some(close(CloseCode::Unsupported, "binary messages only"));
                break;
            }
            Some(Ok(_)) => continue, // ping/pong are answered by the websocket layer
            Some(Err(e)) => {
                tracing::debug!(conn = conn.id, error = %e, "receive failed");
                close_with = Some(close(CloseCode::Size, "message too large or malformed"));
                break;
            }
        };
        let route = match route_bytes(&bytes) {
            Route::Nothing => continue, // answers to our pushes
            Route::Close(reason) => {
                close_with = Some(close(CloseCode::Protocol, reason));
                break;
            }
            Route::Publish { token, object } => {
                // Verified here (in parallel with other connections), then
                // pipelined: queued in order, answered when committed.
                if let Some(reply) = publish(&hub, &conn, token, object, &mut last_publish).await {
                    if conn.tx.send(reply.encode()).await.is_err() {
                        break;
                    }
                }
                continue;
            }
            other => other,
        };
        // Answers go out in request order: later requests wait for this
        // connection's earlier publishes (and see them).
        if let Some(p) = last_publish.take() {
            let _ = p.await;
        }
        let replies = match route {
            Route::Answer(m) => vec![m],
            Route::Read { token, query } => vec![hub.read(token, query).await],
            Route::Subscription { token, op } => match hub.subscription(conn.id, token, op) {
                Applied::Answer(m) => vec![m],
                Applied::ReadPending { token, recipient } => {
                    // Requests still waiting for this recipient follow the ACK.
                    let (answer, pending) = subscribe_answer(token, hub.pending(recipient).await);
                    if conn.tx.send(answer.encode()).await.is_err() {
                        break;
                    }
                    for object in pending {
                        let push = Message::Request {
                            token: conn.next_token(),
                            request: Request::Push {
                                subscription: recipient,
                                object,
                            },
                        };
                        if conn.push(push.encode()) == Pushed::Queued {
                            hub.metrics.push(true);
                        }
                    }
                    Vec::new()
                }
            },
            Route::Publish { .. } | Route::Nothing | Route::Close(_) => Vec::new(),
        };
        let mut gone = false;
        for reply in replies {
            if conn.tx.send(reply.encode()).await.is_err() {
                gone = true;
                break;
            }
        }
        if gone {
            break;
        }
    }
    if let Some(p) = last_publish.take() {
        let _ = p.await;
    }
    hub.leave(conn.id);
    if let Some(frame) = close_with {
        let _ = close_tx.send(frame).await;
    }
    drop(close_tx);
    drop(conn);
    let _ = writer.await;
    tracing::debug!(?peer, "disconnected");
}

/// Starts a publish: verified on this task, queued for the writer, answered
/// by a task of its own once committed. Returns the answer if it is refused
/// before it reaches the writer.
async fn publish<B: PersistBackend + 'static>(
    hub: &Arc<Hub<B>>,
    conn: &ConnHandle,
    token: u16,
    object: Vec<u8>,
    last_publish: &mut Option<tokio::task::JoinHandle<()>>,
) -> Option<Message> {
    let magic: Vec<u8> = object.iter().take(4).copied().collect();
    let submitted = match hub.prepare(object) {
        Ok(input) => hub.submit(input, conn.id).await,
        Err(e) => Err(e),
    };
    match submitted {
        Ok(rx) => {
            let tx = conn.tx.clone();
            let id = conn.id;
            let metrics = hub.metrics.clone();
            *last_publish = Some(tokio::spawn(async move {
                let result = rx
                    .await
                    .unwrap_or_else(|_| Err(Error::Storage("writer stopped".into())));
                metrics.publish(&magic, &result);
                if let Err(e) = &result {
                    tracing::debug!(conn = id, error = %e, "publish refused");
                }
                let _ = tx.send(publish_answer(token, &result).encode()).await;
            }));
            None
        }
        Err(e) => {
            let result = Err(e);
            hub.metrics.publish(&magic, &result);
            Some(publish_answer(token, &result))
        }
    }
}
