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
use hypergolix_link::{ApiId, AppObj, Callbacks, HypergolixLink, LinkError, NewObj, Share};
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
    // A recipient no server has heard of has a code of its own.
    let nobody = hypergolix_core::golix::Ghid::new(AddressAlgorithm::Blake2b512, [0x5a; 64]);
    assert!(matches!(
        obj.share(nobody).await,
        Err(LinkError::Refused {
            code: Some(hypergolix_core::wire::ipc::IpcErrorCode::UnknownRecipient),
            ..
        })
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

/// Waits on a blocking thread for the next message of `rx`.
async fn next<T: Send + 'static>(rx: &Arc<Mutex<mpsc::Receiver<T>>>, what: &'static str) -> T {
    let rx = Arc::clone(rx);
    tokio::task::spawn_blocking(move || rx.lock().expect("lock").recv_timeout(WAIT))
        .await
        .expect("join")
        .unwrap_or_else(|_| panic!("{what}"))
}

/// The original README's names, with its semantics: `app_token`,
/// `get_obj`, the link-level `*_obj` operations, `AppObj::from_*` with
/// callbacks and legroom, async callbacks on the link's runtime beside
/// threadsafe ones on its callback thread, `clear_*`, and a static
/// object's state set once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_names_keep_the_seed_semantics() {
    let dir = tempdir("rust-link-seed");
    let server = Server::start(&dir.join("server.redb"), &[]);
    let remote = format!("ws://{}/", server.addr);
    let svc_a = Svc::start_with(&dir.join("a"), false, &["--remote", &remote]);
    let svc_b = Svc::start_with(&dir.join("b"), false, &["--remote", &remote]);
    let a = HypergolixLink::connect(&svc_a.addr).await.expect("link A");
    let b = HypergolixLink::connect(&svc_b.addr).await.expect("link B");
    assert_eq!(a.app_token(), None);
    let token = a.new_token().await.expect("token A");
    assert_eq!(a.app_token(), Some(token));
    b.new_token().await.expect("token B");

    let api = ApiId::from_app_bytes([9; 64]);
    let (share_tx, share_rx) = mpsc::channel::<AppObj>();
    let share_tx = Mutex::new(share_tx);
    let share_rx = Arc::new(Mutex::new(share_rx));
    let b2 = b.clone();
    b.register_api(api, move |s| {
        let obj = b2
            .get_obj_threadsafe(s.address)
            .expect("get_obj in the handler");
        let _ = share_tx.lock().expect("lock").send(obj);
    })
    .await
    .expect("register api");

    // from_async with legroom and a callback already in place (the service
    // does not report legroom back, as 0.1.0 does not: core's tests check
    // the engine keeps it).
    let opts = NewObj {
        api_id: api,
        legroom: 3,
        ..NewObj::default()
    };
    let obj = AppObj::from_async(
        &a,
        b"v0".to_vec(),
        opts,
        Callbacks {
            threadsafe: vec![Arc::new(|_: &AppObj| {})],
            ..Callbacks::default()
        },
    )
    .await
    .expect("from_async");
    assert_eq!(obj.threadsafe_callbacks().len(), 1);
    assert_eq!(obj.legroom(), 3);
    assert_eq!(a.get_obj(obj.address()).await.expect("get").legroom(), 3);
    let other_app = HypergolixLink::connect(&svc_a.addr).await.expect("app 2");
    other_app.new_token().await.expect("token");
    let seen_there = other_app.get_obj(obj.address()).await.expect("get_obj");
    assert_eq!(
        (seen_there.legroom(), seen_there.state()),
        (0, b"v0".to_vec())
    );
    assert!(matches!(
        other_app.update_obj(&obj, b"x".to_vec()).await,
        Err(LinkError::ForeignObject)
    ));

    // A static object from the blocking constructor: its state is set once.
    let a2 = a.clone();
    let stat = tokio::task::spawn_blocking(move || {
        AppObj::from_threadsafe(
            &a2,
            b"fixed".to_vec(),
            NewObj {
                dynamic: false,
                api_id: api,
                ..NewObj::default()
            },
            Callbacks::default(),
        )
    })
    .await
    .expect("join")
    .expect("from_threadsafe");
    assert!(!stat.is_dynamic() && stat.is_owned() && !stat.is_mutable());
    assert_eq!(stat.legroom(), 0);
    assert!(matches!(
        stat.update(b"again".to_vec()).await,
        Err(LinkError::NotMutable(_))
    ));
    assert!(matches!(
        a.update_obj(&stat, b"again".to_vec()).await,
        Err(LinkError::NotMutable(_))
    ));
    assert_eq!(stat.state(), b"fixed");

    // share_obj reaches B's handler, which fetched it with get_obj.
    a.share_obj(&obj, b.whoami()).await.expect("share_obj");
    let on_b = next(&share_rx, "B is told of the share").await;
    assert_eq!(on_b.state(), b"v0");

    // Both callback kinds on B, each in registration order; async ones run
    // on the link's runtime and may await the link, threadsafe ones on the
    // callback thread.
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let done_tx = Arc::new(Mutex::new(done_tx));
    let done_rx = Arc::new(Mutex::new(done_rx));
    let thread = || std::thread::current().name().unwrap_or("").to_string();
    let s = Arc::clone(&seen);
    on_b.append_threadsafe_callback(move |o| {
        let st = String::from_utf8_lossy(&o.state()).into_owned();
        s.lock()
            .expect("lock")
            .push(format!("ts2 {st} {}", thread()));
    });
    let s = Arc::clone(&seen);
    on_b.prepend_threadsafe_callback(move |_| s.lock().expect("lock").push("ts1".into()));
    let s = Arc::clone(&seen);
    let d = Arc::clone(&done_tx);
    on_b.append_async_callback(move |o| {
        let (s, d) = (Arc::clone(&s), Arc::clone(&d));
        async move {
            let fetched = o.link().get_obj(o.address()).await.expect("await the link");
            let st = String::from_utf8_lossy(&fetched.state()).into_owned();
            s.lock()
                .expect("lock")
                .push(format!("as2 {st} {}", thread()));
            let _ = d.lock().expect("lock").send(());
        }
    });
    let s = Arc::clone(&seen);
    on_b.prepend_async_callback(move |_| {
        let s = Arc::clone(&s);
        async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            s.lock().expect("lock").push("as1".into());
        }
    });
    let s = Arc::clone(&seen);
    let gone = on_b.append_async_callback(move |_| {
        let s = Arc::clone(&s);
        async move { s.lock().expect("lock").push("removed".into()) }
    });
    assert_eq!(on_b.async_callbacks().len(), 3);
    assert!(on_b.remove_async_callback(gone));
    assert!(!on_b.remove_async_callback(gone));
    a.update_obj(&obj, b"v1".to_vec())
        .await
        .expect("update_obj");
    next(&done_rx, "B's async callbacks run").await;
    let ts_done = {
        let t0 = std::time::Instant::now();
        loop {
            let got = seen.lock().expect("lock").clone();
            if got.iter().any(|e| e.starts_with("ts2")) {
                break got;
            }
            assert!(t0.elapsed() < WAIT, "B's threadsafe callbacks run");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let pos = |p: &str| ts_done.iter().position(|e| e.starts_with(p));
    assert!(
        pos("ts1") < pos("ts2") && pos("as1") < pos("as2"),
        "{ts_done:?}"
    );
    assert!(ts_done.contains(&"ts2 v1 hypergolix-link-callbacks".to_string()));
    assert!(ts_done.contains(&"as2 v1 hypergolix-link-io".to_string()));
    assert!(!ts_done.iter().any(|e| e == "removed"));

    // clear_*: the next update runs only what was added afterwards (one
    // job per update, so the sentinels prove the cleared ones were gone).
    on_b.clear_threadsafe_callbacks();
    on_b.clear_async_callbacks();
    assert!(on_b.threadsafe_callbacks().is_empty() && on_b.async_callbacks().is_empty());
    seen.lock().expect("lock").clear();
    let s = Arc::clone(&seen);
    let (ts_tx, ts_rx) = mpsc::channel::<()>();
    let ts_tx = Mutex::new(ts_tx);
    let ts_rx = Arc::new(Mutex::new(ts_rx));
    on_b.append_threadsafe_callback(move |_| {
        s.lock().expect("lock").push("ts sentinel".into());
        let _ = ts_tx.lock().expect("lock").send(());
    });
    let s = Arc::clone(&seen);
    let d = Arc::clone(&done_tx);
    on_b.append_async_callback(move |_| {
        let (s, d) = (Arc::clone(&s), Arc::clone(&d));
        async move {
            s.lock().expect("lock").push("as sentinel".into());
            let _ = d.lock().expect("lock").send(());
        }
    });
    let (a3, obj3) = (a.clone(), obj.clone());
    tokio::task::spawn_blocking(move || a3.update_obj_threadsafe(&obj3, b"v2".to_vec()))
        .await
        .expect("join")
        .expect("update_obj_threadsafe");
    next(&ts_rx, "the threadsafe sentinel runs").await;
    next(&done_rx, "the async sentinel runs").await;
    let mut got = seen.lock().expect("lock").clone();
    got.sort();
    assert_eq!(got, ["as sentinel", "ts sentinel"]);

    // freeze_obj, hold_obj, discard_obj, delete_obj; later calls are dead.
    let frozen = a.freeze_obj(&obj).await.expect("freeze_obj");
    assert!(!frozen.is_dynamic());
    assert_eq!(frozen.state(), b"v2");
    b.hold_obj(&on_b).await.expect("hold_obj");
    a.delete_obj(&obj).await.expect("delete_obj");
    assert!(matches!(
        a.share_obj(&obj, b.whoami()).await,
        Err(LinkError::DeadObject)
    ));
    next(&ts_rx, "B's callback runs on the delete").await;
    assert!(!on_b.is_alive());
    let kept = a.new_obj(b"k".to_vec(), opts).await.expect("new_obj");
    a.share_obj(&kept, b.whoami()).await.expect("share");
    let kept_on_b = next(&share_rx, "B is told of the second share").await;
    let b3 = b.clone();
    tokio::task::spawn_blocking(move || {
        b3.discard_obj_threadsafe(&kept_on_b).expect("discard_obj");
        assert!(matches!(
            b3.hold_obj_threadsafe(&kept_on_b),
            Err(LinkError::DeadObject)
        ));
    })
    .await
    .expect("join");

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
