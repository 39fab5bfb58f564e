//! The engine's WASI component (`wasi-host/component`, interface
//! `wasi-host/wit/engine.wit`) under wasmtime: [`WasmService`] has the shape
//! of `hypergolix_core::service::Service`, and the host moves bytes in and
//! out of it with no protocol logic of its own.

use std::path::Path;
use std::time::Duration;

use hypergolix_core::engine::Step;
use hypergolix_core::golix::Ghid;
use hypergolix_core::service::{Output, Policy, ServiceInput};
use hypergolix_core::wire::ipc::GhidDialect;
use wasmtime::component::{Component, Linker};
use wasmtime::Store;
use wasmtime_wasi::WasiCtx;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::runtime::{Runtime, State};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/engine.wit",
        world: "engine",
    });
}

use bindings::exports::hypergolix::engine::service as wit;

/// The engine component built into this binary (by `build.rs`; see there
/// for `HYPERGOLIX_PREBUILT_COMPONENT`).
pub const EMBEDDED: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/hypergolix_engine_component.wasm"
));

/// Loads the engine: from `file` when given (`--component`), else the one
/// built into this binary; compiled code comes from the runtime's cache when
/// it holds code for exactly these bytes.
pub fn load_engine(runtime: &Runtime, file: Option<&Path>) -> Result<(Component, Duration)> {
    match file {
        Some(f) => runtime.load(f),
        None => runtime.load_bytes(EMBEDDED),
    }
}

/// How the host starts the engine.
pub struct WasmConfig {
    /// The key every local record is sealed with.
    pub storage_key: [u8; 32],
    /// Randomness from the OS.
    pub seed: [u8; 32],
    /// Cheap Argon2id parameters (tests only).
    pub insecure_test_kdf: bool,
    /// The limits and waits.
    pub policy: Policy,
}

/// The local service running inside wasmtime.
pub struct WasmService {
    store: Store<State>,
    engine: bindings::Engine,
}

fn guest_err(e: String) -> Error {
    Error::Engine(e)
}

fn output(o: wit::Output) -> Result<Output> {
    Ok(match o {
        wit::Output::ToServer(b) => Output::ToServer(b),
        wit::Output::ToApp((s, b)) => Output::ToApp(s, b),
        wit::Output::CloseApp((s, why)) => Output::CloseApp(s, why),
        wit::Output::Ready((u, i)) => Output::Ready {
            user_id: Ghid::from_bytes(&u).map_err(|e| Error::Engine(e.to_string()))?,
            identity: Ghid::from_bytes(&i).map_err(|e| Error::Engine(e.to_string()))?,
        },
        wit::Output::Loading(n) => Output::Loading(usize::try_from(n).unwrap_or(usize::MAX)),
        wit::Output::Loaded(n) => Output::Loaded {
            missing: usize::try_from(n).unwrap_or(usize::MAX),
        },
        wit::Output::LoginFailed((code, message)) => Output::LoginFailed { code, message },
        wit::Output::Log(l) => Output::Log(l),
    })
}

/// The component's step, field for field.
fn from_wit(step: wit::Step) -> Result<Step<Output>> {
    Ok(Step {
        early: step.early.into_iter().map(output).collect::<Result<_>>()?,
        store: step.store.into_iter().map(|w| (w.key, w.value)).collect(),
        then: step.then.into_iter().map(output).collect::<Result<_>>()?,
    })
}

/// A new instance of the component: no files, no network, no environment;
/// the engine gets nothing but what the interface passes.
fn instantiate(
    runtime: &Runtime,
    component: &Component,
) -> Result<(Store<State>, bindings::Engine)> {
    let mut linker: Linker<State> = Linker::new(runtime.engine());
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let mut store = Store::new(runtime.engine(), State::new(WasiCtx::builder().build()));
    let engine = bindings::Engine::instantiate(&mut store, component, &linker)?;
    Ok((store, engine))
}

/// Runs the component's golden-vector self-test in a fresh instance:
/// whether every vector passed, and the report.
pub fn selftest(runtime: &Runtime, component: &Component) -> Result<(bool, String)> {
    let (mut store, engine) = instantiate(runtime, component)?;
    Ok(engine
        .hypergolix_engine_service()
        .call_selftest(&mut store)?)
}

impl WasmService {
    /// Instantiates the component and starts the engine from `records`.
    pub fn start(
        runtime: &Runtime,
        component: &Component,
        config: WasmConfig,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(Self, Step<Output>)> {
        let (mut store, engine) = instantiate(runtime, component)?;
        let cfg = wit::Config {
            storage_key: config.storage_key.to_vec(),
            seed: config.seed.to_vec(),
            insecure_test_kdf: config.insecure_test_kdf,
            policy: wit::Policy {
                max_app_message: config.policy.max_app_message as u64,
                login_wait_ms: config.policy.login_wait_ms,
                load_wait_ms: config.policy.load_wait_ms,
            },
        };
        let out = engine
            .hypergolix_engine_service()
            .call_start(&mut store, &cfg, &records)?
            .map_err(guest_err)?;
        let out = from_wit(out)?;
        Ok((Self { store, engine }, out))
    }

    /// Creates an account; with `with_words`, its recovery words too.
    pub fn create_account(
        &mut self,
        password: &[u8],
        with_words: bool,
    ) -> Result<(Step<Output>, Option<Zeroizing<String>>)> {
        let (out, words) = self
            .engine
            .hypergolix_engine_service()
            .call_create_account(&mut self.store, password, with_words)?
            .map_err(guest_err)?;
        Ok((from_wit(out)?, words.map(Zeroizing::new)))
    }

    /// Recovers an account with its words (`Service::open_recover`).
    pub fn open_recover(
        &mut self,
        user_id: &Ghid,
        words: &str,
        new_password: &[u8],
        now: u64,
    ) -> Result<Step<Output>> {
        let out = self
            .engine
            .hypergolix_engine_service()
            .call_recover(
                &mut self.store,
                &user_id.to_bytes(),
                words,
                new_password,
                now,
            )?
            .map_err(guest_err)?;
        from_wit(out)
    }

    /// Logs in on this device (`Service::open_login`).
    pub fn open_login(
        &mut self,
        user_id: &Ghid,
        password: &[u8],
        now: u64,
    ) -> Result<Step<Output>> {
        let out = self
            .engine
            .hypergolix_engine_service()
            .call_login(&mut self.store, &user_id.to_bytes(), password, now)?
            .map_err(guest_err)?;
        from_wit(out)
    }

    /// When to tick next (`Service::next_deadline`).
    pub fn next_deadline(&mut self) -> Result<Option<u64>> {
        Ok(self
            .engine
            .hypergolix_engine_service()
            .call_next_deadline(&mut self.store)?)
    }

    /// How many objects the engine knows of but has not read yet
    /// (`Engine::loading`).
    pub fn loading(&mut self) -> Result<usize> {
        let n = self
            .engine
            .hypergolix_engine_service()
            .call_loading(&mut self.store)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Frames no key the engine holds could decrypt (`Stats::locked_frames`).
    pub fn locked_frames(&mut self) -> Result<u64> {
        Ok(self
            .engine
            .hypergolix_engine_service()
            .call_locked_frames(&mut self.store)?)
    }

    /// What is not yet done (`Engine::pending_work`).
    pub fn pending_work(&mut self) -> Result<Vec<String>> {
        Ok(self
            .engine
            .hypergolix_engine_service()
            .call_pending_work(&mut self.store)?)
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: ServiceInput) -> Result<Step<Output>> {
        let input = match input {
            ServiceInput::AppOpened(s, d) => wit::Input::AppOpened((s, d == GhidDialect::Native)),
            ServiceInput::AppClosed(s) => wit::Input::AppClosed(s),
            ServiceInput::AppBytes(s, b) => wit::Input::AppBytes((s, b)),
            ServiceInput::AppOverLimit(s, b) => wit::Input::AppOverLimit((s, b)),
            ServiceInput::ServerUp => wit::Input::ServerUp,
            ServiceInput::ServerDown => wit::Input::ServerDown,
            ServiceInput::ServerBytes(b) => wit::Input::ServerBytes(b),
            ServiceInput::Tick(now) => wit::Input::Tick(now),
        };
        let out = self
            .engine
            .hypergolix_engine_service()
            .call_handle(&mut self.store, &input)?;
        from_wit(out)
    }
}
