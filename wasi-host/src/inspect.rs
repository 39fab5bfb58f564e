//! `hypergolix inspect`: pretty-print and verify a Golix object.

use std::fmt::Write as _;

use hypergolix_core::golix::{GolixObject, SecondParty};

/// Describes `bytes` as text: type, suite, GHID and every field, then the
/// verification verdict using `identities` (parsed GIDCs) to check signatures.
/// Returns the description and whether the object is fully valid.
pub fn describe(bytes: &[u8], identities: &[SecondParty]) -> (String, bool) {
    let mut out = String::new();
    let obj = match GolixObject::parse(bytes) {
        Ok(o) => o,
        Err(e) => {
            let _ = writeln!(out, "invalid: {} ({e})", e.code());
            return (out, false);
        }
    };
    let _ = writeln!(out, "type:     {}", obj.kind());
    let _ = writeln!(out, "suite:    {:#04x}", obj.suite());
    let _ = writeln!(out, "ghid:     {}", obj.ghid());
    let _ = writeln!(out, "size:     {} bytes", bytes.len());
    match &obj {
        GolixObject::Gidc(o) => {
            let _ = writeln!(out, "signing key:    {} bytes", o.keys().signing.len());
            let _ = writeln!(out, "encryption key: {} bytes", o.keys().encryption.len());
            let _ = writeln!(out, "exchange key:   {} bytes", o.keys().exchange.len());
        }
        GolixObject::Geoc(o) => {
            let _ = writeln!(out, "author:   {}", o.author());
            let _ = writeln!(out, "payload:  {} bytes (ciphertext)", o.payload().len());
        }
        GolixObject::Gobs(o) => {
            let _ = writeln!(out, "binder:   {}", o.binder());
            let _ = writeln!(out, "target:   {}", o.target());
        }
        GolixObject::Gdxx(o) => {
            let _ = writeln!(out, "debinder: {}", o.debinder());
            let _ = writeln!(out, "target:   {}", o.target());
        }
        GolixObject::Gobd(o) => {
            let _ = writeln!(out, "binder:   {}", o.binder());
            let _ = writeln!(out, "dynamic:  {}", o.dynamic_ghid());
            let _ = writeln!(out, "counter:  {}", o.counter());
            for (i, t) in o.targets().iter().enumerate() {
                let _ = writeln!(out, "target[{i}]: {t}");
            }
        }
        GolixObject::Garq(o) => {
            let _ = writeln!(out, "recipient: {}", o.recipient());
            let _ = writeln!(
                out,
                "payload:  {} bytes (sealed; only the recipient can open it)",
                o.payload().len()
            );
        }
    }
    let lookup =
        |g: &hypergolix_core::golix::Ghid| identities.iter().find(|i| i.ghid() == *g).cloned();
    let verdict = match obj.signer() {
        None => {
            let _ = writeln!(
                out,
                "verdict:  valid (layout and hash{})",
                if matches!(obj, GolixObject::Gidc(_)) {
                    ", keys"
                } else {
                    "; MAC needs the recipient"
                }
            );
            true
        }
        Some(signer) if lookup(&signer).is_none() => {
            let _ = writeln!(out, "verdict:  layout and hash valid; signature not checked (signer's GIDC not given: --identity FILE)");
            true
        }
        Some(_) => match obj.verify_public(lookup) {
            Ok(()) => {
                let _ = writeln!(out, "verdict:  valid (layout, hash, signature)");
                true
            }
            Err(e) => {
                let _ = writeln!(out, "verdict:  invalid: {} ({e})", e.code());
                false
            }
        },
    };
    (out, verdict)
}
