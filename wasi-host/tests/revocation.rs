//! Taking access back between real processes (`docs/protocol/revocation.md`):
//! one `hypergolix serve`, Alice's two devices, Bob and Carol, each a
//! `hypergolix start` service (engine in wasmtime) driven through the Rust
//! link. Alice shares with Bob and Carol and unshares Bob: Bob's service
//! receives the next frames and cannot read them (its metrics count them),
//! his app hears nothing new; Carol reads everything; Alice's second device
//! keeps writing under the new key; sharing with Bob again works from then
//! on. Deleting a static object reaches both recipients.

#[path = "support/serve_proc.rs"]
mod serve_proc;
#[path = "support/service_proc.rs"]
mod service_proc;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hypergolix_link::{ApiId, AppObj, HypergolixLink, LinkError, NewObj, Share};
use serve_proc::{http_get, tempdir, Server};
use service_proc::Svc;

const WAIT: Duration = Duration::from_secs(30);

/// Waits until `f` holds (polling), or fails with `what`.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < WAIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `hypergolix_service_unreadable_frames_total` of a service.
fn unreadable_frames(svc: &Svc) -> u64 {
    let addr = svc.metrics.as_deref().expect("metrics address");
    let (code, body) = http_get(addr, "/metrics");
    assert_eq!(code, 200, "{body}");
    body.lines()
        .find_map(|l| l.strip_prefix("hypergolix_service_unreadable_frames_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no unreadable_frames counter in\n{body}"))
}

/// An app of a recipient: every share it is told of, as an `AppObj`.
async fn recipient_app(svc: &Svc, api: ApiId) -> (HypergolixLink, mpsc::Receiver<(Share, AppObj)>) {
    let link = HypergolixLink::connect(&svc.addr).await.expect("link");
    link.new_token().await.expect("token");
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let l2 = link.clone();
    link.register_api(api, move |share| {
        let obj = l2
            .get_threadsafe(share.address)
            .expect("get the shared object");
        let _ = tx.lock().expect("lock").send((share, obj));
    })
    .await
    .expect("register api");
    (link, rx)
}

async fn next_share(
    rx: mpsc::Receiver<(Share, AppObj)>,
) -> (AppObj, mpsc::Receiver<(Share, AppObj)>) {
    tokio::task::spawn_blocking(move || {
        let (_, obj) = rx.recv_timeout(WAIT).expect("the share arrives");
        (obj, rx)
    })
    .await
    .expect("join")
}

/// Every state a callback of `obj` was called with.
fn record(obj: &AppObj) -> Arc<Mutex<Vec<Vec<u8>>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    obj.append_callback(move |o| s2.lock().expect("lock").push(o.state()));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unshare_between_real_services() {
    let dir = tempdir("revocation");
    let server = Server::start(&dir.join("server.redb"), &[]);
    let remote = format!("ws://{}/", server.addr);
    let metrics = ["--metrics", "127.0.0.1:0"];
    let svc_a = Svc::start_with(&dir.join("a"), false, &["--remote", &remote]);
    let user_a = svc_a.user_id.expect("user id").to_string();
    let svc_a2 = Svc::start_with(
        &dir.join("a2"),
        false,
        &["--remote", &remote, "--login", &user_a],
    );
    let svc_b = Svc::start_with(
        &dir.join("b"),
        false,
        &["--remote", &remote, metrics[0], metrics[1]],
    );
    let svc_c = Svc::start_with(&dir.join("c"), false, &["--remote", &remote]);

    let api = ApiId::from_app_bytes([0x33; 64]);
    let a = HypergolixLink::connect(&svc_a.addr).await.expect("link A");
    a.new_token().await.expect("token");
    let (b, b_shares) = recipient_app(&svc_b, api).await;
    let (c, c_shares) = recipient_app(&svc_c, api).await;
    let (bob, carol) = (b.whoami(), c.whoami());

    let obj = a
        .new_obj(
            b"v1".to_vec(),
            NewObj {
                api_id: api,
                ..NewObj::default()
            },
        )
        .await
        .expect("new");
    obj.share(bob).await.expect("share with Bob");
    obj.share(carol).await.expect("share with Carol");
    let (on_b, b_shares) = next_share(b_shares).await;
    let (on_c, c_shares) = next_share(c_shares).await;
    assert_eq!(
        (on_b.state(), on_c.state()),
        (b"v1".to_vec(), b"v1".to_vec())
    );
    let (seen_b, seen_c) = (record(&on_b), record(&on_c));
    let mut with = obj.shared_with().await.expect("shared with");
    with.sort();
    let mut want = vec![bob, carol];
    want.sort();
    assert_eq!(with, want);

    // Only the owner can take a share back.
    assert!(matches!(
        on_c.unshare(bob).await,
        Err(LinkError::NotMutable(_))
    ));
    let locked_before = unreadable_frames(&svc_b);
    obj.unshare(bob).await.expect("unshare Bob");
    assert_eq!(obj.shared_with().await.expect("shared with"), vec![carol]);
    obj.set_state(b"v2 for Carol".to_vec())
        .await
        .expect("update");
    until("Carol reads v2", || on_c.state() == b"v2 for Carol").await;
    until("Bob's service received frames it cannot read", || {
        unreadable_frames(&svc_b) > locked_before
    })
    .await;
    let locked_after_v2 = unreadable_frames(&svc_b);

    // Alice's phone writes under the new key.
    let a2 = HypergolixLink::connect(&svc_a2.addr)
        .await
        .expect("link A2");
    a2.new_token().await.expect("token");
    let on_a2 = a2.get(obj.address()).await.expect("get on the phone");
    assert_eq!(on_a2.shared_with().await.expect("shared with"), vec![carol]);
    on_a2
        .set_state(b"v3 from the phone".to_vec())
        .await
        .expect("update on the phone");
    until("Carol reads v3", || on_c.state() == b"v3 from the phone").await;
    until("Alice's laptop reads v3", || {
        obj.state() == b"v3 from the phone"
    })
    .await;
    until("Bob's service received v3 unreadable", || {
        unreadable_frames(&svc_b) > locked_after_v2
    })
    .await;
    assert_eq!(
        on_b.state(),
        b"v1",
        "Bob's app saw a state after the unshare"
    );
    assert!(
        seen_b.lock().expect("lock").is_empty(),
        "Bob's callbacks ran after the unshare: {:?}",
        seen_b.lock().expect("lock")
    );

    // Shared with Bob again: he reads from then on.
    obj.share(bob).await.expect("share with Bob again");
    let t0 = Instant::now();
    while !on_a2
        .shared_with()
        .await
        .expect("shared with")
        .contains(&bob)
    {
        assert!(t0.elapsed() < WAIT, "the phone sees Bob shared again");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    on_a2
        .set_state(b"v4 for both".to_vec())
        .await
        .expect("update");
    until("Bob reads v4", || on_b.state() == b"v4 for both").await;
    until("Carol reads v4", || on_c.state() == b"v4 for both").await;
    assert_eq!(
        seen_b.lock().expect("lock").last().map(Vec::as_slice),
        Some(&b"v4 for both"[..])
    );
    assert!(seen_c
        .lock()
        .expect("lock")
        .contains(&b"v2 for Carol".to_vec()));

    // Deleting a static object reaches every recipient.
    let note = a
        .new_obj(
            b"a static note".to_vec(),
            NewObj {
                api_id: api,
                dynamic: false,
                ..NewObj::default()
            },
        )
        .await
        .expect("static");
    note.share(bob).await.expect("share");
    note.share(carol).await.expect("share");
    let (note_b, _) = next_share(b_shares).await;
    let (note_c, _) = next_share(c_shares).await;
    assert!(matches!(
        note.unshare(bob).await,
        Err(LinkError::NotMutable(_))
    ));
    note.delete().await.expect("delete");
    until("Bob's copy is deleted", || !note_b.is_alive()).await;
    until("Carol's copy is deleted", || !note_c.is_alive()).await;
}
