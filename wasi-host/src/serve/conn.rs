//! One websocket connection speaking the remote protocol.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hypergolix_core::golix::Ghid;
use hypergolix_core::persist::PersistBackend;
use hypergolix_core::wire::remote::{encode_ghid_list, ErrorCode, Message, Request};
use hypergolix_core::wire::{Frame, WireError};
use hypergolix_core::Error;
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as Ws;

use super::hub::{ConnHandle, Hub};

fn nak(token: u16, e: &Error) -> Vec<u8> {
    Message::Nak {
        token,
        code: ErrorCode::for_error(e),
        message: e.to_string(),
    }
    .encode()
}

fn ack(token: u16, body: Vec<u8>) -> Vec<u8> {
    Message::Ack { token, body }.encode()
}

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

    let mut subscribed: HashSet<Ghid> = HashSet::new();
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
            Some(Ok(Ws::Binary(b))) => b.to_vec(),
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
        let reply = match Message::decode(&bytes) {
            Ok(Message::Request {
                token,
                request: Request::Publish(object),
            }) => {
                // Verified here (in parallel with other connections), then
                // pipelined: queued in order, answered when committed.
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
                        last_publish = Some(tokio::spawn(async move {
                            let result = rx
                                .await
                                .unwrap_or_else(|_| Err(Error::Storage("writer stopped".into())));
                            metrics.publish(&magic, &result);
                            let reply = match result {
                                Ok(new) => ack(token, vec![u8::from(new)]),
                                Err(e) => {
                                    tracing::debug!(conn = id, error = %e, "publish refused");
                                    nak(token, &e)
                                }
                            };
                            let _ = tx.send(reply).await;
                        }));
                        None
                    }
                    Err(e) => {
                        let reply = nak(token, &e);
                        hub.metrics.publish(&magic, &Err(e));
                        Some(reply)
                    }
                }
            }
            Ok(Message::Request { token, request }) => {
                // Later requests see this connection's earlier publishes.
                if let Some(p) = last_publish.take() {
                    let _ = p.await;
                }
                handle(&hub, &conn, &mut subscribed, token, request).await
            }
            Ok(Message::Ack { .. } | Message::Nak { .. }) => None, // answers to our pushes
            Err(WireError::Truncated(_)) => {
                close_with = Some(close(
                    CloseCode::Protocol,
                    "message shorter than its header",
                ));
                break;
            }
            Err(e) => {
                let token = Frame::peek_token(&bytes).unwrap_or(0);
                tracing::debug!(conn = conn.id, error = %e, "undecodable request");
                Some(nak(token, &Error::Wire(e)))
            }
        };
        if let Some(reply) = reply {
            if conn.tx.send(reply).await.is_err() {
                break;
            }
        }
    }
    if let Some(p) = last_publish.take() {
        let _ = p.await;
    }
    for g in &subscribed {
        hub.unsubscribe(g, conn.id);
    }
    if let Some(frame) = close_with {
        let _ = close_tx.send(frame).await;
    }
    drop(close_tx);
    drop(conn);
    let _ = writer.await;
    tracing::debug!(?peer, "disconnected");
}

async fn handle<B: PersistBackend + 'static>(
    hub: &Arc<Hub<B>>,
    conn: &ConnHandle,
    subscribed: &mut HashSet<Ghid>,
    token: u16,
    request: Request,
) -> Option<Vec<u8>> {
    let reply = match request {
        Request::Ping => ack(token, vec![1]),
        Request::Publish(bytes) => {
            let magic: Vec<u8> = bytes.iter().take(4).copied().collect();
            let result = hub.publish(bytes, conn.id).await;
            hub.metrics.publish(&magic, &result);
            match result {
                Ok(new) => ack(token, vec![u8::from(new)]),
                Err(e) => {
                    tracing::debug!(conn = conn.id, error = %e, "publish refused");
                    nak(token, &e)
                }
            }
        }
        Request::Get(g) => match hub.query(move |r, t| r.get(t, &g)).await {
            Ok(obj) => ack(token, obj),
            Err(e) => nak(token, &e),
        },
        Request::Exists(g) => match hub.query(move |r, t| r.exists(t, &g)).await {
            Ok(b) => ack(token, vec![u8::from(b)]),
            Err(e) => nak(token, &e),
        },
        Request::ListBindings(g) => match hub.query(move |r, t| r.list_bindings(t, &g)).await {
            Ok(list) => ack(token, encode_ghid_list(&list)),
            Err(e) => nak(token, &e),
        },
        Request::ListDebindings(g) => match hub.query(move |r, t| r.list_debindings(t, &g)).await {
            Ok(list) => ack(token, encode_ghid_list(&list)),
            Err(e) => nak(token, &e),
        },
        Request::Subscribe(g) => {
            hub.subscribe(g, conn);
            subscribed.insert(g);
            // Requests still waiting for this recipient are re-sent after the ACK.
            let pending = hub
                .query(move |r, t| r.pending_requests(t, &g))
                .await
                .unwrap_or_default();
            let _ = conn.tx.send(ack(token, vec![1])).await;
            for object in pending {
                let push = Message::Request {
                    token: conn.next_token(),
                    request: Request::Push {
                        subscription: g,
                        object,
                    },
                };
                if conn.push(push.encode()) == super::hub::Pushed::Queued {
                    hub.metrics.push(true);
                }
            }
            return None;
        }
        Request::Unsubscribe(g) => {
            subscribed.remove(&g);
            ack(token, vec![u8::from(hub.unsubscribe(&g, conn.id))])
        }
        Request::ListSubscriptions => {
            let mut list: Vec<Ghid> = subscribed.iter().copied().collect();
            list.sort();
            ack(token, encode_ghid_list(&list))
        }
        Request::Disconnect => {
            for g in subscribed.drain() {
                hub.unsubscribe(&g, conn.id);
            }
            ack(token, vec![1])
        }
        Request::Push { .. } => nak(
            token,
            &Error::Wire(WireError::BadBody {
                code: "!!".into(),
                why: "only the server pushes",
            }),
        ),
    };
    Some(reply)
}
