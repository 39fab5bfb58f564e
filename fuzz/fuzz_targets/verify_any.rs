//! Verify-on-arbitrary-bytes: parse anything and verify it against a fixed
//! identity, as a persistence server does with every upload.
#![no_main]

use std::sync::OnceLock;

use hypergolix_core::golix::suite::cs3::SUITE_ID;
use hypergolix_core::golix::{FirstParty, GolixObject, SecondParty};
use libfuzzer_sys::fuzz_target;

fn identity() -> &'static FirstParty {
    static ID: OnceLock<FirstParty> = OnceLock::new();
    ID.get_or_init(|| FirstParty::from_random(SUITE_ID, &[7u8; 96]).expect("identity"))
}

fuzz_target!(|data: &[u8]| {
    let me = identity();
    if let Ok(obj) = GolixObject::parse(data) {
        let lookup = |g: &hypergolix_core::golix::Ghid| -> Option<SecondParty> {
            (*g == me.ghid()).then(|| me.second_party().clone())
        };
        let _ = obj.verify_public(lookup);
    }
});
