//! The remote-protocol decoder (what a persistence server reads from any peer):
//! never panics; decoded requests and ACKs re-encode to exactly the input.
#![no_main]

use hypergolix_core::wire::remote::{decode_ghid_list, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Message::decode(data) {
        Ok(m @ (Message::Request { .. } | Message::Ack { .. })) => assert_eq!(m.encode(), data),
        Ok(Message::Nak { .. }) | Err(_) => {}
    }
    let _ = decode_ghid_list(data);
});
