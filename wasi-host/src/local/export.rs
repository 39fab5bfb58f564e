//! `hypergolix export FILE` and `hypergolix import FILE`: a data
//! directory's account in one encrypted file (the format is
//! `hypergolix_core::engine::export`), restored into an empty data
//! directory with no server. An account kept only in the embedded store
//! takes that store's objects along.

use std::path::{Path, PathBuf};

use hypergolix_core::engine::export::{
    peek_export, read_export, write_export, Export, ExportSecret, SecretKind,
};
use hypergolix_core::engine::{Engine, StoreWrite};
use hypergolix_core::persist::transfer::{republish, stored_objects};
use hypergolix_core::persist::Node;
use zeroize::Zeroizing;

use super::control::{self, AccountFile};
use super::settings::{DirArgs, FileConfig, NetArgs, PasswordArgs, Settings};
use super::store::LocalStore;
use super::{account, getrandom, write_private, EngineArgs};
use crate::error::{Error, Result};
use crate::serve::redb_store::RedbStore;

/// `hypergolix export` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// The file to write (it must not exist).
    pub file: PathBuf,
    /// The data directory (its service must not run: stop it first).
    #[command(flatten)]
    pub dir: DirArgs,
    /// The account password, which locks the file.
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Lock the file with recovery words instead of the password (asked
    /// for, or read from `--words-file`).
    #[arg(long)]
    pub with_words: bool,
    /// With `--with-words`: read them from this file (this user's only).
    #[arg(long)]
    pub words_file: Option<PathBuf>,
    /// The engine (its Argon2id settings).
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `hypergolix import` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The export file.
    pub file: PathBuf,
    /// The data directory to restore into (it must hold no account).
    #[command(flatten)]
    pub dir: DirArgs,
    /// The password the file was exported with.
    #[command(flatten)]
    pub password: PasswordArgs,
    /// For a file locked with recovery words: read them from this file.
    #[arg(long)]
    pub words_file: Option<PathBuf>,
    /// The engine (its Argon2id settings).
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Restores an engine from `records` under `key`: the records are whole
/// and of one account (its user id).
fn check(key: [u8; 32], records: Vec<(Vec<u8>, Vec<u8>)>, engine: &EngineArgs) -> Result<Engine> {
    let mut seed = [0u8; 32];
    getrandom(&mut seed)?;
    let (e, _) = Engine::restore(engine.engine_config(key), seed, records)
        .map_err(|e| Error::Service(format!("the account's records do not open: {e}")))?;
    if e.user_id().is_none() {
        return Err(Error::Service("the data holds no account".into()));
    }
    Ok(e)
}

/// `hypergolix export FILE`.
pub fn export(args: &ExportArgs) -> Result<()> {
    let dir = args.dir.dir()?;
    if let Some(p) = control::running(&dir)? {
        return Err(Error::State(format!(
            "the service runs on {} (pid {}): stop it first (`hypergolix stop`); \
             an export reads the store it holds",
            dir.display(),
            p.pid
        )));
    }
    let key_file = dir.join("storage.key");
    let store_file = dir.join("local.redb");
    if !key_file.exists() || !store_file.exists() {
        return Err(Error::Config(format!(
            "{} holds no account to export",
            dir.display()
        )));
    }
    if args.file.exists() {
        return Err(Error::Config(format!(
            "{} exists: give a new file (an export never overwrites one)",
            args.file.display()
        )));
    }
    let key: [u8; 32] = std::fs::read(&key_file)
        .map_err(|e| Error::Config(format!("{}: {e}", key_file.display())))?
        .as_slice()
        .try_into()
        .map_err(|_| Error::Config(format!("{}: not a 32-byte key", key_file.display())))?;
    let records = LocalStore::open(&store_file)?.load()?;
    let engine = check(key, records.clone(), &args.engine)?;
    let user_id = engine
        .user_id()
        .ok_or_else(|| Error::Service("no account".into()))?;
    let words;
    let password;
    let secret = if args.with_words {
        words = account::read_words(args.words_file.as_deref())?;
        if args.words_file.is_none() {
            // Typed: a slip that passes the checksum would lock the file
            // for good.
            eprintln!("the same words again, to check them:");
            let again = account::read_words(None)?;
            let same = |w: &str| {
                hypergolix_core::engine::recovery::parse_words(w)
                    .map_err(|e| Error::Config(e.to_string()))
            };
            if *same(&again)? != *same(&words)? {
                return Err(Error::Config("the words differ".into()));
            }
        }
        ExportSecret::Words(&words)
    } else {
        password = args.password.get(false)?;
        // A device never reads the root again after a password change made
        // elsewhere, so a password this device does not know may still be
        // the account's now: the file is locked with it, once it is
        // confirmed (typed again when typed at all).
        if !engine
            .password_opens_local_root(&password)
            .map_err(|e| Error::Service(e.to_string()))?
        {
            eprintln!(
                "this is not the account password this device last saw (if it was \
                 changed on another device, that is expected): the file will open with it"
            );
            if args.password.is_prompt() {
                let again = Zeroizing::new(
                    rpassword::prompt_password("the same password again: ")
                        .map_err(|e| Error::Config(format!("password prompt: {e}")))?
                        .into_bytes(),
                );
                if *again != *password {
                    return Err(Error::Config("the passwords differ".into()));
                }
            }
        }
        ExportSecret::Password(&password)
    };
    // An account only in the embedded store: that store's objects too.
    let settings = Settings::resolve(&NetArgs::default(), &FileConfig::read(&dir)?)?;
    let server_file = dir.join("server.redb");
    let objects = if settings.remote.is_none() && server_file.exists() {
        let store = RedbStore::open(&server_file).map_err(|e| Error::Service(e.to_string()))?;
        stored_objects(&store).map_err(|e| Error::Service(e.to_string()))?
    } else {
        Vec::new()
    };
    let e = Export {
        user_id,
        storage_key: Zeroizing::new(key),
        records,
        objects,
    };
    let mut seed = [0u8; 32];
    getrandom(&mut seed)?;
    let mut rng =
        <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::from_seed(seed);
    let bytes = write_export(&e, secret, args.engine.engine_config(key).kdf, &mut rng)
        .map_err(|e| Error::Service(e.to_string()))?;
    write_new(&args.file, &bytes)?;
    println!(
        "exported the account {user_id} ({} records, {} stored objects) to {}",
        e.records.len(),
        e.objects.len(),
        args.file.display()
    );
    eprintln!(
        "it opens with {}: `hypergolix import {}` restores it into an empty data directory",
        if args.with_words {
            "those recovery words"
        } else {
            "the account password as it is now"
        },
        args.file.display()
    );
    Ok(())
}

/// Writes `bytes` to a new `path` (mode 0600) through a temporary file in
/// the same directory: a crash leaves no half-written export.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, bytes)?;
    if let Err(e) = std::fs::hard_link(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Config(format!("{}: {e}", path.display())));
    }
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}

/// `hypergolix import FILE`.
pub fn import(args: &ImportArgs) -> Result<()> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| Error::Config(format!("{}: {e}", args.file.display())))?;
    let bad = |e: hypergolix_core::Error| Error::Config(format!("{}: {e}", args.file.display()));
    let (user_id, kind) = peek_export(&bytes).map_err(bad)?;
    let dir = args.dir.dir()?;
    if let Some(p) = control::running(&dir)? {
        return Err(Error::State(format!(
            "a service runs on {} (pid {}): import needs an empty data directory",
            dir.display(),
            p.pid
        )));
    }
    for f in ["storage.key", "local.redb", "server.redb"] {
        if dir.join(f).exists() {
            return Err(Error::Config(format!(
                "{} already has {f}: import needs a data directory with no account",
                dir.display()
            )));
        }
    }
    let words;
    let password;
    let secret = match kind {
        SecretKind::Password => {
            password = args.password.get(false)?;
            ExportSecret::Password(&password)
        }
        SecretKind::Words => {
            words = account::read_words(args.words_file.as_deref())?;
            ExportSecret::Words(&words)
        }
    };
    let e = read_export(&bytes, secret).map_err(bad)?;
    let engine = check(*e.storage_key, e.records.clone(), &args.engine)?;
    if engine.user_id() != Some(user_id) {
        return Err(Error::Config(format!(
            "{}: its records are of another account than its header says",
            args.file.display()
        )));
    }
    let identity = engine
        .identity()
        .ok_or_else(|| Error::Service("no identity".into()))?;
    // Everything is made in a directory of its own, then moved in: a
    // failure on the way leaves the data directory as it was.
    let dir = args.dir.create()?;
    let staging = dir.join(format!(".import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging)
        .map_err(|e| Error::Config(format!("{}: {e}", staging.display())))?;
    let made = stage(&staging, e);
    let moved = made.and_then(|objects| {
        for f in ["storage.key", "local.redb", "server.redb"] {
            let from = staging.join(f);
            if from.exists() {
                std::fs::rename(&from, dir.join(f))
                    .map_err(|err| Error::Config(format!("{}: {err}", dir.join(f).display())))?;
            }
        }
        AccountFile::write(&dir, &user_id, &identity)?;
        Ok(objects)
    });
    let _ = std::fs::remove_dir_all(&staging);
    let (taken, refused) = moved?;
    println!("imported the account {user_id} into {}", dir.display());
    println!("user id: {user_id}\nidentity: {identity}");
    if taken + refused > 0 {
        eprintln!("its embedded store: {taken} objects restored ({refused} debindings of objects long gone left out)");
    } else {
        eprintln!(
            "if the account lives on a persistence server, name it (`hypergolix config set remote URL`) \
             before `hypergolix start`: the service then syncs what changed meanwhile"
        );
    }
    Ok(())
}

/// The storage key, the local store and (when the export has objects) an
/// embedded store, in `staging`.
fn stage(staging: &Path, e: Export) -> Result<(usize, usize)> {
    write_private(&staging.join("storage.key"), &e.storage_key[..])?;
    let writes: Vec<StoreWrite> = e.records.into_iter().map(|(k, v)| (k, Some(v))).collect();
    LocalStore::open(&staging.join("local.redb"))?.apply(&writes)?;
    if e.objects.is_empty() {
        return Ok((0, 0));
    }
    let store = RedbStore::open(&staging.join("server.redb"))
        .map_err(|err| Error::Service(err.to_string()))?;
    let mut node = Node::new(store);
    let r = republish(&mut node, 1, e.objects);
    drop(node);
    Ok((r.taken, r.refused + r.malformed))
}
