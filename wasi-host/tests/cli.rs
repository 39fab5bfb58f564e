//! The `hypergolix` local-service commands as a user runs them:
//! `config`, `create-account`, `whoami`, `start --background`, `status`,
//! `stop`, a stale pid file after kill -9, and `login` of a second device
//! through a real `hypergolix serve`.

#[path = "support/cli_proc.rs"]
mod cli_proc;
#[path = "support/serve_proc.rs"]
mod serve_proc;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cli_proc::{line, text};
use futures_util::{SinkExt, StreamExt};
use hypergolix_core::wire::ipc::{IpcMessage, IpcRequest, Side};
use serve_proc::{tempdir, Server};
use tokio_tungstenite::tungstenite::Message as Ws;

fn hgx(dir: &Path, args: &[&str]) -> Output {
    cli_proc::run(dir, &dir.join("cache"), "correct horse", args)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    cli_proc::succeeded(&hgx(dir, args), args)
}

fn fails(dir: &Path, args: &[&str], why: &str) {
    cli_proc::failed(&hgx(dir, args), args, why)
}

/// `?I` over the IPC websocket: the service really serves apps there.
fn whoami_over_ipc(addr: &str) -> IpcMessage {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
            .await
            .expect("connect");
        let m = IpcMessage::Request {
            token: 1,
            request: IpcRequest::Whoami,
        };
        ws.send(Ws::Binary(m.encode().into())).await.expect("send");
        loop {
            if let Some(Ok(Ws::Binary(b))) = ws.next().await {
                return IpcMessage::decode(Side::Service, &b).expect("decode");
            }
        }
    })
}

/// Runs a `--json` command: its exit status is `success`, and its stdout
/// is exactly one JSON document.
fn json_of(dir: &Path, args: &[&str], success: bool) -> serde_json::Value {
    let o = hgx(dir, args);
    assert_eq!(
        o.status.success(),
        success,
        "hypergolix {args:?}:\n{}",
        text(&o)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 1, "one line of JSON: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn pid_of(dir: &Path) -> u32 {
    let t = std::fs::read_to_string(dir.join("service.toml")).expect("pid file");
    line(&t, "pid = ").parse().expect("pid")
}

#[test]
fn config_account_background_status_stop() {
    let dir = tempdir("cli");
    let d = dir.join("laptop");

    // Nothing yet: clear messages, failing exit codes.
    fails(&d, &["whoami"], "no account in");
    let st = hgx(&d, &["status"]);
    assert!(!st.status.success());
    assert!(text(&st).contains("service: not running"));

    // Settings are checked before they are written.
    fails(
        &d,
        &["config", "set", "ipc", "0.0.0.0:7772"],
        "this machine only",
    );
    fails(
        &d,
        &["config", "set", "remote", "http://x/"],
        "websocket URL",
    );
    fails(&d, &["config", "set", "colour", "blue"], "unknown key");
    ok(&d, &["config", "set", "ipc", "127.0.0.1:0"]);
    ok(&d, &["config", "set", "max_requests_per_second", "500"]);
    let shown = ok(&d, &["config"]);
    assert!(shown.contains("ipc = \"127.0.0.1:0\""), "{shown}");
    assert!(shown.contains("max_requests_per_second = 500"), "{shown}");
    ok(&d, &["config", "unset", "max_requests_per_second"]);
    assert!(ok(&d, &["config", "show"]).contains("max_requests_per_second = 2000"));

    // create-account, then whoami in both dialects.
    let created = ok(&d, &["create-account", "--insecure-test-kdf"]);
    let user = line(&created, "user id: ").to_string();
    let who = ok(&d, &["whoami"]);
    assert_eq!(line(&who, "user id: "), user);
    let legacy = ok(&d, &["whoami", "--legacy"]);
    assert_ne!(line(&legacy, "user id: "), user, "the 0.1.0 form differs");
    // --json: one document on stdout, nothing else there.
    let j = json_of(&d, &["whoami", "--json"], true);
    assert_eq!(j["user_id"], user.as_str());
    assert_eq!(j["identity"], line(&who, "identity: "));
    let j = json_of(&d, &["config", "--json"], true);
    assert_eq!(j["ipc"], "127.0.0.1:0");
    assert_eq!(j["ipc_trust"], "own-user");
    assert_eq!(j["max_requests_per_second"], 2000);
    let j = json_of(&d, &["status", "--json"], false);
    assert_eq!(j["running"], false);
    assert_eq!(j["account"]["user_id"], user.as_str());
    // --log-format json: log lines are JSON objects (a server that opens
    // its store, logs it, and fails on a port already taken).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = taken.local_addr().expect("addr").to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_hypergolix"))
        .args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            &taken,
            "--store",
        ])
        .arg(dir.join("json-log.redb"))
        .env("RUST_LOG", "info")
        .output()
        .expect("run hypergolix serve");
    assert!(!o.status.success());
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.lines().any(|l| l.starts_with('{')
            && serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["level"].is_string())),
        "no JSON log line in:\n{log}"
    );
    fails(
        &d,
        &["create-account", "--insecure-test-kdf"],
        "already holds an account",
    );

    // Background start: the command returns once the service listens.
    let started = ok(&d, &["start", "--background", "--insecure-test-kdf"]);
    let addr = line(&started, "apps connect on: ws://")
        .trim_end_matches('/')
        .to_string();
    let pid = pid_of(&d);
    fails(&d, &["start", "--background"], "already running");
    fails(&d, &["start"], "already runs");
    let st = ok(&d, &["status"]);
    assert!(st.contains(&format!("service: running (pid {pid}")), "{st}");
    assert!(st.contains(&user));
    let j = json_of(&d, &["status", "--json"], true);
    assert_eq!(
        (j["running"].as_bool(), j["pid"].as_u64()),
        (Some(true), Some(u64::from(pid)))
    );
    assert_eq!(j["apps_connect_on"], format!("ws://{addr}/"));
    match whoami_over_ipc(&addr) {
        IpcMessage::Ack { body, .. } => assert_eq!(body.len(), 65),
        other => panic!("?I answered {other:?}"),
    }

    // stop: SIGTERM, the pid file goes, status says so.
    let stopped = ok(&d, &["stop"]);
    assert!(stopped.contains(&format!("stopped (pid {pid})")));
    assert!(!d.join("service.toml").exists());
    assert!(text(&hgx(&d, &["status"])).contains("service: not running"));
    assert!(ok(&d, &["stop"]).contains("not running"));
    let log = std::fs::read_to_string(d.join("service.log")).expect("log");
    assert!(log.contains("stopping (SIGTERM)"), "{log}");

    // kill -9 leaves a stale pid file: status notices, start works again.
    ok(&d, &["start", "--background", "--insecure-test-kdf"]);
    let pid = pid_of(&d);
    let p = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    rustix::process::kill_process(p, rustix::process::Signal::KILL).expect("kill -9");
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if text(&hgx(&d, &["status"])).contains("service: not running") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(text(&hgx(&d, &["status"])).contains("service: not running"));
    assert!(
        !d.join("service.toml").exists(),
        "the stale pid file is removed"
    );
    ok(&d, &["start", "--background", "--insecure-test-kdf"]);
    assert_eq!(line(&ok(&d, &["whoami"]), "user id: "), user);
    ok(&d, &["stop"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn login_sets_up_a_second_device_through_the_server() {
    let dir = tempdir("cli-login");
    let server = Server::start(&dir.join("server.redb"), &[]);
    let remote = format!("ws://{}/", server.addr);
    let (laptop, phone) = (dir.join("laptop"), dir.join("phone"));
    ok(&laptop, &["config", "set", "remote", &remote]);
    ok(&laptop, &["config", "set", "ipc", "127.0.0.1:0"]);
    let created = ok(&laptop, &["create-account", "--insecure-test-kdf"]);
    assert!(created.contains("published to the server when the service next starts"));
    let user = line(&created, "user id: ").to_string();
    // The account reaches the server when the service runs.
    ok(&laptop, &["start", "--background", "--insecure-test-kdf"]);

    // No server configured: a clear refusal, nothing created.
    fails(
        &phone,
        &["login", &user, "--insecure-test-kdf"],
        "needs the persistence server",
    );
    let t0 = Instant::now();
    let logged = loop {
        let o = hgx(
            &phone,
            &["login", &user, "--remote", &remote, "--insecure-test-kdf"],
        );
        if o.status.success() {
            break text(&o);
        }
        // The laptop may not have published the account yet.
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "login failed:\n{}",
            text(&o)
        );
        let _ = std::fs::remove_dir_all(&phone);
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(line(&logged, "user id: "), user);
    assert_eq!(
        line(&ok(&phone, &["whoami"]), "identity: "),
        line(&ok(&laptop, &["whoami"]), "identity: ")
    );
    fails(
        &phone,
        &["login", &user, "--remote", &remote, "--insecure-test-kdf"],
        "already holds an account",
    );
    ok(&laptop, &["stop"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `hypergolix service install | status | uninstall` with a unit directory
/// of the test's (no systemd runs here): the dry run writes nothing; a
/// password file others can read is refused; the unit passes
/// `systemd-analyze verify`; its `ExecStart=` line, run as systemd would
/// (`%d` the credentials directory holding the password), creates the
/// account unattended and serves apps; uninstall leaves nothing behind.
#[test]
fn service_install_writes_a_unit_that_starts_unattended() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("unit");
    let units = dir.join("units");
    let data = dir.join("data");
    let (u, d) = (units.to_str().expect("path"), data.to_str().expect("path"));
    let pw = dir.join("password");
    std::fs::write(&pw, "unattended pw\n").expect("write");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let p = pw.to_str().expect("path");

    let out = ok(
        &dir,
        &[
            "service",
            "install",
            "--dry-run",
            "--unit-dir",
            u,
            "--data-dir",
            d,
        ],
    );
    assert!(out.contains(&format!("start --data-dir {d}")), "{out}");
    assert!(!units.exists(), "a dry run writes nothing");
    let install = [
        "service",
        "install",
        "--no-start",
        "--unit-dir",
        u,
        "--data-dir",
        d,
        "--password-file",
        p,
    ];
    fails(&dir, &install, "chmod 600");
    assert!(!units.join("hypergolix.service").exists());
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = ok(&dir, &install);
    assert!(out.contains("not started"), "{out}");
    let unit_path = units.join("hypergolix.service");
    let unit = std::fs::read_to_string(&unit_path).expect("the unit");
    assert!(
        unit.contains(&format!("LoadCredential=password:{p}")),
        "{unit}"
    );
    assert!(ok(&dir, &["service", "status", "--unit-dir", u]).contains("installed: "));

    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_path)
        .output()
        .expect("systemd-analyze (scripts/setup.sh installs Debian's systemd)");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // Run ExecStart= as systemd would: %d is the credentials directory.
    let creds = dir.join("credentials");
    std::fs::create_dir_all(&creds).expect("creds");
    std::fs::copy(&pw, creds.join("password")).expect("credential");
    std::fs::set_permissions(
        creds.join("password"),
        std::fs::Permissions::from_mode(0o400),
    )
    .expect("chmod");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart")
        .replace("%d", creds.to_str().expect("path"));
    let argv: Vec<&str> = exec.split(' ').collect();
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        // No terminal, no password variable: only the credential.
        .env_remove("HYPERGOLIX_PASSWORD")
        .env("HYPERGOLIX_IPC", "127.0.0.1:0")
        .env("HYPERGOLIX_CACHE_DIR", dir.join("cache"))
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run ExecStart");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        child.stdout.take().expect("stdout"),
    ));
    let addr = loop {
        let l = lines.next().expect("the service exited").expect("read");
        if let Some(a) = l.strip_prefix("listening on ") {
            break a.to_string();
        }
    };
    assert!(matches!(whoami_over_ipc(&addr), IpcMessage::Ack { .. }));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        data.join("account.toml").exists(),
        "the account was created"
    );

    let out = ok(&dir, &["service", "uninstall", "--unit-dir", u]);
    assert!(out.contains("removed"), "{out}");
    let left: Vec<_> = std::fs::read_dir(&units).expect("units").collect();
    assert!(left.is_empty(), "uninstall leaves nothing: {left:?}");
    assert!(!hgx(&dir, &["service", "status", "--unit-dir", u])
        .status
        .success());
}
