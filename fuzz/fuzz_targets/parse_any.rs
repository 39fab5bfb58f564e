//! Any bytes through the magic-number dispatcher: never panics, and whatever
//! parses re-serializes to exactly the input.
#![no_main]

use hypergolix_core::golix::GolixObject;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(obj) = GolixObject::parse(data) {
        assert_eq!(obj.to_bytes(), data, "accepted bytes must round-trip exactly");
        let _ = obj.ghid().to_text();
    }
});
