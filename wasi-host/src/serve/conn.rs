//! One websocket connection speaking the remote protocol.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hypergolix_core::persist::dispatch::{publish_answer, push, route_bytes};
use hypergolix_core::persist::subs::subscribe_answer;
use hypergolix_core::persist::{Applied, PersistBackend, Route};
use hypergolix_core::wire::remote::PUSH_CONTAINERS_SUBPROTOCOL;
use hypergolix_core::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as Ws;

use super::hub::{ConnHandle, Hub};

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
    // Our clients offer a subprotocol asking for frames' containers with
    // the frames (`!C`); 0.1.0 clients offer none and get `!!` only.
    let mut containers = false;
    // The callback's type is tungstenite's (its error is an HTTP response).
    #[allow(clippy::result_large_err)]
    let choose = |req: &Request, mut resp: Response| {
        let offered = req
            .headers()
            .get_all(SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == PUSH_CONTAINERS_SUBPROTOCOL);
        if offered {
            containers = true;
            resp.headers_mut().insert(
                SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(PUSH_CONTAINERS_SUBPROTOCOL),
            );
        }
        Ok(resp)
    };
    let ws =
        match tokio_tungstenite::accept_hdr_async_with_config(stream, choose, Some(config)).await {
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
        kill: Arc::new(watch::channel(false).0),
        tokens: Arc::new(AtomicU64::new(1)),
        containers,
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
    let mut kill = conn.kill.subscribe();
    // Publishes are answered by a task of their own, in the order they came
    // (the writer commits them in that order; the answers must not overtake
    // each other). It counts the answers written, so that any other request
    // waits until every earlier publish is committed and answered: it then
    // sees them, and its answer comes after theirs. The task starts with the
    // connection's first publish (idle subscribers never need one).
    let mut publishing: Option<Publishing> = None;
    let mut submitted = 0u64;
    loop {
        let msg = tokio::select! {
            m = source.next() => m,
            _ = kill.wait_for(|k| *k) => {
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
                let magic: Vec<u8> = object.iter().take(4).copied().collect();
                let outcome = match hub.prepare(object) {
                    Ok(input) => hub.submit(input, conn.id).await,
                    Err(e) => Err(e),
                };
                let outcome = outcome.unwrap_or_else(|e| {
                    // Refused before the writer: answered in its turn all the same.
                    let (done, rx) = oneshot::channel();
                    let _ = done.send(Err(e));
                    rx
                });
                submitted += 1;
                let p = publishing.get_or_insert_with(|| Publishing::start(&hub, &conn));
                if p.answers
                    .send(Answer {
                        token,
                        magic,
                        outcome,
                    })
                    .is_err()
                {
                    break;
                }
                continue;
            }
            other => other,
        };
        if let Some(p) = &mut publishing {
            if p.sent.wait_for(|n| *n >= submitted).await.is_err() {
                break; // the answering task ended: the connection is being cut
            }
        }
        let replies = match route {
            Route::Answer(m) => vec![m.encode()],
            Route::Read { token, query } => vec![hub.read(token, query).await.encode()],
            Route::Subscription { token, op } => match hub.subscription(conn.id, token, op) {
                Applied::Answer(m) => vec![m.encode()],
                Applied::ReadPending { token, recipient } => {
                    // Requests still waiting for this recipient follow the ACK.
                    let (answer, pending) = subscribe_answer(token, hub.pending(recipient).await);
                    let mut out = vec![answer.encode()];
                    for object in pending {
                        out.push(push(conn.next_token(), recipient, object, None).encode());
                        hub.metrics.push(true);
                    }
                    out
                }
            },
            Route::Publish { .. } | Route::Nothing | Route::Close(_) => Vec::new(),
        };
        let mut gone = false;
        for reply in replies {
            if !send_or_killed(&conn.tx, &mut kill, reply).await {
                gone = true;
                break;
            }
        }
        if gone {
            if *kill.borrow() {
                close_with = Some(close(CloseCode::Again, "outbound queue full"));
            }
            break;
        }
    }
    // Publishes already queued are still answered (they may be committed).
    if let Some(p) = publishing {
        drop(p.answers);
        let _ = p.task.await;
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

/// The task answering a connection's publishes, and what talks to it.
struct Publishing {
    answers: mpsc::UnboundedSender<Answer>,
    /// How many publishes it has answered.
    sent: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Publishing {
    fn start<B: PersistBackend + 'static>(hub: &Arc<Hub<B>>, conn: &ConnHandle) -> Self {
        let (answers, answer_rx) = mpsc::unbounded_channel::<Answer>();
        let (sent_tx, sent) = watch::channel(0u64);
        let task = tokio::spawn(answer_publishes(
            answer_rx,
            conn.tx.clone(),
            conn.kill.subscribe(),
            sent_tx,
            hub.metrics.clone(),
            conn.id,
        ));
        Self {
            answers,
            sent,
            task,
        }
    }
}

/// A publish waiting for its answer.
struct Answer {
    token: u16,
    magic: Vec<u8>,
    outcome: oneshot::Receiver<hypergolix_core::Result<bool>>,
}

/// Answers a connection's publishes in the order they came, each once it
/// is committed or refused; counts the answers written in `sent`. Ends when
/// the connection stops submitting, or is cut.
async fn answer_publishes(
    mut answers: mpsc::UnboundedReceiver<Answer>,
    tx: mpsc::Sender<Vec<u8>>,
    mut kill: watch::Receiver<bool>,
    sent: watch::Sender<u64>,
    metrics: Arc<super::metrics::Metrics>,
    conn: u64,
) {
    let mut n = 0u64;
    while let Some(a) = answers.recv().await {
        let result = a
            .outcome
            .await
            .unwrap_or_else(|_| Err(Error::Storage("writer stopped".into())));
        metrics.publish(&a.magic, &result);
        if let Err(e) = &result {
            tracing::debug!(conn, error = %e, "publish refused");
        }
        if !send_or_killed(&tx, &mut kill, publish_answer(a.token, &result).encode()).await {
            return;
        }
        n += 1;
        sent.send_replace(n);
    }
}

/// Queues a message for the connection's writer, waiting for room unless
/// the connection is cut meanwhile (a consumer that stopped reading must
/// not hold this task for ever): whether it was queued.
async fn send_or_killed(
    tx: &mpsc::Sender<Vec<u8>>,
    kill: &mut watch::Receiver<bool>,
    bytes: Vec<u8>,
) -> bool {
    if *kill.borrow() {
        return false;
    }
    tokio::select! {
        r = tx.send(bytes) => r.is_ok(),
        _ = kill.wait_for(|k| *k) => false,
    }
}
