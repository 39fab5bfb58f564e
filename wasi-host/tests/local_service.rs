//! `hypergolix start` as a real process, spoken to over a real websocket on
//! loopback with 0.1.0 IPC bytes: the engine inside wasmtime (and once
//! natively), the embedded persistence store, the Origin check, and a kill -9
//! in the middle of updates.

#[path = "support/serve_proc.rs"]
mod serve_proc;
#[path = "support/service_proc.rs"]
mod service_proc;

use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hypergolix_core::engine::{ApiId, AppToken};
use hypergolix_core::golix::Ghid;
use hypergolix_core::wire::ipc::{
    IpcErrorCode, IpcMessage, IpcRequest, Side, WireObjDef, NATIVE_GHIDS_SUBPROTOCOL,
};
use serve_proc::{tempdir, Server};
use service_proc::Svc;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A minimal link: sends requests, answers pushes with AK, keeps them.
struct Link {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    token: u16,
    pushes: Vec<IpcRequest>,
}

impl Link {
    /// Connects as this project's links do: GHIDs as they are.
    async fn connect(addr: &str) -> Self {
        let mut req = format!("ws://{addr}/").into_client_request().expect("url");
        req.headers_mut().insert(
            "sec-websocket-protocol",
            NATIVE_GHIDS_SUBPROTOCOL.parse().expect("header"),
        );
        let (ws, resp) = tokio_tungstenite::connect_async(req)
            .await
            .expect("connect");
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(NATIVE_GHIDS_SUBPROTOCOL),
            "the service accepts the native-GHID subprotocol"
        );
        Self {
            ws,
            token: 0,
            pushes: Vec::new(),
        }
    }

    async fn call(&mut self, request: IpcRequest) -> IpcMessage {
        self.try_call(request).await.expect("an answer in time")
    }

    /// [`Link::call`], with `None` once the service is gone (or silent for
    /// 20 s) instead of a panic.
    async fn try_call(&mut self, request: IpcRequest) -> Option<IpcMessage> {
        self.token += 1;
        let token = self.token;
        let m = IpcMessage::Request { token, request };
        self.ws.send(Ws::Binary(m.encode().into())).await.ok()?;
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .ok()??
                .ok()?;
            let Ws::Binary(b) = msg else { continue };
            match IpcMessage::decode(Side::Service, &b).expect("valid IPC") {
                IpcMessage::Request { token: t, request } => {
                    let ack = IpcMessage::Ack {
                        token: t,
                        body: vec![1],
                    };
                    self.ws.send(Ws::Binary(ack.encode().into())).await.ok()?;
                    self.pushes.push(request);
                }
                m @ (IpcMessage::Ack { token: t, .. } | IpcMessage::Nak { token: t, .. })
                    if t == token =>
                {
                    return Some(m)
                }
                _ => {}
            }
        }
    }
}

fn ghid(m: IpcMessage) -> Ghid {
    match m {
        IpcMessage::Ack { body, .. } => Ghid::from_bytes(&body).expect("ghid"),
        other => panic!("{other:?}"),
    }
}

fn objdef(address: Option<Ghid>, state: &[u8]) -> WireObjDef {
    WireObjDef {
        address,
        author: None,
        private: false,
        dynamic: address.is_none(),
        legroom: 7,
        api_id: address.is_none().then(ApiId::default_bytes),
        is_link: false,
        state: state.to_vec(),
    }
}

async fn state_of(link: &mut Link, g: Ghid) -> Vec<u8> {
    match link.call(IpcRequest::GetObject(g)).await {
        IpcMessage::Ack { body, .. } => WireObjDef::parse(*b"AK", &body).expect("objdef").state,
        other => panic!("{other:?}"),
    }
}

async fn scenario(native: bool) {
    let dir = tempdir(if native { "native" } else { "wasm" });
    let svc = Svc::start(&dir, native);
    let user_id = svc.user_id.expect("the first start creates an account");
    let mut a = Link::connect(&svc.addr).await;
    let me = ghid(a.call(IpcRequest::Whoami).await);
    let token = match a.call(IpcRequest::SetToken(AppToken::NULL)).await {
        IpcMessage::Ack { body, .. } => AppToken(body.as_slice().try_into().expect("token")),
        other => panic!("{other:?}"),
    };
    let g = ghid(a.call(IpcRequest::NewObject(objdef(None, b"v0"))).await);
    // A second app tracking the object is pushed a's updates.
    let mut b = Link::connect(&svc.addr).await;
    assert_eq!(state_of(&mut b, g).await, b"v0");
    for i in 1..=20u8 {
        assert!(matches!(
            a.call(IpcRequest::UpdateObject(objdef(Some(g), &[i])))
                .await,
            IpcMessage::Ack { .. }
        ));
    }
    // b learns by a push; round trip through b's own request to flush.
    b.call(IpcRequest::Whoami).await;
    assert!(b
        .pushes
        .iter()
        .any(|p| matches!(p, IpcRequest::PushUpdate(o) if o.state == [20])));
    // A token is live on one connection at a time.
    assert!(matches!(
        b.call(IpcRequest::SetToken(token)).await,
        IpcMessage::Nak {
            code: Some(IpcErrorCode::IpcError),
            ..
        }
    ));

    // A web page cannot connect.
    let mut req = format!("ws://{}/", svc.addr)
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("Origin", "https://evil.example".parse().expect("header"));
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
    // Nor one whose Origin is not even text.
    let mut req = format!("ws://{}/", svc.addr)
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "Origin",
        tokio_tungstenite::tungstenite::http::HeaderValue::from_bytes(b"https://\xffevil")
            .expect("header"),
    );
    assert!(tokio_tungstenite::connect_async(req).await.is_err());

    // kill -9 right after an acknowledged update; everything survives.
    a.call(IpcRequest::UpdateObject(objdef(Some(g), b"last")))
        .await;
    svc.kill9();
    let svc = Svc::start(&dir, native);
    assert_eq!(
        svc.user_id,
        Some(user_id),
        "a restart keeps the same account"
    );
    let mut c = Link::connect(&svc.addr).await;
    assert_eq!(ghid(c.call(IpcRequest::Whoami).await), me);
    assert_eq!(state_of(&mut c, g).await, b"last");
    // The token is known again after the restart.
    assert!(matches!(
        c.call(IpcRequest::SetToken(token)).await,
        IpcMessage::Ack { .. }
    ));
}

#[tokio::test]
async fn local_service_with_the_engine_in_wasmtime() {
    scenario(false).await;
}

#[tokio::test]
async fn local_service_with_the_native_engine() {
    scenario(true).await;
}

/// Apps at once, creating and updating objects, while the service is killed
/// with -9: every object whose creation was acknowledged is there after the
/// restart, in the state last acknowledged (or the one in flight at the
/// kill). The service joins the steps of events queued together into one
/// store write (group commit); this is the test of it under concurrency.
#[tokio::test]
async fn concurrent_apps_lose_nothing_acknowledged_to_a_kill_9() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    const APPS: usize = 4;
    const KILL_AFTER: usize = 240;
    let dir = tempdir("group-commit");
    let svc = Svc::start(&dir, false);
    // (address, last acknowledged state, state in flight)
    type Seen = Vec<(Ghid, Vec<u8>, Option<Vec<u8>>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let acked = Arc::new(AtomicUsize::new(0));
    // Told the moment the KILL_AFTER-th answer is recorded: the kill then
    // lands while the service is still busy with what came after it.
    let kill_now = Arc::new(tokio::sync::Notify::new());
    let mut apps = Vec::new();
    for app in 0..APPS {
        let mut link = Link::connect(&svc.addr).await;
        assert!(matches!(
            link.call(IpcRequest::SetToken(AppToken::NULL)).await,
            IpcMessage::Ack { .. }
        ));
        let (seen, acked, kill_now) = (seen.clone(), acked.clone(), kill_now.clone());
        let answered = move || {
            if acked.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                kill_now.notify_one();
            }
        };
        apps.push(tokio::spawn(async move {
            for i in 0u32.. {
                let state = format!("app {app} object {i}").into_bytes();
                let body = match link
                    .try_call(IpcRequest::NewObject(objdef(None, &state)))
                    .await
                {
                    Some(IpcMessage::Ack { body, .. }) => body,
                    Some(other) => panic!("a create refused: {other:?}"),
                    // The service was killed.
                    None => return,
                };
                let g = Ghid::from_bytes(&body).expect("ghid");
                let at = {
                    let mut s = seen.lock().expect("lock");
                    s.push((g, state, None));
                    s.len() - 1
                };
                answered();
                let next = format!("app {app} object {i} updated").into_bytes();
                seen.lock().expect("lock")[at].2 = Some(next.clone());
                match link
                    .try_call(IpcRequest::UpdateObject(objdef(Some(g), &next)))
                    .await
                {
                    Some(IpcMessage::Ack { .. }) => {}
                    Some(other) => panic!("an update refused: {other:?}"),
                    None => return,
                }
                let mut s = seen.lock().expect("lock");
                s[at].1 = next;
                s[at].2 = None;
                drop(s);
                answered();
            }
        }));
    }
    tokio::time::timeout(Duration::from_secs(60), kill_now.notified())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the apps got {} answers in a minute",
                acked.load(Ordering::SeqCst)
            )
        });
    svc.kill9();
    for a in apps {
        a.await.expect("an app task");
    }
    let seen = std::mem::take(&mut *seen.lock().expect("lock"));
    assert!(seen.len() >= KILL_AFTER / 2, "{} objects", seen.len());

    let svc = Svc::start(&dir, false);
    let mut c = Link::connect(&svc.addr).await;
    for (g, last, in_flight) in &seen {
        let now = state_of(&mut c, *g).await;
        assert!(
            &now == last || Some(&now) == in_flight.as_ref(),
            "{g}: {:?}, acknowledged {:?}",
            String::from_utf8_lossy(&now),
            String::from_utf8_lossy(last)
        );
    }
}

/// Waits (bounded) until `link` has a push matching `f`, making round trips
/// so that pushes are read.
async fn wait_push(link: &mut Link, f: impl Fn(&IpcRequest) -> bool) {
    for _ in 0..200 {
        if link.pushes.iter().any(&f) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        link.call(IpcRequest::Whoami).await;
    }
    panic!("the push never came: {:?}", link.pushes);
}

#[tokio::test]
async fn two_agents_share_through_a_persistence_server() {
    let dir = tempdir("two-agents");
    let server = Server::start(&dir.join("server.redb"), &[]);
    let remote = format!("ws://{}/", server.addr);
    let (da, db) = (dir.join("a"), dir.join("b"));
    let svc_a = Svc::start_with(&da, false, &["--remote", &remote]);
    let svc_b = Svc::start_with(&db, false, &["--remote", &remote]);
    let mut a = Link::connect(&svc_a.addr).await;
    let mut b = Link::connect(&svc_b.addr).await;
    let bob = ghid(b.call(IpcRequest::Whoami).await);
    let api = ApiId::default_bytes();
    b.call(IpcRequest::RegisterApi(api)).await;
    a.call(IpcRequest::SetToken(AppToken::NULL)).await;
    let g = ghid(a.call(IpcRequest::NewObject(objdef(None, b"hello"))).await);
    assert!(matches!(
        a.call(IpcRequest::ShareObject {
            address: g,
            recipient: bob
        })
        .await,
        IpcMessage::Ack { .. }
    ));
    wait_push(
        &mut b,
        |p| matches!(p, IpcRequest::PushShare { address, .. } if *address == g),
    )
    .await;
    assert_eq!(state_of(&mut b, g).await, b"hello");
    wait_push(
        &mut a,
        |p| matches!(p, IpcRequest::ShareSuccess { address, .. } if *address == g),
    )
    .await;
    for i in 0..10u8 {
        a.call(IpcRequest::UpdateObject(objdef(Some(g), &[i])))
            .await;
    }
    wait_push(
        &mut b,
        |p| matches!(p, IpcRequest::PushUpdate(o) if o.state == [9]),
    )
    .await;

    // kill -9 Alice's service after an acknowledged update; after the
    // restart the update is there and still reaches Bob.
    a.call(IpcRequest::UpdateObject(objdef(Some(g), b"after")))
        .await;
    svc_a.kill9();
    let svc_a = Svc::start_with(&da, false, &["--remote", &remote]);
    let mut a = Link::connect(&svc_a.addr).await;
    assert_eq!(state_of(&mut a, g).await, b"after");
    wait_push(
        &mut b,
        |p| matches!(p, IpcRequest::PushUpdate(o) if o.state == b"after"),
    )
    .await;
    // Delete reaches Bob.
    a.call(IpcRequest::DeleteObject(g)).await;
    wait_push(
        &mut b,
        |p| matches!(p, IpcRequest::PushDelete(x) if *x == g),
    )
    .await;
    drop(svc_b);
}

#[tokio::test]
async fn a_second_device_logs_in_by_password() {
    let dir = tempdir("second-device");
    let server = Server::start(&dir.join("server.redb"), &[]);
    let remote = format!("ws://{}/", server.addr);
    let laptop = Svc::start_with(&dir.join("laptop"), false, &["--remote", &remote]);
    let user = laptop.user_id.expect("user id").to_string();
    let mut a = Link::connect(&laptop.addr).await;
    let g = ghid(a.call(IpcRequest::NewObject(objdef(None, b"mine"))).await);
    let more: Vec<(Ghid, Vec<u8>)> = {
        let mut v = Vec::new();
        for i in 0..20u8 {
            let state = vec![i; 100];
            v.push((
                ghid(a.call(IpcRequest::NewObject(objdef(None, &state))).await),
                state,
            ));
        }
        v
    };
    // Once a share sent after them reaches another agent, the server
    // holds the objects and the account state that lists them (one
    // connection, handled in order).
    let friend = Svc::start_with(&dir.join("friend"), true, &["--remote", &remote]);
    let mut f = Link::connect(&friend.addr).await;
    let bob = ghid(f.call(IpcRequest::Whoami).await);
    f.call(IpcRequest::RegisterApi(ApiId::default_bytes()))
        .await;
    let (last, _) = more[more.len() - 1];
    // (Retried while the friend's identity is on its way to the server.)
    for i in 0.. {
        let shared = a
            .call(IpcRequest::ShareObject {
                address: last,
                recipient: bob,
            })
            .await;
        match shared {
            IpcMessage::Ack { .. } => break,
            IpcMessage::Nak {
                code: Some(IpcErrorCode::UnknownRecipient),
                ..
            } if i < 400 => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            other => panic!("share: {other:?}"),
        }
    }
    wait_push(
        &mut f,
        |p| matches!(p, IpcRequest::PushShare { address, .. } if *address == last),
    )
    .await;

    // The wrong password: the service says so and exits with failure.
    let mut bad = Command::new(env!("CARGO_BIN_EXE_hypergolix"))
        .args([
            "start",
            "--ipc",
            "127.0.0.1:0",
            "--insecure-test-kdf",
            "--native-engine",
        ])
        .arg("--data-dir")
        .arg(dir.join("thief"))
        .args(["--remote", &remote, "--login", &user])
        .env("HYPERGOLIX_PASSWORD", "wrong")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut exited = None;
    for _ in 0..300 {
        if let Some(st) = bad.try_wait().expect("wait") {
            exited = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = bad.kill();
    let status = exited.expect("the service stops on a wrong password");
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut bad.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    assert!(err.contains("wrong password"), "{err}");

    // The right password on a new device: same agent, same objects.
    let phone = Svc::start_with(
        &dir.join("phone"),
        false,
        &["--remote", &remote, "--login", &user],
    );
    // `start --login` lets apps in once the account's objects are read:
    // the first request for each is answered.
    let mut p = Link::connect(&phone.addr).await;
    for (o, want) in std::iter::once((g, b"mine".to_vec())).chain(more) {
        match p.call(IpcRequest::GetObject(o)).await {
            IpcMessage::Ack { body, .. } => {
                assert_eq!(
                    WireObjDef::parse(*b"AK", &body).expect("objdef").state,
                    want
                );
            }
            other => panic!("the phone's first GetObject of {o}: {other:?}"),
        }
    }
    assert_eq!(
        ghid(p.call(IpcRequest::Whoami).await),
        ghid(a.call(IpcRequest::Whoami).await)
    );
    // An update on the laptop reaches the phone's app.
    a.call(IpcRequest::UpdateObject(objdef(Some(g), b"synced")))
        .await;
    wait_push(
        &mut p,
        |q| matches!(q, IpcRequest::PushUpdate(o) if o.state == b"synced"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_rate_limit_get_a_clear_nak() {
    let dir = tempdir("rate");
    let svc = Svc::start_with(&dir, true, &["--max-requests-per-second", "20"]);
    let mut link = Link::connect(&svc.addr).await;
    // 200 requests at once: the burst (40) passes, the rest are refused,
    // and every one is answered.
    for token in 0..200u16 {
        let m = IpcMessage::Request {
            token,
            request: IpcRequest::Whoami,
        };
        link.ws
            .send(Ws::Binary(m.encode().into()))
            .await
            .expect("send");
    }
    let (mut acked, mut refused) = (0, 0);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 200 {
        let Some(Ok(Ws::Binary(b))) = link.ws.next().await else {
            continue;
        };
        match IpcMessage::decode(Side::Service, &b).expect("decode") {
            IpcMessage::Ack { token, .. } => {
                acked += 1;
                seen.insert(token);
            }
            IpcMessage::Nak {
                token,
                code,
                message,
            } => {
                assert_eq!(code, Some(IpcErrorCode::IpcError));
                assert!(message.contains("rate limit"), "{message}");
                refused += 1;
                seen.insert(token);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!((40..=60).contains(&acked), "{acked} passed");
    assert_eq!(acked + refused, 200);
    // Answers to pushes do not count: 500 stray AKs, then a request passes.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for token in 0..500u16 {
        let m = IpcMessage::Ack {
            token,
            body: vec![1],
        };
        link.ws
            .send(Ws::Binary(m.encode().into()))
            .await
            .expect("send");
    }
    assert!(matches!(
        link.call(IpcRequest::Whoami).await,
        IpcMessage::Ack { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_closes_with_1009_and_the_reason() {
    let dir = tempdir("size");
    let svc = Svc::start_with(&dir, true, &["--max-message-bytes", "4096"]);
    let mut link = Link::connect(&svc.addr).await;
    // Under the limit: answered.
    assert!(matches!(
        link.call(IpcRequest::Whoami).await,
        IpcMessage::Ack { .. }
    ));
    let big = IpcMessage::Request {
        token: 9,
        request: IpcRequest::NewObject(objdef(None, &[0u8; 8192])),
    };
    link.ws
        .send(Ws::Binary(big.encode().into()))
        .await
        .expect("send");
    let close = loop {
        match link.ws.next().await {
            Some(Ok(Ws::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let frame = close.expect("a close frame with a code");
    assert_eq!(u16::from(frame.code), 1009);
    assert!(frame.reason.contains("4096"), "{}", frame.reason);
}
