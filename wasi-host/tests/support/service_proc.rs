//! Test helper: `hypergolix start` as a real process on a free loopback
//! port, with the test KDF and a fixed password, killed when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use hypergolix_core::golix::Ghid;

/// A running `hypergolix start` (killed when dropped).
pub struct Svc {
    /// The process.
    pub child: Child,
    /// Where its IPC websocket listens.
    pub addr: String,
    /// The user id it printed, if it printed one.
    pub user_id: Option<Ghid>,
    /// The identity it printed, if it printed one.
    pub identity: Option<Ghid>,
    /// Where its health and metrics port listens (with `--metrics`).
    pub metrics: Option<String>,
}

impl Svc {
    /// Starts a service on `dir` (engine in wasmtime unless `native`).
    pub fn start(dir: &Path, native: bool) -> Self {
        Self::start_with(dir, native, &[])
    }

    /// Same, with extra arguments.
    pub fn start_with(dir: &Path, native: bool, extra: &[&str]) -> Self {
        Self::start_at(dir, native, "127.0.0.1:0", extra)
    }

    /// Same, listening on `ipc` (to come back on the same port).
    pub fn start_at(dir: &Path, native: bool, ipc: &str, extra: &[&str]) -> Self {
        Self::start_exe(
            Path::new(env!("CARGO_BIN_EXE_hypergolix")),
            dir,
            native,
            ipc,
            extra,
        )
    }

    /// Same, with the program at `exe` (a copy of the binary, say).
    pub fn start_exe(exe: &Path, dir: &Path, native: bool, ipc: &str, extra: &[&str]) -> Self {
        Self::spawn(exe, dir, native, ipc, extra, Stdio::inherit())
    }

    /// A service (engine in wasmtime) whose log goes to the file `log`.
    pub fn start_logged(dir: &Path, extra: &[&str], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        Self::spawn(
            Path::new(env!("CARGO_BIN_EXE_hypergolix")),
            dir,
            false,
            "127.0.0.1:0",
            extra,
            Stdio::from(file),
        )
    }

    fn spawn(
        exe: &Path,
        dir: &Path,
        native: bool,
        ipc: &str,
        extra: &[&str],
        stderr: Stdio,
    ) -> Self {
        let mut cmd = Command::new(exe);
        // Never the build tree: the binary must need nothing from it.
        if let Some(parent) = dir.parent() {
            cmd.current_dir(parent);
        }
        cmd.args(["start", "--ipc", ipc, "--insecure-test-kdf", "--data-dir"])
            .arg(dir)
            .env("HYPERGOLIX_PASSWORD", "correct horse")
            .env("HYPERGOLIX_CACHE_DIR", dir.join("cache"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr);
        if native {
            cmd.arg("--native-engine");
        }
        cmd.args(extra);
        let child = cmd.spawn().expect("spawn hypergolix start");
        // Owned by a Svc from here on, so the process is reaped on every path.
        let mut svc = Self {
            child,
            addr: String::new(),
            user_id: None,
            identity: None,
            metrics: None,
        };
        let mut out = BufReader::new(svc.child.stdout.take().expect("stdout"));
        loop {
            let mut line = String::new();
            assert!(
                out.read_line(&mut line).expect("read") > 0,
                "the service exited"
            );
            if let Some(u) = line.strip_prefix("user id: ") {
                svc.user_id = Some(u.trim().parse().expect("user id"));
            }
            if let Some(i) = line.strip_prefix("identity: ") {
                svc.identity = Some(i.trim().parse().expect("identity"));
            }
            if let Some(m) = line.strip_prefix("metrics on http://") {
                svc.metrics = m.trim().strip_suffix("/metrics").map(String::from);
            }
            if let Some(a) = line.strip_prefix("listening on ") {
                svc.addr = a.trim().to_string();
                // Keep reading, as a supervisor would (the service must
                // survive a closed stdout too: see `say` in local.rs).
                std::thread::spawn(move || {
                    let mut sink = String::new();
                    while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
                        sink.clear();
                    }
                });
                return svc;
            }
        }
    }

    /// kill -9.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

impl Drop for Svc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
