//! Test helpers shared by the tests that run `hypergolix serve` as a real
//! process: a fresh temporary directory, and the server process itself
//! (started on a free loopback port, killed when dropped).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A fresh, empty temporary directory for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hgx-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    // Private, as the service wants its data directories.
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)
        .expect("tempdir");
    d
}

/// A free TCP port on 127.0.0.1 (for a server that must come back on it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `GET path` over HTTP/1.1: the status code and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {text}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (code, body.to_string())
}

/// A running `hypergolix serve`.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Where `/healthz` and `/metrics` are served (with `--metrics`).
    pub metrics: Option<String>,
}

impl Server {
    /// Starts a server on `store` with extra arguments; waits for its address.
    pub fn start(store: &Path, extra: &[&str]) -> Self {
        Self::start_on(store, "127.0.0.1:0", extra)
    }

    /// Same, listening on `listen` (to come back on the same port).
    pub fn start_on(store: &Path, listen: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hypergolix"))
            .args(["serve", "--listen", listen, "--store"])
            .arg(store)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hypergolix serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected: {line}"))
            .to_string();
        let metrics = extra.contains(&"--metrics").then(|| {
            let mut m = String::new();
            stdout.read_line(&mut m).expect("read metrics line");
            m.trim()
                .strip_prefix("metrics on http://")
                .and_then(|a| a.strip_suffix("/metrics"))
                .unwrap_or_else(|| panic!("unexpected: {m}"))
                .to_string()
        });
        Self {
            child,
            addr,
            metrics,
        }
    }

    /// kill -9.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
