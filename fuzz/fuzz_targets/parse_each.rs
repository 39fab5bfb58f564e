//! Every type-specific parser on the same bytes, after forcing a valid magic
//! and version so the fuzzer reaches the bodies quickly.
#![no_main]

use hypergolix_core::golix::{Garq, Gdxx, Geoc, Gidc, Gobd, Gobs, RequestContent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let (magic, version): (&[u8; 4], u32) = match selector % 6 {
        0 => (b"GIDC", 2),
        1 => (b"GEOC", 14),
        2 => (b"GOBS", 6),
        3 => (b"GOBD", 16),
        4 => (b"GDXX", 9),
        _ => (b"GARQ", 12),
    };
    let mut bytes = magic.to_vec();
    bytes.extend_from_slice(&version.to_be_bytes());
    bytes.extend_from_slice(rest);
    macro_rules! check {
        ($t:ty) => {
            if let Ok(o) = <$t>::parse(&bytes) {
                assert_eq!(o.to_bytes(), bytes);
            }
        };
    }
    check!(Gidc);
    check!(Geoc);
    check!(Gobs);
    check!(Gobd);
    check!(Gdxx);
    check!(Garq);
    let _ = RequestContent::parse(rest);
});
