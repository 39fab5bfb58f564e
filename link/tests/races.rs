//! Races between an answer and a push, which the real service produces only
//! now and then, made certain by a scripted peer on a real websocket: the
//! service's `>O` answer is followed at once by a `!O` push (or an `XO`
//! delete) of the same object, before the link has made the object or
//! while it applies the answer.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hypergolix_base::ipc::{IpcMessage, IpcRequest, Side, WireObjDef, NATIVE_GHIDS_SUBPROTOCOL};
use hypergolix_base::{AddressAlgorithm, Ghid};
use hypergolix_link::{HypergolixLink, LinkError};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

fn me() -> Ghid {
    Ghid::new(AddressAlgorithm::Blake2b512, [7; 64])
}

fn obj() -> Ghid {
    Ghid::new(AddressAlgorithm::Blake2b512, [9; 64])
}

fn def(state: &[u8]) -> WireObjDef {
    WireObjDef {
        address: Some(obj()),
        author: Some(me()),
        private: false,
        dynamic: true,
        legroom: 0,
        api_id: None,
        is_link: false,
        state: state.to_vec(),
    }
}

/// What the scripted service sends right after each `>O` answer.
#[derive(Clone, Copy)]
enum Then {
    /// `!O` with state `new{n}` after answering `old{n}`.
    Push,
    /// `XO`.
    Delete,
}

/// Serves one link connection at a time: answers `?I` with [`me`], `>O`
/// with `old{n}` followed at once by `then`, everything else with an empty
/// `AK`. Returns the address to connect to.
async fn scripted(then: Then) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let fetches = Arc::new(AtomicU32::new(0));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let fetches = Arc::clone(&fetches);
            tokio::spawn(async move {
                // The callback's signature is tungstenite's (its error is an
                // HTTP response, which clippy finds large).
                #[allow(clippy::result_large_err)]
                let offer = |_: &Request, mut resp: Response| {
                    resp.headers_mut().insert(
                        "sec-websocket-protocol",
                        HeaderValue::from_static(NATIVE_GHIDS_SUBPROTOCOL),
                    );
                    Ok(resp)
                };
                let mut ws = tokio_tungstenite::accept_hdr_async(tcp, offer)
                    .await
                    .expect("upgrade");
                while let Some(Ok(Message::Binary(b))) = ws.next().await {
                    let msg = IpcMessage::decode(Side::Link, &b).expect("a link message");
                    let IpcMessage::Request { token, request } = msg else {
                        continue; // the link's AK to a push
                    };
                    let mut out = Vec::new();
                    match request {
                        IpcRequest::Whoami => out.push(IpcMessage::Ack {
                            token,
                            body: me().to_bytes().to_vec(),
                        }),
                        IpcRequest::GetObject(_) => {
                            let n = fetches.fetch_add(1, Ordering::SeqCst);
                            out.push(IpcMessage::Ack {
                                token,
                                body: def(format!("old{n}").as_bytes()).to_bytes(),
                            });
                            out.push(IpcMessage::Request {
                                token: 1,
                                request: match then {
                                    Then::Push => {
                                        IpcRequest::PushUpdate(def(format!("new{n}").as_bytes()))
                                    }
                                    Then::Delete => IpcRequest::PushDelete(obj()),
                                },
                            });
                        }
                        _ => out.push(IpcMessage::Ack {
                            token,
                            body: Vec::new(),
                        }),
                    }
                    for m in out {
                        // One write each, sent back to back.
                        if ws.feed(Message::Binary(m.encode().into())).await.is_err() {
                            return;
                        }
                    }
                    if ws.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Waits up to 10 s for `done`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_right_after_the_answer_reaches_the_new_object() {
    let link = HypergolixLink::connect(&scripted(Then::Push).await)
        .await
        .expect("connect");
    let o = link.get(obj()).await.expect("get");
    eventually("the pushed state reaches the object", || {
        o.state() == b"new0"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_right_after_the_answer_reaches_the_new_object() {
    let link = HypergolixLink::connect(&scripted(Then::Delete).await)
        .await
        .expect("connect");
    match link.get(obj()).await {
        Err(LinkError::DeadObject) => {}
        Ok(o) => eventually("the object learns it was deleted", || !o.is_alive()).await,
        Err(e) => panic!("unexpected: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_answer_never_overwrites_a_newer_push() {
    let link = HypergolixLink::connect(&scripted(Then::Push).await)
        .await
        .expect("connect");
    // The object stays tracked; each fetch again races its answer against
    // the push that follows it.
    let held = link.get(obj()).await.expect("get");
    for n in 1..200 {
        let again = link.get(obj()).await.expect("get again");
        let want = format!("new{n}").into_bytes();
        eventually("the newest state stays", || {
            again.state() == want && held.state() == want
        })
        .await;
    }
}
