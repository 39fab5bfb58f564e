//! Secret (`SH`) parsing, GHID text parsing, private-key import, locked
//! storage keys (`HGXL`), recovery words and export files (`HGXE`) on
//! arbitrary input.
#![no_main]

use hypergolix_core::engine::export::{peek_export, read_export, ExportSecret};
use hypergolix_core::engine::keys::{LockedKey, LOCKED_KEY_LEN};
use hypergolix_core::engine::recovery::{parse_words, words_of};
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
        // Words that parse are 12 list words: they encode back to the
        // same entropy.
        if let Ok(e) = parse_words(text) {
            let again = words_of(&e).expect("encode");
            assert_eq!(*parse_words(&again).expect("reparse"), *e);
        }
    }
    if peek_export(data).is_ok() {
        // The lock sits after magic, version, kind and the user id; open
        // only files whose Argon2id parameters are cheap.
        let lock = data.get(72..72 + LOCKED_KEY_LEN).map(LockedKey::parse);
        if let Some(Ok(l)) = lock {
            let p = l.params();
            if p.memory_kib <= 256 && p.iterations <= 2 {
                let _ = read_export(data, ExportSecret::Password(b"password"));
            }
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
