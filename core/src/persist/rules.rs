//! The persistence rules. See `docs/protocol/persistence.md` for the rule list
//! and every deliberate deviation from the spec.

use std::collections::HashMap;
use std::sync::Mutex;

use super::keys::{self, BINDING, DEBOUND, FRAME, OBJECT, REQUEST, WAITING};
use super::store::PersistTxn;
use crate::error::{Error, Refusal, Result};
use crate::golix::suite::suite;
use crate::golix::{Garq, Gdxx, Geoc, Ghid, Gidc, Gobd, Gobs, GolixObject, SecondParty};

/// Kind bytes in object records.
mod kind {
    pub const GIDC: u8 = b'I';
    pub const GEOC: u8 = b'E';
    pub const GOBS: u8 = b'S';
    pub const GOBD: u8 = b'D';
    pub const GDXX: u8 = b'X';
    pub const GARQ: u8 = b'R';
}

/// Most entries any list query returns.
pub const MAX_LIST: usize = 10_000;
/// Most identities kept parsed in memory.
const IDENTITY_CACHE: usize = 100_000;

/// Tunable rules.
#[derive(Debug, Clone)]
pub struct PersistConfig {
    /// Longest chain of dynamic bindings (A → B → ...) a frame may create.
    pub max_chain_depth: usize,
    /// Accept a frame with counter > 0 for a dynamic GHID never seen here
    /// (the spec's "should accept", needed to federate servers). When false,
    /// such frames are refused, which prevents dynamic-GHID squatting.
    pub accept_unknown_later_frames: bool,
}

impl Default for PersistConfig {
    fn default() -> Self {
        Self {
            max_chain_depth: 32,
            accept_unknown_later_frames: true,
        }
    }
}

/// Something subscribers of `subscription` must be sent (a `!!` push).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The subscribed GHID: a dynamic GHID, a recipient identity, or a
    /// static binding (its debinding).
    pub subscription: Ghid,
    /// The packed object to push.
    pub object: Vec<u8>,
    /// For a frame, the container it binds when it is here and at most
    /// [`PUSH_CONTAINER_MAX`] bytes: pushed with the frame (`!C`) to the
    /// clients that asked for containers.
    pub container: Option<Vec<u8>>,
}

/// The largest container pushed with its frame (`!C`); larger ones are
/// fetched by the client (`GT`), so a push to many subscribers stays small.
pub const PUSH_CONTAINER_MAX: usize = 64 * 1024;

/// An object parsed and signature-checked ahead of the writer
/// ([`Persister::check_cached`]).
#[derive(Debug, Clone)]
pub struct Checked {
    obj: GolixObject,
    bytes: Vec<u8>,
}

/// The result of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The object's GHID (a GOBD's frame GHID).
    pub ghid: Ghid,
    /// `false` if the object was already stored (publishing is idempotent).
    pub new: bool,
    /// Pushes to deliver once the transaction has committed.
    pub notifications: Vec<Notification>,
}

/// The persistence rules. Holds no state but a cache of parsed identities
/// (identities never change, so the cache is safe across server nodes).
#[derive(Debug, Default)]
pub struct Persister {
    config: PersistConfig,
    identities: Mutex<HashMap<Ghid, SecondParty>>,
}

fn refused(reason: Refusal, detail: impl Into<String>) -> Error {
    Error::refused(reason, detail)
}

/// Maps a parse or verification failure to the refusal a client sees.
fn as_refusal(e: Error) -> Error {
    let reason = match &e {
        Error::Refused { .. } | Error::Storage(_) => return e,
        Error::HashMismatch { .. }
        | Error::DynamicHashMismatch
        | Error::BadSignature
        | Error::WrongIdentity => Refusal::VerificationFailed,
        Error::IllegalFrame(_) => Refusal::IllegalDynamicFrame,
        Error::UnknownSuite(_) | Error::UnsupportedSuite(_) | Error::SuiteMismatch { .. } => {
            Refusal::UnsupportedSuite
        }
        Error::WeakKey(_) | Error::InvalidKey(_) => Refusal::InvalidIdentity,
        _ => Refusal::Malformed,
    };
    refused(reason, e.to_string())
}

struct Record {
    kind: u8,
    bytes: Vec<u8>,
}

fn load(txn: &mut dyn PersistTxn, g: &Ghid) -> Result<Option<Record>> {
    Ok(txn.get(&keys::one(OBJECT, g))?.and_then(|mut v| {
        if v.is_empty() {
            return None;
        }
        let kind = v.remove(0);
        Some(Record { kind, bytes: v })
    }))
}

fn store(txn: &mut dyn PersistTxn, g: &Ghid, kind: u8, bytes: &[u8]) -> Result<()> {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.push(kind);
    v.extend_from_slice(bytes);
    txn.put(&keys::one(OBJECT, g), &v)
}

fn corrupt(g: &Ghid) -> Error {
    Error::Storage(format!("stored object {g} does not parse"))
}

fn frame_of(rec: &Record, g: &Ghid) -> Result<Gobd> {
    Gobd::parse(&rec.bytes).map_err(|_| corrupt(g))
}

fn has_bindings(txn: &mut dyn PersistTxn, g: &Ghid) -> Result<bool> {
    Ok(!txn.scan_prefix(&keys::one(BINDING, g), 1)?.is_empty())
}

fn is_debound(txn: &mut dyn PersistTxn, g: &Ghid) -> Result<bool> {
    Ok(txn.get(&keys::one(DEBOUND, g))?.is_some())
}

impl Persister {
    /// Rules with the given configuration.
    pub fn new(config: PersistConfig) -> Self {
        Self {
            config,
            identities: Mutex::new(HashMap::new()),
        }
    }

    /// A stored identity, parsed (and cached).
    fn identity(&self, txn: &mut dyn PersistTxn, g: &Ghid) -> Result<SecondParty> {
        if let Some(id) = self.identities.lock().ok().and_then(|c| c.get(g).cloned()) {
            return Ok(id);
        }
        let rec = load(txn, g)?
            .filter(|r| r.kind == kind::GIDC)
            .ok_or_else(|| {
                refused(
                    Refusal::InvalidIdentity,
                    format!("identity {g} is not known here"),
                )
            })?;
        let id = SecondParty::from_gidc(Gidc::parse(&rec.bytes).map_err(|_| corrupt(g))?);
        if let Ok(mut cache) = self.identities.lock() {
            if cache.len() >= IDENTITY_CACHE {
                cache.clear();
            }
            cache.insert(*g, id.clone());
        }
        Ok(id)
    }

    /// Publishes one packed object: parses, verifies and applies every rule in
    /// one transaction. On error nothing was changed.
    pub fn publish(&self, txn: &mut dyn PersistTxn, bytes: &[u8]) -> Result<PublishOutcome> {
        let obj = Self::parse_supported(bytes)?;
        self.apply(txn, &obj, bytes, false)
    }

    fn parse_supported(bytes: &[u8]) -> Result<GolixObject> {
        let obj = GolixObject::parse(bytes).map_err(as_refusal)?;
        if !suite(obj.suite()).map_err(as_refusal)?.has_crypto() {
            return Err(refused(
                Refusal::UnsupportedSuite,
                format!("suite {:#04x} cannot be verified", obj.suite()),
            ));
        }
        Ok(obj)
    }

    /// Parses an object and checks its signature with an identity already in
    /// this process's identity cache, without touching the store, so that many
    /// threads can verify while one writer applies. `Ok(Err(bytes))`: the
    /// signer is not cached, so [`Persister::publish`] must do the whole job.
    pub fn check_cached(&self, bytes: Vec<u8>) -> Result<core::result::Result<Checked, Vec<u8>>> {
        let obj = Self::parse_supported(&bytes)?;
        let Some(signer) = obj.signer() else {
            return Ok(Ok(Checked { obj, bytes }));
        };
        let identity = self
            .identities
            .lock()
            .ok()
            .and_then(|c| c.get(&signer).cloned());
        let Some(identity) = identity else {
            return Ok(Err(bytes));
        };
        obj.verify_public(|g| (*g == signer).then(|| identity.clone()))
            .map_err(as_refusal)?;
        Ok(Ok(Checked { obj, bytes }))
    }

    /// Publishes an object that [`Persister::check_cached`] parsed and verified.
    pub fn publish_checked(
        &self,
        txn: &mut dyn PersistTxn,
        checked: &Checked,
    ) -> Result<PublishOutcome> {
        self.apply(txn, &checked.obj, &checked.bytes, true)
    }

    /// The point keys [`Persister::publish_checked`] is likely to read for
    /// this object (its own record, its debinding, its target's record, its
    /// signer's identity): what a batch hands to [`PersistTxn::prefetch`].
    /// Only a hint; a key left out is read when the rules ask for it.
    pub fn read_set(checked: &Checked) -> Vec<Vec<u8>> {
        match &checked.obj {
            GolixObject::Gidc(o) => vec![keys::one(OBJECT, &o.ghid())],
            GolixObject::Geoc(o) => {
                vec![keys::one(OBJECT, &o.ghid()), keys::one(OBJECT, &o.author())]
            }
            GolixObject::Gobs(o) => vec![
                keys::one(OBJECT, &o.ghid()),
                keys::one(DEBOUND, &o.ghid()),
                keys::one(OBJECT, &o.binder()),
                keys::one(OBJECT, &o.target()),
            ],
            GolixObject::Gobd(o) => {
                let d = o.dynamic_ghid();
                vec![
                    keys::one(FRAME, &o.ghid()),
                    keys::one(DEBOUND, &d),
                    keys::one(OBJECT, &d),
                    keys::one(OBJECT, &o.binder()),
                    keys::one(OBJECT, &o.target()),
                ]
            }
            GolixObject::Gdxx(o) => vec![
                keys::one(OBJECT, &o.ghid()),
                keys::one(DEBOUND, &o.ghid()),
                keys::one(DEBOUND, &o.target()),
                keys::one(OBJECT, &o.target()),
            ],
            GolixObject::Garq(o) => vec![
                keys::one(OBJECT, &o.ghid()),
                keys::one(DEBOUND, &o.ghid()),
                keys::one(OBJECT, &o.recipient()),
            ],
        }
    }

    fn apply(
        &self,
        txn: &mut dyn PersistTxn,
        obj: &GolixObject,
        bytes: &[u8],
        verified: bool,
    ) -> Result<PublishOutcome> {
        let mut notes = Vec::new();
        let new = match obj {
            GolixObject::Gidc(o) => self.publish_gidc(txn, o, bytes)?,
            GolixObject::Geoc(o) => self.publish_geoc(txn, o, bytes, verified, &mut notes)?,
            GolixObject::Gobs(o) => self.publish_gobs(txn, o, bytes, verified)?,
            GolixObject::Gobd(o) => self.publish_gobd(txn, o, bytes, verified, &mut notes)?,
            GolixObject::Gdxx(o) => self.publish_gdxx(txn, o, bytes, verified, &mut notes)?,
            GolixObject::Garq(o) => self.publish_garq(txn, o, bytes, &mut notes)?,
        };
        Ok(PublishOutcome {
            ghid: obj.ghid(),
            new,
            notifications: notes,
        })
    }

    fn publish_gidc(&self, txn: &mut dyn PersistTxn, o: &Gidc, bytes: &[u8]) -> Result<bool> {
        if load(txn, &o.ghid())?.is_some() {
            return Ok(false);
        }
        store(txn, &o.ghid(), kind::GIDC, bytes)?;
        Ok(true)
    }

    fn publish_geoc(
        &self,
        txn: &mut dyn PersistTxn,
        o: &Geoc,
        bytes: &[u8],
        verified: bool,
        notes: &mut Vec<Notification>,
    ) -> Result<bool> {
        let g = o.ghid();
        if load(txn, &g)?.is_some() {
            return Ok(false);
        }
        let author = self.identity(txn, &o.author())?;
        if !verified {
            o.verify(&author).map_err(as_refusal)?;
        }
        if !has_bindings(txn, &g)? {
            return Err(refused(
                Refusal::UnboundContainer,
                "publish a binding for this container first",
            ));
        }
        store(txn, &g, kind::GEOC, bytes)?;
        self.release_waiting(txn, &g, bytes, notes)?;
        Ok(true)
    }

    /// Frames held back until `target` arrived can now be pushed (with
    /// `container`, the target's bytes, if small enough).
    fn release_waiting(
        &self,
        txn: &mut dyn PersistTxn,
        target: &Ghid,
        container: &[u8],
        notes: &mut Vec<Notification>,
    ) -> Result<()> {
        for (k, _) in txn.scan_prefix(&keys::one(WAITING, target), MAX_LIST)? {
            txn.delete(&k)?;
            let Some(d) = keys::second(&k) else { continue };
            if let Some(rec) = load(txn, &d)?.filter(|r| r.kind == kind::GOBD) {
                if frame_of(&rec, &d)?.target() == *target {
                    notes.push(Notification {
                        subscription: d,
                        object: rec.bytes,
                        container: (container.len() <= PUSH_CONTAINER_MAX)
                            .then(|| container.to_vec()),
                    });
                }
            }
        }
        Ok(())
    }

    /// A known target must have one of the allowed kinds; unknown targets are
    /// accepted (bindings are uploaded before what they bind).
    fn check_target(
        &self,
        txn: &mut dyn PersistTxn,
        target: &Ghid,
        allowed: &[u8],
        what: &str,
    ) -> Result<bool> {
        match load(txn, target)? {
            None => Ok(false),
            Some(rec) if allowed.contains(&rec.kind) => Ok(true),
            Some(_) => Err(refused(
                Refusal::InvalidTarget,
                format!("{what} cannot target that object type"),
            )),
        }
    }

    fn publish_gobs(
        &self,
        txn: &mut dyn PersistTxn,
        o: &Gobs,
        bytes: &[u8],
        verified: bool,
    ) -> Result<bool> {
        let g = o.ghid();
        if load(txn, &g)?.is_some() {
            return Ok(false);
        }
        if is_debound(txn, &g)? {
            return Err(refused(
                Refusal::AlreadyDebound,
                "this binding was debound; replay refused",
            ));
        }
        let binder = self.identity(txn, &o.binder())?;
        if !verified {
            o.verify(&binder).map_err(as_refusal)?;
        }
        self.check_target(
            txn,
            &o.target(),
            &[kind::GEOC, kind::GOBD],
            "a static binding",
        )?;
        store(txn, &g, kind::GOBS, bytes)?;
        txn.put(&keys::two(BINDING, &o.target(), &g), &o.binder().to_bytes())?;
        Ok(true)
    }

    fn publish_gobd(
        &self,
        txn: &mut dyn PersistTxn,
        o: &Gobd,
        bytes: &[u8],
        verified: bool,
        notes: &mut Vec<Notification>,
    ) -> Result<bool> {
        let d = o.dynamic_ghid();
        if txn.get(&keys::one(FRAME, &o.ghid()))?.is_some() {
            return Ok(false);
        }
        if is_debound(txn, &d)? {
            return Err(refused(
                Refusal::AlreadyDebound,
                "this dynamic binding was debound",
            ));
        }
        let existing = match load(txn, &d)? {
            Some(rec) if rec.kind == kind::GOBD => Some(frame_of(&rec, &d)?),
            Some(_) => {
                return Err(refused(
                    Refusal::InvalidTarget,
                    "the dynamic GHID names another object",
                ))
            }
            None => None,
        };
        match &existing {
            Some(old) if old.binder() != o.binder() => {
                return Err(refused(
                    Refusal::InconsistentAuthor,
                    "only the binder may update a dynamic binding",
                ));
            }
            Some(old) if o.counter() <= old.counter() => {
                return Err(refused(
                    Refusal::IllegalDynamicFrame,
                    format!(
                        "frame counter {} is not above the current {}",
                        o.counter(),
                        old.counter()
                    ),
                ));
            }
            None if o.counter() > 0 && !self.config.accept_unknown_later_frames => {
                return Err(refused(
                    Refusal::IllegalDynamicFrame,
                    "unknown dynamic binding: publish its first frame",
                ));
            }
            _ => {}
        }
        let binder = self.identity(txn, &o.binder())?;
        if !verified {
            o.verify(&binder).map_err(as_refusal)?;
        }
        let target = o.target();
        let present = self.check_target(
            txn,
            &target,
            &[kind::GEOC, kind::GOBD, kind::GIDC],
            "a dynamic binding",
        )?;
        self.check_cycle(txn, &d, &target)?;

        if let Some(old) = &existing {
            txn.delete(&keys::one(FRAME, &old.ghid()))?;
            txn.delete(&keys::two(BINDING, &old.target(), &d))?;
            txn.delete(&keys::two(WAITING, &old.target(), &d))?;
        }
        store(txn, &d, kind::GOBD, bytes)?;
        txn.put(&keys::one(FRAME, &o.ghid()), &d.to_bytes())?;
        txn.put(&keys::two(BINDING, &target, &d), &o.binder().to_bytes())?;
        if let Some(old) = &existing {
            if old.target() != target {
                self.collect(txn, &old.target(), 0)?;
            }
        }
        if present {
            // The container, if that is what the frame binds (and small).
            let container = load(txn, &target)?
                .filter(|r| r.kind == kind::GEOC && r.bytes.len() <= PUSH_CONTAINER_MAX)
                .map(|r| r.bytes);
            notes.push(Notification {
                subscription: d,
                object: bytes.to_vec(),
                container,
            });
        } else {
            txn.put(&keys::two(WAITING, &target, &d), &[])?;
        }
        Ok(true)
    }

    /// Follows current targets from `target` through dynamic bindings; refuses
    /// a chain that returns to `dynamic` or is longer than the limit.
    fn check_cycle(&self, txn: &mut dyn PersistTxn, dynamic: &Ghid, target: &Ghid) -> Result<()> {
        let mut cur = *target;
        for _ in 0..=self.config.max_chain_depth {
            if cur == *dynamic {
                return Err(refused(
                    Refusal::IllegalDynamicFrame,
                    "circular dynamic binding",
                ));
            }
            match load(txn, &cur)? {
                Some(rec) if rec.kind == kind::GOBD => cur = frame_of(&rec, &cur)?.target(),
                _ => return Ok(()),
            }
        }
        Err(refused(
            Refusal::IllegalDynamicFrame,
            "chain of dynamic bindings too long",
        ))
    }

    fn publish_gdxx(
        &self,
        txn: &mut dyn PersistTxn,
        o: &Gdxx,
        bytes: &[u8],
        verified: bool,
        notes: &mut Vec<Notification>,
    ) -> Result<bool> {
        let g = o.ghid();
        if load(txn, &g)?.is_some() {
            return Ok(false);
        }
        if is_debound(txn, &g)? {
            return Err(refused(
                Refusal::AlreadyDebound,
                "this debinding was itself debound; replay refused",
            ));
        }
        let t = o.target();
        if is_debound(txn, &t)? {
            return Err(refused(
                Refusal::AlreadyDebound,
                "the target is already debound",
            ));
        }
        let rec = load(txn, &t)?.ok_or_else(|| {
            refused(
                Refusal::DoesNotExist,
                format!("debinding target {t} is not here"),
            )
        })?;
        let allowed = match rec.kind {
            kind::GOBS => Gobs::parse(&rec.bytes).map_err(|_| corrupt(&t))?.binder(),
            kind::GOBD => frame_of(&rec, &t)?.binder(),
            kind::GDXX => Gdxx::parse(&rec.bytes).map_err(|_| corrupt(&t))?.debinder(),
            kind::GARQ => Garq::parse(&rec.bytes)
                .map_err(|_| corrupt(&t))?
                .recipient(),
            _ => {
                return Err(refused(
                    Refusal::InvalidTarget,
                    "containers and identities cannot be debound",
                ))
            }
        };
        if o.debinder() != allowed {
            return Err(refused(
                Refusal::InconsistentAuthor,
                "only the binder (or a request's recipient) may debind",
            ));
        }
        let debinder = self.identity(txn, &o.debinder())?;
        if !verified {
            o.verify(&debinder).map_err(as_refusal)?;
        }
        store(txn, &g, kind::GDXX, bytes)?;
        txn.put(&keys::one(DEBOUND, &t), &g.to_bytes())?;
        match rec.kind {
            kind::GOBS => {
                let b = Gobs::parse(&rec.bytes).map_err(|_| corrupt(&t))?;
                txn.delete(&keys::one(OBJECT, &t))?;
                txn.delete(&keys::two(BINDING, &b.target(), &t))?;
                self.collect(txn, &b.target(), 0)?;
                // Recipients of a static object watch its owner's binding:
                // this is how they learn it was deleted.
                notes.push(Notification {
                    subscription: t,
                    object: bytes.to_vec(),
                    container: None,
                });
            }
            kind::GOBD => {
                notes.push(Notification {
                    subscription: t,
                    object: bytes.to_vec(),
                    container: None,
                });
                self.collect(txn, &t, 0)?;
            }
            kind::GDXX => {
                let x = Gdxx::parse(&rec.bytes).map_err(|_| corrupt(&t))?;
                txn.delete(&keys::one(OBJECT, &t))?;
                // The binding that GDXX removed may be published again.
                txn.delete(&keys::one(DEBOUND, &x.target()))?;
            }
            _ => {
                let r = Garq::parse(&rec.bytes).map_err(|_| corrupt(&t))?;
                txn.delete(&keys::one(OBJECT, &t))?;
                txn.delete(&keys::two(REQUEST, &r.recipient(), &t))?;
                notes.push(Notification {
                    subscription: r.recipient(),
                    object: bytes.to_vec(),
                    container: None,
                });
            }
        }
        Ok(true)
    }

    /// Garbage-collects `g` if nothing keeps it: a container with no binding,
    /// or a debound dynamic binding that no other binding holds (which then
    /// releases its own target).
    fn collect(&self, txn: &mut dyn PersistTxn, g: &Ghid, depth: usize) -> Result<()> {
        if depth > self.config.max_chain_depth + 1 || has_bindings(txn, g)? {
            return Ok(());
        }
        let Some(rec) = load(txn, g)? else {
            return Ok(());
        };
        match rec.kind {
            kind::GEOC => txn.delete(&keys::one(OBJECT, g)),
            kind::GOBD if is_debound(txn, g)? => {
                let f = frame_of(&rec, g)?;
                txn.delete(&keys::one(OBJECT, g))?;
                txn.delete(&keys::one(FRAME, &f.ghid()))?;
                txn.delete(&keys::two(BINDING, &f.target(), g))?;
                txn.delete(&keys::two(WAITING, &f.target(), g))?;
                self.collect(txn, &f.target(), depth + 1)
            }
            _ => Ok(()),
        }
    }

    fn publish_garq(
        &self,
        txn: &mut dyn PersistTxn,
        o: &Garq,
        bytes: &[u8],
        notes: &mut Vec<Notification>,
    ) -> Result<bool> {
        let g = o.ghid();
        if load(txn, &g)?.is_some() {
            return Ok(false);
        }
        if is_debound(txn, &g)? {
            return Err(refused(
                Refusal::AlreadyDebound,
                "this request was debound; replay refused",
            ));
        }
        self.identity(txn, &o.recipient())?;
        store(txn, &g, kind::GARQ, bytes)?;
        txn.put(&keys::two(REQUEST, &o.recipient(), &g), &[])?;
        notes.push(Notification {
            subscription: o.recipient(),
            object: bytes.to_vec(),
            container: None,
        });
        Ok(true)
    }

    /// `GT`: the object, or for a dynamic GHID its current frame.
    pub fn get(&self, txn: &mut dyn PersistTxn, g: &Ghid) -> Result<Vec<u8>> {
        if let Some(rec) = load(txn, g)? {
            return Ok(rec.bytes);
        }
        if let Some(d) = txn.get(&keys::one(FRAME, g))? {
            let d = Ghid::from_bytes(&d).map_err(|_| corrupt(g))?;
            if let Some(rec) = load(txn, &d)? {
                return Ok(rec.bytes);
            }
        }
        Err(refused(Refusal::DoesNotExist, format!("{g} is not here")))
    }

    /// `?E`: whether an object (or current frame) is stored.
    pub fn exists(&self, txn: &mut dyn PersistTxn, g: &Ghid) -> Result<bool> {
        Ok(load(txn, g)?.is_some() || txn.get(&keys::one(FRAME, g))?.is_some())
    }

    /// `?B`: the live bindings of `g`: static bindings (GOBS GHIDs) first, then
    /// dynamic ones (dynamic GHIDs).
    pub fn list_bindings(&self, txn: &mut dyn PersistTxn, g: &Ghid) -> Result<Vec<Ghid>> {
        let mut stat = Vec::new();
        let mut dynamic = Vec::new();
        for (k, _) in txn.scan_prefix(&keys::one(BINDING, g), MAX_LIST)? {
            let Some(b) = keys::second(&k) else { continue };
            match load(txn, &b)? {
                Some(rec) if rec.kind == kind::GOBD => dynamic.push(b),
                _ => stat.push(b),
            }
        }
        stat.extend(dynamic);
        Ok(stat)
    }

    /// `?D`: the debinding of `g`, if any (a list of at most one).
    pub fn list_debindings(&self, txn: &mut dyn PersistTxn, g: &Ghid) -> Result<Vec<Ghid>> {
        Ok(match txn.get(&keys::one(DEBOUND, g))? {
            Some(x) => vec![Ghid::from_bytes(&x).map_err(|_| corrupt(g))?],
            None => Vec::new(),
        })
    }

    /// What a subscriber of `sub` holds once it is up to date: the
    /// debinding of `sub` if it was debound (and then nothing else), else a
    /// dynamic GHID's current frame once its target is here (until then
    /// the frame waits, and is pushed with its target), or a recipient's
    /// pending requests. A server pushes these again when it may have
    /// missed a change (another node's commit it was not told of).
    pub fn current(&self, txn: &mut dyn PersistTxn, sub: &Ghid) -> Result<Vec<Vec<u8>>> {
        if let Some(x) = self.list_debindings(txn, sub)?.first() {
            return Ok(load(txn, x)?.map(|rec| vec![rec.bytes]).unwrap_or_default());
        }
        Ok(match load(txn, sub)? {
            Some(rec) if rec.kind == kind::GOBD => {
                let target = frame_of(&rec, sub)?.target();
                if load(txn, &target)?.is_some() {
                    vec![rec.bytes]
                } else {
                    Vec::new()
                }
            }
            Some(rec) if rec.kind == kind::GIDC => self.pending_requests(txn, sub)?,
            _ => Vec::new(),
        })
    }

    /// Requests still pending for `recipient` (re-sent when it subscribes).
    pub fn pending_requests(
        &self,
        txn: &mut dyn PersistTxn,
        recipient: &Ghid,
    ) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for (k, _) in txn.scan_prefix(&keys::one(REQUEST, recipient), MAX_LIST)? {
            if let Some(g) = keys::second(&k) {
                if let Some(rec) = load(txn, &g)? {
                    out.push(rec.bytes);
                }
            }
        }
        Ok(out)
    }
}
