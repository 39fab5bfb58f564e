//! What a new connection costs the field-ready checks:
//!
//! - `ipc_peer_check`: the local service's own-user check of a loopback
//!   TCP peer (`local::peer::admit_tcp`: netlink sock_diag), beside the
//!   fallback it replaces where netlink is missing (`proc_owner`: the
//!   /proc/net/tcp{,6} tables), with 10 and with 1,000 other loopback
//!   connections open (the tables grow with every socket of the network
//!   namespace);
//! - `server_connect`: a client's TCP connect plus websocket upgrade to a
//!   server in this process, over `ws://` and over `wss://` (rustls, ring,
//!   a certificate made here): the TLS handshake's cost per connection is
//!   the difference.
//!
//! cargo bench -p hypergolix-wasi-host --bench connect

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hypergolix_wasi_host::local::peer::{admit_tcp, proc_owner, IpcTrust};
use hypergolix_wasi_host::tls;

/// `n` open loopback connections (both ends), kept alive by the caller.
fn open_connections(n: usize) -> (TcpListener, Vec<(TcpStream, TcpStream)>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let conns = (0..n)
        .map(|_| {
            let c = TcpStream::connect(addr).expect("connect");
            let (s, _) = l.accept().expect("accept");
            (c, s)
        })
        .collect();
    (l, conns)
}

fn peer_check(c: &mut Criterion) {
    let mut g = c.benchmark_group("ipc_peer_check");
    for others in [10usize, 1000] {
        let (_l, _open) = open_connections(others);
        let server = TcpListener::bind("127.0.0.1:0").expect("bind");
        let local = server.local_addr().expect("addr");
        let _client = TcpStream::connect(local).expect("connect");
        let (_accepted, peer) = server.accept().expect("accept");
        g.bench_with_input(
            BenchmarkId::new("sock_diag", format!("{others}_sockets")),
            &peer,
            |b, peer| b.iter(|| admit_tcp(IpcTrust::OwnUser, local, *peer).expect("admitted")),
        );
        g.bench_with_input(
            BenchmarkId::new("proc_fallback", format!("{others}_sockets")),
            &peer,
            |b, peer| b.iter(|| proc_owner(local, *peer).expect("found")),
        );
    }
    g.finish();
}

/// A websocket server in this process (`tls`: wss), answering upgrades
/// and holding each connection until the client closes it.
fn ws_server(rt: &tokio::runtime::Runtime, tls: Option<Arc<rustls::ServerConfig>>) -> SocketAddr {
    let l = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    rt.spawn(async move {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        while let Ok((s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use futures_util::StreamExt;
                match acceptor {
                    Some(a) => {
                        if let Ok(t) = a.accept(s).await {
                            if let Ok(mut ws) = tokio_tungstenite::accept_async(t).await {
                                while ws.next().await.is_some() {}
                            }
                        }
                    }
                    None => {
                        if let Ok(mut ws) = tokio_tungstenite::accept_async(s).await {
                            while ws.next().await.is_some() {}
                        }
                    }
                }
            });
        }
    });
    addr
}

fn server_connect(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("hgx-bench-connect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let (cert_pem, key_pem) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_pem, cert.pem()).expect("write");
    std::fs::write(&key_pem, key.serialize_pem()).expect("write");
    let server_cfg = tls::server_config(&cert_pem, &key_pem).expect("server config");
    // The self-signed certificate is its own CA here.
    let client_cfg = tls::client_config(Some(&cert_pem)).expect("client config");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let plain = ws_server(&rt, None);
    let secure = ws_server(&rt, Some(server_cfg));
    let mut g = c.benchmark_group("server_connect");
    for (name, url) in [
        ("ws", format!("ws://127.0.0.1:{}/", plain.port())),
        ("wss", format!("wss://localhost:{}/", secure.port())),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut ws = tls::connect(&url, Some(client_cfg.clone()))
                        .await
                        .expect("connect");
                    let _ = ws.close(None).await;
                })
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, peer_check, server_connect);
criterion_main!(benches);
