//! The tiny HTTP side of the health and metrics ports (`serve --metrics`,
//! `start --metrics`): `GET` only, one request per connection, answers
//! made by the caller. Request heads are parsed with httparse and bounded.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The content type of Prometheus text (OpenMetrics 1.0).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Plain text.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// Largest request head read from a metrics client.
const MAX_REQUEST: usize = 8192;

/// What the metrics port answers: `(status line, content type, body)`.
pub type Answer = (&'static str, &'static str, String);

/// Serves `GET` requests on `listener` until the task is dropped (its
/// request tasks with it): `admit` decides, from the listener's and the
/// peer's addresses, whether a connection is served at all (others are
/// closed unread); with `loopback_only`, a request whose `Host` is not
/// loopback or that carries an `Origin` (a web page, DNS rebinding) gets
/// 403; `answer` gets the request path.
pub async fn serve_http<A, F, Fut>(
    listener: tokio::net::TcpListener,
    loopback_only: bool,
    admit: A,
    answer: F,
) where
    A: Fn(SocketAddr, SocketAddr) -> bool + Send + 'static,
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Answer> + Send,
{
    let Ok(local) = listener.local_addr() else {
        return;
    };
    let mut requests = tokio::task::JoinSet::new();
    loop {
        while requests.try_join_next().is_some() {}
        let Ok((mut sock, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if !admit(local, peer) {
            continue;
        }
        let answer = answer.clone();
        requests.spawn(async move {
            let read = tokio::time::timeout(Duration::from_secs(5), read_head(&mut sock)).await;
            let (status, kind, body) = match read {
                Ok(Some(head)) if loopback_only && !head.is_not_a_web_page() => {
                    ("403 Forbidden", TEXT, "not for web pages\n".into())
                }
                Ok(Some(head)) => answer(head.path).await,
                _ => ("400 Bad Request", TEXT, "bad request\n".into()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

/// What a request head says.
struct Head {
    path: String,
    host: Option<String>,
    origin: bool,
}

impl Head {
    /// A `Host` naming loopback and no `Origin`: not a web page.
    fn is_not_a_web_page(&self) -> bool {
        !self.origin
            && self
                .host
                .as_deref()
                .is_some_and(crate::local::is_loopback_host)
    }
}

/// Reads a request head: a `GET`'s path, `Host` and whether it has an
/// `Origin`; None for anything else.
async fn read_head(sock: &mut tokio::net::TcpStream) -> Option<Head> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                if req.method != Some("GET") {
                    return None;
                }
                let header = |name: &str| {
                    req.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).into_owned())
                };
                return Some(Head {
                    path: req.path.unwrap_or("/").to_string(),
                    host: header("host"),
                    origin: header("origin").is_some(),
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => continue,
            _ => return None,
        }
    }
}
