//! The service as other commands see it: the pid file `service.toml` (pid,
//! IPC address, remote, log), `account.toml` (the public user id and
//! identity, for `whoami`), and the `status`, `stop` and `start
//! --background` commands built on them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hypergolix_core::golix::Ghid;
use hypergolix_core::wire::ipc::GhidDialect;
use serde::{Deserialize, Serialize};

use super::settings::{ipc_url, DirArgs, FileConfig, Settings};
use super::toml_file;
use super::StartArgs;

use crate::error::{Error, Result};

/// The pid file of a running service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidFile {
    /// Process id.
    pub pid: u32,
    /// Where apps connect.
    pub ipc: String,
    /// The persistence server, if not the embedded store.
    pub remote: Option<String>,
    /// Seconds since the Unix epoch when it started listening.
    pub started: u64,
    /// The process's start time in clock ticks since boot (Linux), so a
    /// pid reused by another process after a crash is not taken for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ticks: Option<u64>,
    /// The service runs inside another program (the embedding API): that
    /// program stops it, not `hypergolix stop`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub embedded: bool,
}

impl PidFile {
    /// Its path in a data directory.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("service.toml")
    }

    /// Reads it (None when absent).
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        toml_file::read(&Self::path(dir))
    }

    /// Writes it atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        toml_file::write(&Self::path(dir), self)
    }

    /// Removes it if it is this process's.
    pub fn remove_own(dir: &Path) {
        if let Ok(Some(p)) = Self::read(dir) {
            if p.pid == std::process::id() {
                let _ = std::fs::remove_file(Self::path(dir));
            }
        }
    }
}

/// The account of a data directory (public values only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountFile {
    /// The user id (the account's dynamic GHID): what another device logs in with.
    pub user_id: String,
    /// The identity GHID: what others share with.
    pub identity: String,
}

impl AccountFile {
    /// Its path in a data directory.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("account.toml")
    }

    /// Writes it atomically.
    pub fn write(dir: &Path, user_id: &Ghid, identity: &Ghid) -> Result<()> {
        let a = Self {
            user_id: user_id.to_string(),
            identity: identity.to_string(),
        };
        toml_file::write(&Self::path(dir), &a)
    }

    /// Reads it; a clear error when the directory holds no account yet.
    pub fn read(dir: &Path) -> Result<Self> {
        toml_file::read(&Self::path(dir))?.ok_or_else(|| {
            Error::State(format!(
                "no account in {}: run `hypergolix create-account`, `hypergolix login USER_ID` or `hypergolix start`",
                dir.display()
            ))
        })
    }
}

/// A process's start time in clock ticks since boot (field 22 of
/// `/proc/PID/stat`; None where there is no /proc).
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count after its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the pid file's process is alive and is the one that wrote it
/// (same start time), not a later process that reused the pid.
pub fn alive(p: &PidFile) -> bool {
    let Some(pid) = i32::try_from(p.pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    if rustix::process::test_kill_process(pid).is_err() {
        return false;
    }
    match (p.start_ticks, start_ticks(p.pid)) {
        (Some(want), Some(now)) => want == now,
        // No /proc, or an older pid file: trust the signal test.
        _ => true,
    }
}

/// The running service of a data directory; a stale pid file (the process
/// is gone: kill -9 or a crash) is removed.
pub fn running(dir: &Path) -> Result<Option<PidFile>> {
    match PidFile::read(dir)? {
        Some(p) if alive(&p) => Ok(Some(p)),
        Some(_) => {
            let _ = std::fs::remove_file(PidFile::path(dir));
            Ok(None)
        }
        None => Ok(None),
    }
}

/// `hypergolix status`: prints what runs (as one JSON document with
/// `json`) and returns whether it runs.
pub fn status(dir: &DirArgs, json: bool) -> Result<bool> {
    let d = dir.dir()?;
    let account = AccountFile::read(&d).ok();
    let settings = Settings::resolve(&Default::default(), &FileConfig::read(&d)?)?;
    let run = running(&d)?;
    let uptime = run.as_ref().map(|p| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|n| n.as_secs().saturating_sub(p.started))
            .unwrap_or(0)
    });
    let persistence = run
        .as_ref()
        .map_or(settings.remote.clone(), |p| p.remote.clone())
        .unwrap_or_else(|| "embedded store".into());
    if json {
        let doc = serde_json::json!({
            "data_dir": d.display().to_string(),
            "account": account.as_ref().map(|a| serde_json::json!({
                "user_id": a.user_id,
                "identity": a.identity,
            })),
            "running": run.is_some(),
            "pid": run.as_ref().map(|p| p.pid),
            "embedded": run.as_ref().map(|p| p.embedded),
            "uptime_seconds": uptime,
            "apps_connect_on": run.as_ref().map(|p| ipc_url(&p.ipc)),
            "persistence": persistence,
            "log": log_path(&d).display().to_string(),
        });
        println!("{doc}");
        return Ok(run.is_some());
    }
    println!("data directory: {}", d.display());
    match &account {
        Some(a) => println!("user id: {}\nidentity: {}", a.user_id, a.identity),
        None => println!("account: none yet"),
    }
    match (&run, uptime) {
        (Some(p), Some(up)) => {
            let inside = if p.embedded {
                ", inside another program"
            } else {
                ""
            };
            println!("service: running (pid {}{inside}, up {up} s)", p.pid);
            println!("apps connect on: {}", ipc_url(&p.ipc));
        }
        _ => println!("service: not running"),
    }
    println!("persistence: {persistence}");
    println!("log: {}", log_path(&d).display());
    Ok(run.is_some())
}

/// `hypergolix stop`: SIGTERM, then waits for the process to end.
pub fn stop(dir: &DirArgs) -> Result<()> {
    let d = dir.dir()?;
    let Some(p) = running(&d)? else {
        println!("the service is not running ({})", d.display());
        return Ok(());
    };
    if p.embedded {
        return Err(Error::State(format!(
            "the service of {} runs inside another program (pid {}); stop it from that program",
            d.display(),
            p.pid
        )));
    }
    let pid = i32::try_from(p.pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| Error::State("bad pid in the pid file".into()))?;
    rustix::process::kill_process(pid, rustix::process::Signal::TERM)
        .map_err(|e| Error::State(format!("cannot signal pid {}: {e}", p.pid)))?;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(15) {
        if !alive(&p) {
            println!("stopped (pid {})", p.pid);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Error::State(format!(
        "pid {} did not stop within 15 s; `kill -9 {}` is safe (every acknowledged write is on disk)",
        p.pid, p.pid
    )))
}

/// `hypergolix whoami` (one JSON document with `json`).
pub fn whoami(dir: &DirArgs, legacy: bool, json: bool) -> Result<()> {
    let a = AccountFile::read(&dir.dir()?)?;
    let show = |text: &str| -> Result<String> {
        let g: Ghid = text
            .parse()
            .map_err(|e| Error::State(format!("account.toml: {e}")))?;
        Ok(if legacy {
            GhidDialect::Legacy.outward(g).to_string()
        } else {
            g.to_string()
        })
    };
    let (user_id, identity) = (show(&a.user_id)?, show(&a.identity)?);
    if json {
        println!(
            "{}",
            serde_json::json!({ "user_id": user_id, "identity": identity })
        );
    } else {
        println!("user id: {user_id}");
        println!("identity: {identity}");
    }
    Ok(())
}

/// The service's log file (background mode).
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("service.log")
}

/// `hypergolix start --background`: starts this program again as a
/// detached child (its own process group, output appended to the log),
/// hands it the password on standard input when the account is new, and
/// waits until it has written its pid file.
pub fn start_background(args: &StartArgs) -> Result<()> {
    let dir = args.account.dir.create()?;
    if let Some(p) = running(&dir)? {
        return Err(Error::State(format!(
            "already running (pid {}), apps connect on {}",
            p.pid,
            ipc_url(&p.ipc)
        )));
    }
    let fresh = AccountFile::read(&dir).is_err() && !dir.join("local.redb").exists();
    let password = if fresh {
        Some(args.account.password.get(args.login.is_none())?)
    } else {
        None
    };
    let log = log_path(&dir);
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| Error::State(format!("{}: {e}", log.display())))?;
    let err = out.try_clone().map_err(|e| Error::State(e.to_string()))?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::State(format!("cannot find this program: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.args(
        std::env::args_os()
            .skip(1)
            .filter(|a| a != "--background" && a != "-d"),
    );
    if password.is_some() {
        cmd.arg("--password-stdin");
    }
    // The child gets the password on stdin; it need not sit in its
    // environment for the life of the service.
    cmd.env_remove(&args.account.password.password_env);
    cmd.stdin(Stdio::piped()).stdout(out).stderr(err);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: a Ctrl-C in this terminal does not reach it.
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::State(format!("cannot start the service: {e}")))?;
    if let (Some(pw), Some(mut stdin)) = (password, child.stdin.take()) {
        use std::io::Write;
        let mut line = zeroize::Zeroizing::new(pw.to_vec());
        line.push(b'\n');
        stdin
            .write_all(&line)
            .map_err(|e| Error::State(format!("handing the password to the service: {e}")))?;
    }
    let t0 = Instant::now();
    let mut told = false;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| Error::State(e.to_string()))? {
            return Err(Error::State(format!(
                "the service exited ({status}); the end of {}:\n{}",
                log.display(),
                tail(&log, 10)
            )));
        }
        if let Some(p) = PidFile::read(&dir)? {
            if p.pid == child.id() {
                println!("hypergolix is running in the background (pid {})", p.pid);
                println!("apps connect on: {}", ipc_url(&p.ipc));
                println!("log: {}", log.display());
                println!("stop it with: hypergolix stop");
                if fresh && args.login.is_none() {
                    // Never in the log: the words are made on request.
                    println!(
                        "recovery words (they restore the account if the password is lost): \
                         make them with `hypergolix recovery-words`"
                    );
                }
                return Ok(());
            }
        }
        if !told && t0.elapsed() > Duration::from_secs(1) {
            eprintln!("starting (the first start compiles the engine; this can take a while)…");
            told = true;
        }
        if t0.elapsed() > Duration::from_secs(300) {
            return Err(Error::State(format!(
                "the service did not come up within 5 minutes (pid {}); see {}",
                child.id(),
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
