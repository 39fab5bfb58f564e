//! Creating and verifying every object type, and every way verification fails.

mod common;

use common::{fresh, identity, rng};
use hypergolix_core::golix::{
    Garq, Gdxx, Geoc, Gidc, Gobd, Gobs, GolixObject, RequestPayload, SecondParty, Secret,
};
use hypergolix_core::Error;

#[test]
fn gidc_round_trip_and_sizes() {
    let alice = identity(1);
    let bytes = alice.second_party().gidc().to_bytes();
    assert_eq!(bytes.len(), 170);
    let parsed = Gidc::parse(&bytes).expect("parse");
    assert_eq!(parsed.ghid(), alice.ghid());
    assert_eq!(parsed.to_bytes(), bytes);
}

#[test]
fn container_create_verify_decrypt() {
    let alice = identity(1);
    let (geoc, secret) = alice
        .make_container(fresh(2), b"hello world")
        .expect("geoc");
    let bytes = geoc.to_bytes();
    assert_eq!(bytes.len(), 9 + 65 + 8 + 11 + 16 + 65 + 64);
    let parsed = Geoc::parse(&bytes).expect("parse");
    parsed.verify(alice.second_party()).expect("verify");
    assert_eq!(parsed.decrypt(&secret).expect("decrypt"), b"hello world");
    // Another identity does not verify it.
    let bob = identity(3);
    assert_eq!(parsed.verify(bob.second_party()), Err(Error::WrongIdentity));
    // A different secret does not decrypt it.
    let (_, other) = alice.make_container(fresh(4), b"x").expect("geoc");
    assert_eq!(parsed.decrypt(&other), Err(Error::DecryptionFailed));
}

#[test]
fn container_header_is_authenticated() {
    // Rewriting the author field (and re-hashing) breaks both signature and AEAD.
    let alice = identity(1);
    let bob = identity(2);
    let (geoc, secret) = alice.make_container(fresh(5), b"payload").expect("geoc");
    let mut bytes = geoc.to_bytes();
    bytes[9..74].copy_from_slice(&bob.ghid().to_bytes());
    let hash_at = bytes.len() - 128;
    let d = hypergolix_core::golix::AddressAlgorithm::Blake2b512.digest(&bytes[..hash_at]);
    bytes[hash_at..hash_at + 64].copy_from_slice(&d);
    let forged = Geoc::parse(&bytes).expect("structurally valid");
    assert_eq!(forged.verify(bob.second_party()), Err(Error::BadSignature));
    assert_eq!(forged.decrypt(&secret), Err(Error::DecryptionFailed));
}

#[test]
fn static_binding_and_debinding() {
    let alice = identity(1);
    let (geoc, _) = alice.make_container(fresh(2), b"x").expect("geoc");
    let gobs = alice.make_static_binding(&geoc.ghid());
    assert_eq!(gobs.to_bytes().len(), 268);
    let parsed = Gobs::parse(&gobs.to_bytes()).expect("parse");
    parsed.verify(alice.second_party()).expect("verify");
    assert_eq!(parsed.target(), geoc.ghid());
    let gdxx = alice.make_debinding(&gobs.ghid());
    let parsed = Gdxx::parse(&gdxx.to_bytes()).expect("parse");
    parsed.verify(alice.second_party()).expect("verify");
    assert_eq!(parsed.target(), gobs.ghid());
    // The two types do not parse as each other.
    assert!(matches!(
        Gobs::parse(&gdxx.to_bytes()),
        Err(Error::UnknownMagic(_))
    ));
}

#[test]
fn dynamic_frames_follow_the_rules() {
    let alice = identity(1);
    let (c0, s0) = alice.make_container(fresh(2), b"v0").expect("geoc");
    let f0 = alice.make_first_frame(&c0.ghid()).expect("frame 0");
    assert_eq!(f0.counter(), 0);
    assert_eq!(f0.to_bytes().len(), 278 + 65);
    let parsed = Gobd::parse(&f0.to_bytes()).expect("parse");
    parsed.verify(alice.second_party()).expect("verify");
    assert_eq!(parsed.dynamic_ghid(), f0.dynamic_ghid());

    // Follow the ratchet for a few frames; keep a history of 2.
    let mut frame = f0.clone();
    let mut secret: Secret = s0;
    let mut container = c0.ghid();
    for i in 1..=5u64 {
        let next = secret
            .ratchet(&container, &f0.dynamic_ghid())
            .expect("ratchet");
        let (c, s) = alice
            .make_container(next, format!("v{i}").as_bytes())
            .expect("geoc");
        frame = alice.make_next_frame(&frame, &c.ghid(), 2).expect("frame");
        assert_eq!(frame.counter(), i);
        assert_eq!(frame.dynamic_ghid(), f0.dynamic_ghid());
        assert_eq!(frame.target(), c.ghid());
        assert!(frame.targets().len() <= 3);
        let parsed = Gobd::parse(&frame.to_bytes()).expect("parse");
        parsed.verify(alice.second_party()).expect("verify");
        // A recipient that holds the first secret can derive this one.
        assert_eq!(c.decrypt(&s).expect("decrypt"), format!("v{i}").as_bytes());
        secret = s;
        container = c.ghid();
    }

    // Illegal shapes are refused at creation.
    assert!(matches!(
        alice.make_frame(0, vec![c0.ghid(), c0.ghid()], None),
        Err(Error::IllegalFrame(_))
    ));
    assert!(matches!(
        alice.make_frame(3, vec![c0.ghid()], Some(f0.dynamic_ghid())),
        Err(Error::IllegalFrame(_))
    ));
    assert!(matches!(
        alice.make_frame(3, vec![c0.ghid(); 2], None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        alice.make_frame(0, vec![c0.ghid()], Some(f0.dynamic_ghid())),
        Err(Error::InvalidArgument(_))
    ));
    // Only the binder can continue a binding.
    let bob = identity(9);
    assert_eq!(
        bob.make_next_frame(&frame, &c0.ghid(), 2).err(),
        Some(Error::WrongIdentity)
    );
}

#[test]
fn ratchet_is_deterministic_and_moves() {
    let alice = identity(1);
    let (c0, s0) = alice.make_container(fresh(2), b"v0").expect("geoc");
    let f0 = alice.make_first_frame(&c0.ghid()).expect("frame");
    let a = s0
        .ratchet(&c0.ghid(), &f0.dynamic_ghid())
        .expect("ratchet")
        .into_secret();
    let b = s0
        .ratchet(&c0.ghid(), &f0.dynamic_ghid())
        .expect("ratchet")
        .into_secret();
    assert_eq!(a, b);
    assert_ne!(a, s0);
    let other_dyn = s0
        .ratchet(&c0.ghid(), &c0.ghid())
        .expect("ratchet")
        .into_secret();
    assert_ne!(a, other_dyn);
}

#[test]
fn requests_open_only_for_their_recipient() {
    let alice = identity(1);
    let bob = identity(2);
    let carol = identity(3);
    let (geoc, secret) = alice.make_container(fresh(4), b"shared").expect("geoc");
    let lookup = |g: &hypergolix_core::golix::Ghid| -> Option<SecondParty> {
        [&alice, &bob, &carol]
            .iter()
            .find(|p| p.ghid() == *g)
            .map(|p| p.second_party().clone())
    };
    let payload = RequestPayload::Handshake {
        target: geoc.ghid(),
        secret: secret.clone(),
    };
    let garq = alice
        .make_request(bob.second_party(), payload.clone(), &mut rng(5))
        .expect("garq");
    let parsed = Garq::parse(&garq.to_bytes()).expect("parse");
    assert_eq!(parsed.recipient(), bob.ghid());
    let opened = bob.open_request(&parsed, lookup).expect("open");
    assert_eq!(opened.author, alice.ghid());
    assert_eq!(opened.payload, payload);
    let RequestPayload::Handshake { secret: got, .. } = opened.payload else {
        panic!("handshake")
    };
    assert_eq!(geoc.decrypt(&got).expect("decrypt"), b"shared");

    assert_eq!(
        carol.open_request(&parsed, lookup),
        Err(Error::WrongRecipient)
    );
    // An unknown author cannot be authenticated.
    assert_eq!(
        bob.open_request(&parsed, |_| None),
        Err(Error::UnknownAuthor)
    );
    // Two requests with the same payload differ (fresh ephemeral keys).
    let again = alice
        .make_request(bob.second_party(), payload, &mut rng(6))
        .expect("garq");
    assert_ne!(again.ghid(), garq.ghid());

    // Ack / Nak / Raw round trip.
    for p in [
        RequestPayload::Ack {
            target: garq.ghid(),
            status: 0,
        },
        RequestPayload::Nak {
            target: garq.ghid(),
            status: 42,
        },
        RequestPayload::Raw(vec![1, 2, 3]),
    ] {
        let r = bob
            .make_request(alice.second_party(), p.clone(), &mut rng(7))
            .expect("garq");
        assert_eq!(alice.open_request(&r, lookup).expect("open").payload, p);
    }
}

#[test]
fn private_key_export_round_trip() {
    let alice = identity(1);
    let key = [7u8; 32];
    let blob = alice.export(&key, &mut rng(2)).expect("export");
    let back = hypergolix_core::golix::FirstParty::import(&blob, &key).expect("import");
    assert_eq!(back.ghid(), alice.ghid());
    // The restored keys sign objects the original identity verifies.
    let (geoc, _) = back.make_container(fresh(3), b"x").expect("geoc");
    geoc.verify(alice.second_party()).expect("verify");
    assert_eq!(
        hypergolix_core::golix::FirstParty::import(&blob, &[8u8; 32]).err(),
        Some(Error::DecryptionFailed)
    );
    let mut truncated = blob.clone();
    truncated.pop();
    assert!(matches!(
        hypergolix_core::golix::FirstParty::import(&truncated, &key),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn any_object_dispatch() {
    let alice = identity(1);
    let (geoc, _) = alice.make_container(fresh(2), b"x").expect("geoc");
    let o = GolixObject::parse(&geoc.to_bytes()).expect("parse");
    assert_eq!(o.ghid(), geoc.ghid());
    assert_eq!(o.signer(), Some(alice.ghid()));
    assert!(matches!(
        GolixObject::parse(b"GIDC"),
        Err(Error::Truncated { .. })
    ));
    assert!(GolixObject::parse(b"").is_err());
    assert!(matches!(
        GolixObject::parse(b"ABCDEFGH"),
        Err(Error::UnknownMagic(_))
    ));
}

#[test]
fn debug_output_redacts_secrets() {
    let alice = identity(1);
    let (_, secret) = alice.make_container(fresh(2), b"x").expect("geoc");
    assert!(format!("{secret:?}").contains("redacted"));
    assert!(format!("{alice:?}").contains("redacted"));
}
