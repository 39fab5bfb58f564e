//! The embedding API (`hypergolix_wasi_host::embed`): a persistence server
//! and a local service started in this test's own tokio runtime, driven
//! through the Rust link, shut down, started again in-process on the same
//! store and data directory (the shutdown released both), and the
//! acknowledged writes are all there. A second service logs in to the same
//! account as a new device through the embedded server.

#[path = "support/serve_proc.rs"]
mod serve_proc;

use hypergolix_link::{HypergolixLink, NewObj};
use hypergolix_wasi_host::embed::{ServerBuilder, ServiceBuilder};
use serve_proc::tempdir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_and_a_service_start_stop_and_start_again_in_process() {
    let dir = tempdir("embed");
    let store = dir.join("server.redb");
    let agent = dir.join("agent");

    let server = ServerBuilder::new(&store).start().await.expect("server");
    let service = ServiceBuilder::new(&agent)
        .remote(server.url())
        .password(b"embedded".to_vec())
        .insecure_test_kdf()
        .start()
        .await
        .expect("service");
    let user = service.user_id().expect("a new account");
    let link = HypergolixLink::connect(service.ipc()).await.expect("link");
    let token = link.new_token().await.expect("token");
    let obj = link
        .new_obj(b"v1".to_vec(), NewObj::default())
        .await
        .expect("object");
    for i in 2..=20 {
        obj.set_state(format!("v{i}").into_bytes())
            .await
            .expect("update");
    }
    let address = obj.address();

    // `hypergolix stop` on its data directory would signal this test's
    // process: it refuses and says who runs the service.
    let stop = std::process::Command::new(env!("CARGO_BIN_EXE_hypergolix"))
        .arg("stop")
        .arg("--data-dir")
        .arg(&agent)
        .output()
        .expect("hypergolix stop");
    let said = String::from_utf8_lossy(&stop.stderr);
    assert!(!stop.status.success(), "stop must refuse: {said}");
    assert!(said.contains("inside another program"), "{said}");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_hypergolix"))
        .args(["status", "--json", "--data-dir"])
        .arg(&agent)
        .output()
        .expect("hypergolix status");
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    assert_eq!(doc["running"], true);
    assert_eq!(doc["embedded"], true);
    assert_eq!(doc["pid"], std::process::id());
    obj.set_state(b"v20".to_vec()).await.expect("still serving");
    drop(obj);
    link.stop();
    service.shutdown().await.expect("service shutdown");
    server.shutdown().await.expect("server shutdown");

    // Both come back on the same files at once: nothing was left open, and
    // the last acknowledged update is there.
    let server = ServerBuilder::new(&store)
        .start()
        .await
        .expect("server again");
    let service = ServiceBuilder::new(&agent)
        .remote(server.url())
        .start()
        .await
        .expect("service again (no password needed now)");
    assert_eq!(service.user_id(), Some(user));
    let link = HypergolixLink::connect(service.ipc()).await.expect("link");
    link.set_token(token).await.expect("token");
    assert_eq!(link.get(address).await.expect("get").state(), b"v20");

    // A second device of the same account, through the embedded server.
    let phone = ServiceBuilder::new(dir.join("phone"))
        .remote(server.url())
        .login(user)
        .password(b"embedded".to_vec())
        .insecure_test_kdf()
        .start()
        .await
        .expect("a second device logs in");
    assert_eq!(phone.user_id(), Some(user));
    let on_phone = HypergolixLink::connect(phone.ipc()).await.expect("link");
    on_phone.set_token(token).await.expect("token");
    assert_eq!(on_phone.get(address).await.expect("get").state(), b"v20");

    // A bad start is an error, not an exit.
    let refused = ServiceBuilder::new(dir.join("nobody"))
        .remote(server.url())
        .start()
        .await;
    assert!(refused.is_err(), "a new data directory without a password");

    phone.shutdown().await.expect("phone shutdown");
    service.shutdown().await.expect("service shutdown");
    server.shutdown().await.expect("server shutdown");
}
