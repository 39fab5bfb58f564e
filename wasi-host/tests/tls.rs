//! TLS between local services and `hypergolix serve --tls-cert/--tls-key`,
//! over real processes, with certificates this test makes (rcgen): a test
//! CA, a server certificate for `localhost`, an expired one, one for
//! another host name, and a second, untrusted CA.
//!
//! Two agents share and update an object through a `wss://` server trusted
//! with `--ca-file`; then the server comes back with an expired certificate
//! (the services refuse it, keep retrying, and an update made meanwhile is
//! acknowledged by the local service), then with a good one again: the
//! queued update reaches the other agent. A wrong CA, an expired
//! certificate and a wrong host name are each refused with the reason in
//! the service's log.

#[path = "support/serve_proc.rs"]
mod serve_proc;
#[path = "support/service_proc.rs"]
mod service_proc;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hypergolix_link::{ApiId, AppObj, HypergolixLink, NewObj};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serve_proc::{free_port, tempdir, Server};
use service_proc::Svc;

/// Long enough for the services' reconnect backoff (at most 10 s).
const WAIT: Duration = Duration::from_secs(40);

/// A certificate and its key, as PEM files.
struct Pair {
    cert: PathBuf,
    key: PathBuf,
}

impl Pair {
    fn args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}

struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    good: Pair,
    expired: Pair,
    wrong_name: Pair,
}

fn ca(name: &str) -> (CertificateParams, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (p, KeyPair::generate().expect("ca key"))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write pem");
    p
}

fn make_pki(dir: &Path) -> Pki {
    let (ca_params, ca_key) = ca("Hypergolix test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let (other_params, other_key) = ca("Someone else's CA");
    let other_cert = other_params.self_signed(&other_key).expect("other ca");
    let leaf = |name: &str, names: Vec<String>, expired: bool| {
        let mut p = CertificateParams::new(names).expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &issuer).expect("sign");
        Pair {
            cert: write(dir, &format!("{name}.crt"), &cert.pem()),
            key: write(dir, &format!("{name}.key"), &key.serialize_pem()),
        }
    };
    let localhost = vec!["localhost".to_string()];
    Pki {
        ca: write(dir, "ca.crt", &ca_cert.pem()),
        other_ca: write(dir, "other-ca.crt", &other_cert.pem()),
        good: leaf("good", localhost.clone(), false),
        expired: leaf("expired", localhost, true),
        wrong_name: leaf("wrong-name", vec!["other.example".to_string()], false),
    }
}

fn server(store: &Path, listen: &str, pair: &Pair) -> Server {
    let args = pair.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_on(store, listen, &args)
}

/// Waits until the file `log` contains `what`.
fn log_says(log: &Path, what: &str) {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(what) {
            return;
        }
        assert!(
            t0.elapsed() < WAIT,
            "{} never said {what:?}:\n{text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn until_state(obj: &AppObj, want: &[u8]) {
    let t0 = Instant::now();
    while obj.state() != want {
        assert!(
            t0.elapsed() < WAIT,
            "the state never became {:?} (is {:?})",
            String::from_utf8_lossy(want),
            String::from_utf8_lossy(&obj.state())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_sync_over_wss_and_refuse_bad_certificates() {
    let dir = tempdir("tls");
    let pki = make_pki(&dir);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("wss://localhost:{port}/");
    let store = dir.join("server.redb");
    let ca = pki.ca.display().to_string();
    let trusted = ["--remote", url.as_str(), "--ca-file", ca.as_str()];

    // The right CA: two agents share and update through the server.
    let srv = server(&store, &listen, &pki.good);
    let svc_a = Svc::start_with(&dir.join("a"), false, &trusted);
    let svc_b = Svc::start_with(&dir.join("b"), false, &trusted);
    let a = HypergolixLink::connect(&svc_a.addr).await.expect("link A");
    let b = HypergolixLink::connect(&svc_b.addr).await.expect("link B");
    a.new_token().await.expect("token A");
    b.new_token().await.expect("token B");
    let api = ApiId::from_app_bytes([5; 64]);
    let (tx, rx) = mpsc::channel::<AppObj>();
    let tx = Mutex::new(tx);
    let b2 = b.clone();
    b.register_api(api, move |share| {
        let obj = b2.get_threadsafe(share.address).expect("get the share");
        let _ = tx.lock().expect("lock").send(obj);
    })
    .await
    .expect("register api");
    let obj = a
        .new_obj(
            b"v0".to_vec(),
            NewObj {
                api_id: api,
                ..NewObj::default()
            },
        )
        .await
        .expect("new object");
    // B's identity reaches the server a moment after B listens.
    let t0 = Instant::now();
    while obj.share(b.whoami()).await.is_err() {
        assert!(t0.elapsed() < WAIT, "the share never went through");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let on_b = tokio::task::spawn_blocking(move || rx.recv_timeout(WAIT))
        .await
        .expect("join")
        .expect("B is told of the share over wss");
    assert_eq!(on_b.state(), b"v0");
    obj.set_state(b"v1".to_vec()).await.expect("update");
    until_state(&on_b, b"v1").await;

    // A wrong CA and a wrong host name, each with its reason.
    let wrong_ca = dir.join("c.log");
    let other = pki.other_ca.display().to_string();
    let _c = Svc::start_logged(
        &dir.join("c"),
        &["--remote", &url, "--ca-file", &other],
        &wrong_ca,
    );
    log_says(&wrong_ca, "not signed by a trusted CA");
    let name_port = free_port();
    let _named = server(
        &dir.join("named.redb"),
        &format!("127.0.0.1:{name_port}"),
        &pki.wrong_name,
    );
    let wrong_name = dir.join("d.log");
    let named_url = format!("wss://localhost:{name_port}/");
    let _d = Svc::start_logged(
        &dir.join("d"),
        &["--remote", &named_url, "--ca-file", &ca],
        &wrong_name,
    );
    log_says(&wrong_name, "not valid for this host name");

    // The server comes back with an expired certificate: refused, and an
    // update made meanwhile is acknowledged by A's service all the same.
    srv.kill9();
    let srv = server(&store, &listen, &pki.expired);
    let expired = dir.join("e.log");
    let _e = Svc::start_logged(&dir.join("e"), &trusted, &expired);
    log_says(&expired, "it has expired");
    obj.set_state(b"v2, written while the server was refused".to_vec())
        .await
        .expect("the update is acknowledged offline");
    assert_eq!(on_b.state(), b"v1", "nothing crossed the refused server");

    // A good certificate again: both services reconnect on their own, and
    // the queued update reaches B.
    srv.kill9();
    let _srv = server(&store, &listen, &pki.good);
    until_state(&on_b, b"v2, written while the server was refused").await;
}
