//! What the browser tests share: the engine-local store conformance cases
//! on IndexedDB, and an app session that speaks IPC to a `WebEngine`.
#![allow(dead_code)]

use futures_channel::mpsc::{unbounded, UnboundedReceiver};
use futures_util::StreamExt;
use hypergolix_core::engine::store_conformance::{cases, check, Step};
use hypergolix_core::wire::ipc::{IpcMessage, IpcRequest, Side};
use hypergolix_web::store::{LocalStore, StoreKind};
use hypergolix_web::WebEngine;
use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// A database name no other test run uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", js_sys::Math::random().to_bits())
}

/// Runs every conformance case on a fresh store of `kind` (memory stores
/// keep their contents over a "reopen": they have no other life).
pub async fn store_conformance(kind: StoreKind) {
    for (i, case) in cases().expect("cases").iter().enumerate() {
        let name = unique(&format!("hgx-conformance-{i}"));
        let mut store = Some(LocalStore::open(kind, &name).await.expect("open"));
        for (n, step) in case.steps.iter().enumerate() {
            match step {
                Step::Apply(ws) => store
                    .as_ref()
                    .expect("store")
                    .apply(ws, None)
                    .await
                    .unwrap_or_else(|e| panic!("{}: step {n}: {e}", case.name)),
                Step::Reopen if kind == StoreKind::IndexedDb => {
                    store.take().expect("store").close();
                    store = Some(LocalStore::open(kind, &name).await.expect("reopen"));
                }
                Step::Reopen => {}
                expectation => {
                    let loaded = store.as_ref().expect("store").load().await.expect("load");
                    if let Err(e) = check(expectation, &loaded) {
                        panic!("{}: step {n}: {e}", case.name);
                    }
                }
            }
        }
        store.take().expect("store").close();
        if kind == StoreKind::IndexedDb {
            LocalStore::destroy(&name)
                .await
                .expect("delete the database");
        }
    }
}

/// `open()` options.
pub fn options(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).expect("set");
    }
    o.into()
}

/// The `code` of a rejection.
pub fn code(e: &JsValue) -> String {
    Reflect::get(e, &"code".into())
        .ok()
        .and_then(|c| c.as_string())
        .unwrap_or_else(|| format!("no code: {e:?}"))
}

/// Awaits a promise the engine returned.
pub async fn settle(p: js_sys::Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

/// One app session on an engine, speaking IPC.
pub struct Session {
    pub id: u32,
    rx: UnboundedReceiver<Vec<u8>>,
    _on_message: Closure<dyn FnMut(JsValue)>,
    _on_close: Closure<dyn FnMut(JsValue)>,
    next: u16,
    /// Pushes seen while waiting for answers.
    pub pushes: Vec<IpcRequest>,
}

impl Session {
    pub fn open(engine: &WebEngine) -> Self {
        let (tx, rx) = unbounded();
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |b: JsValue| {
            let _ = tx.unbounded_send(js_sys::Uint8Array::new(&b).to_vec());
        });
        let on_close = Closure::<dyn FnMut(JsValue)>::new(|_| {});
        let id = engine
            .open_session(
                on_message.as_ref().unchecked_ref::<Function>().clone(),
                on_close.as_ref().unchecked_ref::<Function>().clone(),
            )
            .expect("session");
        Self {
            id,
            rx,
            _on_message: on_message,
            _on_close: on_close,
            next: 1,
            pushes: Vec::new(),
        }
    }

    /// Sends a request; returns the answer (`Ack` or `Nak`).
    pub async fn call(&mut self, engine: &WebEngine, request: IpcRequest) -> IpcMessage {
        let token = self.next;
        self.next += 1;
        engine
            .send(self.id, &IpcMessage::Request { token, request }.encode())
            .expect("send");
        loop {
            let b = self.rx.next().await.expect("the session closed");
            match IpcMessage::decode(Side::Service, &b).expect("a valid message") {
                m @ (IpcMessage::Ack { token: t, .. } | IpcMessage::Nak { token: t, .. })
                    if t == token =>
                {
                    return m
                }
                IpcMessage::Request { request, .. } => self.pushes.push(request),
                _ => {}
            }
        }
    }

    /// The body of an `Ack`, or a panic naming the `Nak`.
    pub async fn ok(&mut self, engine: &WebEngine, request: IpcRequest) -> Vec<u8> {
        match self.call(engine, request).await {
            IpcMessage::Ack { body, .. } => body,
            other => panic!("refused: {other:?}"),
        }
    }
}

fn new_object(state: &[u8]) -> IpcRequest {
    IpcRequest::NewObject(hypergolix_core::wire::ipc::WireObjDef {
        address: None,
        author: None,
        private: false,
        dynamic: true,
        legroom: 0,
        api_id: Some(hypergolix_core::engine::ApiId::default_bytes()),
        is_link: false,
        state: state.to_vec(),
    })
}

fn update(address: hypergolix_core::golix::Ghid, state: &[u8]) -> IpcRequest {
    IpcRequest::UpdateObject(hypergolix_core::wire::ipc::WireObjDef {
        address: Some(address),
        author: None,
        private: false,
        dynamic: true,
        legroom: 0,
        api_id: None,
        is_link: false,
        state: state.to_vec(),
    })
}

/// An engine on IndexedDB with no server reachable: refusals, an account,
/// objects made offline, and the account unlocked again after a close.
pub async fn engine_lifecycle() {
    use hypergolix_core::engine::AppToken;
    use hypergolix_core::golix::Ghid;
    use hypergolix_core::wire::ipc::WireObjDef;

    let db = unique("hgx-engine");
    // Nothing listens on the discard port: the engine works offline.
    let server: JsValue = "ws://127.0.0.1:9/".into();
    let base = |extra: &[(&str, JsValue)]| {
        let mut o = vec![
            ("server", server.clone()),
            ("database", JsValue::from(db.as_str())),
            ("onLog", js_sys::Function::new_no_args("").into()),
        ];
        o.extend_from_slice(extra);
        options(&o)
    };
    let pw: JsValue = "correct horse".into();

    let e = WebEngine::open(base(&[("password", pw.clone())]))
        .await
        .err()
        .expect("no account yet");
    assert_eq!(code(&e), "no_account");
    let e = WebEngine::open(base(&[
        ("password", pw.clone()),
        ("server", "http://x/".into()),
    ]))
    .await
    .err()
    .expect("not a ws URL");
    assert_eq!(code(&e), "bad_option");

    let engine = WebEngine::open(base(&[("password", pw.clone()), ("create", JsValue::TRUE)]))
        .await
        .expect("create an account");
    let user_id = engine.user_id().expect("user id");
    let identity = engine.identity().expect("identity");
    assert!(!engine.online());

    // One engine per database.
    let e = WebEngine::open(base(&[("password", pw.clone())]))
        .await
        .err()
        .expect("the database is in use");
    assert_eq!(code(&e), "in_use");

    let mut s = Session::open(&engine);
    let me = s.ok(&engine, IpcRequest::Whoami).await;
    assert_eq!(Ghid::from_bytes(&me).expect("ghid").to_text(), identity);
    let token = s.ok(&engine, IpcRequest::SetToken(AppToken::NULL)).await;
    assert_eq!(token.len(), 16);
    let address = s.ok(&engine, new_object(b"v1")).await;
    let address = Ghid::from_bytes(&address).expect("address");
    s.ok(&engine, update(address, b"v2 made offline")).await;
    let status = settle(engine.status()).await.expect("status");
    assert_eq!(
        Reflect::get(&status, &"synced".into()).ok(),
        Some(JsValue::FALSE)
    );
    settle(engine.close()).await.expect("close");
    assert!(engine.closed());
    assert_eq!(
        code(&engine.send(s.id, b"x").expect_err("closed")),
        "closed"
    );

    let e = WebEngine::open(base(&[("password", "wrong".into())]))
        .await
        .err()
        .expect("wrong password");
    assert_eq!(code(&e), "wrong_password");
    let said = Reflect::get(&e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_default();
    assert!(said.contains("changed on another device"), "{said}");
    let e = WebEngine::open(base(&[("password", pw.clone()), ("create", JsValue::TRUE)]))
        .await
        .err()
        .expect("an account is there");
    assert_eq!(code(&e), "has_account");
    let e = WebEngine::open(base(&[
        ("password", pw.clone()),
        ("userId", identity.clone().into()),
    ]))
    .await
    .err()
    .expect("another account");
    assert_eq!(code(&e), "other_account");

    // Unlocked again: the same account, the object as it was left.
    let engine = WebEngine::open(base(&[
        ("password", pw.clone()),
        ("userId", user_id.clone().into()),
    ]))
    .await
    .expect("unlock");
    assert_eq!(engine.user_id().as_deref(), Some(user_id.as_str()));
    let mut s = Session::open(&engine);
    let body = s.ok(&engine, IpcRequest::GetObject(address)).await;
    let def = WireObjDef::parse(*b"AK", &body).expect("object");
    assert_eq!(def.state, b"v2 made offline");
    // Offline, a password change is refused at once (it reads the account
    // from the server first) and changes nothing. With a server, the lock
    // follows it: pkg's browser test.
    let e = settle(engine.change_password(pw.as_string().expect("text"), "battery staple".into()))
        .await
        .expect_err("offline");
    assert_eq!(code(&e), "not_ready");
    settle(engine.close()).await.expect("close");
    let engine = WebEngine::open(base(&[("password", pw.clone())]))
        .await
        .expect("the password is unchanged");
    settle(engine.close()).await.expect("close");
    WebEngine::delete_database(db).await.expect("delete");
}
