//! The engine against a hostile server and a corrupted local store: any
//! bytes as a server message (decoded, then handed to a logged-in engine
//! that has objects and pending work), and any bytes as a local record
//! given to `Engine::restore`. Neither may panic.
#![no_main]

use std::sync::OnceLock;

use hypergolix_core::engine::{
    ApiId, AppRequest, Engine, EngineConfig, Input, KdfParams, NewObject,
};
use hypergolix_core::wire::remote::{Message, Request};
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [7; 32];

fn config() -> EngineConfig {
    let mut c = EngineConfig::new(KEY);
    c.kdf = KdfParams::INSECURE_TEST;
    c
}

/// A store holding an account with one dynamic object and queued work.
fn store() -> &'static Vec<(Vec<u8>, Vec<u8>)> {
    static STORE: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    STORE.get_or_init(|| {
        let mut e = Engine::new(config(), [1; 32]);
        let mut steps = vec![e.create_account(b"pw").expect("account")];
        steps.push(e.handle(Input::AppConnected(1)));
        steps.push(e.handle(Input::App {
            session: 1,
            req: 1,
            request: AppRequest::New(NewObject {
                api_id: ApiId::default_bytes(),
                private: false,
                dynamic: true,
                legroom: 0,
                is_link: false,
                state: b"state".to_vec(),
            }),
        }));
        let mut kv = std::collections::BTreeMap::new();
        for (k, v) in steps.into_iter().flat_map(|s| s.store) {
            match v {
                Some(v) => kv.insert(k, v),
                None => kv.remove(&k),
            };
        }
        kv.into_iter().collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        // A server message, possibly a push of arbitrary object bytes.
        let (mut e, _) = Engine::restore(config(), [2; 32], store().clone()).expect("restore");
        let _ = e.handle(Input::ServerUp);
        let m = match Message::decode(rest) {
            Ok(m) => m,
            Err(_) => Message::Request {
                token: 1,
                request: Request::Push {
                    subscription: e.identity().expect("identity"),
                    object: rest.to_vec(),
                },
            },
        };
        let _ = e.handle(Input::Server(m));
    } else {
        // A corrupted local record: restore must fail cleanly or succeed.
        let mut records = store().clone();
        let i = usize::from(rest.first().copied().unwrap_or(0)) % records.len();
        records[i].1 = rest.to_vec();
        let _ = Engine::restore(config(), [3; 32], records);
    }
});
