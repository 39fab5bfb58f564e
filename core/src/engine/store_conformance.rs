//! The conformance cases every engine-local store runs: the memory model
//! here, the local service's redb file, IndexedDB in a real browser.
//!
//! What an engine-local store must do is small: apply a batch of
//! [`StoreWrite`]s atomically and durably (a later write of a key in the same
//! batch wins; `None` deletes, deleting a missing key is no error), and give
//! back every record it holds after a restart. The cases are *data* — a list
//! of [`Step`]s — so a synchronous store (redb) and an asynchronous one
//! (IndexedDB, whose every call is a promise) run the same cases with a
//! loop of a few lines, and [`check`] decides each expectation.
//!
//! ```
//! use hypergolix_core::engine::store_conformance::{cases, check, Step};
//! use std::collections::BTreeMap;
//! let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
//! for case in cases().expect("cases") {
//!     model.clear();
//!     for step in &case.steps {
//!         match step {
//!             Step::Apply(ws) => for (k, v) in ws {
//!                 match v { Some(v) => { model.insert(k.clone(), v.clone()); }
//!                           None => { model.remove(k); } }
//!             },
//!             Step::Reopen => {}
//!             expect => {
//!                 let all: Vec<_> = model.clone().into_iter().collect();
//!                 check(expect, &all).expect(case.name);
//!             }
//!         }
//!     }
//! }
//! ```

use std::collections::BTreeMap;

use super::{
    Action, AppRequest, Engine, EngineConfig, Input, KdfParams, NewObject, Step as EngineStep,
    StoreWrite,
};
use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::persist::{MemoryStore, Node};

/// Every record of a store, as `(key, value)`.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// One step of a case.
#[derive(Debug, Clone)]
pub enum Step {
    /// Apply this batch atomically and durably.
    Apply(Vec<StoreWrite>),
    /// Close the store and open it again (a restart of the host).
    Reopen,
    /// Load every record: it must be exactly these (in any order).
    Expect(Records),
    /// Load every record and restart an engine from them: it must be the
    /// given account with these objects in these states.
    Restores {
        /// The storage key the engine sealed its records with.
        storage_key: [u8; 32],
        /// The account's user id.
        user_id: Ghid,
        /// Every object the engine must hold, with its state.
        objects: Vec<(Ghid, Vec<u8>)>,
    },
}

/// A named case: steps on a fresh, empty store.
#[derive(Debug, Clone)]
pub struct Case {
    /// What it protects.
    pub name: &'static str,
    /// What to do, in order.
    pub steps: Vec<Step>,
}

fn put(k: &[u8], v: &[u8]) -> StoreWrite {
    (k.to_vec(), Some(v.to_vec()))
}

fn del(k: &[u8]) -> StoreWrite {
    (k.to_vec(), None)
}

fn rec(k: &[u8], v: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (k.to_vec(), v.to_vec())
}

/// Every case, the engine's own records included (made by running a real
/// engine against an in-process persistence node).
pub fn cases() -> Result<Vec<Case>> {
    let many: Vec<StoreWrite> = (0u32..3000)
        .map(|i| {
            let mut k = vec![b'o'];
            k.extend_from_slice(&i.to_be_bytes());
            (k, Some(i.to_le_bytes().repeat(1 + (i % 40) as usize)))
        })
        .collect();
    let many_expect: Records = many
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
        .collect();
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    Ok(vec![
        Case {
            name: "an empty store holds nothing",
            steps: vec![Step::Expect(vec![]), Step::Reopen, Step::Expect(vec![])],
        },
        Case {
            name: "put, overwrite and delete",
            steps: vec![
                Step::Apply(vec![put(b"a", b"1"), put(b"b", b"2")]),
                Step::Expect(vec![rec(b"a", b"1"), rec(b"b", b"2")]),
                Step::Apply(vec![put(b"a", b"3"), del(b"b"), del(b"never")]),
                Step::Expect(vec![rec(b"a", b"3")]),
            ],
        },
        Case {
            name: "a later write of a key in one batch wins",
            steps: vec![
                Step::Apply(vec![
                    put(b"k", b"1"),
                    put(b"k", b"2"),
                    put(b"d", b"x"),
                    del(b"d"),
                ]),
                Step::Expect(vec![rec(b"k", b"2")]),
                Step::Apply(vec![del(b"k"), put(b"k", b"3")]),
                Step::Expect(vec![rec(b"k", b"3")]),
            ],
        },
        Case {
            name: "keys and values are any bytes",
            steps: vec![
                Step::Apply(vec![
                    put(&[0], &[]),
                    put(&[0, 0], &[0]),
                    put(&[0xff; 70], &all_bytes),
                    put(b"o", b"prefix of the next"),
                    put(b"o\x00\x01", b"longer key"),
                    put(&all_bytes, &[0xff]),
                    put(b"big", &vec![0xa5; 1 << 20]),
                ]),
                Step::Reopen,
                Step::Expect(vec![
                    rec(&[0], &[]),
                    rec(&[0, 0], &[0]),
                    rec(&[0xff; 70], &all_bytes),
                    rec(b"o", b"prefix of the next"),
                    rec(b"o\x00\x01", b"longer key"),
                    rec(&all_bytes, &[0xff]),
                    rec(b"big", &vec![0xa5; 1 << 20]),
                ]),
            ],
        },
        Case {
            name: "what was applied survives a restart",
            steps: vec![
                Step::Apply(vec![put(b"x", b"1")]),
                Step::Reopen,
                Step::Apply(vec![put(b"y", b"2"), del(b"x")]),
                Step::Reopen,
                Step::Expect(vec![rec(b"y", b"2")]),
            ],
        },
        Case {
            name: "three thousand records in one batch",
            steps: vec![Step::Apply(many), Step::Reopen, Step::Expect(many_expect)],
        },
        engine_case()?,
    ])
}

/// Decides an expectation step against what the store loaded. `Apply` and
/// `Reopen` are not expectations (an error says so).
pub fn check(step: &Step, loaded: &[(Vec<u8>, Vec<u8>)]) -> core::result::Result<(), String> {
    let got: BTreeMap<&[u8], &[u8]> = loaded
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    if got.len() != loaded.len() {
        return Err("the store gave a key twice".into());
    }
    match step {
        Step::Expect(want) => {
            let want: BTreeMap<&[u8], &[u8]> = want
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
                .collect();
            for (k, v) in &want {
                match got.get(k) {
                    None => return Err(format!("key {} is missing", show(k))),
                    Some(g) if g != v => {
                        return Err(format!(
                            "key {}: {} bytes, expected {}",
                            show(k),
                            g.len(),
                            v.len()
                        ))
                    }
                    Some(_) => {}
                }
            }
            if let Some(k) = got.keys().find(|k| !want.contains_key(*k)) {
                return Err(format!("key {} should not be there", show(k)));
            }
            Ok(())
        }
        Step::Restores {
            storage_key,
            user_id,
            objects,
        } => {
            let (engine, _) =
                Engine::restore(test_config(*storage_key), [9; 32], loaded.iter().cloned())
                    .map_err(|e| format!("the engine does not restart from the store: {e}"))?;
            if engine.user_id() != Some(*user_id) {
                return Err("the restarted engine has another account".into());
            }
            let mut held = engine.addresses();
            held.sort();
            let mut want: Vec<Ghid> = objects.iter().map(|(g, _)| *g).collect();
            want.sort();
            if held != want {
                return Err(format!(
                    "the restarted engine holds {} objects, expected {}",
                    held.len(),
                    want.len()
                ));
            }
            for (g, state) in objects {
                match engine.peek(g) {
                    Some(o) if o.state == *state => {}
                    Some(_) => return Err(format!("object {g} has another state")),
                    None => return Err(format!("object {g} is missing")),
                }
            }
            Ok(())
        }
        Step::Apply(_) | Step::Reopen => Err("not an expectation".into()),
    }
}

fn show(k: &[u8]) -> String {
    let hex: String = k.iter().take(12).map(|b| format!("{b:02x}")).collect();
    if k.len() > 12 {
        format!("{hex}… ({} bytes)", k.len())
    } else {
        hex
    }
}

fn test_config(key: [u8; 32]) -> EngineConfig {
    let mut cfg = EngineConfig::new(key);
    cfg.kdf = KdfParams::INSECURE_TEST;
    cfg
}

/// Runs a real engine (an account, objects, updates, a delete) against an
/// in-process node; its store batches become the case's `Apply` steps.
fn engine_case() -> Result<Case> {
    let key = [0x42; 32];
    let mut engine = Engine::new(test_config(key), [3; 32]);
    let mut node = Node::new(MemoryStore::new());
    let mut steps = Vec::new();
    let mut replies = Vec::new();
    let mut run = |engine: &mut Engine, first: EngineStep, steps: &mut Vec<Step>| {
        let mut queue = std::collections::VecDeque::from([first]);
        while let Some(step) = queue.pop_front() {
            // In the step's order: early actions, the store write, the rest.
            let ordered = step
                .early
                .into_iter()
                .map(Ok)
                .chain(std::iter::once(Err(step.store)))
                .chain(step.then.into_iter().map(Ok));
            for item in ordered {
                match item {
                    Err(ws) if !ws.is_empty() => steps.push(Step::Apply(ws)),
                    Err(_) => {}
                    Ok(Action::Send(m)) => {
                        for (_, reply) in node.handle(1, m) {
                            queue.push_back(engine.handle(Input::Server(reply)));
                        }
                    }
                    Ok(Action::Reply { result, .. }) => replies.push(result),
                    Ok(_) => {}
                }
            }
        }
    };
    let up = engine.handle(Input::ServerUp);
    run(&mut engine, up, &mut steps);
    let created = engine.create_account(b"conformance")?;
    run(&mut engine, created, &mut steps);
    let user_id = engine
        .user_id()
        .ok_or(Error::NotReady("the conformance engine has no account"))?;
    let opened = engine.handle(Input::AppConnected(1));
    run(&mut engine, opened, &mut steps);
    let mut req = 0;
    let mut call = |engine: &mut Engine, request: AppRequest, steps: &mut Vec<Step>| {
        req += 1;
        let a = engine.handle(Input::App {
            session: 1,
            req,
            request,
        });
        run(engine, a, steps);
    };
    let new = |dynamic: bool, state: &[u8]| {
        AppRequest::New(NewObject {
            api_id: super::ApiId::default_bytes(),
            private: false,
            dynamic,
            legroom: 0,
            is_link: false,
            state: state.to_vec(),
        })
    };
    for i in 0..6u8 {
        call(&mut engine, new(i % 2 == 0, &[i; 100]), &mut steps);
    }
    let addresses = engine.addresses();
    let dynamic: Vec<Ghid> = addresses
        .iter()
        .copied()
        .filter(|g| engine.peek(g).is_some_and(|o| o.dynamic))
        .collect();
    for (n, g) in dynamic.iter().enumerate() {
        call(
            &mut engine,
            AppRequest::Update {
                address: *g,
                state: format!("update {n}").into_bytes(),
            },
            &mut steps,
        );
    }
    if let Some(gone) = dynamic.first() {
        call(&mut engine, AppRequest::Delete(*gone), &mut steps);
    }
    if let Some(Err(e)) = replies.into_iter().find(|r| r.is_err()) {
        return Err(e);
    }
    if !engine.is_synced() {
        return Err(Error::NotReady("the conformance engine did not settle"));
    }
    let objects: Vec<(Ghid, Vec<u8>)> = engine
        .addresses()
        .into_iter()
        .filter_map(|g| engine.peek(&g).map(|o| (g, o.state)))
        .collect();
    if objects.len() != 5 {
        return Err(Error::NotReady("the conformance engine lost an object"));
    }
    steps.push(Step::Reopen);
    steps.push(Step::Restores {
        storage_key: key,
        user_id,
        objects,
    });
    Ok(Case {
        name: "an engine restarts from what it stored",
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory model (a map) passes every case; a store that drops
    /// deletes, or keeps the first write of a key in a batch, does not.
    type Model = BTreeMap<Vec<u8>, Vec<u8>>;

    #[test]
    fn the_memory_model_passes_and_broken_stores_fail() {
        fn run(
            case: &Case,
            apply: &dyn Fn(&mut Model, &StoreWrite),
        ) -> core::result::Result<(), String> {
            let mut m = BTreeMap::new();
            for step in &case.steps {
                match step {
                    Step::Apply(ws) => ws.iter().for_each(|w| apply(&mut m, w)),
                    Step::Reopen => {}
                    e => check(e, &m.clone().into_iter().collect::<Vec<_>>())?,
                }
            }
            Ok(())
        }
        let good = |m: &mut Model, (k, v): &StoreWrite| match v {
            Some(v) => {
                m.insert(k.clone(), v.clone());
            }
            None => {
                m.remove(k);
            }
        };
        let no_delete = |m: &mut Model, (k, v): &StoreWrite| {
            if let Some(v) = v {
                m.insert(k.clone(), v.clone());
            }
        };
        let first_wins = |m: &mut Model, (k, v): &StoreWrite| {
            if let Some(v) = v {
                m.entry(k.clone()).or_insert_with(|| v.clone());
            } else {
                m.remove(k);
            }
        };
        let cases = cases().expect("cases");
        assert_eq!(cases.len(), 7);
        for c in &cases {
            run(c, &good).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        }
        assert!(cases.iter().any(|c| run(c, &no_delete).is_err()));
        assert!(cases.iter().any(|c| run(c, &first_wins).is_err()));
        // The engine case really holds the engine: without its later
        // batches the restarted engine misses the newest states.
        let engine = cases.last().expect("engine case");
        let applies = engine
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Apply(_)))
            .count();
        assert!(applies > 10, "{applies} batches");
        let mut seen = 0;
        let mut cut = engine.clone();
        cut.steps.retain(|s| {
            if matches!(s, Step::Apply(_)) {
                seen += 1;
                seen <= applies / 2
            } else {
                true
            }
        });
        assert!(run(&cut, &good).is_err());
    }
}
