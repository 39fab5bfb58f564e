//! The seed scenario over real sockets, as an app would see it: app A on one
//! local service updates an object shared with agent B, whose app on another
//! local service is pushed each update (the callback). Measures update →
//! push latency (p50/p99), closed-loop updates/s, object creation rate and
//! share latency (share → B's app pushed `@O`). Talks 0.1.0 IPC over
//! websockets; bounded in count and time; loopback only.
//!
//! scripts/bench-service.sh runs it against one `hypergolix serve` and two
//! `hypergolix start` processes.

use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hypergolix_core::engine::{ApiId, AppToken};
use hypergolix_core::golix::Ghid;
use hypergolix_core::wire::ipc::{
    IpcMessage, IpcRequest, Side, WireObjDef, NATIVE_GHIDS_SUBPROTOCOL,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[derive(Parser)]
struct Args {
    /// App A's service (IPC address).
    #[arg(long)]
    a: String,
    /// App B's service (IPC address).
    #[arg(long)]
    b: String,
    /// Updates to time.
    #[arg(long, default_value_t = 2000)]
    updates: usize,
    /// Objects to create.
    #[arg(long, default_value_t = 300)]
    creates: usize,
    /// Shares to time.
    #[arg(long, default_value_t = 50)]
    shares: usize,
    /// Milliseconds to wait between creating the object to share and
    /// sharing it (0: share at once, while it is still being published).
    #[arg(long, default_value_t = 0)]
    share_after_ms: u64,
}

struct Link {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    token: u16,
}

impl Link {
    async fn connect(addr: &str) -> Self {
        let mut req = format!("ws://{addr}/").into_client_request().expect("url");
        req.headers_mut().insert(
            "sec-websocket-protocol",
            NATIVE_GHIDS_SUBPROTOCOL.parse().expect("header"),
        );
        let (ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
            .await
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        Self { ws, token: 0 }
    }

    async fn send(&mut self, m: IpcMessage) {
        self.ws
            .send(Ws::Binary(m.encode().into()))
            .await
            .expect("send");
    }

    /// The next message (pushes are acknowledged as a link does).
    async fn next(&mut self) -> IpcMessage {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("a message within 30 s")
                .expect("connection open")
                .expect("frame");
            let Ws::Binary(b) = msg else { continue };
            let m = IpcMessage::decode(Side::Service, &b).expect("valid IPC");
            if let IpcMessage::Request { token, .. } = &m {
                let ack = IpcMessage::Ack {
                    token: *token,
                    body: vec![1],
                };
                self.send(ack).await;
            }
            return m;
        }
    }

    async fn call(&mut self, request: IpcRequest) -> Vec<u8> {
        self.token = self.token.wrapping_add(1);
        let token = self.token;
        self.send(IpcMessage::Request { token, request }).await;
        loop {
            match self.next().await {
                IpcMessage::Ack { token: t, body } if t == token => return body,
                IpcMessage::Nak {
                    token: t, message, ..
                } if t == token => {
                    panic!("refused: {message}")
                }
                _ => {}
            }
        }
    }

    /// Waits for a push matching `f`.
    async fn push(&mut self, f: impl Fn(&IpcRequest) -> bool) {
        loop {
            if let IpcMessage::Request { request, .. } = self.next().await {
                if f(&request) {
                    return;
                }
            }
        }
    }
}

fn objdef(address: Option<Ghid>, api: ApiId, state: Vec<u8>) -> WireObjDef {
    WireObjDef {
        address,
        author: None,
        private: false,
        dynamic: true,
        legroom: 7,
        api_id: Some(api),
        is_link: false,
        state,
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let mut a = Link::connect(&args.a).await;
    let mut b = Link::connect(&args.b).await;
    let mut b_send = Link::connect(&args.b).await;
    let bob = Ghid::from_bytes(&b_send.call(IpcRequest::Whoami).await).expect("ghid");
    let api = ApiId([0x42; 65]);
    b.call(IpcRequest::RegisterApi(api)).await;
    a.call(IpcRequest::SetToken(AppToken::NULL)).await;

    // Share latency: A shares a fresh object; B's app is pushed @O.
    let mut share = Vec::new();
    let mut g = None;
    for _ in 0..args.shares {
        let o = Ghid::from_bytes(
            &a.call(IpcRequest::NewObject(objdef(None, api, vec![0; 64])))
                .await,
        )
        .expect("ghid");
        if args.share_after_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(args.share_after_ms)).await;
        }
        let t = Instant::now();
        a.call(IpcRequest::ShareObject {
            address: o,
            recipient: bob,
        })
        .await;
        b.push(|p| matches!(p, IpcRequest::PushShare { address, .. } if *address == o))
            .await;
        share.push(t.elapsed());
        g = Some(o);
    }
    let g = g.expect("at least one share");
    // B's app tracks the object (as a share handler's get does).
    b.call(IpcRequest::GetObject(g)).await;

    // Update → B's push, closed loop.
    let mut lat = Vec::with_capacity(args.updates);
    let start = Instant::now();
    for i in 0..args.updates {
        let mut state = (i as u64).to_be_bytes().to_vec();
        state.resize(64, 0);
        let t = Instant::now();
        a.call(IpcRequest::UpdateObject(objdef(
            Some(g),
            api,
            state.clone(),
        )))
        .await;
        b.push(|p| matches!(p, IpcRequest::PushUpdate(o) if o.state == state))
            .await;
        lat.push(t.elapsed());
    }
    let total = start.elapsed();

    // Creation rate.
    let t = Instant::now();
    for _ in 0..args.creates {
        a.call(IpcRequest::NewObject(objdef(None, api, vec![1; 64])))
            .await;
    }
    let creates = args.creates as f64 / t.elapsed().as_secs_f64();

    lat.sort();
    share.sort();
    println!(
        "update -> push: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {} updates",
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        lat.len()
    );
    println!(
        "closed-loop updates/s: {:.0}",
        args.updates as f64 / total.as_secs_f64()
    );
    println!("creates/s: {creates:.0}");
    println!(
        "share -> recipient app: p50 {:.3} ms, p99 {:.3} ms over {} shares",
        pct(&share, 0.50),
        pct(&share, 0.99),
        share.len()
    );
}
