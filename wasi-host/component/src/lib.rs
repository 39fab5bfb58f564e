//! The engine as a WASI component: `hypergolix_core::service::Service`
//! behind the `hypergolix:engine/service` interface
//! (`wasi-host/wit/engine.wit`). Built for `wasm32-wasip2`:
//!
//! cargo build --release -p hypergolix-engine-component --target wasm32-wasip2
//!
//! This crate exists because the component's exports are FFI: the bindings
//! wit-bindgen generates need `unsafe`, which every other crate forbids.
//! Here it is denied everywhere but in the generated module.
//!
//! Its exports only exist on wasm32: natively the crate is empty (component
//! export names are not valid native symbols).
#![cfg(target_arch = "wasm32")]
#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::cell::RefCell;

use hypergolix_core::engine::{Engine, EngineConfig, KdfParams, Step};
use hypergolix_core::golix::Ghid;
use hypergolix_core::service::{Output, Policy, Service, ServiceInput};
use hypergolix_core::wire::ipc::GhidDialect;
use zeroize::Zeroizing;

#[allow(unsafe_code, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit/engine.wit",
        world: "engine",
    });
    use super::Component;
    export!(Component);
}

use bindings::exports::hypergolix::engine::service as wit;

thread_local! {
    static SERVICE: RefCell<Option<Service>> = const { RefCell::new(None) };
}

fn output(o: Output) -> wit::Output {
    match o {
        Output::ToServer(b) => wit::Output::ToServer(b),
        Output::ToApp(s, b) => wit::Output::ToApp((s, b)),
        Output::CloseApp(s, why) => wit::Output::CloseApp((s, why)),
        Output::Ready { user_id, identity } => {
            wit::Output::Ready((user_id.to_bytes().to_vec(), identity.to_bytes().to_vec()))
        }
        Output::Loading(n) => wit::Output::Loading(n as u64),
        Output::Loaded { missing } => wit::Output::Loaded(missing as u64),
        Output::LoginFailed { code, message } => wit::Output::LoginFailed((code, message)),
        Output::Log(l) => wit::Output::Log(l),
        // The local service asks for account changes over IPC, never as
        // the host; nothing of such an answer is ever logged.
        Output::HostReply(_) => wit::Output::Log("an account request of the host ended".into()),
    }
}

/// The service's step, field for field.
fn convert(step: Step<Output>) -> wit::Step {
    wit::Step {
        early: step.early.into_iter().map(output).collect(),
        store: step
            .store
            .into_iter()
            .map(|(key, value)| wit::Write { key, value })
            .collect(),
        then: step.then.into_iter().map(output).collect(),
    }
}

fn with<R>(f: impl FnOnce(&mut Service) -> Result<R, String>) -> Result<R, String> {
    SERVICE.with(|s| match s.borrow_mut().as_mut() {
        Some(svc) => f(svc),
        None => Err("the engine is not started".into()),
    })
}

/// The component's implementation of the interface.
pub struct Component;

impl wit::Guest for Component {
    fn start(config: wit::Config, records: Vec<(Vec<u8>, Vec<u8>)>) -> Result<wit::Step, String> {
        let key: [u8; 32] = config
            .storage_key
            .as_slice()
            .try_into()
            .map_err(|_| "the storage key must be 32 bytes".to_string())?;
        let seed: [u8; 32] = config
            .seed
            .as_slice()
            .try_into()
            .map_err(|_| "the seed must be 32 bytes".to_string())?;
        let mut cfg = EngineConfig::new(key);
        if config.insecure_test_kdf {
            cfg.kdf = KdfParams::INSECURE_TEST;
        }
        let (engine, step) = Engine::restore(cfg, seed, records).map_err(|e| e.to_string())?;
        let mut svc = Service::new(engine);
        let p = config.policy;
        svc.set_policy(Policy {
            max_app_message: usize::try_from(p.max_app_message).unwrap_or(usize::MAX),
            login_wait_ms: p.login_wait_ms,
            load_wait_ms: p.load_wait_ms,
        });
        let out = svc.adopt_step(step);
        SERVICE.with(|s| *s.borrow_mut() = Some(svc));
        Ok(convert(out))
    }

    fn create_account(
        password: Vec<u8>,
        with_words: bool,
    ) -> Result<(wit::Step, Option<String>), String> {
        let password = Zeroizing::new(password);
        with(|s| {
            if with_words {
                s.create_account_with_words(&password)
                    .map(|(step, words)| (convert(step), Some(words.to_string())))
            } else {
                s.create_account(&password)
                    .map(|step| (convert(step), None))
            }
            .map_err(|e| e.to_string())
        })
    }

    fn recover(
        user_id: Vec<u8>,
        words: String,
        new_password: Vec<u8>,
        now: u64,
    ) -> Result<wit::Step, String> {
        let (words, new_password) = (Zeroizing::new(words), Zeroizing::new(new_password));
        let g = Ghid::from_bytes(&user_id).map_err(|e| e.to_string())?;
        with(|s| {
            s.open_recover(g, &words, &new_password, now)
                .map(convert)
                .map_err(|e| e.to_string())
        })
    }

    fn login(user_id: Vec<u8>, password: Vec<u8>, now: u64) -> Result<wit::Step, String> {
        let g = Ghid::from_bytes(&user_id).map_err(|e| e.to_string())?;
        with(|s| {
            s.open_login(g, &password, now)
                .map(convert)
                .map_err(|e| e.to_string())
        })
    }

    fn next_deadline() -> Option<u64> {
        with(|s| Ok(s.next_deadline())).unwrap_or(None)
    }

    fn handle(input: wit::Input) -> wit::Step {
        let input = match input {
            wit::Input::AppOpened((s, native)) => ServiceInput::AppOpened(
                s,
                if native {
                    GhidDialect::Native
                } else {
                    GhidDialect::Legacy
                },
            ),
            wit::Input::AppClosed(s) => ServiceInput::AppClosed(s),
            wit::Input::AppBytes((s, b)) => ServiceInput::AppBytes(s, b),
            wit::Input::AppOverLimit((s, b)) => ServiceInput::AppOverLimit(s, b),
            wit::Input::ServerUp => ServiceInput::ServerUp,
            wit::Input::ServerDown => ServiceInput::ServerDown,
            wit::Input::ServerBytes(b) => ServiceInput::ServerBytes(b),
            wit::Input::Tick(now) => ServiceInput::Tick(now),
        };
        with(|s| {
            s.set_wall_clock(wall_clock_ms());
            Ok(convert(s.handle(input)))
        })
        .unwrap_or_else(|e| wit::Step {
            early: vec![wit::Output::Log(e)],
            store: Vec::new(),
            then: Vec::new(),
        })
    }

    fn loading() -> u32 {
        with(|s| Ok(u32::try_from(s.engine().loading()).unwrap_or(u32::MAX))).unwrap_or(0)
    }

    fn locked_frames() -> u64 {
        with(|s| Ok(s.engine().stats().locked_frames)).unwrap_or(0)
    }

    fn pending_work() -> Vec<String> {
        with(|s| Ok(s.engine().pending_work())).unwrap_or_default()
    }

    fn selftest() -> (bool, String) {
        let report = hypergolix_core::golix::vectors::check_all(include_str!(
            "../../../vectors/golix-cs3.json"
        ));
        (report.ok(), report.render())
    }
}

/// The wall clock (WASI `wall-clock`), in ms since the Unix epoch; 0 if it
/// reads before the epoch.
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
