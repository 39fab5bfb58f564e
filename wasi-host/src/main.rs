//! The `hypergolix` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hypergolix_core::golix::SecondParty;
use hypergolix_wasi_host::runtime::{default_cache_dir, Runtime};
use hypergolix_wasi_host::{component, inspect, local, Error};

/// Hypergolix: end-to-end encrypted sync.
#[derive(Parser)]
#[command(
    name = "hypergolix",
    version,
    about = "Hypergolix: end-to-end encrypted sync. The local service apps talk to, the persistence server, and tools."
)]
struct Cli {
    /// Log lines on stderr as text, or as one JSON object each (for a
    /// service manager or a log collector). The level comes from RUST_LOG.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "HYPERGOLIX_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// The log format chosen on the command line (set once in `main`).
static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

#[derive(Subcommand)]
enum Command {
    /// Pretty-print and verify a Golix object file.
    Inspect {
        /// The object file.
        file: PathBuf,
        /// A GIDC file whose identity may sign the object (repeatable).
        #[arg(long = "identity")]
        identities: Vec<PathBuf>,
        /// One JSON document on stdout (exit code 1 when invalid, as in text).
        #[arg(long)]
        json: bool,
    },
    /// Check the engine built into this binary against the golden vectors,
    /// under wasmtime (or run another WASI command component that tests).
    Selftest {
        /// Run this WASI command component instead (exit code 0 = passed).
        #[arg(long, env = "HYPERGOLIX_SELFTEST_WASM")]
        module: Option<PathBuf>,
        /// Directory for compiled code.
        #[arg(long, env = "HYPERGOLIX_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Run the persistence server (remote protocol on a websocket).
    Serve(hypergolix_wasi_host::serve::ServeArgs),
    /// Run the local service (in the foreground, or with --background): apps
    /// connect over a websocket on 127.0.0.1:7772; with no remote configured,
    /// an embedded persistence store keeps everything on this machine. The
    /// first start creates the account (or logs in with --login).
    Start(local::StartArgs),
    /// Stop the background service of a data directory.
    Stop(local::settings::DirArgs),
    /// Whether the service runs, where apps connect, which account
    /// (exit code 0 when it runs, 1 when not).
    Status {
        /// The data directory.
        #[command(flatten)]
        dir: local::settings::DirArgs,
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Create a new account in a data directory, without starting the service.
    CreateAccount(local::AccountArgs),
    /// Set up a data directory for an existing account (a second device):
    /// logs in through the persistence server, then returns.
    Login(local::LoginArgs),
    /// Restore an account with its recovery words in a new data directory
    /// (the password is lost): sets a new password, then returns. Needs
    /// the server that holds the account (`--remote`).
    Recover(local::account::RecoverArgs),
    /// Make new recovery words for the account and print them once (the
    /// words made before stop working). Asks for the current password.
    RecoveryWords(local::account::WordsArgs),
    /// Change the account password: asks for the current one, then the new
    /// one twice (or `--new-password-file`).
    Passwd(local::account::PasswdArgs),
    /// Write the account (keys, objects and their states) to one encrypted
    /// file, locked with the password or recovery words. The service must
    /// not run.
    Export(local::export::ExportArgs),
    /// Restore an account from an export file into an empty data directory.
    Import(local::export::ImportArgs),
    /// Print the account's user id and identity.
    Whoami {
        /// The data directory.
        #[command(flatten)]
        dir: local::settings::DirArgs,
        /// Print them as the 0.1.0 Python link shows them (address algorithm 01).
        #[arg(long)]
        legacy: bool,
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show or change the service's settings (`config.toml` in the data directory).
    Config {
        /// The data directory.
        #[command(flatten)]
        dir: local::settings::DirArgs,
        /// `show` as one JSON document on stdout.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<ConfigAction>,
    },
    /// Run the local service under the user's service manager (a systemd
    /// user unit, or a launchd agent): install, uninstall, status.
    Service(local::unit::ServiceArgs),
    /// Run any WASI command component (wasm32-wasip2) under the host's wasmtime.
    RunWasm {
        /// The component.
        module: PathBuf,
        /// Arguments passed to the component.
        args: Vec<String>,
        /// Directory for compiled code.
        #[arg(long, env = "HYPERGOLIX_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
}

/// `hypergolix config` actions.
#[derive(Subcommand)]
enum ConfigAction {
    /// Print the settings the service would run with, and where each comes from.
    Show,
    /// Set a key: ipc, ipc_trust, remote, ca_file, metrics, allow_origins (comma-separated),
    /// max_message_bytes, max_requests_per_second.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove a key (back to its default).
    Unset {
        /// The key.
        key: String,
    },
}

fn config(
    dir: &local::settings::DirArgs,
    json: bool,
    action: Option<ConfigAction>,
) -> Result<(), Error> {
    use local::settings::{FileConfig, Settings};
    let d = dir.dir()?;
    let mut file = FileConfig::read(&d)?;
    match action.unwrap_or(ConfigAction::Show) {
        ConfigAction::Show if json => {
            let s = Settings::resolve(&Default::default(), &file)?;
            let doc = serde_json::json!({
                "file": FileConfig::path(&d).display().to_string(),
                "ipc": s.ipc.to_string(),
                "ipc_trust": s.ipc_trust.as_str(),
                "remote": s.remote,
                "ca_file": s.ca_file.map(|p| p.display().to_string()),
                "allow_origins": s.allow_origins,
                "max_message_bytes": s.max_message_bytes,
                "max_requests_per_second": s.max_requests_per_second,
                "metrics": s.metrics.map(|m| m.to_string()),
            });
            println!("{doc}");
        }
        ConfigAction::Show => {
            let s = Settings::resolve(&Default::default(), &file)?;
            println!("# {}", FileConfig::path(&d).display());
            println!("ipc = \"{}\"", s.ipc);
            println!("ipc_trust = \"{}\"", s.ipc_trust.as_str());
            match &s.remote {
                Some(r) => println!("remote = \"{r}\""),
                None => println!("# remote: none (the embedded persistence store)"),
            }
            match &s.ca_file {
                Some(p) => println!("ca_file = {:?}", p.display().to_string()),
                None => println!("# ca_file: none (the public webpki roots only)"),
            }
            println!("allow_origins = {:?}", s.allow_origins);
            println!("max_message_bytes = {}", s.max_message_bytes);
            println!("max_requests_per_second = {}", s.max_requests_per_second);
            match s.metrics {
                Some(m) => println!("metrics = \"{m}\""),
                None => println!("# metrics: off"),
            }
            println!("# flags and HYPERGOLIX_* variables given to `start` override these");
        }
        ConfigAction::Set { key, value } => {
            dir.create()?;
            file.set(&key, &value)?;
            file.write(&d)?;
            println!("{key} set; it applies when the service next starts");
        }
        ConfigAction::Unset { key } => {
            dir.create()?;
            file.unset(&key)?;
            file.write(&d)?;
            println!("{key} back to its default; it applies when the service next starts");
        }
    }
    Ok(())
}

/// Runs the service (foreground or setup-only) on a tokio runtime.
fn service(name: &str, args: local::StartArgs, mode: local::Mode) -> Result<bool, Error> {
    init_logging();
    let rt = tokio_runtime()?;
    Ok(report(name, rt.block_on(local::run(args, mode))))
}

/// Prints a command's error; true when it succeeded.
fn report(name: &str, r: Result<(), Error>) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => {
            eprintln!("hypergolix {name}: {e}");
            false
        }
    }
}

fn run_component(
    module: &std::path::Path,
    args: &[String],
    cache_dir: Option<PathBuf>,
) -> Result<bool, Error> {
    let cache = cache_dir.unwrap_or_else(default_cache_dir);
    let runtime = Runtime::new(Some(&cache))?;
    eprintln!(
        "loading {} (compiled-code cache: {})",
        module.display(),
        cache.display()
    );
    let (component, load) = runtime.load(module)?;
    eprintln!("loaded in {:.1} ms", load.as_secs_f64() * 1e3);
    let name = module
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("component")
        .to_string();
    let mut argv: Vec<&str> = vec![&name];
    argv.extend(args.iter().map(String::as_str));
    let out = runtime.run_command(&component, &argv)?;
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    eprintln!(
        "ran in {:.1} ms, exit code {}",
        out.run_time.as_secs_f64() * 1e3,
        out.exit_code
    );
    Ok(out.exit_code == 0)
}

/// The golden vectors inside the binary's own engine component.
fn selftest(cache_dir: Option<PathBuf>) -> Result<bool, Error> {
    let cache = cache_dir.unwrap_or_else(default_cache_dir);
    let runtime = Runtime::new(Some(&cache))?;
    eprintln!(
        "loading the built-in engine (compiled-code cache: {})",
        cache.display()
    );
    let (engine, load) = component::load_engine(&runtime, None)?;
    eprintln!("loaded in {:.1} ms", load.as_secs_f64() * 1e3);
    let start = std::time::Instant::now();
    let (ok, report) = component::selftest(&runtime, &engine)?;
    print!("{report}");
    eprintln!("ran in {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
    Ok(ok)
}

fn read(path: &PathBuf) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })
}

fn run(cli: Cli) -> Result<bool, Error> {
    match cli.command {
        Command::Inspect {
            file,
            identities,
            json,
        } => {
            let ids = identities
                .iter()
                .map(|p| Ok(SecondParty::parse(&read(p)?)?))
                .collect::<Result<Vec<_>, Error>>()?;
            let found = inspect::inspect(&read(&file)?, &ids);
            if json {
                println!("{}", found.json());
            } else {
                print!("{}", found.text());
            }
            Ok(found.valid)
        }
        Command::Selftest {
            module: Some(module),
            cache_dir,
        } => run_component(&module, &[], cache_dir),
        Command::Selftest {
            module: None,
            cache_dir,
        } => selftest(cache_dir),
        Command::RunWasm {
            module,
            args,
            cache_dir,
        } => run_component(&module, &args, cache_dir),
        Command::Start(args) if args.background => {
            Ok(report("start", local::control::start_background(&args)))
        }
        Command::Start(args) => service("start", args, local::Mode::Serve),
        Command::CreateAccount(args) => service(
            "create-account",
            local::StartArgs::create(args),
            local::Mode::SetupOnly,
        ),
        Command::Login(args) => service("login", args.into(), local::Mode::SetupOnly),
        Command::Recover(args) => match local::StartArgs::recover(args) {
            Ok(a) => service("recover", a, local::Mode::SetupOnly),
            Err(e) => Ok(report("recover", Err(e))),
        },
        Command::Export(args) => Ok(report("export", local::export::export(&args))),
        Command::Import(args) => Ok(report("import", local::export::import(&args))),
        Command::RecoveryWords(args) => {
            init_logging();
            let rt = tokio_runtime()?;
            Ok(report(
                "recovery-words",
                rt.block_on(local::account::recovery_words(args)),
            ))
        }
        Command::Passwd(args) => {
            init_logging();
            let rt = tokio_runtime()?;
            Ok(report("passwd", rt.block_on(local::account::passwd(args))))
        }
        Command::Stop(dir) => Ok(report("stop", local::control::stop(&dir))),
        Command::Status { dir, json } => match local::control::status(&dir, json) {
            Ok(up) => Ok(up),
            Err(e) => Ok(report("status", Err(e))),
        },
        Command::Whoami { dir, legacy, json } => {
            Ok(report("whoami", local::control::whoami(&dir, legacy, json)))
        }
        Command::Config { dir, json, action } => Ok(report("config", config(&dir, json, action))),
        Command::Service(s) => {
            use local::unit::{self, ServiceAction};
            match s.action {
                ServiceAction::Install(a) => Ok(report("service install", unit::install(&a))),
                ServiceAction::Uninstall(a) => Ok(report("service uninstall", unit::uninstall(&a))),
                ServiceAction::Status(a) => match unit::status(&a) {
                    Ok(installed) => Ok(installed),
                    Err(e) => Ok(report("service status", Err(e))),
                },
            }
        }
        Command::Serve(args) => {
            use hypergolix_wasi_host::serve;
            let cfg = match serve::ServeConfig::resolve(&args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("hypergolix serve: {e}");
                    return Ok(false);
                }
            };
            init_logging();
            let rt = tokio_runtime()?;
            match rt.block_on(serve::run(cfg)) {
                Ok(()) => Ok(true),
                Err(e) => {
                    eprintln!("hypergolix serve: {e}");
                    Ok(false)
                }
            }
        }
    }
}

/// The multi-threaded tokio runtime of the network commands (the local
/// service's engine has a thread of its own beside it).
fn tokio_runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            path: "tokio runtime".into(),
            source,
        })
}

/// Structured logs on stderr; level from `RUST_LOG` (default `info`),
/// format from `--log-format`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match LOG_FORMAT.get().copied().unwrap_or(LogFormat::Text) {
        LogFormat::Text => fmt.try_init(),
        LogFormat::Json => fmt.json().try_init(),
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = LOG_FORMAT.set(cli.log_format);
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("hypergolix: {e}");
            ExitCode::from(2)
        }
    }
}
