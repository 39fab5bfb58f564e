//! A binary WebSocket as a stream of events, on the platform's `WebSocket`
//! (a browser's, a worker's, or the `ws` package's in Node).
//!
//! Written here rather than taken from gloo-net because gloo-net sends
//! every binary message as a `Blob`, which costs a browser about 0.8 ms
//! more per message than an `ArrayBuffer` (docs/benchmarks.md, "The
//! browser"); on the update path that is several sends per update.
//! Messages are received as `ArrayBuffer`s and sent from a fresh
//! `ArrayBuffer` (a copy, so no WebSocket implementation ever holds a view
//! of the wasm memory, which moves when it grows).

use futures_channel::mpsc::{unbounded, UnboundedReceiver};
use futures_util::StreamExt;
use js_sys::Uint8Array;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, MessageEvent, WebSocket};

use crate::error::{describe, Result, WebError};

/// What a socket reports, in the order it happened.
#[derive(Debug)]
pub enum SocketEvent {
    /// The handshake completed.
    Open,
    /// A binary message.
    Bytes(Vec<u8>),
    /// A text message (the remote protocol has none; ignored by callers).
    Text,
    /// The socket closed, or failed to open (an `error` is always followed
    /// by a `close`; either ends the socket).
    Closed,
}

type Handler = Closure<dyn FnMut(JsValue)>;

/// An open or opening socket; dropping it closes it and detaches every
/// handler first, so nothing calls into a freed closure.
pub struct Socket {
    ws: WebSocket,
    events: UnboundedReceiver<SocketEvent>,
    _handlers: [Handler; 4],
}

impl Socket {
    /// Starts connecting to `url`, offering `protocol` if given. Fails only
    /// on a URL the platform refuses outright.
    pub fn open(url: &str, protocol: Option<&str>) -> Result<Self> {
        let ws = match protocol {
            Some(p) => WebSocket::new_with_str(url, p),
            None => WebSocket::new(url),
        }
        .map_err(|e| WebError::BadOption(describe(&e)))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let (tx, events) = unbounded();
        let on = |make: fn(JsValue) -> SocketEvent| -> Handler {
            let tx = tx.clone();
            Closure::new(move |v: JsValue| {
                // The receiver is gone only once the socket is dropped.
                let _ = tx.unbounded_send(make(v));
            })
        };
        let open = on(|_| SocketEvent::Open);
        let message = on(|v| {
            let data = v.unchecked_into::<MessageEvent>().data();
            if data.is_string() {
                SocketEvent::Text
            } else {
                // An ArrayBuffer (binaryType is set so); `new Uint8Array`
                // also reads a typed array, should a platform hand one over.
                SocketEvent::Bytes(Uint8Array::new(&data).to_vec())
            }
        });
        let close = on(|_| SocketEvent::Closed);
        let error = on(|_| SocketEvent::Closed);
        ws.set_onopen(Some(open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(error.as_ref().unchecked_ref()));
        Ok(Self {
            ws,
            events,
            _handlers: [open, message, close, error],
        })
    }

    /// The next event; `None` never comes while the socket is held.
    pub async fn next(&mut self) -> Option<SocketEvent> {
        self.events.next().await
    }

    /// Sends one binary message; an error means the socket is not open.
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        let copy = Uint8Array::from(bytes);
        self.ws
            .send_with_array_buffer(&copy.buffer())
            .map_err(|e| WebError::js(&e))
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        // Closing a closed socket does nothing; a code of our own is not
        // needed (1005, "no status", is what the server sees).
        let _ = self.ws.close();
    }
}
