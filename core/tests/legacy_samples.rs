//! The suite-0x1 objects captured from Hypergolix 0.1.0 (tests/interop/cs1-objects):
//! every one parses byte-exactly with a correct SHA-512 file hash and re-serializes
//! to the same bytes; signature checks report the suite as unsupported.

use std::path::PathBuf;

use hypergolix_core::golix::{GolixObject, SecondParty};
use hypergolix_core::Error;

fn samples_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/cs1-objects");
    assert!(
        dir.is_dir(),
        "the 0.1.0 objects must be at {}",
        dir.display()
    );
    dir
}

#[test]
fn cs1_samples_parse_and_round_trip() {
    let dir = samples_dir();
    let mut count = 0;
    let mut gidcs = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "golix"))
    {
        let bytes = std::fs::read(path).expect("read");
        let obj = GolixObject::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(obj.suite(), 1);
        assert_eq!(
            obj.to_bytes(),
            bytes,
            "{} re-serializes differently",
            path.display()
        );
        // File names end in the first 12 characters of the GHID's text form.
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("name");
        let suffix = &stem[stem.len() - 12.min(stem.len())..];
        assert!(
            obj.ghid().to_text().starts_with(suffix),
            "{}: ghid {}",
            path.display(),
            obj.ghid()
        );
        if let GolixObject::Gidc(g) = &obj {
            gidcs.push(SecondParty::from_gidc(g.clone()));
        }
        count += 1;
    }
    assert_eq!(count, 12);
    assert_eq!(gidcs.len(), 2);
    // Signed objects name a known signer, but suite 0x1 cryptography is not built in.
    let geoc = std::fs::read(dir.join("GEOC_agentA_AQsSvkFqEPeI.golix")).expect("read");
    let obj = GolixObject::parse(&geoc).expect("parse");
    let lookup = |g: &hypergolix_core::golix::Ghid| gidcs.iter().find(|i| i.ghid() == *g).cloned();
    assert_eq!(obj.verify_public(lookup), Err(Error::UnsupportedSuite(1)));
}
