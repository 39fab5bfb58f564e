//! A recipient opening arbitrary GARQs (decrypt, parse inner container, MAC).
//! The recipient field is forced to the fixed identity so opening is reached.
#![no_main]

use std::sync::OnceLock;

use hypergolix_core::golix::address::AddressAlgorithm;
use hypergolix_core::golix::suite::cs3::SUITE_ID;
use hypergolix_core::golix::{FirstParty, Garq};
use libfuzzer_sys::fuzz_target;

fn identities() -> &'static (FirstParty, FirstParty) {
    static ID: OnceLock<(FirstParty, FirstParty)> = OnceLock::new();
    ID.get_or_init(|| {
        (
            FirstParty::from_random(SUITE_ID, &[1u8; 96]).expect("identity"),
            FirstParty::from_random(SUITE_ID, &[2u8; 96]).expect("identity"),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let (me, peer) = identities();
    // magic, version, suite 3, recipient = me, u16 length, payload, algo, hash, mac.
    let payload = &data[..data.len().min(2048)];
    let mut bytes = b"GARQ".to_vec();
    bytes.extend_from_slice(&12u32.to_be_bytes());
    bytes.push(SUITE_ID);
    bytes.extend_from_slice(&me.ghid().to_bytes());
    bytes.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes.push(AddressAlgorithm::Blake2b512.byte());
    let digest = AddressAlgorithm::Blake2b512.digest(&bytes);
    bytes.extend_from_slice(&digest);
    bytes.extend_from_slice(&[0u8; 64]);
    let garq = Garq::parse(&bytes).expect("well-formed by construction");
    let lookup = |g: &hypergolix_core::golix::Ghid| (*g == peer.ghid()).then(|| peer.second_party().clone());
    // Forged MACs must never open.
    assert!(me.open_request(&garq, lookup).is_err());
});
