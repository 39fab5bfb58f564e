//! The persistence conformance suite (every rule, each on its own fresh store)
//! against the in-memory backend. `wasi-host` runs the same suite against the
//! embedded store and PostgreSQL.

use hypergolix_core::persist::conformance::run_all;
use hypergolix_core::persist::MemoryStore;

#[test]
fn memory_backend_passes_conformance() {
    let results = run_all(MemoryStore::new);
    let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    for (name, r) in &results {
        println!(
            "{name}: {}",
            if r.is_ok() {
                "ok".to_string()
            } else {
                format!("{r:?}")
            }
        );
    }
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(results.len() >= 13);
}

#[test]
fn checked_publishes_verify_with_cached_identities() {
    use hypergolix_core::golix::suite::cs3::SUITE_ID;
    use hypergolix_core::golix::{FirstParty, FreshSecret};
    use hypergolix_core::persist::{PersistBackend, Persister};
    use hypergolix_core::{Error, Refusal};

    let store = MemoryStore::new();
    let rules = Persister::default();
    let alice = FirstParty::from_random(SUITE_ID, &[1; 96]).expect("id");
    let (c, _) = alice
        .make_container(
            FreshSecret::from_parts(SUITE_ID, &[2; 32], &[3; 12]).expect("s"),
            b"x",
        )
        .expect("geoc");
    let b = alice.make_static_binding(&c.ghid());
    // Unknown signer: not checkable ahead of the writer.
    assert!(matches!(rules.check_cached(b.to_bytes()), Ok(Err(_))));
    let gidc = alice.second_party().gidc().to_bytes();
    store
        .transact(&mut |t| rules.publish(t, &gidc))
        .expect("identity");
    store
        .transact(&mut |t| rules.publish(t, &b.to_bytes()))
        .expect("binding");
    // Now cached: a good object passes the early check and publishes.
    let checked = rules
        .check_cached(c.to_bytes())
        .expect("ok")
        .expect("checked");
    let out = store
        .transact(&mut |t| rules.publish_checked(t, &checked))
        .expect("publish");
    assert!(out.new);
    // A bad signature is refused by the early check itself.
    let mut bad = alice.make_static_binding(&alice.ghid()).to_bytes();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        rules.check_cached(bad),
        Err(Error::Refused {
            reason: Refusal::VerificationFailed,
            ..
        })
    ));
}
