//! Secret (`SH`) parsing, GHID text parsing, private-key import and locked
//! storage keys (`HGXL`) on arbitrary input.
#![no_main]

use hypergolix_core::engine::keys::LockedKey;
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
    if let Ok(l) = LockedKey::parse(data) {
        // Unlocking runs Argon2id with the record's own parameters: only
        // cheap ones here (the parser bounds them at 1 GiB and 64 passes).
        let p = l.params();
        if p.memory_kib <= 256 && p.iterations <= 2 {
            let _ = l.unlock(b"password");
        }
    }
});
