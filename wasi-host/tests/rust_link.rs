//! The Rust link (`hypergolix-link`) against real processes: two services
//! (engine in wasmtime) and one `hypergolix serve`, two agents, the scenario
//! of the original README with every link operation, async and blocking.

#[path = "support/serve_proc.rs"]
mod serve_proc;
#[path = "support/service_proc.rs"]
mod service_proc;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hypergolix_core::golix::address::AddressAlgorithm;
use hypergolix_link::{ApiId, AppObj, HypergolixLink, LinkError, NewObj, Share};
use serve_proc::{tempdir, Server};
use service_proc::Svc;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_link_covers_the_original_api_between_two_agents() {
    let dir = tempdir("rust-link");
    let server = Server::start(&dir.join("server.redb"), &[]);
    let remote = format!("ws://{}/", server.addr);
    let svc_a = Svc::start_with(&dir.join("a"), false, &["--remote", &remote]);
    let svc_b = Svc::start_with(&dir.join("b"), false, &["--remote", &remote]);

    // No service there: a clear error, not a hang.
    match HypergolixLink::connect("127.0.0.1:9").await {
        Err(LinkError::Connect { why, .. }) => assert!(!why.is_empty()),
        other => panic!("{other:?}"),
    }

    let a = HypergolixLink::connect(&svc_a.addr).await.expect("link A");
    let b = HypergolixLink::connect(&svc_b.addr).await.expect("link B");
    assert_ne!(a.whoami(), b.whoami());
    assert_eq!(
        a.whoami().algorithm(),
        AddressAlgorithm::Blake2b512,
        "the Rust link sees GHIDs as they are"
    );
    assert!(matches!(
        a.new_obj(
            b"x".to_vec(),
            NewObj {
                private: true,
                ..NewObj::default()
            }
        )
        .await,
        Err(LinkError::NoToken)
    ));
    let token_a = a.new_token().await.expect("token A");
    b.new_token().await.expect("token B");
    assert_eq!(a.token(), Some(token_a));

    // B's share handler runs on the callback thread and may block on the link.
    let api = ApiId::from_app_bytes([7; 64]);
    let (shared_tx, shared_rx) = mpsc::channel::<(Share, AppObj)>();
    let shared_tx = Mutex::new(shared_tx);
    let b2 = b.clone();
    b.register_api(api, move |share| {
        let obj = b2
            .get_threadsafe(share.address)
            .expect("get in the handler");
        let _ = shared_tx.lock().expect("lock").send((share, obj));
    })
    .await
    .expect("register api");
    let results = Arc::new(Mutex::new(Vec::new()));
    let r2 = Arc::clone(&results);
    a.on_share_result(move |r| r2.lock().expect("lock").push(r));

    // Static and dynamic objects.
    let opts = NewObj {
        api_id: api,
        ..NewObj::default()
    };
    let stat = a
        .new_obj(
            b"static".to_vec(),
            NewObj {
                dynamic: false,
                ..opts
            },
        )
        .await
        .expect("static");
    assert!(!stat.is_dynamic() && !stat.is_mutable() && stat.is_owned());
    assert!(matches!(
        stat.set_state(b"no".to_vec()).await,
        Err(LinkError::NotMutable(_))
    ));
    let obj = a.new_obj(b"v0".to_vec(), opts).await.expect("dynamic");
    assert!(obj.is_dynamic() && obj.is_mutable() && obj.is_owned());
    assert_eq!((obj.author(), obj.api_id()), (a.whoami(), api));
    assert_eq!(a.get(obj.address()).await.expect("get").state(), b"v0");

    // Share: B's handler gets it with A as the origin.
    obj.share(b.whoami()).await.expect("share");
    let (share, on_b) = tokio::task::spawn_blocking(move || shared_rx.recv_timeout(WAIT))
        .await
        .expect("join")
        .expect("B is told of the share");
    assert_eq!(
        (share.address, share.origin, share.api_id),
        (obj.address(), a.whoami(), api)
    );
    assert_eq!(on_b.state(), b"v0");
    assert!(!on_b.is_owned() && !on_b.is_mutable());
    assert!(matches!(
        on_b.set_state(b"evil".to_vec()).await,
        Err(LinkError::NotMutable(_))
    ));

    // Callbacks: order (prepend/append), removal, updates arriving.
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (s1, s2, s3) = (Arc::clone(&seen), Arc::clone(&seen), Arc::clone(&seen));
    let (upd_tx, upd_rx) = mpsc::channel::<Vec<u8>>();
    let upd_tx = Mutex::new(upd_tx);
    on_b.append_callback(move |o| {
        s1.lock()
            .expect("lock")
            .push(format!("second {:?}", o.state()));
        let _ = upd_tx.lock().expect("lock").send(o.state());
    });
    on_b.prepend_callback(move |_| s2.lock().expect("lock").push("first".into()));
    let gone = on_b.append_callback(move |_| s3.lock().expect("lock").push("removed".into()));
    assert!(on_b.remove_callback(gone));
    assert!(!on_b.remove_callback(gone));
    for i in 1..=5u8 {
        obj.set_state(vec![b'v', b'0' + i]).await.expect("update");
    }
    let upd_rx = tokio::task::spawn_blocking(move || loop {
        let s = upd_rx.recv_timeout(WAIT).expect("B's callback fires");
        if s == b"v5" {
            return upd_rx;
        }
    })
    .await
    .expect("join");
    assert_eq!(on_b.state(), b"v5");
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.first().map(String::as_str), Some("first"));
        assert!(!seen.iter().any(|s| s == "removed"));
    }

    // Freeze, hold, sync, link objects.
    let frozen = obj.freeze().await.expect("freeze");
    assert!(!frozen.is_dynamic());
    assert_eq!(frozen.state(), b"v5");
    on_b.hold().await.expect("hold");
    on_b.sync().await.expect("sync");
    let pointer = a.new_link(obj.address(), opts).await.expect("link object");
    assert!(pointer.is_link());
    assert_eq!(pointer.link_address(), Some(obj.address()));

    // Private objects never cross tokens.
    let secret = a
        .new_obj(
            b"diary".to_vec(),
            NewObj {
                private: true,
                ..opts
            },
        )
        .await
        .expect("private");
    assert!(matches!(
        secret.share(b.whoami()).await,
        Err(LinkError::NotMutable(_))
    ));
    let other_app = HypergolixLink::connect(&svc_a.addr)
        .await
        .expect("second app");
    other_app.new_token().await.expect("token");
    assert!(matches!(
        other_app.get(secret.address()).await,
        Err(LinkError::Refused { .. })
    ));

    // Delete: B's callbacks run once more with the object dead.
    obj.delete().await.expect("delete");
    assert!(!obj.is_alive());
    assert!(matches!(
        obj.set_state(b"x".to_vec()).await,
        Err(LinkError::DeadObject)
    ));
    let on_b2 = on_b.clone();
    tokio::task::spawn_blocking(move || {
        let t0 = std::time::Instant::now();
        while on_b2.is_alive() {
            assert!(t0.elapsed() < WAIT, "B sees the delete");
            let _ = upd_rx.recv_timeout(Duration::from_millis(50));
        }
    })
    .await
    .expect("join");

    // Discard on B's side, and the share outcome reported to A.
    let second = a.new_obj(b"s".to_vec(), opts).await.expect("new");
    second.share(b.whoami()).await.expect("share");
    let t0 = std::time::Instant::now();
    while !results
        .lock()
        .expect("lock")
        .iter()
        .any(|r| r.address == second.address())
    {
        assert!(t0.elapsed() < WAIT, "A is told the share succeeded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(results.lock().expect("lock").iter().all(|r| r.delivered));
    let on_b_second = b.get(second.address()).await.expect("get");
    on_b_second.discard().await.expect("discard");
    assert!(!on_b_second.is_alive());
    b.deregister_api(api).await.expect("deregister api");
    // Startup object and reconnecting with the token: blocking API from a
    // plain thread.
    a.register_startup(&stat).await.expect("startup");
    a.stop();
    assert!(matches!(
        a.get(stat.address()).await,
        Err(LinkError::Stopped)
    ));
    let addr_a = svc_a.addr.clone();
    let expect = stat.address();
    tokio::task::spawn_blocking(move || {
        let again = HypergolixLink::connect_threadsafe(&addr_a).expect("reconnect");
        // The service frees the token when it sees the old connection
        // close, which may come just after the new connection's request.
        let t0 = std::time::Instant::now();
        let start = loop {
            match again.set_token_threadsafe(token_a) {
                Err(LinkError::Refused { message, .. })
                    if message.contains("in use") && t0.elapsed() < WAIT =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => break other.expect("set token"),
            }
        };
        assert_eq!(start, Some(expect));
        let o = again.get_threadsafe(expect).expect("get");
        assert_eq!(o.state(), b"static");
        assert_eq!(
            again
                .get_threadsafe(secret.address())
                .expect("own private")
                .state(),
            b"diary"
        );
        again.deregister_startup_threadsafe().expect("deregister");
        assert_eq!(again.startup_threadsafe().expect("startup"), None);
    })
    .await
    .expect("blocking part");

    drop(svc_a);
    drop(svc_b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_comes_back_after_the_service_restarts() {
    let dir = tempdir("rust-link-restart");
    let svc = Svc::start(&dir, true);
    let addr = svc.addr.clone();
    let writer = HypergolixLink::connect(&addr).await.expect("writer app");
    let reader = HypergolixLink::connect(&addr).await.expect("reader app");
    writer.new_token().await.expect("token");
    reader.new_token().await.expect("token");
    let obj = writer
        .new_obj(b"before".to_vec(), NewObj::default())
        .await
        .expect("new");
    let on_reader = reader.get(obj.address()).await.expect("get");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let tx = Mutex::new(tx);
    on_reader.append_callback(move |o| {
        let _ = tx.lock().expect("lock").send(o.state());
    });

    // kill -9 and start again on the same port: both links reconnect on
    // their own, and the reader's object is tracked again.
    svc.kill9();
    let _svc = Svc::start_at(&dir, true, &addr, &[]);
    let t0 = std::time::Instant::now();
    loop {
        match obj.set_state(b"after".to_vec()).await {
            Ok(()) => break,
            Err(LinkError::Disconnected | LinkError::Timeout(_)) if t0.elapsed() < WAIT => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("update after the restart: {e}"),
        }
    }
    let got = tokio::task::spawn_blocking(move || loop {
        let s = rx
            .recv_timeout(WAIT)
            .expect("the reader's callback fires after the restart");
        if s == b"after" {
            return s;
        }
    })
    .await
    .expect("join");
    assert_eq!(got, b"after");
    assert_eq!(on_reader.state(), b"after");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The binary is relocatable: a copy in a directory of its own, started
/// from an unrelated working directory with no engine file and no build
/// tree in reach, runs the engine built into it under wasmtime and serves
/// an app; `selftest` there passes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_binary_serves_apps_from_any_directory() {
    let dir = tempdir("relocated");
    let bin = dir.join("opt/hypergolix/bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let exe = bin.join("hypergolix");
    // Copied by a child process: a file written here could be held open
    // for writing by a child another test forks meanwhile, and exec'ing
    // it would then fail with ETXTBSY.
    let cp = std::process::Command::new("cp")
        .arg(env!("CARGO_BIN_EXE_hypergolix"))
        .arg(&exe)
        .status()
        .expect("run cp");
    assert!(cp.success(), "copy the binary");
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("cwd");

    let selftest = std::process::Command::new(&exe)
        .arg("selftest")
        .current_dir(&elsewhere)
        .env("HYPERGOLIX_CACHE_DIR", dir.join("cache"))
        .env_remove("HYPERGOLIX_SELFTEST_WASM")
        .output()
        .expect("run the copy's selftest");
    let report = String::from_utf8_lossy(&selftest.stdout);
    assert!(selftest.status.success(), "{report}");
    assert!(report.contains(" passed, 0 failed"), "{report}");

    // Svc starts it in the data directory's parent: `elsewhere`.
    let svc = Svc::start_exe(&exe, &elsewhere.join("data"), false, "127.0.0.1:0", &[]);
    let link = HypergolixLink::connect(&svc.addr).await.expect("link");
    link.new_token().await.expect("token");
    let obj = link
        .new_obj(b"from anywhere".to_vec(), NewObj::default())
        .await
        .expect("new object");
    obj.set_state(b"updated".to_vec()).await.expect("update");
    let other = HypergolixLink::connect(&svc.addr)
        .await
        .expect("second link");
    let got = other.get(obj.address()).await.expect("get");
    assert_eq!(got.state(), b"updated");
}
