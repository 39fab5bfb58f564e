//! Where the local service's settings come from: command-line flags, then
//! environment variables, then `config.toml` in the data directory (written
//! by `hypergolix config set`), then defaults. Also the account password's
//! sources: a file, standard input (for the background child), an
//! environment variable, or a prompt on the terminal.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::peer::IpcTrust;

use crate::error::{Error, Result};

/// The default IPC address (as 0.1.0).
pub const DEFAULT_IPC: &str = "127.0.0.1:7772";
/// Default app requests per second per connection before `NK` (0 = no limit).
pub const DEFAULT_RATE: u32 = 2000;

/// The data directory flag every local-service command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct DirArgs {
    /// Where the service keeps its store, keys, configuration, pid file and
    /// log [default: ~/.hypergolix].
    #[arg(long, env = "HYPERGOLIX_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DirArgs {
    /// The data directory: `--data-dir`, or `~/.hypergolix`. Without a home
    /// directory there is no safe default (a shared one such as /tmp would
    /// let another user plant a key or a config): say so.
    pub fn dir(&self) -> Result<PathBuf> {
        if let Some(d) = &self.data_dir {
            return Ok(d.clone());
        }
        match std::env::var_os("HOME") {
            Some(h) if !h.is_empty() => Ok(PathBuf::from(h).join(".hypergolix")),
            _ => Err(Error::Config(
                "no home directory ($HOME): pass --data-dir or set HYPERGOLIX_DATA_DIR".into(),
            )),
        }
    }

    /// The data directory, created if missing, readable by this user only
    /// (it holds the storage key and the encrypted store); one that belongs
    /// to another user is refused.
    pub fn create(&self) -> Result<PathBuf> {
        let d = self.dir()?;
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(&d)
            .map_err(|e| Error::Config(format!("{}: {e}", d.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(&d)
                .map_err(|e| Error::Config(format!("{}: {e}", d.display())))?;
            let me = rustix::process::geteuid().as_raw();
            if m.uid() != me {
                return Err(Error::Config(format!(
                    "{} belongs to another user (uid {}); refusing to use it",
                    d.display(),
                    m.uid()
                )));
            }
            if m.mode() & 0o077 != 0 {
                tracing::warn!(
                    dir = %d.display(),
                    "the data directory is open to other users; consider chmod 700"
                );
            }
        }
        Ok(d)
    }
}

/// Where apps connect: a loopback TCP address, or a Unix-domain socket
/// (`unix:PATH`; a relative path is taken in the data directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum IpcAddr {
    /// A websocket on this loopback address.
    Tcp(SocketAddr),
    /// A websocket on this Unix-domain socket (mode 0600).
    Unix(PathBuf),
}

impl std::str::FromStr for IpcAddr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err(Error::Config("ipc: unix: needs a path (unix:PATH)".into()));
            }
            return Ok(IpcAddr::Unix(PathBuf::from(p)));
        }
        let a: SocketAddr = s.parse().map_err(|_| {
            Error::Config(format!(
                "ipc: {s:?} is not an address like {DEFAULT_IPC} or unix:PATH"
            ))
        })?;
        check_loopback(a)?;
        Ok(IpcAddr::Tcp(a))
    }
}

impl std::fmt::Display for IpcAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpcAddr::Tcp(a) => write!(f, "{a}"),
            IpcAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl TryFrom<String> for IpcAddr {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<IpcAddr> for String {
    fn from(a: IpcAddr) -> String {
        a.to_string()
    }
}

impl IpcAddr {
    /// A relative socket path taken in the data directory `dir`.
    pub fn in_dir(self, dir: &Path) -> Self {
        match self {
            IpcAddr::Unix(p) if p.is_relative() => IpcAddr::Unix(dir.join(p)),
            other => other,
        }
    }
}

/// What an app passes to a link to reach the service listening on `ipc`
/// (as the pid file records it): `ws://ADDR/`, or `unix:PATH`.
pub fn ipc_url(ipc: &str) -> String {
    if ipc.starts_with("unix:") {
        ipc.to_string()
    } else {
        format!("ws://{ipc}/")
    }
}

/// Flags that override `config.toml`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetArgs {
    /// Where apps connect: a loopback address, or `unix:PATH` for a
    /// Unix-domain socket (mode 0600; relative to the data directory)
    /// [default: 127.0.0.1:7772].
    #[arg(long, env = "HYPERGOLIX_IPC")]
    pub ipc: Option<IpcAddr>,
    /// Who may drive the IPC port: `own-user` (processes of this Unix user
    /// only) or `any-local-user` (every local user, as 0.1.0 did; for
    /// platforms where a peer's user cannot be read) [default: own-user].
    #[arg(long, env = "HYPERGOLIX_IPC_TRUST")]
    pub ipc_trust: Option<IpcTrust>,
    /// A persistence server to sync with (`wss://HOST/`, or `ws://HOST:PORT/`
    /// on loopback or behind a TLS proxy). Without one, an embedded store in
    /// the data directory plays that part.
    #[arg(long, env = "HYPERGOLIX_REMOTE")]
    pub remote: Option<String>,
    /// A PEM file of CA certificates trusted for `wss://` besides the usual
    /// public roots (a self-hosted CA).
    #[arg(long, env = "HYPERGOLIX_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Web page origins allowed to connect (repeatable). By default none:
    /// any request carrying an `Origin` header is refused, so web pages
    /// cannot drive the service; native apps send no `Origin`.
    #[arg(long = "allow-origin")]
    pub allow_origins: Vec<String>,
    /// Largest app message, in bytes [default: 10 MiB, as 0.1.0].
    #[arg(long)]
    pub max_message_bytes: Option<usize>,
    /// Serve `GET /healthz` and Prometheus `GET /metrics` on this loopback
    /// address, to this user's processes only (as the IPC port)
    /// [default: off].
    #[arg(long, env = "HYPERGOLIX_METRICS")]
    pub metrics: Option<SocketAddr>,
    /// App requests per second per connection before they are refused
    /// with `NK` (bursts of twice that pass); 0 = no limit [default: 2000].
    #[arg(long)]
    pub max_requests_per_second: Option<u32>,
}

/// `config.toml` in the data directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// IPC address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc: Option<IpcAddr>,
    /// Who may drive the IPC port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc_trust: Option<IpcTrust>,
    /// Persistence server URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Extra CA certificates for `wss://`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Allowed web origins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origins: Vec<String>,
    /// Largest app message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<usize>,
    /// The health and metrics address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SocketAddr>,
    /// Rate limit per connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests_per_second: Option<u32>,
}

/// The keys `hypergolix config set/unset` knows.
pub const CONFIG_KEYS: &[&str] = &[
    "ipc",
    "ipc_trust",
    "remote",
    "ca_file",
    "allow_origins",
    "max_message_bytes",
    "max_requests_per_second",
    "metrics",
];

impl FileConfig {
    /// The file's path in a data directory.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("config.toml")
    }

    /// Reads it (absent = empty).
    pub fn read(dir: &Path) -> Result<Self> {
        Ok(super::toml_file::read(&Self::path(dir))?.unwrap_or_default())
    }

    /// Writes it atomically into an existing data directory.
    pub fn write(&self, dir: &Path) -> Result<()> {
        super::toml_file::write(&Self::path(dir), self)
    }

    /// Sets one key from its text form (checked as `start` would).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "ipc" => self.ipc = Some(value.parse()?),
            "ipc_trust" => self.ipc_trust = Some(value.parse()?),
            "remote" => {
                check_remote(value)?;
                self.remote = Some(value.to_string());
            }
            "ca_file" => {
                let p = PathBuf::from(value);
                // Read now, so a wrong path or a file with no certificate
                // is said here rather than at the next start.
                crate::tls::client_config(Some(&p)).map_err(|e| Error::Config(e.to_string()))?;
                let p = std::fs::canonicalize(&p)
                    .map_err(|e| Error::Config(format!("{}: {e}", p.display())))?;
                self.ca_file = Some(p);
            }
            "allow_origins" => {
                self.allow_origins = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
            }
            "max_message_bytes" => {
                let n: usize = value.parse().map_err(|_| {
                    Error::Config(format!("max_message_bytes: {value:?} is not a number"))
                })?;
                check_max_message(n)?;
                self.max_message_bytes = Some(n);
            }
            "metrics" => {
                let a: SocketAddr = value.parse().map_err(|_| {
                    Error::Config(format!(
                        "metrics: {value:?} is not an address like 127.0.0.1:9771"
                    ))
                })?;
                check_loopback(a)?;
                self.metrics = Some(a);
            }
            "max_requests_per_second" => {
                self.max_requests_per_second = Some(value.parse().map_err(|_| {
                    Error::Config(format!(
                        "max_requests_per_second: {value:?} is not a number"
                    ))
                })?);
            }
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }

    /// Removes one key (back to its default).
    pub fn unset(&mut self, key: &str) -> Result<()> {
        match key {
            "ipc" => self.ipc = None,
            "ipc_trust" => self.ipc_trust = None,
            "remote" => self.remote = None,
            "ca_file" => self.ca_file = None,
            "allow_origins" => self.allow_origins.clear(),
            "max_message_bytes" => self.max_message_bytes = None,
            "max_requests_per_second" => self.max_requests_per_second = None,
            "metrics" => self.metrics = None,
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }
}

fn unknown_key(key: &str) -> Error {
    Error::Config(format!(
        "unknown key {key:?}; the keys are {}",
        CONFIG_KEYS.join(", ")
    ))
}

/// Refuses a message limit too small for any real request.
fn check_max_message(n: usize) -> Result<()> {
    if n < 1024 {
        return Err(Error::Config(
            "max_message_bytes must be at least 1024".into(),
        ));
    }
    Ok(())
}

/// Refuses a non-loopback IPC address.
pub fn check_loopback(a: SocketAddr) -> Result<()> {
    if a.ip().is_loopback() {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "refusing to listen on {a}: the IPC port is for this machine only (use 127.0.0.1 or ::1)"
        )))
    }
}

fn check_remote(url: &str) -> Result<()> {
    if url.starts_with("ws://") || url.starts_with("wss://") {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "remote: {url:?} is not a websocket URL (ws://HOST:PORT/)"
        )))
    }
}

/// The settings a service runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where apps connect (a relative socket path not yet in the data
    /// directory: see [`IpcAddr::in_dir`]).
    pub ipc: IpcAddr,
    /// Who may drive the IPC port.
    pub ipc_trust: IpcTrust,
    /// Persistence server, or None for the embedded store.
    pub remote: Option<String>,
    /// Extra CA certificates for `wss://`.
    pub ca_file: Option<PathBuf>,
    /// Allowed web origins.
    pub allow_origins: Vec<String>,
    /// Largest app message.
    pub max_message_bytes: usize,
    /// Requests per second per connection (0 = no limit).
    pub max_requests_per_second: u32,
    /// The health and metrics address, if any (loopback).
    pub metrics: Option<SocketAddr>,
}

impl Settings {
    /// Flags over the file over defaults.
    pub fn resolve(args: &NetArgs, file: &FileConfig) -> Result<Self> {
        let default_ipc: SocketAddr = DEFAULT_IPC
            .parse()
            .map_err(|_| Error::Config("default ipc".into()))?;
        let s = Self {
            ipc: args
                .ipc
                .clone()
                .or_else(|| file.ipc.clone())
                .unwrap_or(IpcAddr::Tcp(default_ipc)),
            ipc_trust: args.ipc_trust.or(file.ipc_trust).unwrap_or_default(),
            remote: args.remote.clone().or_else(|| file.remote.clone()),
            ca_file: args.ca_file.clone().or_else(|| file.ca_file.clone()),
            allow_origins: if args.allow_origins.is_empty() {
                file.allow_origins.clone()
            } else {
                args.allow_origins.clone()
            },
            max_message_bytes: args
                .max_message_bytes
                .or(file.max_message_bytes)
                .unwrap_or(hypergolix_core::service::DEFAULT_MAX_APP_MESSAGE),
            max_requests_per_second: args
                .max_requests_per_second
                .or(file.max_requests_per_second)
                .unwrap_or(DEFAULT_RATE),
            metrics: args.metrics.or(file.metrics),
        };
        if let Some(m) = s.metrics {
            check_loopback(m)?;
        }
        if let IpcAddr::Tcp(a) = s.ipc {
            check_loopback(a)?;
        }
        check_max_message(s.max_message_bytes)?;
        if let Some(r) = &s.remote {
            check_remote(r)?;
        }
        Ok(s)
    }
}

/// Refuses a secret file that other users could read or change (a
/// password file): it must be this user's, with no group or other bits.
pub fn check_private_file(path: &Path) -> Result<()> {
    let f =
        std::fs::File::open(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    check_private(path, &f)
}

/// [`check_private_file`] on a file already open (so that what is checked
/// is what is read).
fn check_private(path: &Path, file: &std::fs::File) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = file
            .metadata()
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let me = rustix::process::geteuid().as_raw();
        if m.uid() != me {
            return Err(Error::Config(format!(
                "{}: belongs to uid {}, not to this user (uid {me}); refusing to read a password from it",
                path.display(),
                m.uid()
            )));
        }
        if m.mode() & 0o077 != 0 {
            return Err(Error::Config(format!(
                "{}: other users can read or change it (mode {:o}); chmod 600 it",
                path.display(),
                m.mode() & 0o777
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, file);
    Ok(())
}

/// Where the account password comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct PasswordArgs {
    /// Read the account password from this environment variable.
    #[arg(long, default_value = "HYPERGOLIX_PASSWORD")]
    pub password_env: String,
    /// Read the account password from this file instead.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Read the password from standard input (one line).
    #[arg(long, hide = true)]
    pub password_stdin: bool,
    /// A password handed over in memory (the embedding API).
    #[arg(skip)]
    pub given: GivenPassword,
    /// Only `given`: never the environment, a file or a terminal prompt
    /// (the embedding API must not take over the terminal).
    #[arg(skip)]
    pub given_only: bool,
}

/// Recovery words handed over in memory (`hypergolix recover`); never printed.
#[derive(Clone, Default)]
pub struct GivenWords(pub Option<Zeroizing<String>>);

impl std::fmt::Debug for GivenWords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "GivenWords(..)"
        } else {
            "GivenWords(None)"
        })
    }
}

/// A password handed over in memory ([`crate::embed`]); never printed.
#[derive(Clone, Default)]
pub struct GivenPassword(pub Option<Zeroizing<Vec<u8>>>);

impl std::fmt::Debug for GivenPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "GivenPassword(..)"
        } else {
            "GivenPassword(None)"
        })
    }
}

impl PasswordArgs {
    /// Whether [`PasswordArgs::get`] asks on the terminal (no file, no
    /// standard input, no variable, nothing given).
    pub fn is_prompt(&self) -> bool {
        self.given.0.is_none()
            && !self.given_only
            && self.password_file.is_none()
            && !self.password_stdin
            && std::env::var_os(&self.password_env).is_none()
    }

    /// The password: from the file, standard input, the environment
    /// variable, or else a prompt on the terminal (twice when `new`).
    pub fn get(&self, new: bool) -> Result<Zeroizing<Vec<u8>>> {
        let p = self.read(new)?;
        if p.is_empty() {
            return Err(Error::Config(
                "the password is empty: an account needs one".into(),
            ));
        }
        Ok(p)
    }

    fn read(&self, new: bool) -> Result<Zeroizing<Vec<u8>>> {
        if let Some(p) = &self.given.0 {
            return Ok(p.clone());
        }
        if self.given_only {
            return Err(Error::Config(
                "no password given (the embedding program must pass one for a new data directory)"
                    .into(),
            ));
        }
        if let Some(f) = &self.password_file {
            return read_private_line(f);
        }
        if self.password_stdin {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin().read_line(&mut line).map_err(|e| {
                Error::Config(format!("reading the password from standard input: {e}"))
            })?;
            return Ok(Zeroizing::new(
                line.trim_end_matches(['\r', '\n']).as_bytes().to_vec(),
            ));
        }
        if let Ok(p) = std::env::var(&self.password_env) {
            return Ok(Zeroizing::new(p.into_bytes()));
        }
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Err(Error::Config(format!(
                "no password: set ${} or pass --password-file (there is no terminal to ask on)",
                self.password_env
            )));
        }
        if new {
            return prompt_new("new account password: ");
        }
        let p = Zeroizing::new(
            rpassword::prompt_password("account password: ")
                .map_err(|e| Error::Config(format!("password prompt: {e}")))?,
        );
        if p.is_empty() {
            return Err(Error::Config("the password is empty".into()));
        }
        Ok(Zeroizing::new(p.as_bytes().to_vec()))
    }
}

/// A file that must be this user's alone (a password or recovery words),
/// without a final line ending.
pub fn read_private_line(f: &Path) -> Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    // One open: the checks and the read are of the same file.
    let mut file =
        std::fs::File::open(f).map_err(|e| Error::Config(format!("{}: {e}", f.display())))?;
    check_private(f, &file)?;
    let mut p = Zeroizing::new(Vec::new());
    file.read_to_end(&mut p)
        .map_err(|e| Error::Config(format!("{}: {e}", f.display())))?;
    let line = p.strip_suffix(b"\n").unwrap_or(&p);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Zeroizing::new(line.to_vec()))
}

/// A new password, asked twice on the terminal (not echoed).
pub fn prompt_new(prompt: &str) -> Result<Zeroizing<Vec<u8>>> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(Error::Config(
            "no terminal to ask for the new password on: pass --new-password-file".into(),
        ));
    }
    let p = Zeroizing::new(
        rpassword::prompt_password(prompt)
            .map_err(|e| Error::Config(format!("password prompt: {e}")))?,
    );
    if p.is_empty() {
        return Err(Error::Config("the password is empty".into()));
    }
    let again = Zeroizing::new(
        rpassword::prompt_password("again: ")
            .map_err(|e| Error::Config(format!("password prompt: {e}")))?,
    );
    if *again != *p {
        return Err(Error::Config("the passwords differ".into()));
    }
    Ok(Zeroizing::new(p.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let mut file = FileConfig::default();
        file.set("remote", "ws://127.0.0.1:7770/").expect("set");
        file.set("max_requests_per_second", "50").expect("set");
        let s = Settings::resolve(&NetArgs::default(), &file).expect("resolve");
        assert_eq!(s.ipc.to_string(), DEFAULT_IPC);
        assert_eq!(s.remote.as_deref(), Some("ws://127.0.0.1:7770/"));
        assert_eq!(s.max_requests_per_second, 50);
        let args = NetArgs {
            max_requests_per_second: Some(7),
            ..NetArgs::default()
        };
        assert_eq!(
            Settings::resolve(&args, &file)
                .expect("resolve")
                .max_requests_per_second,
            7
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        let mut f = FileConfig::default();
        assert!(f
            .set("ipc", "0.0.0.0:7772")
            .unwrap_err()
            .to_string()
            .contains("this machine only"));
        assert!(f
            .set("remote", "http://x/")
            .unwrap_err()
            .to_string()
            .contains("websocket"));
        assert!(
            matches!(f.set("colour", "blue"), Err(Error::Config(m)) if m.contains("unknown key"))
        );
        assert!(f.set("ipc", "unix:").is_err());
        assert!(f.set("ipc_trust", "everyone").is_err());
        assert!(f.set("max_message_bytes", "12").is_err());
        assert_eq!(f, FileConfig::default(), "nothing changed");
    }

    #[test]
    fn the_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("hgx-local-config-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let mut f = FileConfig::default();
        f.set("allow_origins", "https://a.example, https://b.example")
            .expect("set");
        f.set("ipc", "127.0.0.1:9999").expect("set");
        f.set("ipc_trust", "any-local-user").expect("set");
        f.write(&dir).expect("write");
        assert_eq!(FileConfig::read(&dir).expect("read"), f);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
