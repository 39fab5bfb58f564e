//! wasmtime set-up: one engine with an on-disk compiled-code cache, and running
//! WASI command components.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Cache, CacheConfig, Config, Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use crate::error::{Error, Result};

/// Most output a command component may write before it is cut off.
const MAX_CAPTURED_OUTPUT: usize = 16 * 1024 * 1024;

/// The default directory for compiled code: `$HYPERGOLIX_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/hypergolix/wasmtime`, else `~/.cache/hypergolix/wasmtime`.
/// With none of them set, a private directory under the temporary
/// directory named for this user (never one shared by every user:
/// wasmtime runs the machine code it finds there).
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HYPERGOLIX_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "hypergolix-cache-{}",
                rustix::process::geteuid().as_raw()
            ))
        });
    base.join("hypergolix").join("wasmtime")
}

/// Refuses a cache directory another user owns or can write: the code in
/// it is run.
fn check_own_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let me = rustix::process::geteuid().as_raw();
        if m.uid() != me || m.mode() & 0o002 != 0 {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "the compiled-code cache must be this user's and not writable by everyone (owner uid {}, mode {:o})",
                        m.uid(),
                        m.mode() & 0o777
                    ),
                ),
            });
        }
    }
    Ok(())
}

/// A wasmtime engine configured for Hypergolix.
pub struct Runtime {
    engine: Engine,
}

impl Runtime {
    /// Creates the engine. With `cache_dir`, compiled code is cached there.
    pub fn new(cache_dir: Option<&Path>) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        // 64x64->128-bit multiplies (i64.mul_wide_u): the engine's curve arithmetic
        // uses them when built with `+wide-arithmetic` (see docs/benchmarks.md).
        config.wasm_wide_arithmetic(true);
        if let Some(dir) = cache_dir {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            b.create(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            check_own_dir(dir)?;
            let mut cc = CacheConfig::new();
            cc.with_directory(dir);
            config.cache(Some(Cache::new(cc)?));
        }
        Ok(Self {
            engine: Engine::new(&config)?,
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads (compiling, or fetching from the cache) a component from a file.
    pub fn load(&self, path: &Path) -> Result<(Component, Duration)> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(&bytes)
    }

    /// Loads (compiling, or fetching from the cache) a component from its
    /// bytes. The cache is keyed by a hash of the bytes, the wasmtime
    /// version and the compiler settings, so it never hands back code
    /// compiled from other bytes.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<(Component, Duration)> {
        let start = Instant::now();
        let component = Component::new(&self.engine, bytes)?;
        Ok((component, start.elapsed()))
    }

    /// Runs a WASI command component with `args`, capturing its stdout and stderr.
    pub fn run_command(&self, component: &Component, args: &[&str]) -> Result<CommandOutput> {
        let mut linker: Linker<State> = Linker::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let stdout = MemoryOutputPipe::new(MAX_CAPTURED_OUTPUT);
        let stderr = MemoryOutputPipe::new(MAX_CAPTURED_OUTPUT);
        let ctx = WasiCtx::builder()
            .args(args)
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        let mut store = Store::new(&self.engine, State::new(ctx));
        let start = Instant::now();
        let command = Command::instantiate(&mut store, component, &linker)?;
        let exit_code = match command.wasi_cli_run().call_run(&mut store) {
            Ok(Ok(())) => 0,
            Ok(Err(())) => 1,
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => exit.0,
                None => return Err(e.into()),
            },
        };
        Ok(CommandOutput {
            exit_code,
            stdout: String::from_utf8_lossy(&stdout.contents()).into_owned(),
            stderr: String::from_utf8_lossy(&stderr.contents()).into_owned(),
            run_time: start.elapsed(),
        })
    }
}

/// What a command component did.
#[derive(Debug)]
pub struct CommandOutput {
    /// Exit code (0 = success).
    pub exit_code: i32,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// Wall time of instantiation and run.
    pub run_time: Duration,
}

/// The store data of every component instance: its WASI context.
pub(crate) struct State {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl State {
    /// Store data with this WASI context.
    pub(crate) fn new(ctx: WasiCtx) -> Self {
        Self {
            ctx,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}
