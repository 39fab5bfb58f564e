//! The IPC port serves its own Unix user only, over real processes: a
//! client run as another Unix user (made here with `useradd`, run with
//! `setpriv`) is dropped before anything it sent is read, over loopback TCP
//! and over a Unix-domain socket (where `SO_PEERCRED` decides, even with
//! the socket file opened to everyone); the same user's clients, and the
//! Rust link over the Unix socket, work; `ipc_trust = "any-local-user"`
//! lets the other user in; a `Host` that is not loopback (DNS rebinding)
//! and a browser `Origin` are refused.
//!
//! No libtest harness (`harness = false` in Cargo.toml): the other user's
//! client is this very program, copied where that user can run it and
//! started as `ipc_peer probe TARGET HOST ORIGIN`.

#[path = "support/serve_proc.rs"]
mod serve_proc;
#[path = "support/service_proc.rs"]
mod service_proc;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use service_proc::Svc;

/// The Unix user the test makes to play "another local user".
const OTHER: &str = "hgx-ipc-peer";

/// A websocket upgrade request.
fn upgrade(host: &str, origin: &str) -> String {
    let origin = if origin.is_empty() {
        String::new()
    } else {
        format!("Origin: {origin}\r\n")
    };
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
    )
}

/// Sends an upgrade to `target` (`tcp:ADDR` or `unix:PATH`) and says what
/// came back: the HTTP status code, or `closed` when the connection ended
/// (or was reset) with nothing read.
fn probe(target: &str, host: &str, origin: &str) -> String {
    fn exchange<S: Read + Write>(mut s: S, req: &str) -> String {
        // A peer that was dropped unread may reset the connection: a
        // failed write or read is "closed" too.
        if s.write_all(req.as_bytes()).is_err() {
            return "closed".into();
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
        let text = String::from_utf8_lossy(&got);
        match text.split_whitespace().nth(1) {
            Some(code) => code.to_string(),
            None => "closed".into(),
        }
    }
    let req = upgrade(host, origin);
    let timeout = Some(Duration::from_secs(10));
    if let Some(addr) = target.strip_prefix("tcp:") {
        let s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(timeout).expect("timeout");
        exchange(s, &req)
    } else if let Some(path) = target.strip_prefix("unix:") {
        let s = std::os::unix::net::UnixStream::connect(path).expect("connect");
        s.set_read_timeout(timeout).expect("timeout");
        exchange(s, &req)
    } else {
        panic!("bad probe target {target}")
    }
}

/// Runs [`probe`] in a process of the other user (`setpriv`).
fn probe_as_other(exe: &Path, target: &str, host: &str) -> String {
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={OTHER}"),
            &format!("--regid={OTHER}"),
            "--clear-groups",
            "--",
        ])
        .arg(exe)
        .args(["probe", target, host, ""])
        .output()
        .expect("run setpriv");
    assert!(
        out.status.success(),
        "the probe as {OTHER} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The other user (made if missing), and a copy of this program it can run.
fn other_user(work: &Path) -> PathBuf {
    let exists = Command::new("id")
        .arg(OTHER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        let st = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                OTHER,
            ])
            .status()
            .expect("run useradd");
        assert!(st.success(), "useradd {OTHER} failed");
    }
    let bin = work.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let exe = bin.join("ipc_peer");
    std::fs::copy(std::env::current_exe().expect("exe"), &exe).expect("copy the probe");
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in [
        (work, 0o711),
        (bin.as_path(), 0o755),
        (exe.as_path(), 0o755),
    ] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    exe
}

fn check(results: &mut Vec<(String, bool)>, what: &str, got: &str, want: &str) {
    let ok = got == want;
    println!(
        "{} {what}: {got}{}",
        if ok { "ok" } else { "FAILED" },
        if ok {
            String::new()
        } else {
            format!(" (want {want})")
        }
    );
    results.push((what.to_string(), ok));
}

fn scenario() -> Vec<(String, bool)> {
    let mut r = Vec::new();
    let work = std::env::temp_dir().join(format!("hgx-ipc-peer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    let root = rustix::process::geteuid().is_root();
    let exe = root.then(|| other_user(&work));
    if !root {
        println!("not root: cannot make another Unix user; only this user's side is tested");
    }

    // Loopback TCP, own user only (the default), for apps and for the
    // health and metrics port.
    let svc = Svc::start_with(&work.join("a"), false, &["--metrics", "127.0.0.1:0"]);
    let metrics = svc.metrics.clone().expect("the metrics address");
    let (code, text) = serve_proc::http_get(&metrics, "/metrics");
    check(&mut r, "own user reads /metrics", &code.to_string(), "200");
    check(
        &mut r,
        "the embedded store counts as the server",
        &text
            .lines()
            .any(|l| l == "hypergolix_service_server_connected 1")
            .to_string(),
        "true",
    );
    let (code, _) = serve_proc::http_get(&metrics, "/healthz");
    check(&mut r, "own user reads /healthz", &code.to_string(), "200");
    let tcp = format!("tcp:{}", svc.addr);
    check(
        &mut r,
        "own user over TCP",
        &probe(&tcp, &svc.addr, ""),
        "101",
    );
    check(
        &mut r,
        "a Host that is not loopback (DNS rebinding)",
        &probe(&tcp, "evil.example:7772", ""),
        "403",
    );
    check(
        &mut r,
        "Host localhost",
        &probe(
            &tcp,
            &format!("localhost:{}", svc.addr.rsplit(':').next().unwrap_or("")),
            "",
        ),
        "101",
    );
    check(
        &mut r,
        "a browser Origin",
        &probe(&tcp, &svc.addr, "https://evil.example"),
        "403",
    );
    if let Some(exe) = &exe {
        check(
            &mut r,
            "another user over TCP",
            &probe_as_other(exe, &tcp, &svc.addr),
            "closed",
        );
        check(
            &mut r,
            "another user on the metrics port",
            &probe_as_other(exe, &format!("tcp:{metrics}"), &metrics),
            "closed",
        );
    }
    drop(svc);

    // ipc_trust = "any-local-user" lets every local user in.
    if let Some(exe) = &exe {
        let svc = Svc::start_with(&work.join("b"), false, &["--ipc-trust", "any-local-user"]);
        let tcp = format!("tcp:{}", svc.addr);
        check(
            &mut r,
            "another user over TCP with ipc_trust any-local-user",
            &probe_as_other(exe, &tcp, &svc.addr),
            "101",
        );
    }

    // A Unix-domain socket: 0600, and SO_PEERCRED checked even when the
    // file is opened to everyone.
    let sock = work.join("ipc.sock");
    let ipc = format!("unix:{}", sock.display());
    let svc = Svc::start_at(&work.join("c"), false, &ipc, &[]);
    check(&mut r, "the service says where it listens", &svc.addr, &ipc);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    check(&mut r, "socket file mode", &format!("{mode:o}"), "600");
    check(
        &mut r,
        "own user over the Unix socket",
        &probe(&ipc, "localhost", ""),
        "101",
    );
    if let Some(exe) = &exe {
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        check(
            &mut r,
            "another user over a world-writable Unix socket",
            &probe_as_other(exe, &ipc, "localhost"),
            "closed",
        );
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let who = rt.block_on(async {
        let link = hypergolix_link::HypergolixLink::connect(&ipc)
            .await
            .expect("the Rust link over the Unix socket");
        link.whoami().to_string()
    });
    check(
        &mut r,
        "the Rust link over the Unix socket is the account",
        &who,
        &svc.identity.map(|u| u.to_string()).unwrap_or_default(),
    );
    drop(svc);
    let _ = std::fs::remove_dir_all(&work);
    r
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("probe") {
        let get = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
        println!("{}", probe(get(2), get(3), get(4)));
        return ExitCode::SUCCESS;
    }
    // `cargo test -- --list` and filters: this file is one scenario.
    if args.iter().any(|a| a == "--list") {
        println!("ipc_peer: test");
        return ExitCode::SUCCESS;
    }
    let results = scenario();
    let failed = results.iter().filter(|(_, ok)| !ok).count();
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
