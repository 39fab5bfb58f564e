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

/// Serves `GET` requests on `listener` until the task is dropped: `admit`
/// decides, from the listener's and the peer's addresses, whether a
/// connection is served at all (others are closed unread); `answer` gets
/// the request path.
pub async fn serve_http<A, F, Fut>(listener: tokio::net::TcpListener, admit: A, answer: F)
where
    A: Fn(SocketAddr, SocketAddr) -> bool + Send + 'static,
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Answer> + Send,
{
    let Ok(local) = listener.local_addr() else {
        return;
    };
    loop {
        let Ok((mut sock, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if !admit(local, peer) {
            continue;
        }
        let answer = answer.clone();
        tokio::spawn(async move {
            let read = tokio::time::timeout(Duration::from_secs(5), read_head(&mut sock)).await;
            let (status, kind, body) = match read {
                Ok(Some(path)) => answer(path).await,
                _ => ("400 Bad Request", "text/plain", "bad request\n".into()),
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

/// Reads a request head; the path of a `GET`, else None.
async fn read_head(sock: &mut tokio::net::TcpStream) -> Option<String> {
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
                return (req.method == Some("GET")).then(|| req.path.unwrap_or("/").to_string());
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => continue,
            _ => return None,
        }
    }
}
