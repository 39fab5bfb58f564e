//! Verify-on-arbitrary-bytes: parse anything and verify it against the golden
//! vectors' identities, as a persistence server does with every upload (the
//! seeded corpus holds their real objects, so signature checks are reached).
#![no_main]

use std::sync::OnceLock;

use hypergolix_core::golix::vectors::VectorFile;
use hypergolix_core::golix::{FirstParty, GolixObject, SecondParty};
use libfuzzer_sys::fuzz_target;

fn identities() -> &'static Vec<SecondParty> {
    static IDS: OnceLock<Vec<SecondParty>> = OnceLock::new();
    IDS.get_or_init(|| {
        let file: VectorFile =
            serde_json::from_str(include_str!("../../vectors/golix-cs3.json")).expect("vectors");
        file.identities
            .iter()
            .map(|i| {
                let random = hex::decode(&i.random).expect("hex");
                FirstParty::from_random(i.suite, &random).expect("identity").second_party().clone()
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(obj) = GolixObject::parse(data) {
        let lookup = |g: &hypergolix_core::golix::Ghid| identities().iter().find(|i| i.ghid() == *g).cloned();
        let _ = obj.verify_public(lookup);
    }
});
