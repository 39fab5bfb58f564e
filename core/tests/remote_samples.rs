//! Every captured message of the Hypergolix 0.1.0 remote protocol
//! (tests/interop/remote-samples) decodes and re-encodes byte for byte, and
//! every published object in it parses as a Golix object.

use std::path::PathBuf;

use hypergolix_core::golix::GolixObject;
use hypergolix_core::wire::remote::{Message, Request};
use hypergolix_core::wire::{Frame, WireError};

#[test]
fn remote_samples_round_trip() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/remote-samples");
    assert!(
        dir.is_dir(),
        "the 0.1.0 remote samples must be at {}",
        dir.display()
    );
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    let (mut count, mut published) = (0, 0);
    for p in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
    {
        let text = std::fs::read_to_string(p).expect("read");
        let bytes = hex::decode(text.split_whitespace().collect::<String>()).expect("hex");
        let msg = Message::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(msg.encode(), bytes, "{}", p.display());
        if let Message::Request {
            request: Request::Publish(obj) | Request::Push { object: obj, .. },
            ..
        } = &msg
        {
            GolixObject::parse(obj).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            published += 1;
        }
        count += 1;
    }
    assert!(count > 600, "only {count} samples");
    assert!(published > 200);
}

#[test]
fn garbage_is_typed_errors() {
    assert_eq!(Message::decode(b""), Err(WireError::Truncated(0)));
    assert_eq!(
        Message::decode(b"\x00\x01PB\x00\x01x"),
        Err(WireError::BadVersion([0, 1]))
    );
    assert_eq!(
        Message::decode(b"\x00\x00ZZ\x00\x01"),
        Err(WireError::UnknownCode(*b"ZZ"))
    );
    assert!(matches!(
        Message::decode(b"\x00\x00GT\x00\x01abc"),
        Err(WireError::BadBody { .. })
    ));
    assert!(matches!(
        Message::decode(b"\x00\x00??\x00\x01x"),
        Err(WireError::BadBody { .. })
    ));
    assert_eq!(Frame::peek_token(b"\x00\x00ZZ\x12\x34"), Some(0x1234));
}
