//! The engine against a hostile server and a corrupted local store: any
//! bytes as a server message (decoded, then handed to a logged-in engine
//! that has objects and pending work); any bytes as a sealed local record
//! given to `Engine::restore` (stops at the AEAD); and a record whose
//! plaintext is mutated and sealed again under the storage key, so the
//! record decoders (`engine/record.rs`, `engine/state.rs`) see it. None may
//! panic.
#![no_main]

use std::sync::OnceLock;

use hypergolix_core::engine::{
    ApiId, AppRequest, Engine, EngineConfig, Input, KdfParams, NewObject,
};
use hypergolix_core::golix::suite::{crypto_suite, cs3};
use hypergolix_core::wire::remote::{Message, Request};
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [7; 32];

fn config() -> EngineConfig {
    let mut c = EngineConfig::new(KEY);
    c.kdf = KdfParams::INSECURE_TEST;
    c
}

/// An app of `session` creates a dynamic object.
fn new_object(session: u64, state: &[u8]) -> Input {
    Input::App {
        session,
        req: 1,
        request: AppRequest::New(NewObject {
            api_id: ApiId::default_bytes(),
            private: false,
            dynamic: true,
            legroom: 0,
            is_link: false,
            state: state.to_vec(),
        }),
    }
}

/// A store holding an account with one dynamic object and queued work.
fn store() -> &'static Vec<(Vec<u8>, Vec<u8>)> {
    static STORE: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    STORE.get_or_init(|| {
        let mut e = Engine::new(config(), [1; 32]);
        let mut steps = vec![e.create_account(b"pw").expect("account")];
        steps.push(e.handle(Input::AppConnected(1)));
        steps.push(e.handle(new_object(1, b"state")));
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

/// Replaces part of record `i`'s plaintext with `bytes` and seals it again,
/// as the engine seals records (nonce ‖ ChaCha20-Poly1305, the record's key
/// as AAD): `None` if the record does not open (it always does).
fn mutate_record(records: &mut [(Vec<u8>, Vec<u8>)], spec: &[u8]) -> Option<()> {
    let [which, at_hi, at_lo, rest @ ..] = spec else {
        return None;
    };
    let i = usize::from(*which & 0x7f) % records.len();
    let (key, sealed) = &records[i];
    let suite = crypto_suite(cs3::SUITE_ID).ok()?;
    let (nonce, ct) = sealed.split_at(12.min(sealed.len()));
    let mut plain = suite.decrypt(&KEY, nonce, key, ct).ok()?;
    let at = usize::from(u16::from_be_bytes([*at_hi, *at_lo])) % (plain.len() + 1);
    if which & 0x80 != 0 {
        // Splice: the tail is cut and replaced (lengths and counts lie).
        plain.truncate(at);
        plain.extend_from_slice(rest);
    } else {
        // Overwrite in place (structure mostly kept).
        for (d, s) in plain[at..].iter_mut().zip(rest) {
            *d = *s;
        }
    }
    let nonce = [9u8; 12];
    let ct = suite.encrypt(&KEY, &nonce, key, &plain).ok()?;
    records[i].1 = [nonce.as_slice(), &ct].concat();
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
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
                        container: None,
                    },
                },
            };
            let _ = e.handle(Input::Server(m));
        }
        1 => {
            // A corrupted sealed record: restore must fail cleanly or succeed.
            let mut records = store().clone();
            let i = usize::from(rest.first().copied().unwrap_or(0)) % records.len();
            records[i].1 = rest.to_vec();
            let _ = Engine::restore(config(), [3; 32], records);
        }
        _ => {
            // A record that opens but holds what the engine never wrote:
            // restore fails cleanly, or the engine goes on working.
            let mut records = store().clone();
            if mutate_record(&mut records, rest).is_none() {
                return;
            }
            if let Ok((mut e, _)) = Engine::restore(config(), [4; 32], records) {
                let _ = e.handle(Input::ServerUp);
                let _ = e.handle(Input::AppConnected(2));
                let _ = e.handle(new_object(2, b"after"));
            }
        }
    }
});
