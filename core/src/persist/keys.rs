//! The key schema of the persistence store. Every key starts with one tag
//! byte; GHIDs are their 65 wire bytes, so prefix scans list by GHID.
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `O` ghid | kind byte ‖ object bytes | a stored object; a GOBD is stored under its dynamic GHID (current frame only) |
//! | `F` frame ghid | dynamic ghid | the current frame of a dynamic binding |
//! | `B` target ‖ binding | binder ghid | a live binding of `target` (a GOBS GHID or a GOBD dynamic GHID) |
//! | `X` target | GDXX ghid | `target` was debound by that GDXX |
//! | `R` recipient ‖ garq | (empty) | a pending request for `recipient` |
//! | `W` target ‖ dynamic | (empty) | a frame of `dynamic` waits for `target` before subscribers are told |

use crate::golix::ghid::Ghid;

/// Object record.
pub const OBJECT: u8 = b'O';
/// Current-frame index.
pub const FRAME: u8 = b'F';
/// Binding index.
pub const BINDING: u8 = b'B';
/// Debinding index.
pub const DEBOUND: u8 = b'X';
/// Pending requests by recipient.
pub const REQUEST: u8 = b'R';
/// Frames waiting for their target.
pub const WAITING: u8 = b'W';

/// `tag ‖ ghid`.
pub fn one(tag: u8, g: &Ghid) -> Vec<u8> {
    let mut k = Vec::with_capacity(66);
    k.push(tag);
    k.extend_from_slice(&g.to_bytes());
    k
}

/// `tag ‖ a ‖ b`.
pub fn two(tag: u8, a: &Ghid, b: &Ghid) -> Vec<u8> {
    let mut k = one(tag, a);
    k.extend_from_slice(&b.to_bytes());
    k
}

/// The second GHID of a two-GHID key.
pub fn second(key: &[u8]) -> Option<Ghid> {
    key.get(66..131).and_then(|b| Ghid::from_bytes(b).ok())
}
