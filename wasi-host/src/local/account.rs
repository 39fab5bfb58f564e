//! `hypergolix passwd` and `hypergolix recovery-words`: account changes
//! that need the current password. Both are IPC requests (`!P`, `?W`) to
//! the service of the data directory: the running one, or, when none
//! runs, one started in this process for the request and stopped after
//! it (on a Unix socket in the data directory, so no port is taken).
//! `hypergolix recover` is a login with words ([`super::StartArgs`]).

use std::path::PathBuf;

use hypergolix_core::engine::NOT_CONNECTED;
use hypergolix_link::{HypergolixLink, LinkError};
use zeroize::Zeroizing;

use super::settings::{self, IpcAddr, PasswordArgs};
use super::{control, AccountArgs, Control, Mode, StartArgs, Voice};
use crate::error::{Error, Result};

/// How long a request waits for the service's server link to come up.
const SERVER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What is asked of the service.
enum Request {
    /// `!P`.
    Passwd {
        current: Zeroizing<Vec<u8>>,
        new: Zeroizing<Vec<u8>>,
    },
    /// `?W`.
    Words { password: Zeroizing<Vec<u8>> },
}

/// `hypergolix passwd` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct PasswdArgs {
    /// Data directory, network (for a service started for this request),
    /// current password, engine.
    #[command(flatten)]
    pub current: AccountArgs,
    /// Read the new password from this file (this user's only) instead of
    /// asking twice on the terminal.
    #[arg(long)]
    pub new_password_file: Option<PathBuf>,
}

/// `hypergolix recovery-words` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct WordsArgs {
    /// Data directory, network (for a service started for this request),
    /// current password, engine.
    #[command(flatten)]
    pub current: AccountArgs,
}

/// `hypergolix recover` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RecoverArgs {
    /// The user id of the account (`hypergolix whoami` showed it).
    pub user_id: hypergolix_core::golix::Ghid,
    /// Read the recovery words from this file (this user's only) instead
    /// of standard input or the terminal.
    #[arg(long)]
    pub words_file: Option<PathBuf>,
    /// Data directory (must not hold an account yet), network (the server
    /// that holds the account is needed), the new password, engine.
    #[command(flatten)]
    pub account: AccountArgs,
}

/// `hypergolix passwd`: asks for the current password and the new one
/// (twice), then changes it.
pub async fn passwd(args: PasswdArgs) -> Result<()> {
    let current = args.current.password.get(false)?;
    let new = match &args.new_password_file {
        Some(f) => settings::read_private_line(f)?,
        None => settings::prompt_new("new password: ")?,
    };
    if new.is_empty() {
        return Err(Error::Config("the new password is empty".into()));
    }
    with_service(&args.current, Request::Passwd { current, new }).await?;
    eprintln!(
        "password changed: it opens the account on every new device from now on \
         (devices already set up keep working)"
    );
    Ok(())
}

/// `hypergolix recovery-words`: new recovery words for the account (those
/// made before stop working), printed once.
pub async fn recovery_words(args: WordsArgs) -> Result<()> {
    let password = args.current.password.get(false)?;
    let body = with_service(&args.current, Request::Words { password }).await?;
    let words = std::str::from_utf8(&body)
        .map_err(|_| Error::Service("the service sent words that are not text".into()))?;
    show_words(words);
    Ok(())
}

/// Prints recovery words for the person at the terminal: the warning on
/// stderr, the words alone on stdout (so `> file` keeps only them).
pub fn show_words(words: &str) {
    eprintln!(
        "Your recovery words are below. Write them down and keep them safe: with your \
         user id they restore this account if the password is lost, and anyone who has \
         them can take it. They are shown only this once; `hypergolix recovery-words` \
         makes new ones (the old ones then stop working)."
    );
    println!("recovery words: {words}");
}

/// The recovery words for `hypergolix recover`: from the file, standard
/// input (one line) when it is not a terminal, or a prompt that does not
/// echo them. Checked here, so a typo is reported before anything is set up.
pub fn read_words(file: Option<&std::path::Path>) -> Result<Zeroizing<String>> {
    use std::io::IsTerminal;
    let raw = match file {
        Some(f) => settings::read_private_line(f)?,
        None if !std::io::stdin().is_terminal() => {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin().read_line(&mut line).map_err(|e| {
                Error::Config(format!("reading the words from standard input: {e}"))
            })?;
            Zeroizing::new(line.trim_end_matches(['\r', '\n']).as_bytes().to_vec())
        }
        None => Zeroizing::new(
            rpassword::prompt_password("recovery words: ")
                .map_err(|e| Error::Config(format!("words prompt: {e}")))?
                .into_bytes(),
        ),
    };
    let words = Zeroizing::new(
        String::from_utf8(raw.to_vec())
            .map_err(|_| Error::Config("the recovery words are not text".into()))?,
    );
    hypergolix_core::engine::recovery::parse_words(&words)
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(words)
}

/// Sends `request` to the data directory's service (started here for it
/// if none runs) and returns the answer's body.
async fn with_service(args: &AccountArgs, request: Request) -> Result<Zeroizing<Vec<u8>>> {
    let dir = args.dir.dir()?;
    if let Some(p) = control::running(&dir)? {
        return call(&p.ipc, request).await;
    }
    if !dir.join("local.redb").exists() {
        return Err(Error::Config(format!(
            "{} holds no account (`hypergolix create-account` makes one)",
            dir.display()
        )));
    }
    // A service of our own, for this one request: on a socket in the
    // data directory (no port taken, this user only), never creating an
    // account (the directory has one).
    let mut net = args.net.clone();
    let sock = format!("account-{}.sock", std::process::id());
    net.ipc = Some(IpcAddr::Unix(PathBuf::from(&sock)));
    net.metrics = None;
    let start = StartArgs {
        account: AccountArgs {
            net,
            password: PasswordArgs {
                given_only: true,
                ..args.password.clone()
            },
            ..args.clone()
        },
        login: None,
        background: false,
        words: Default::default(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let control = Control {
        voice: Voice::Log,
        stop: Box::pin(async move {
            let _ = stop_rx.await;
            "the account request is done".to_string()
        }),
        started: Some(started_tx),
        embedded: false,
    };
    let task = tokio::spawn(super::run_with(start, Mode::Serve, control));
    let started = match started_rx.await {
        Ok(s) => s,
        // The service ended before it listened: its error says why.
        Err(_) => {
            return Err(match task.await {
                Ok(Err(e)) => e,
                Ok(Ok(())) => Error::Service("the service stopped before it listened".into()),
                Err(e) => Error::Service(e.to_string()),
            })
        }
    };
    let answer = call(&started.ipc, request).await;
    let _ = stop_tx.send(());
    let stopped = task
        .await
        .map_err(|e| Error::Service(e.to_string()))
        .and_then(|r| r);
    let body = answer?;
    stopped?;
    Ok(body)
}

/// One request over the link; the service's refusal as this crate's
/// error. A service whose server link is not up yet (one just started
/// here, or a remote that is back soon) is asked again for a while.
async fn call(ipc: &str, request: Request) -> Result<Zeroizing<Vec<u8>>> {
    let link = HypergolixLink::connect(ipc)
        .await
        .map_err(|e| Error::Service(format!("cannot reach the service at {ipc}: {e}")))?;
    let until = std::time::Instant::now() + SERVER_WAIT;
    let mut told = false;
    let r = loop {
        let r = match &request {
            Request::Passwd { current, new } => link
                .change_password(current, new)
                .await
                .map(|()| Zeroizing::new(Vec::new())),
            Request::Words { password } => link.recovery_words(password).await.map(|w| w.0),
        };
        match r {
            Err(LinkError::Refused { message, .. })
                if message.contains(NOT_CONNECTED) && std::time::Instant::now() < until =>
            {
                if !told {
                    eprintln!("waiting for the persistence server…");
                    told = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            r => break r,
        }
    };
    link.stop();
    r.map_err(|e| match e {
        LinkError::Refused { message, .. } if message.contains(NOT_CONNECTED) => {
            Error::Service(format!(
                "the persistence server that holds the account cannot be reached \
                 (waited {} s): `hypergolix status` shows the service's",
                SERVER_WAIT.as_secs()
            ))
        }
        LinkError::Refused { message, .. } => Error::Service(message),
        other => Error::Service(other.to_string()),
    })
}
