//! `hypergolix serve` over real processes and real websockets on loopback.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hypergolix_core::golix::suite::cs3::SUITE_ID;
use hypergolix_core::golix::{FirstParty, FreshSecret, Ghid};
use hypergolix_core::persist::conformance::run_all;
use hypergolix_core::wire::remote::{
    decode_ghid_list, ErrorCode, Message, Request, PUSH_CONTAINERS_SUBPROTOCOL,
};
use hypergolix_wasi_host::serve::redb_store::RedbStore;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[path = "support/serve_proc.rs"]
mod serve_proc;
use serve_proc::{http_get, tempdir, Server};

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    token: u16,
    pushes: Vec<(Ghid, Vec<u8>)>,
    /// The container each push carried (`!C`), in the order of `pushes`.
    containers: Vec<Option<Vec<u8>>>,
}

impl Client {
    /// A client as 0.1.0's: no subprotocol offered.
    async fn connect(addr: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
            .await
            .expect("connect");
        Self::over(ws)
    }

    /// A client as our engines are: asks for frames' containers with the
    /// frames; returns the subprotocol the server chose too.
    async fn connect_for_containers(addr: &str) -> (Self, Option<String>) {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{addr}/")
            .into_client_request()
            .expect("request");
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            PUSH_CONTAINERS_SUBPROTOCOL.parse().expect("header"),
        );
        let (ws, resp) = tokio_tungstenite::connect_async(req)
            .await
            .expect("connect");
        let chosen = resp
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (Self::over(ws), chosen)
    }

    fn over(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self {
            ws,
            token: 0,
            pushes: Vec::new(),
            containers: Vec::new(),
        }
    }

    async fn raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(Ws::Binary(bytes.into())).await.expect("send");
    }

    /// The next non-push message (pushes are acknowledged and kept).
    async fn next_reply(&mut self) -> Option<Message> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("timed out")?;
            match msg {
                Ok(Ws::Binary(b)) => match Message::decode(&b).expect("decode") {
                    Message::Request {
                        token,
                        request:
                            Request::Push {
                                subscription,
                                object,
                                container,
                            },
                    } => {
                        self.pushes.push((subscription, object));
                        self.containers.push(container);
                        self.raw(
                            Message::Ack {
                                token,
                                body: vec![1],
                            }
                            .encode(),
                        )
                        .await;
                    }
                    other => return Some(other),
                },
                Ok(Ws::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    async fn call(&mut self, request: Request) -> Message {
        self.token = self.token.wrapping_add(1);
        let token = self.token;
        self.raw(Message::Request { token, request }.encode()).await;
        let reply = self.next_reply().await.expect("connection closed");
        match &reply {
            Message::Ack { token: t, .. } | Message::Nak { token: t, .. } => assert_eq!(*t, token),
            other => panic!("unexpected {other:?}"),
        }
        reply
    }

    async fn publish(&mut self, bytes: Vec<u8>) -> Message {
        self.call(Request::Publish(bytes)).await
    }

    async fn wait_push(&mut self) -> (Ghid, Vec<u8>) {
        let (g, o, _) = self.wait_push_with_container().await;
        (g, o)
    }

    /// The next push with the container it carried.
    async fn wait_push_with_container(&mut self) -> (Ghid, Vec<u8>, Option<Vec<u8>>) {
        while self.pushes.is_empty() {
            self.poll_pushes().await;
        }
        let c = self.containers.remove(0);
        let (g, o) = self.pushes.remove(0);
        (g, o, c)
    }

    /// Reads what arrived until a ping's answer (pushes are kept).
    async fn poll_pushes(&mut self) {
        self.raw(
            Message::Request {
                token: 0xffff,
                request: Request::Ping,
            }
            .encode(),
        )
        .await;
        let _ = self.next_reply().await;
        if self.pushes.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn ack_body(m: &Message) -> Vec<u8> {
    match m {
        Message::Ack { body, .. } => body.clone(),
        other => panic!("expected AK, got {other:?}"),
    }
}

fn nak_code(m: &Message) -> ErrorCode {
    match m {
        Message::Nak { code, .. } => *code,
        other => panic!("expected NK, got {other:?}"),
    }
}

fn id(n: u8) -> FirstParty {
    FirstParty::from_random(SUITE_ID, &[n; 96]).expect("identity")
}

fn fresh(i: u64) -> FreshSecret {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&i.to_be_bytes());
    FreshSecret::from_parts(SUITE_ID, &k, &[1u8; 12]).expect("secret")
}

#[test]
fn redb_backend_passes_conformance() {
    let dir = tempdir("conformance");
    let n = std::sync::atomic::AtomicU32::new(0);
    let results = run_all(|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RedbStore::open(&dir.join(format!("store-{i}.redb"))).expect("open")
    });
    for (name, r) in &results {
        println!("{name}: {r:?}");
    }
    assert!(results.iter().all(|(_, r)| r.is_ok()));
    assert!(results.len() >= 13);
}

/// Two identities and one dynamic object's life: its first frame and
/// container, its next frame and container, a request from Alice to Bob,
/// and the object's debinding.
struct Story {
    alice: FirstParty,
    bob: FirstParty,
    c0: hypergolix_core::golix::Geoc,
    f0: hypergolix_core::golix::Gobd,
    d: Ghid,
    c1: hypergolix_core::golix::Geoc,
    f1: hypergolix_core::golix::Gobd,
    req: hypergolix_core::golix::Garq,
    x: hypergolix_core::golix::Gdxx,
}

fn story() -> Story {
    let (alice, bob) = (id(1), id(2));
    let (c0, s0) = alice.make_container(fresh(1), b"state 0").expect("geoc");
    let f0 = alice.make_first_frame(&c0.ghid()).expect("frame");
    let d = f0.dynamic_ghid();
    let next = s0.ratchet(&c0.ghid(), &d).expect("ratchet");
    let (c1, _) = alice.make_container(next, b"state 1").expect("geoc");
    let f1 = alice.make_next_frame(&f0, &c1.ghid(), 7).expect("frame");
    let req = alice
        .make_request_with_random(
            bob.second_party(),
            hypergolix_core::golix::RequestPayload::Raw(b"hi".to_vec()),
            &[9; 32],
        )
        .expect("garq");
    let x = alice.make_debinding(&d);
    Story {
        alice,
        bob,
        c0,
        f0,
        d,
        c1,
        f1,
        req,
        x,
    }
}

#[tokio::test]
async fn publish_get_subscribe_over_websockets() {
    let dir = tempdir("protocol");
    let server = Server::start(&dir.join("store.redb"), &[]);
    let Story {
        alice,
        bob,
        c0,
        f0,
        d,
        c1,
        f1,
        req,
        x,
    } = story();
    let mut a = Client::connect(&server.addr).await;
    let mut b = Client::connect(&server.addr).await;
    assert_eq!(ack_body(&a.call(Request::Ping).await), vec![1]);
    assert_eq!(
        ack_body(&a.publish(alice.second_party().gidc().to_bytes()).await),
        vec![1]
    );
    assert_eq!(
        ack_body(&a.publish(alice.second_party().gidc().to_bytes()).await),
        vec![0]
    );
    assert_eq!(
        ack_body(&b.publish(bob.second_party().gidc().to_bytes()).await),
        vec![1]
    );

    assert_eq!(
        nak_code(&a.publish(c0.to_bytes()).await),
        ErrorCode::UnboundContainer
    );
    ack_body(&a.publish(f0.to_bytes()).await);
    ack_body(&a.publish(c0.to_bytes()).await);
    assert_eq!(ack_body(&b.call(Request::Get(d)).await), f0.to_bytes());
    assert_eq!(ack_body(&b.call(Request::Exists(c0.ghid())).await), vec![1]);

    // C asks for containers with frames (as our engines do); B does not
    // (as 0.1.0 clients), and is never sent `!C`.
    let (mut c, chosen) = Client::connect_for_containers(&server.addr).await;
    assert_eq!(chosen.as_deref(), Some(PUSH_CONTAINERS_SUBPROTOCOL));
    ack_body(&c.call(Request::Subscribe(d)).await);

    // B subscribes to the dynamic GHID and to its own identity.
    assert_eq!(ack_body(&b.call(Request::Subscribe(d)).await), vec![1]);
    ack_body(&b.call(Request::Subscribe(bob.ghid())).await);
    let subs =
        decode_ghid_list(&ack_body(&b.call(Request::ListSubscriptions).await)).expect("list");
    assert_eq!(subs.len(), 2);

    ack_body(&a.publish(f1.to_bytes()).await);
    ack_body(&a.publish(c1.to_bytes()).await);
    assert_eq!(
        b.wait_push_with_container().await,
        (d, f1.to_bytes(), None),
        "a client that did not ask is sent the frame alone (`!!`)"
    );
    assert_eq!(
        c.wait_push_with_container().await,
        (d, f1.to_bytes(), Some(c1.to_bytes())),
        "a client that asked is sent the frame with its container (`!C`)"
    );
    assert!(
        a.pushes.is_empty(),
        "the publisher is not pushed its own frame"
    );

    // A request to B is pushed to B's identity subscription.
    ack_body(&a.publish(req.to_bytes()).await);
    assert_eq!(b.wait_push().await, (bob.ghid(), req.to_bytes()));

    // Deleting the object pushes the debinding to subscribers.
    ack_body(&a.publish(x.to_bytes()).await);
    assert_eq!(b.wait_push().await, (d, x.to_bytes()));
    assert_eq!(
        nak_code(&b.call(Request::Get(d)).await),
        ErrorCode::DoesNotExist
    );
    let deb = decode_ghid_list(&ack_body(&b.call(Request::ListDebindings(d)).await)).expect("list");
    assert_eq!(deb, vec![x.ghid()]);

    // Unsubscribe, disconnect.
    assert_eq!(ack_body(&b.call(Request::Unsubscribe(d)).await), vec![1]);
    assert_eq!(ack_body(&b.call(Request::Unsubscribe(d)).await), vec![0]);
    ack_body(&b.call(Request::Disconnect).await);
    assert!(
        decode_ghid_list(&ack_body(&b.call(Request::ListSubscriptions).await))
            .expect("list")
            .is_empty()
    );

    // Pending requests are re-sent on subscribe.
    let mut b2 = Client::connect(&server.addr).await;
    ack_body(&b2.call(Request::Subscribe(bob.ghid())).await);
    assert_eq!(b2.wait_push().await, (bob.ghid(), req.to_bytes()));
}

#[tokio::test]
async fn garbage_never_crashes_the_server() {
    let dir = tempdir("garbage");
    let server = Server::start(&dir.join("store.redb"), &["--max-message-bytes", "4096"]);
    let mut c = Client::connect(&server.addr).await;
    // Unknown command.
    c.raw(b"\x00\x00ZZ\x00\x07".to_vec()).await;
    assert!(matches!(
        c.next_reply().await,
        Some(Message::Nak {
            token: 7,
            code: ErrorCode::CommsError,
            ..
        })
    ));
    // Bad version.
    c.raw(b"\x00\x05??\x00\x08".to_vec()).await;
    assert!(matches!(
        c.next_reply().await,
        Some(Message::Nak {
            token: 8,
            code: ErrorCode::CommsError,
            ..
        })
    ));
    // Bad body.
    c.raw(b"\x00\x00GT\x00\x09short".to_vec()).await;
    assert!(matches!(
        c.next_reply().await,
        Some(Message::Nak {
            token: 9,
            code: ErrorCode::Malformed,
            ..
        })
    ));
    // Garbage object.
    assert_eq!(
        nak_code(&c.publish(vec![0x47; 300]).await),
        ErrorCode::Malformed
    );
    // Truncated frame: clean close.
    c.raw(b"\x00\x00".to_vec()).await;
    assert!(c.next_reply().await.is_none());
    // Oversized message: clean close.
    let mut c = Client::connect(&server.addr).await;
    let _ = c.ws.send(Ws::Binary(vec![0u8; 8192].into())).await;
    assert!(c.next_reply().await.is_none());
    // Text message: clean close.
    let mut c = Client::connect(&server.addr).await;
    let _ = c.ws.send(Ws::Text("hello".into())).await;
    assert!(c.next_reply().await.is_none());
    // Abrupt disconnect with subscriptions, then the server still answers.
    let mut c = Client::connect(&server.addr).await;
    ack_body(&c.call(Request::Subscribe(id(1).ghid())).await);
    drop(c);
    let mut c = Client::connect(&server.addr).await;
    assert_eq!(ack_body(&c.call(Request::Ping).await), vec![1]);
}

#[tokio::test]
async fn acknowledged_publishes_survive_kill_9() {
    let dir = tempdir("kill9");
    let store = dir.join("store.redb");
    let alice = id(3);
    let server = Server::start(&store, &[]);
    let mut c = Client::connect(&server.addr).await;
    ack_body(&c.publish(alice.second_party().gidc().to_bytes()).await);
    let mut acked = Vec::new();
    for i in 0..200u64 {
        let (geoc, _) = alice
            .make_container(fresh(i), &i.to_be_bytes())
            .expect("geoc");
        let gobs = alice.make_static_binding(&geoc.ghid());
        ack_body(&c.publish(gobs.to_bytes()).await);
        ack_body(&c.publish(geoc.to_bytes()).await);
        acked.push(geoc);
    }
    server.kill9();
    let server = Server::start(&store, &[]);
    let mut c = Client::connect(&server.addr).await;
    for geoc in &acked {
        assert_eq!(
            ack_body(&c.call(Request::Get(geoc.ghid())).await),
            geoc.to_bytes()
        );
    }
}

#[tokio::test]
async fn slow_consumer_is_disconnected_not_buffered() {
    let dir = tempdir("slow");
    let server = Server::start(
        &dir.join("store.redb"),
        &["--queue-len", "4", "--metrics", "127.0.0.1:0"],
    );
    let (alice, bob) = (id(11), id(12));
    let mut publisher = Client::connect(&server.addr).await;
    ack_body(
        &publisher
            .publish(alice.second_party().gidc().to_bytes())
            .await,
    );
    ack_body(
        &publisher
            .publish(bob.second_party().gidc().to_bytes())
            .await,
    );
    // Bob subscribes and then never reads again.
    let mut slow = Client::connect(&server.addr).await;
    ack_body(&slow.call(Request::Subscribe(bob.ghid())).await);
    // ~30 MB of large requests for Bob: far more than socket buffers hold.
    let big = vec![0x55u8; 60_000];
    for i in 0..500u32 {
        let mut r = [0u8; 32];
        r[..4].copy_from_slice(&i.to_be_bytes());
        let req = alice
            .make_request_with_random(
                bob.second_party(),
                hypergolix_core::golix::RequestPayload::Raw(big.clone()),
                &r,
            )
            .expect("garq");
        ack_body(&publisher.publish(req.to_bytes()).await);
    }
    // The server stays responsive to everyone else...
    assert_eq!(ack_body(&publisher.call(Request::Ping).await), vec![1]);
    // ...and has closed the slow connection instead of buffering without bound:
    // draining it ends in a close long before all 500 pushes arrive.
    let mut received = 0usize;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.ws.next()).await {
            Ok(Some(Ok(Ws::Binary(_)))) => received += 1,
            Ok(Some(Ok(Ws::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => break,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("slow connection neither closed nor drained"),
        }
    }
    assert!(
        received < 500,
        "all {received} pushes were buffered for a consumer that did not read"
    );

    // What the metrics port says of it.
    let m = server.metrics.as_deref().expect("metrics address");
    assert_eq!(http_get(m, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(http_get(m, "/nothing").0, 404);
    let (code, text) = http_get(m, "/metrics");
    assert_eq!(code, 200);
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    assert_eq!(value("hypergolix_publishes_total{outcome=\"new\"}"), 502.0);
    assert_eq!(
        value("hypergolix_objects_stored_total{type=\"GARQ\"}"),
        500.0
    );
    assert_eq!(value("hypergolix_objects_stored_total{type=\"GIDC\"}"), 2.0);
    assert!(value("hypergolix_push_queue_drops_total") >= 1.0, "{text}");
    assert!(value("hypergolix_pushes_total") >= 1.0, "{text}");
    assert!(value("hypergolix_connections") >= 1.0, "{text}");
    assert!(
        value("hypergolix_store_commit_seconds_count") >= 1.0,
        "{text}"
    );
}

/// One script of messages on three connections, run against the in-process
/// node the simulation tests (`hypergolix_core::persist::Node`) and against
/// the shipped server over websockets: every connection must receive the
/// same messages in the same order, byte for byte (push tokens aside, which
/// each server numbers its own way).
#[tokio::test]
async fn the_shipped_server_answers_as_the_simulated_node() {
    use hypergolix_core::persist::{MemoryStore, Node};

    /// Push tokens zeroed; everything else as sent.
    fn normal(m: Message) -> Vec<u8> {
        match m {
            Message::Request {
                request: r @ Request::Push { .. },
                ..
            } => Message::Request {
                token: 0,
                request: r,
            }
            .encode(),
            other => other.encode(),
        }
    }

    let Story {
        alice,
        bob,
        c0,
        f0,
        d,
        c1,
        f1,
        req,
        x,
    } = story();
    let pub_ = |b: Vec<u8>| Request::Publish(b);
    let mut script: Vec<(usize, Request)> = vec![
        (0, pub_(alice.second_party().gidc().to_bytes())),
        (0, pub_(alice.second_party().gidc().to_bytes())),
        (1, pub_(bob.second_party().gidc().to_bytes())),
        (0, pub_(c0.to_bytes())),
        (0, pub_(f0.to_bytes())),
        (0, pub_(c0.to_bytes())),
        (1, Request::Get(d)),
        (1, Request::Exists(c0.ghid())),
        (1, Request::Exists(c1.ghid())),
        (1, Request::Subscribe(d)),
        (1, Request::Subscribe(bob.ghid())),
        (2, Request::Subscribe(d)),
        (1, Request::ListSubscriptions),
        (0, pub_(f1.to_bytes())),
        (0, pub_(c1.to_bytes())),
        (0, pub_(req.to_bytes())),
        (2, Request::Subscribe(bob.ghid())),
        (1, Request::ListBindings(c1.ghid())),
        (0, pub_(x.to_bytes())),
        (1, Request::Get(d)),
        (1, Request::ListDebindings(d)),
        (0, pub_(f1.to_bytes())),
        (1, Request::Unsubscribe(d)),
        (1, Request::Unsubscribe(d)),
        (2, Request::Disconnect),
        (2, Request::ListSubscriptions),
        (0, pub_(vec![0x47; 300])),
        (
            0,
            Request::Push {
                subscription: d,
                object: vec![1],
                container: None,
            },
        ),
        (
            1,
            Request::Push {
                subscription: d,
                object: vec![1],
                container: Some(vec![2]),
            },
        ),
    ];
    let mut steps: Vec<(usize, Vec<u8>)> = script
        .drain(..)
        .enumerate()
        .map(|(i, (c, request))| {
            let token = u16::try_from(i + 1).expect("token");
            (c, Message::Request { token, request }.encode())
        })
        .collect();
    // Undecodable, but framed: refused under their tokens.
    steps.push((1, b"\x00\x00ZZ\x00\x70".to_vec()));
    steps.push((1, b"\x00\x00GT\x00\x71short".to_vec()));
    // A client's answer to a push: nothing comes back.
    steps.push((
        1,
        Message::Ack {
            token: 3,
            body: vec![1],
        }
        .encode(),
    ));

    // The node, as the simulation drives it.
    let mut node = Node::new(MemoryStore::new());
    let mut expected: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
    let ping = |token| {
        Message::Request {
            token,
            request: Request::Ping,
        }
        .encode()
    };
    for (c, bytes) in &steps {
        for (to, m) in node.handle_bytes(*c as u64, bytes) {
            expected[to as usize].push(normal(m));
        }
        // Every connection pings after each step (the real run needs it to
        // know it has everything).
        for p in 0..3 {
            for (to, m) in node.handle_bytes(p, &ping(0xfff0)) {
                expected[to as usize].push(normal(m));
            }
        }
    }

    // The shipped server, over websockets.
    let dir = tempdir("same-as-node");
    let server = Server::start(&dir.join("store.redb"), &[]);
    let mut conns = Vec::new();
    for _ in 0..3 {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", server.addr))
            .await
            .expect("connect");
        conns.push(ws);
    }
    let mut got: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
    for (c, bytes) in &steps {
        conns[*c]
            .send(Ws::Binary(bytes.clone().into()))
            .await
            .expect("send");
        // Each connection then pings and reads up to the ping's answer: on
        // the step's own connection that follows the step's answer, which
        // the server sends only after queueing the pushes to the others.
        let order = std::iter::once(*c).chain((0..3).filter(|p| p != c));
        for p in order {
            conns[p]
                .send(Ws::Binary(ping(0xfff0).into()))
                .await
                .expect("send");
            loop {
                let msg = tokio::time::timeout(Duration::from_secs(10), conns[p].next())
                    .await
                    .expect("timed out")
                    .expect("open")
                    .expect("message");
                let Ws::Binary(b) = msg else { continue };
                let m = Message::decode(&b).expect("decode");
                let pong = matches!(m, Message::Ack { token: 0xfff0, .. });
                got[p].push(normal(m));
                if pong {
                    break;
                }
            }
        }
    }
    for p in 0..3 {
        assert_eq!(
            got[p].len(),
            expected[p].len(),
            "connection {p}: {} messages from serve, {} from the node",
            got[p].len(),
            expected[p].len()
        );
        for (i, (g, e)) in got[p].iter().zip(&expected[p]).enumerate() {
            assert_eq!(
                g,
                e,
                "connection {p}, message {i}: serve sent {:?}, the node {:?}",
                Message::decode(g),
                Message::decode(e)
            );
        }
    }
    // Pushes really happened in the script (the comparison is not vacuous).
    let pushes = expected
        .iter()
        .flatten()
        .filter(|m| {
            matches!(
                Message::decode(m),
                Ok(Message::Request {
                    request: Request::Push { .. },
                    ..
                })
            )
        })
        .count();
    assert!(pushes >= 6, "only {pushes} pushes in the script");

    // A message too short to frame: the node drops the connection's
    // subscriptions and answers nothing; the server closes it.
    let mut node_close = node.handle_bytes(1, b"\x00\x00");
    assert!(node_close.is_empty());
    node_close = node.handle_bytes(1, &ping(1));
    assert_eq!(node_close.len(), 1);
    conns[1]
        .send(Ws::Binary(b"\x00\x00".to_vec().into()))
        .await
        .expect("send");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), conns[1].next())
            .await
            .expect("timed out")
        {
            None | Some(Err(_)) | Some(Ok(Ws::Close(_))) => break,
            Some(Ok(_)) => {}
        }
    }
}

/// Publishes pipelined on one connection are answered in the order they
/// were sent, refusals included, and a later request is answered after all
/// of them (and sees them).
#[tokio::test]
async fn pipelined_publishes_are_answered_in_order() {
    let dir = tempdir("ordered");
    let server = Server::start(&dir.join("store.redb"), &[]);
    let alice = id(1);
    let mut c = Client::connect(&server.addr).await;
    ack_body(&c.publish(alice.second_party().gidc().to_bytes()).await);
    // 300 objects (every seventh one garbage, refused before the writer;
    // the others a static binding, then its container), sent without
    // waiting, then an existence check of the last container.
    let mut last_good = None;
    let mut sent = Vec::new();
    let mut messages = Vec::new();
    for i in 0..300u64 {
        if i % 7 == 3 {
            messages.push(vec![0x47; 200]);
        } else {
            let (c0, _) = alice
                .make_container(fresh(i + 1), &i.to_be_bytes())
                .expect("geoc");
            let b = alice.make_static_binding(&c0.ghid());
            last_good = Some(c0.ghid());
            messages.push(b.to_bytes());
            messages.push(c0.to_bytes());
        }
    }
    for (i, bytes) in messages.into_iter().enumerate() {
        let token = u16::try_from(i + 100).expect("token");
        sent.push(token);
        c.raw(
            Message::Request {
                token,
                request: Request::Publish(bytes),
            }
            .encode(),
        )
        .await;
    }
    let check = last_good.expect("a good object");
    c.raw(
        Message::Request {
            token: 9,
            request: Request::Exists(check),
        }
        .encode(),
    )
    .await;
    let mut got = Vec::new();
    while got.len() < sent.len() + 1 {
        match c.next_reply().await.expect("open") {
            Message::Ack { token, body } => got.push((token, Some(body))),
            Message::Nak { token, .. } => got.push((token, None)),
            other => panic!("unexpected {other:?}"),
        }
    }
    let tokens: Vec<u16> = got.iter().map(|(t, _)| *t).collect();
    let mut want = sent.clone();
    want.push(9);
    assert_eq!(tokens, want, "answers out of order");
    assert_eq!(got.last().and_then(|(_, b)| b.clone()), Some(vec![1]));
    assert_eq!(got.iter().filter(|(_, b)| b.is_none()).count(), 43);
}

/// A server that does not know the push-containers subprotocol (0.1.0's,
/// or an older one of ours) answers the offer with none, which tungstenite
/// takes as a failed handshake: our client connects again without it.
#[tokio::test]
async fn a_server_that_ignores_the_offer_is_still_reached() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let mut offered = Vec::new();
        for _ in 0..2 {
            let (sock, _) = listener.accept().await.expect("accept");
            let mut seen = None;
            // tungstenite's callback type (its error is an HTTP response).
            #[allow(clippy::result_large_err)]
            let note = |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
                seen = Some(req.headers().contains_key("Sec-WebSocket-Protocol"));
                Ok(resp)
            };
            // Plain accept: no subprotocol in the answer, whatever was
            // offered. The client that offered one drops the connection.
            let ws = tokio_tungstenite::accept_hdr_async(sock, note).await;
            offered.push(seen);
            if let Ok(mut ws) = ws {
                if let Some(Ok(m)) = ws.next().await {
                    ws.send(m).await.expect("echo");
                    return offered;
                }
            }
        }
        offered
    });
    let mut ws = hypergolix_wasi_host::tls::connect(&format!("ws://{addr}/"), None)
        .await
        .expect("connected without the subprotocol");
    ws.send(Ws::Binary(vec![1, 2, 3].into()))
        .await
        .expect("send");
    let echo = ws.next().await.expect("echo").expect("ok");
    assert_eq!(echo, Ws::Binary(vec![1, 2, 3].into()));
    assert_eq!(
        server.await.expect("server"),
        vec![Some(true), Some(false)],
        "offered first, then not"
    );
}
