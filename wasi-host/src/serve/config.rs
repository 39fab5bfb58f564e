//! `hypergolix serve` configuration: flags, then environment variables, then a
//! TOML file, then defaults (first one set wins).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Command-line flags (each also read from its environment variable).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (keys: listen, store, postgres, max_message_bytes, queue_len, batch, tls_cert, tls_key, metrics, www).
    #[arg(long, env = "HYPERGOLIX_SERVE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7770].
    #[arg(long, env = "HYPERGOLIX_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Embedded store file [default: ~/.local/share/hypergolix/server/store.redb].
    #[arg(long, env = "HYPERGOLIX_STORE")]
    pub store: Option<PathBuf>,
    /// PostgreSQL URL (e.g. `postgresql://user@127.0.0.1:5432/hgx`); replaces the
    /// embedded store, and lets several server nodes share one database.
    #[arg(long, env = "HYPERGOLIX_POSTGRES")]
    pub postgres: Option<String>,
    /// Largest websocket message accepted, in bytes [default: 10 MiB, as 0.1.0].
    #[arg(long, env = "HYPERGOLIX_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Messages queued per connection before a slow consumer is disconnected [default: 1024].
    #[arg(long, env = "HYPERGOLIX_QUEUE_LEN")]
    pub queue_len: Option<usize>,
    /// Most publishes committed in one transaction [default: 512].
    #[arg(long, env = "HYPERGOLIX_BATCH")]
    pub batch: Option<usize>,
    /// Serve `wss://` with this certificate chain (PEM, leaf first); needs
    /// --tls-key. Without it the server speaks plain `ws://` (for loopback,
    /// or behind a TLS-terminating proxy).
    #[arg(long, env = "HYPERGOLIX_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "HYPERGOLIX_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve `GET /healthz` and Prometheus `GET /metrics` on this loopback
    /// address (e.g. 127.0.0.1:9770) [default: off].
    #[arg(long, env = "HYPERGOLIX_METRICS")]
    pub metrics: Option<SocketAddr>,
    /// Also serve the web app (the built `www/dist`, or any static site) from
    /// this directory, over plain HTTP(S) GET on the listen address; websocket
    /// upgrades still reach the persistence server [default: off].
    #[arg(long, env = "HYPERGOLIX_WWW")]
    pub www: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    store: Option<PathBuf>,
    postgres: Option<String>,
    max_message_bytes: Option<usize>,
    queue_len: Option<usize>,
    batch: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    metrics: Option<SocketAddr>,
    www: Option<PathBuf>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Store file.
    pub store: PathBuf,
    /// PostgreSQL URL, if the shared database replaces the embedded store.
    pub postgres: Option<String>,
    /// Message size limit.
    pub max_message_bytes: usize,
    /// Per-connection outbound queue length.
    pub queue_len: usize,
    /// Group-commit batch size.
    pub batch: usize,
    /// Certificate chain and key files, when serving `wss://`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Where `/healthz` and `/metrics` are served (loopback), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// The static site served next to the websocket, if any (canonical path).
    pub www: Option<PathBuf>,
}

fn default_store() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("hypergolix/server/store.redb")
}

impl ServeConfig {
    /// Resolves flags/env over the TOML file over defaults.
    pub fn resolve(args: &ServeArgs) -> Result<Self> {
        let file = match &args.config {
            Some(p) => Self::read_file(p)?,
            None => FileConfig::default(),
        };
        let cfg = Self {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7770))),
            store: args
                .store
                .clone()
                .or(file.store)
                .unwrap_or_else(default_store),
            postgres: args.postgres.clone().or(file.postgres),
            max_message_bytes: args
                .max_message_bytes
                .or(file.max_message_bytes)
                .unwrap_or(10 * 1024 * 1024),
            queue_len: args.queue_len.or(file.queue_len).unwrap_or(1024),
            batch: args.batch.or(file.batch).unwrap_or(512),
            tls: match (
                args.tls_cert.clone().or(file.tls_cert),
                args.tls_key.clone().or(file.tls_key),
            ) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                _ => {
                    return Err(Error::Config(
                        "tls_cert and tls_key go together: give both or neither".into(),
                    ))
                }
            },
            metrics: args.metrics.or(file.metrics),
            www: match args.www.clone().or(file.www) {
                Some(dir) => Some(
                    dir.canonicalize()
                        .ok()
                        .filter(|d| d.join("index.html").is_file())
                        .ok_or_else(|| {
                            Error::Config(format!(
                                "www: {} is not a directory with an index.html (build the app: cd www && npm run build)",
                                dir.display()
                            ))
                        })?,
                ),
                None => None,
            },
        };
        if let Some(m) = cfg.metrics {
            if !m.ip().is_loopback() {
                return Err(Error::Config(format!(
                    "metrics: {m} is not a loopback address; metrics stay on this machine (put a proxy in front to expose them)"
                )));
            }
        }
        if cfg.max_message_bytes < 1024 || cfg.queue_len == 0 || cfg.batch == 0 {
            return Err(Error::Config(
                "max_message_bytes must be at least 1024; queue_len and batch at least 1".into(),
            ));
        }
        Ok(cfg)
    }

    fn read_file(p: &Path) -> Result<FileConfig> {
        let text = std::fs::read_to_string(p)
            .map_err(|e| Error::Config(format!("{}: {e}", p.display())))?;
        toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", p.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("hgx-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("serve.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\nqueue_len = 7\nbatch = 3\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(file.clone()),
            batch: Some(64),
            ..ServeArgs::default()
        };
        let cfg = ServeConfig::resolve(&args).expect("resolve");
        assert_eq!(cfg.listen, SocketAddr::from(([127, 0, 0, 1], 9999)));
        assert_eq!(cfg.queue_len, 7);
        assert_eq!(cfg.batch, 64);
        assert_eq!(cfg.max_message_bytes, 10 * 1024 * 1024);
        assert!(cfg.postgres.is_none());

        std::fs::write(&file, "listen = \"127.0.0.1:9999\"\nbogus = 1\n").expect("write");
        let err = ServeConfig::resolve(&args).expect_err("unknown key");
        assert!(err.to_string().contains("bogus"), "{err}");
        let bad = ServeArgs {
            queue_len: Some(0),
            ..ServeArgs::default()
        };
        assert!(ServeConfig::resolve(&bad).is_err());

        std::fs::write(&file, "tls_cert = \"/etc/hgx/cert.pem\"\n").expect("write");
        let args = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        };
        let err = ServeConfig::resolve(&args).expect_err("a certificate without its key");
        assert!(err.to_string().contains("tls_key"), "{err}");
        let args = ServeArgs {
            config: Some(file.clone()),
            tls_key: Some("/etc/hgx/key.pem".into()),
            ..ServeArgs::default()
        };
        let cfg = ServeConfig::resolve(&args).expect("cert from the file, key from a flag");
        assert_eq!(
            cfg.tls,
            Some(("/etc/hgx/cert.pem".into(), "/etc/hgx/key.pem".into()))
        );
    }
}
