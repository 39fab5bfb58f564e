//! Property tests: parsers never panic, serialization round-trips byte for byte,
//! and any single-byte change to a valid object is caught.

mod common;

use common::{fresh, identity};
use hypergolix_core::golix::{
    FirstParty, Garq, Gdxx, Geoc, Ghid, Gidc, Gobd, Gobs, GolixObject, RequestContent, Secret,
};
use proptest::prelude::*;
use std::sync::OnceLock;

fn alice() -> &'static FirstParty {
    static A: OnceLock<FirstParty> = OnceLock::new();
    A.get_or_init(|| identity(11))
}

fn bob() -> &'static FirstParty {
    static B: OnceLock<FirstParty> = OnceLock::new();
    B.get_or_init(|| identity(12))
}

fn ghid_strategy() -> impl Strategy<Value = Ghid> {
    prop::array::uniform32(any::<u8>()).prop_map(|half| {
        let mut d = [0u8; 64];
        d[..32].copy_from_slice(&half);
        d[32..].copy_from_slice(&half);
        Ghid::new(hypergolix_core::golix::AddressAlgorithm::Blake2b512, d)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = GolixObject::parse(&bytes);
        let _ = Gidc::parse(&bytes);
        let _ = Geoc::parse(&bytes);
        let _ = Gobs::parse(&bytes);
        let _ = Gobd::parse(&bytes);
        let _ = Gdxx::parse(&bytes);
        let _ = Garq::parse(&bytes);
        let _ = Secret::parse(&bytes);
        let _ = RequestContent::parse(&bytes);
        let _ = FirstParty::import(&bytes, &[0u8; 32]);
    }

    #[test]
    fn parsers_never_panic_on_plausible_headers(
        magic in prop::sample::select(vec![*b"GIDC", *b"GEOC", *b"GOBS", *b"GOBD", *b"GDXX", *b"GARQ"]),
        version in 0u32..20, suite in 0u8..5,
        rest in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&version.to_be_bytes());
        bytes.push(suite);
        bytes.extend_from_slice(&rest);
        let _ = GolixObject::parse(&bytes);
    }

    #[test]
    fn container_round_trip(plaintext in prop::collection::vec(any::<u8>(), 0..4096), seed in any::<u64>()) {
        let (geoc, secret) = alice().make_container(fresh(seed), &plaintext).expect("geoc");
        let bytes = geoc.to_bytes();
        let parsed = Geoc::parse(&bytes).expect("parse");
        prop_assert_eq!(&parsed.to_bytes(), &bytes);
        parsed.verify(alice().second_party()).expect("verify");
        prop_assert_eq!(parsed.decrypt(&secret).expect("decrypt"), plaintext);
    }

    #[test]
    fn frame_round_trip(counter in 1u64..u64::MAX, targets in prop::collection::vec(ghid_strategy(), 2..10), dynamic in ghid_strategy()) {
        let f = alice().make_frame(counter, targets.clone(), Some(dynamic)).expect("frame");
        let bytes = f.to_bytes();
        let parsed = Gobd::parse(&bytes).expect("parse");
        prop_assert_eq!(parsed.to_bytes(), bytes);
        prop_assert_eq!(parsed.targets(), &targets[..]);
        prop_assert_eq!(parsed.counter(), counter);
        parsed.verify(alice().second_party()).expect("verify");
    }

    #[test]
    fn binding_round_trip(target in ghid_strategy()) {
        let b = alice().make_static_binding(&target);
        prop_assert_eq!(Gobs::parse(&b.to_bytes()).expect("parse"), b);
        let d = alice().make_debinding(&target);
        prop_assert_eq!(Gdxx::parse(&d.to_bytes()).expect("parse"), d);
    }

    #[test]
    fn ghid_text_round_trip(g in ghid_strategy()) {
        let text = g.to_text();
        prop_assert_eq!(text.len(), 88);
        prop_assert_eq!(text.parse::<Ghid>().expect("parse"), g);
    }

    #[test]
    fn any_byte_flip_is_caught(index in any::<prop::sample::Index>(), bit in 0u8..8, which in 0usize..4) {
        let (geoc, _) = alice().make_container(fresh(1), b"some state").expect("geoc");
        let frame = alice().make_first_frame(&geoc.ghid()).expect("frame");
        let garq = alice()
            .make_request_with_random(bob().second_party(), hypergolix_core::golix::RequestPayload::Raw(b"x".to_vec()), &[5u8; 32])
            .expect("garq");
        let original = match which {
            0 => geoc.to_bytes(),
            1 => frame.to_bytes(),
            2 => alice().make_static_binding(&geoc.ghid()).to_bytes(),
            _ => garq.to_bytes(),
        };
        let mut bytes = original.clone();
        let i = index.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let lookup = |g: &Ghid| [alice(), bob()].iter().find(|p| p.ghid() == *g).map(|p| p.second_party().clone());
        let caught = match GolixObject::parse(&bytes) {
            Err(_) => true,
            Ok(GolixObject::Garq(g)) => bob().open_request(&g, lookup).is_err(),
            Ok(o) => o.verify_public(lookup).is_err(),
        };
        prop_assert!(caught, "flip of bit {} at byte {} went unnoticed", bit, i);
    }
}
