//! Secret (`SH`) parsing, GHID text parsing and private-key import on arbitrary input.
#![no_main]

use hypergolix_core::golix::{FirstParty, Ghid, Secret};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Secret::parse(data) {
        assert_eq!(s.to_bytes().as_slice(), data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(g) = text.parse::<Ghid>() {
            assert_eq!(g.to_text(), text);
        }
    }
    let _ = FirstParty::import(data, &[0u8; 32]);
});
