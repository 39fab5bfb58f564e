//! Moving a store's objects into another store (an export of an account
//! kept in an embedded store, imported into a new data directory): every
//! stored object out, then each one published again through the rules, in
//! an order they accept (identities, frames, bindings, containers,
//! requests, debindings).

use super::keys::OBJECT;
use super::node::{ConnId, Node};
use super::store::PersistBackend;
use crate::error::Result;
use crate::golix::GolixObject;
use crate::wire::remote::{Message, Request};

/// Every object `backend` holds (for a dynamic GHID, its current frame).
pub fn stored_objects<B: PersistBackend>(backend: &B) -> Result<Vec<Vec<u8>>> {
    let rows = backend.read(&mut |t| t.scan_prefix(&[OBJECT], usize::MAX))?;
    Ok(rows
        .into_iter()
        .filter_map(|(_, mut v)| (!v.is_empty()).then(|| v.split_off(1)))
        .collect())
}

/// What publishing objects again gave.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Republished {
    /// Taken (new, or already there).
    pub taken: usize,
    /// Refused by the rules (a debinding whose target is gone, say).
    pub refused: usize,
    /// Not Golix objects at all.
    pub malformed: usize,
}

/// The order the rules accept objects in: a binder before its bindings,
/// a binding before the container it keeps, a request's recipient before
/// it, a debinding's target before it.
fn rank(o: &GolixObject) -> u8 {
    match o {
        GolixObject::Gidc(_) => 0,
        GolixObject::Gobd(_) => 1,
        GolixObject::Gobs(_) => 2,
        GolixObject::Geoc(_) => 3,
        GolixObject::Garq(_) => 4,
        GolixObject::Gdxx(_) => 5,
    }
}

/// Publishes `objects` to `node` as a client would (`PB`, connection
/// `conn`), in [`rank`] order.
pub fn republish<B: PersistBackend>(
    node: &mut Node<B>,
    conn: ConnId,
    objects: Vec<Vec<u8>>,
) -> Republished {
    let mut out = Republished::default();
    let mut ranked: Vec<(u8, Vec<u8>)> = Vec::with_capacity(objects.len());
    for o in objects {
        match GolixObject::parse(&o) {
            Ok(p) => ranked.push((rank(&p), o)),
            Err(_) => out.malformed += 1,
        }
    }
    ranked.sort_by_key(|(r, _)| *r);
    for (i, (_, o)) in ranked.into_iter().enumerate() {
        let token = (i % usize::from(u16::MAX)) as u16;
        let m = Message::Request {
            token,
            request: Request::Publish(o),
        };
        let answered = node
            .handle_bytes(conn, &m.encode())
            .into_iter()
            .any(|(c, r)| c == conn && matches!(r, Message::Ack { token: t, .. } if t == token));
        if answered {
            out.taken += 1;
        } else {
            out.refused += 1;
        }
    }
    out
}
