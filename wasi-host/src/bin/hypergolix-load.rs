//! Load generator for `hypergolix serve`, run as a separate process over real
//! websockets on loopback. See `scripts/bench-server.sh` and docs/benchmarks.md.
//!
//! ```text
//! hypergolix-load publish  --addr 127.0.0.1:7770 --clients 8 --seconds 10
//! hypergolix-load latency  --addr 127.0.0.1:7770 --subscribers 100 --frames 300
//! hypergolix-load idle     --addr 127.0.0.1:7770 --connections 10000 --pid SERVER_PID
//! hypergolix-load publish  --addr wss://localhost:7770/ --ca-file ca.pem
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use hypergolix_core::golix::suite::cs3::SUITE_ID;
use hypergolix_core::golix::{AddressAlgorithm, FirstParty, Ghid};
use hypergolix_core::wire::remote::{Message, Request};
use tokio_tungstenite::tungstenite::Message as Ws;

#[derive(Parser)]
#[command(
    name = "hypergolix-load",
    about = "Load generator for hypergolix serve"
)]
struct Cli {
    /// Server address (`HOST:PORT`, or a `ws://` / `wss://` URL).
    #[arg(long, default_value = "127.0.0.1:7770", global = true)]
    addr: String,
    /// CA certificates (PEM) trusted for `wss://` besides the public roots.
    #[arg(long, global = true)]
    ca_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Sustained verified publishes/s with N concurrent clients (pipelined).
    Publish {
        #[arg(long, default_value_t = 8)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Requests in flight per client.
        #[arg(long, default_value_t = 64)]
        window: usize,
    },
    /// Publish→push latency with S subscribers on one dynamic GHID.
    Latency {
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        #[arg(long, default_value_t = 300)]
        frames: u64,
    },
    /// Hold C idle subscribed connections; report server memory per connection.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Server process id (to read its resident memory).
        #[arg(long)]
        pid: Option<u32>,
        /// Seconds to hold the connections.
        #[arg(long, default_value_t = 5)]
        hold: u64,
    },
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// TLS for `wss://` addresses (set once in `main`).
static TLS: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();

async fn connect(addr: &str) -> WsStream {
    let url = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("ws://{addr}/")
    };
    let mut tries = 0;
    loop {
        match hypergolix_wasi_host::tls::connect(&url, TLS.get().cloned()).await {
            Ok(ws) => return ws,
            Err(e) if tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50 * tries)).await;
                if tries == 20 {
                    eprintln!("connect failed: {e}");
                }
            }
            Err(e) => panic!("cannot connect to {addr}: {e}"),
        }
    }
}

async fn call(ws: &mut WsStream, token: u16, request: Request) -> Message {
    ws.send(Ws::Binary(
        Message::Request { token, request }.encode().into(),
    ))
    .await
    .expect("send");
    loop {
        match ws.next().await {
            Some(Ok(Ws::Binary(b))) => {
                let m = Message::decode(&b).expect("decode");
                if matches!(&m, Message::Ack { token: t, .. } | Message::Nak { token: t, .. } if *t == token)
                {
                    return m;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("connection lost: {other:?}"),
        }
    }
}

fn identity(n: u64) -> FirstParty {
    let mut r = [0u8; 96];
    r[..8].copy_from_slice(&n.to_be_bytes());
    r[8] = 0x42;
    FirstParty::from_random(SUITE_ID, &r).expect("identity")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn publish(addr: String, clients: usize, seconds: u64, window: usize) {
    // Pre-generate signed static bindings (each a new, verifiable object) so the
    // clients measure the server, not their own signing.
    let per_client = 40_000usize.max(window * 2);
    eprintln!("generating {} signed objects...", clients * per_client);
    let mut sets = Vec::new();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            std::thread::spawn(move || {
                let me = identity(c as u64 + 1000);
                let mut objs = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let mut d = [0u8; 64];
                    d[..8].copy_from_slice(&(i as u64).to_be_bytes());
                    d[8..16].copy_from_slice(&(c as u64).to_be_bytes());
                    let target = Ghid::new(AddressAlgorithm::Blake2b512, d);
                    objs.push(me.make_static_binding(&target).to_bytes());
                }
                (me.second_party().gidc().to_bytes(), objs)
            })
        })
        .collect();
    for h in handles {
        sets.push(h.join().expect("generator"));
    }
    let done = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (gidc, objs) in sets {
        let (addr, done, refused) = (addr.clone(), done.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let mut ws = connect(&addr).await;
            call(&mut ws, 1, Request::Publish(gidc)).await;
            let (mut tx, mut rx) = ws.split();
            let sem = Arc::new(tokio::sync::Semaphore::new(window));
            let reader = {
                let (done, refused, sem) = (done.clone(), refused.clone(), sem.clone());
                tokio::spawn(async move {
                    while let Some(Ok(m)) = rx.next().await {
                        if let Ws::Binary(b) = m {
                            match Message::decode(&b) {
                                Ok(Message::Ack { .. }) => done.fetch_add(1, Ordering::Relaxed),
                                Ok(Message::Nak { .. }) => refused.fetch_add(1, Ordering::Relaxed),
                                _ => continue,
                            };
                            sem.add_permits(1);
                        }
                    }
                })
            };
            let mut sent = 0usize;
            for (i, obj) in objs.into_iter().enumerate() {
                if Instant::now() >= deadline {
                    break;
                }
                let Ok(permit) = sem.clone().acquire_owned().await else {
                    break;
                };
                permit.forget();
                let token = (i % 60_000) as u16 + 2;
                if tx
                    .send(Ws::Binary(
                        Message::Request {
                            token,
                            request: Request::Publish(obj),
                        }
                        .encode()
                        .into(),
                    ))
                    .await
                    .is_err()
                {
                    break;
                }
                sent += 1;
            }
            // Wait for outstanding acks.
            let _ = tokio::time::timeout(Duration::from_secs(10), sem.acquire_many(window as u32))
                .await;
            let _ = tx.close().await;
            reader.abort();
            sent
        }));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.unwrap_or(0);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ok = done.load(Ordering::Relaxed);
    println!(
        "publish: clients={clients} window={window} sent={sent} acked={ok} refused={} elapsed={elapsed:.2}s rate={:.0}/s",
        refused.load(Ordering::Relaxed),
        ok as f64 / elapsed
    );
}

async fn latency(addr: String, subscribers: usize, frames: u64) {
    // A fresh identity per run: its dynamic GHID is new on this server.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let me = identity(nanos ^ u64::from(std::process::id()));
    let mut publisher = connect(&addr).await;
    call(
        &mut publisher,
        1,
        Request::Publish(me.second_party().gidc().to_bytes()),
    )
    .await;
    // Frames target the publisher's identity (an identity proxy), which is
    // present, so the server pushes each frame at once.
    let f0 = me.make_first_frame(&me.ghid()).expect("frame");
    let d = f0.dynamic_ghid();
    match call(&mut publisher, 2, Request::Publish(f0.to_bytes())).await {
        Message::Ack { .. } => {}
        other => panic!("first frame refused: {other:?}"),
    }
    let mut all = vec![f0.clone()];
    for _ in 1..=frames {
        let prev = all.last().expect("frame").clone();
        all.push(me.make_next_frame(&prev, &me.ghid(), 1).expect("frame"));
    }
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..=frames).map(|_| AtomicU64::new(0)).collect());
    let epoch = Instant::now();
    let (lat_tx, mut lat_rx) = tokio::sync::mpsc::unbounded_channel::<f64>();
    let ready = Arc::new(tokio::sync::Barrier::new(subscribers + 1));
    for _ in 0..subscribers {
        let (addr, sent_at, lat_tx, ready) =
            (addr.clone(), sent_at.clone(), lat_tx.clone(), ready.clone());
        tokio::spawn(async move {
            let mut ws = connect(&addr).await;
            call(&mut ws, 1, Request::Subscribe(d)).await;
            ready.wait().await;
            while let Some(Ok(m)) = ws.next().await {
                let now = epoch.elapsed().as_nanos() as u64;
                if let Ws::Binary(b) = m {
                    if let Ok(Message::Request {
                        token,
                        request: Request::Push { object, .. },
                    }) = Message::decode(&b)
                    {
                        let counter =
                            u64::from_be_bytes(object[74..82].try_into().unwrap_or([0; 8]));
                        if let Some(t) = sent_at.get(counter as usize) {
                            let at = t.load(Ordering::Acquire);
                            if at > 0 {
                                let _ = lat_tx.send((now - at) as f64 / 1e6);
                            }
                        }
                        let _ = ws
                            .send(Ws::Binary(
                                Message::Ack {
                                    token,
                                    body: vec![1],
                                }
                                .encode()
                                .into(),
                            ))
                            .await;
                    }
                }
            }
        });
    }
    drop(lat_tx);
    ready.wait().await;
    let start = Instant::now();
    for (i, f) in all.iter().enumerate().skip(1) {
        sent_at[i].store(epoch.elapsed().as_nanos() as u64, Ordering::Release);
        call(
            &mut publisher,
            (i % 60_000) as u16 + 3,
            Request::Publish(f.to_bytes()),
        )
        .await;
    }
    let publish_time = start.elapsed();
    let expected = frames as usize * subscribers;
    let mut lats = Vec::with_capacity(expected);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while lats.len() < expected {
        match tokio::time::timeout_at(deadline, lat_rx.recv()).await {
            Ok(Some(l)) => lats.push(l),
            _ => break,
        }
    }
    lats.sort_by(|a, b| a.total_cmp(b));
    println!(
        "latency: subscribers={subscribers} frames={frames} deliveries={}/{expected} p50={:.3}ms p99={:.3}ms max={:.3}ms publish_loop={:.0}/s",
        lats.len(),
        percentile(&lats, 0.50),
        percentile(&lats, 0.99),
        lats.last().copied().unwrap_or(f64::NAN),
        frames as f64 / publish_time.as_secs_f64()
    );
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn idle(addr: String, connections: usize, pid: Option<u32>, hold: u64) {
    let before = pid.and_then(rss_kib);
    let start = Instant::now();
    let mut conns = Vec::with_capacity(connections);
    let me = identity(9);
    for i in 0..connections {
        let mut ws = connect(&addr).await;
        let mut d = [0u8; 64];
        d[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let sub = if i % 2 == 0 {
            me.ghid()
        } else {
            Ghid::new(AddressAlgorithm::Blake2b512, d)
        };
        match call(&mut ws, 1, Request::Subscribe(sub)).await {
            Message::Ack { .. } => {}
            other => panic!("subscribe refused: {other:?}"),
        }
        conns.push(ws);
        if (i + 1) % 2000 == 0 {
            eprintln!("{} connections open", i + 1);
        }
    }
    let opened = start.elapsed();
    tokio::time::sleep(Duration::from_secs(hold)).await;
    // Every connection still answers.
    let mut alive = 0;
    for ws in conns.iter_mut() {
        if matches!(call(ws, 2, Request::Ping).await, Message::Ack { .. }) {
            alive += 1;
        }
    }
    let after = pid.and_then(rss_kib);
    let per_conn = match (before, after) {
        (Some(b), Some(a)) => format!(
            "{:.1} KiB",
            (a.saturating_sub(b)) as f64 / connections as f64
        ),
        _ => "n/a (pass --pid)".into(),
    };
    println!(
        "idle: connections={connections} alive={alive} open_time={:.2}s server_rss_before={} KiB after={} KiB per_connection={per_conn}",
        opened.as_secs_f64(),
        before.map_or("?".into(), |v| v.to_string()),
        after.map_or("?".into(), |v| v.to_string())
    );
}

fn main() {
    let cli = Cli::parse();
    match hypergolix_wasi_host::tls::client_config(cli.ca_file.as_deref()) {
        Ok(c) => {
            let _ = TLS.set(c);
        }
        Err(e) => {
            eprintln!("hypergolix-load: {e}");
            std::process::exit(2);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Publish {
                clients,
                seconds,
                window,
            } => publish(cli.addr, clients, seconds, window).await,
            Cmd::Latency {
                subscribers,
                frames,
            } => latency(cli.addr, subscribers, frames).await,
            Cmd::Idle {
                connections,
                pid,
                hold,
            } => idle(cli.addr, connections, pid, hold).await,
        }
    });
}
