//! `serve --www DIR`: the web app (or any static site) on the persistence
//! server's own address. Each connection's request head is read first: a
//! websocket upgrade goes on to the remote protocol with the head replayed;
//! anything else is a `GET`/`HEAD` of a file under `DIR`, one request per
//! connection (browsers open more as they need them).

use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hypergolix_core::persist::PersistBackend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::conn::serve_connection;
use super::hub::Hub;

/// Largest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to read an answer (a client that stops
/// reading does not hold its task and file for ever).
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// The content security policy of every page: scripts, workers and wasm
/// from this origin only; websockets to any server (the app may be pointed
/// at another one); no framing.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; \
    connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
    object-src 'none'; base-uri 'self'; frame-ancestors 'none'";

/// A stream that yields `prefix` before the rest of `inner`: the request
/// head read to route the connection, replayed to the websocket handshake.
struct Rewind<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            if self.at == self.prefix.len() {
                // Replayed: the connection lives on without it.
                self.prefix = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What a request head asks for.
struct Head {
    method: String,
    path: String,
    upgrade: bool,
    gzip: bool,
}

fn parse_head(bytes: &[u8]) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let has = |name: &str, token: &str| {
        req.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case(name)
                && String::from_utf8_lossy(h.value)
                    .split(',')
                    .any(|v| v.trim().eq_ignore_ascii_case(token))
        })
    };
    Some(Head {
        method: req.method?.to_owned(),
        path: req.path?.to_owned(),
        upgrade: has("upgrade", "websocket"),
        gzip: has("accept-encoding", "gzip"),
    })
}

/// Reads up to the end of the request head (`\r\n\r\n`); `None` if the peer
/// closes, sends too much, or takes too long.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 2048];
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                return Some(());
            }
            if buf.len() > MAX_HEAD {
                return None;
            }
        }
    };
    tokio::time::timeout(HEAD_TIMEOUT, read).await.ok()??;
    Some(buf)
}

/// Routes one connection: a websocket upgrade to the persistence server,
/// anything else to the static site in `www`.
pub async fn route<B, S>(
    mut stream: S,
    peer: Option<std::net::SocketAddr>,
    www: Arc<PathBuf>,
    hub: Arc<Hub<B>>,
    max_message_bytes: usize,
    queue_len: usize,
) where
    B: PersistBackend + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(bytes) = read_head(&mut stream).await else {
        return;
    };
    match parse_head(&bytes) {
        Some(head) if head.upgrade => {
            let stream = Rewind {
                prefix: bytes,
                at: 0,
                inner: stream,
            };
            serve_connection(stream, peer, hub, max_message_bytes, queue_len).await;
        }
        Some(head) => {
            let (status, headers, body) = answer(&www, &head).await;
            let length = match &body {
                Body::Bytes(b) => b.len() as u64,
                Body::File(_, n) => *n,
            };
            let mut out = format!(
                "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: {length}\r\n\
                 x-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\n\
                 cross-origin-opener-policy: same-origin\r\ncontent-security-policy: {CSP}\r\n"
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            let send = async {
                stream.write_all(out.as_bytes()).await?;
                if head.method != "HEAD" {
                    match body {
                        Body::Bytes(b) => stream.write_all(&b).await?,
                        Body::File(mut f, _) => {
                            tokio::io::copy(&mut f, &mut stream).await?;
                        }
                    }
                }
                stream.shutdown().await
            };
            let sent = tokio::time::timeout(WRITE_TIMEOUT, send).await;
            tracing::debug!(?peer, path = %head.path, status, complete = matches!(sent, Ok(Ok(()))), "www");
        }
        None => {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                )
                .await;
        }
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "webmanifest" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `file` if it is a file inside `root` once every symbolic link is followed.
fn inside(root: &Path, file: &Path) -> Option<PathBuf> {
    let file = file.canonicalize().ok()?;
    (file.starts_with(root) && file.is_file()).then_some(file)
}

/// The file under `root` a request path names, if it is one: no `..`, no
/// hidden names (`.git`, `.env`), no escape through a symbolic link; `/`
/// (and any directory) is its `index.html`.
fn resolve(root: &Path, request_path: &str) -> Option<PathBuf> {
    let path = request_path.split(['?', '#']).next().unwrap_or("/");
    let decoded = percent_decode(path)?;
    let mut file = root.to_path_buf();
    for c in Path::new(&decoded).components() {
        match c {
            Component::Normal(part) if part.to_string_lossy().starts_with('.') => return None,
            Component::Normal(part) => file.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    if file.is_dir() {
        file.push("index.html");
    }
    inside(root, &file)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    (!s.contains('\0')).then_some(s)
}

/// An answer's body: a short text, or a file and its length (streamed).
enum Body {
    Bytes(Vec<u8>),
    File(tokio::fs::File, u64),
}

type Answer = (&'static str, Vec<(&'static str, String)>, Body);

async fn open(path: &Path) -> Option<Body> {
    let f = tokio::fs::File::open(path).await.ok()?;
    let n = f.metadata().await.ok()?.len();
    Some(Body::File(f, n))
}

async fn answer(root: &Path, head: &Head) -> Answer {
    let text = |status, body: &str| {
        (
            status,
            vec![("content-type", "text/plain; charset=utf-8".to_owned())],
            Body::Bytes(body.as_bytes().to_vec()),
        )
    };
    if head.method != "GET" && head.method != "HEAD" {
        let (s, mut h, b) = text("405 Method Not Allowed", "only GET and HEAD\n");
        h.push(("allow", "GET, HEAD".to_owned()));
        return (s, h, b);
    }
    // Path checks touch the file system: off the async threads.
    let (dir, path) = (root.to_path_buf(), head.path.clone());
    let Ok(Some(file)) = tokio::task::spawn_blocking(move || resolve(&dir, &path)).await else {
        return text("404 Not Found", "not found\n");
    };
    // Files whose names carry a content hash (Vite's assets/) never change;
    // the rest (index.html, sw.js) are revalidated on every load.
    let cache = if file
        .strip_prefix(root)
        .is_ok_and(|p| p.starts_with("assets"))
    {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut headers = vec![
        ("content-type", content_type(&file).to_owned()),
        ("cache-control", cache.to_owned()),
        ("vary", "accept-encoding".to_owned()),
    ];
    // A precompressed sibling (`file.gz`, written by the app's build).
    if head.gzip {
        let mut gz = file.clone().into_os_string();
        gz.push(".gz");
        let dir = root.to_path_buf();
        let gz = tokio::task::spawn_blocking(move || inside(&dir, Path::new(&gz)))
            .await
            .ok()
            .flatten();
        if let Some(body) = match gz {
            Some(gz) => open(&gz).await,
            None => None,
        } {
            headers.push(("content-encoding", "gzip".to_owned()));
            return ("200 OK", headers, body);
        }
    }
    match open(&file).await {
        Some(body) => ("200 OK", headers, body),
        None => {
            tracing::warn!(file = %file.display(), "www: cannot read");
            text("500 Internal Server Error", "cannot read the file\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_site() {
        let dir = std::env::temp_dir().join(format!("hgx-www-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("assets")).expect("dir");
        std::fs::write(dir.join("index.html"), "<!doctype html>").expect("write");
        std::fs::write(dir.join("assets/a b.js"), "x").expect("write");
        std::fs::write(dir.join(".env"), "secret").expect("write");
        let root = dir.canonicalize().expect("canonical");
        assert_eq!(resolve(&root, "/"), Some(root.join("index.html")));
        assert_eq!(
            resolve(&root, "/?server=ws://x/"),
            Some(root.join("index.html"))
        );
        assert_eq!(
            resolve(&root, "/assets/a%20b.js"),
            Some(root.join("assets/a b.js"))
        );
        assert_eq!(resolve(&root, "/assets/"), None);
        for bad in [
            "/../etc/passwd",
            "/assets/../../x",
            "/%2e%2e/x",
            "/a%00",
            "/%zz",
            "/missing.js",
            "/.env",
            "/%2eenv",
        ] {
            assert_eq!(resolve(&root, bad), None, "{bad}");
        }
        // A symbolic link out of the site, as a page or as its .gz, is refused.
        let _ = std::fs::remove_file(dir.join("assets/out.js.gz"));
        std::os::unix::fs::symlink("/etc/hostname", dir.join("assets/out.js.gz")).expect("symlink");
        assert_eq!(inside(&root, &root.join("assets/out.js.gz")), None);
        assert_eq!(resolve(&root, "/assets/out.js.gz"), None);
        assert!(parse_head(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n"
        )
        .is_some_and(|h| h.upgrade));
        assert!(
            parse_head(b"GET / HTTP/1.1\r\nAccept-Encoding: br, gzip\r\n\r\n")
                .is_some_and(|h| !h.upgrade && h.gzip)
        );
        assert!(parse_head(b"\x00\x01garbage\r\n\r\n").is_none());
    }
}
