//! The engine's state in memory, and its encoding in the host's local store.
//! Every local value is sealed under the host's storage key
//! ([`super::keys::seal_local`]); the key of each record is its AAD.

use std::collections::{BTreeMap, BTreeSet};

use super::record::{read_blob, read_bool, read_opt_blob, read_opt_ghid, reader, Entry, Writer};
use super::types::{ApiId, AppToken, SessionId, TOKEN_LEN};
use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::golix::{FirstParty, Gobd, SecondParty, Secret};

/// Which of the agent's dynamic objects a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An app object.
    App = 0,
    /// The account state (the agent's object table, synced between devices).
    Account = 1,
    /// The account root (the user id; opened by the password).
    Root = 2,
}

impl Kind {
    fn from_u8(b: u8) -> Result<Self> {
        Ok(match b {
            0 => Kind::App,
            1 => Kind::Account,
            2 => Kind::Root,
            _ => return Err(Error::Storage("unknown record kind".into())),
        })
    }
}

/// One object the agent holds.
#[derive(Clone)]
pub(crate) struct ObjRecord {
    pub kind: Kind,
    pub entry: Entry,
    /// The latest state this device knows (local updates included).
    pub state: Vec<u8>,
    /// `state` is newer than anything published: a frame must be built.
    pub dirty: bool,
    /// The newest frame known to be accepted by the server (dynamic objects).
    pub current: Option<Gobd>,
    /// The container of `current` (or of a static object).
    pub container: Option<Ghid>,
    /// A frame and container built but not yet both acknowledged.
    pub unsent: Option<(Vec<u8>, Vec<u8>)>,
    /// The new master the unsent frame's container is encrypted under, when
    /// that frame rotates the key (it becomes the entry's master once the
    /// server accepts the frame).
    pub rotating: Option<Secret>,
    /// The recipients unshared when that master was made: it is withheld
    /// from them even if one is shared with again before the server
    /// accepts the frame (the frame may already be accepted by then).
    pub rotating_withheld: Vec<Ghid>,
    /// The unsent frame was built only to rotate the master: it carries no
    /// local edit (losing its counter to another frame loses nothing).
    pub rekey_only: bool,
    /// This agent's own static binding of the object (hold, or a static object's binding).
    pub held: Option<Ghid>,
    /// The state has been read (false while a newly learned object is fetched).
    pub loaded: bool,
    /// When this device took its current state (host clock, ms since the
    /// Unix epoch; 0: unknown). Written after the fields above, so records
    /// from before it read as 0.
    pub changed_ms: u64,
}

impl ObjRecord {
    /// A record known only by its entry: nothing read yet.
    pub(crate) fn unloaded(kind: Kind, entry: Entry) -> Self {
        Self {
            kind,
            entry,
            state: Vec::new(),
            dirty: false,
            current: None,
            container: None,
            unsent: None,
            rotating: None,
            rotating_withheld: Vec::new(),
            rekey_only: false,
            held: None,
            loaded: false,
            changed_ms: 0,
        }
    }

    /// The account root as read from the server: its `frame`, and `state`
    /// (its content; `dirty` when that is a new root still to publish on
    /// top of `frame`).
    pub(crate) fn root(entry: Entry, frame: Gobd, state: Vec<u8>, dirty: bool) -> Self {
        Self {
            state,
            dirty,
            container: Some(frame.target()),
            current: Some(frame),
            loaded: true,
            ..Self::unloaded(Kind::Root, entry)
        }
    }

    /// An owned app object one of whose unshared recipients may hold the
    /// current master: its next frame must rotate it.
    pub(crate) fn must_rotate(&self) -> bool {
        self.kind == Kind::App
            && self.entry.owned
            && self.entry.dynamic
            && !self.entry.deleted
            && self.entry.sharing.needs_rotation()
    }

    /// Whether a frame is waiting to be built or sent.
    pub(crate) fn wants_frame(&self) -> bool {
        !self.entry.deleted && (self.dirty || self.unsent.is_some() || self.must_rotate())
    }

    /// Forgets the frame built and not accepted.
    pub(crate) fn drop_unsent(&mut self) {
        self.unsent = None;
        self.rotating = None;
        self.rotating_withheld.clear();
        self.rekey_only = false;
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut w = Writer::default();
        w.u8(self.kind as u8);
        self.entry.write(&mut w)?;
        w.blob(&self.state)?;
        w.u8(u8::from(self.dirty));
        w.opt_blob(self.current.as_ref().map(|f| f.to_bytes()).as_deref())?;
        w.opt_ghid(self.container.as_ref());
        match (&self.unsent, &self.rotating) {
            (Some((f, c)), None) => {
                w.u8(1).blob(f)?.blob(c)?;
            }
            (Some((f, c)), Some(m)) => {
                w.u8(if self.rekey_only { 3 } else { 2 })
                    .blob(f)?
                    .blob(c)?
                    .blob(&m.to_bytes())?;
                let n = u16::try_from(self.rotating_withheld.len())
                    .map_err(|_| Error::InvalidLength("too many identities withheld"))?;
                w.u16(n);
                for g in &self.rotating_withheld {
                    w.ghid(g);
                }
            }
            (None, _) => {
                w.u8(0);
            }
        }
        w.opt_ghid(self.held.as_ref());
        w.u8(u8::from(self.loaded));
        w.u64(self.changed_ms);
        Ok(w.0)
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self> {
        let mut r = reader(b);
        let kind = Kind::from_u8(r.u8()?)?;
        let entry = Entry::read(&mut r)?;
        let state = read_blob(&mut r)?.to_vec();
        let dirty = read_bool(&mut r)?;
        let current = read_opt_blob(&mut r)?.map(Gobd::parse).transpose()?;
        let container = read_opt_ghid(&mut r)?;
        let mut rotating_withheld = Vec::new();
        let (unsent, rotating, rekey_only) = match r.u8()? {
            0 => (None, None, false),
            tag @ 1..=3 => {
                let f = read_blob(&mut r)?.to_vec();
                let c = read_blob(&mut r)?.to_vec();
                let m = if tag >= 2 {
                    let m = Secret::parse(read_blob(&mut r)?)?;
                    for _ in 0..r.u16()? {
                        rotating_withheld.push(r.ghid()?);
                    }
                    Some(m)
                } else {
                    None
                };
                (Some((f, c)), m, tag == 3)
            }
            _ => return Err(Error::Storage("bad record".into())),
        };
        let held = read_opt_ghid(&mut r)?;
        let loaded = read_bool(&mut r)?;
        let changed_ms = if r.position() < b.len() { r.u64()? } else { 0 };
        r.finish()?;
        Ok(Self {
            kind,
            entry,
            state,
            dirty,
            current,
            container,
            unsent,
            rotating,
            rotating_withheld,
            rekey_only,
            held,
            loaded,
            changed_ms,
        })
    }
}

/// An item of the outbox: published in order, kept until acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OutItem {
    /// Publish these bytes (GIDC, GOBS, GDXX, GARQ, a static GEOC).
    Object(Vec<u8>),
    /// Publish the next frame of this dynamic object (built when its turn
    /// comes, from the latest state, so offline updates coalesce).
    Flush(Ghid),
}

impl OutItem {
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            OutItem::Object(b) => {
                let mut v = vec![0];
                v.extend_from_slice(b);
                v
            }
            OutItem::Flush(g) => {
                let mut v = vec![1];
                v.extend_from_slice(&g.to_bytes());
                v
            }
        }
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self> {
        match b.split_first() {
            Some((0, rest)) => Ok(OutItem::Object(rest.to_vec())),
            Some((1, rest)) => Ok(OutItem::Flush(Ghid::from_bytes(rest)?)),
            _ => Err(Error::Storage("bad outbox item".into())),
        }
    }
}

/// A share this device made, waiting for the recipient's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShareOut {
    pub address: Ghid,
    pub recipient: Ghid,
    pub token: Option<AppToken>,
}

impl ShareOut {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.ghid(&self.address).ghid(&self.recipient);
        match &self.token {
            Some(t) => w.u8(1).bytes(&t.0),
            None => w.u8(0),
        };
        w.0
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self> {
        let mut r = reader(b);
        let address = r.ghid()?;
        let recipient = r.ghid()?;
        let token = match r.u8()? {
            0 => None,
            1 => Some(AppToken(r.array::<TOKEN_LEN>()?)),
            _ => return Err(Error::Storage("bad share record".into())),
        };
        r.finish()?;
        Ok(Self {
            address,
            recipient,
            token,
        })
    }
}

/// An incoming share that no app session has taken yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Orphan {
    pub address: Ghid,
    pub origin: Ghid,
    pub api_id: ApiId,
}

/// A page of account entries (see [`super::record::AccountState`]).
#[derive(Clone)]
pub(crate) struct Page {
    pub secret: Secret,
    pub entries: Vec<Entry>,
    /// The page's container while it is not yet acknowledged by the server.
    pub unpublished: Option<Vec<u8>>,
}

impl Page {
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut w = Writer::default();
        let sb = self.secret.to_bytes();
        w.u8(u8::try_from(sb.len()).map_err(|_| Error::InvalidLength("secret too long"))?)
            .bytes(&sb);
        w.opt_blob(self.unpublished.as_deref())?;
        w.blob(&super::record::page_to_bytes(&self.entries)?)?;
        Ok(w.0)
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self> {
        let mut r = reader(b);
        let n = usize::from(r.u8()?);
        let secret = Secret::parse(r.take(n)?)?;
        let unpublished = read_opt_blob(&mut r)?.map(<[u8]>::to_vec);
        let entries = super::record::page_parse(read_blob(&mut r)?)?;
        r.finish()?;
        Ok(Self {
            secret,
            entries,
            unpublished,
        })
    }
}

/// The logged-in agent.
pub(crate) struct Agent {
    pub me: FirstParty,
    pub user_id: Ghid,
    pub account: Ghid,
    pub objects: BTreeMap<Ghid, ObjRecord>,
    pub tokens: BTreeMap<AppToken, Option<Ghid>>,
    pub contacts: BTreeMap<Ghid, SecondParty>,
    pub outbox: BTreeMap<u64, OutItem>,
    pub next_seq: u64,
    pub shares_out: BTreeMap<Ghid, ShareOut>,
    pub orphans: BTreeMap<u64, Orphan>,
    /// Requests (GARQ GHIDs) already handled.
    pub seen: BTreeSet<Ghid>,
    /// Pages of the account state, by address.
    pub pages: BTreeMap<Ghid, Page>,
}

impl Agent {
    /// A fresh agent holding nothing but its identity and account addresses.
    pub(crate) fn new(me: FirstParty, user_id: Ghid, account: Ghid) -> Self {
        let mut contacts = BTreeMap::new();
        contacts.insert(me.ghid(), me.second_party().clone());
        Self {
            me,
            user_id,
            account,
            objects: BTreeMap::new(),
            tokens: BTreeMap::new(),
            contacts,
            outbox: BTreeMap::new(),
            next_seq: 0,
            shares_out: BTreeMap::new(),
            orphans: BTreeMap::new(),
            seen: BTreeSet::new(),
            pages: BTreeMap::new(),
        }
    }
}

/// One app connection.
#[derive(Debug, Default)]
pub(crate) struct Session {
    pub token: Option<AppToken>,
    pub apis: BTreeSet<ApiId>,
    pub tracking: BTreeSet<Ghid>,
}

/// The sessions, by id.
pub(crate) type Sessions = BTreeMap<SessionId, Session>;

// Local store keys: one prefix byte, then the record's identifier.
pub(crate) const K_ACCOUNT: &[u8] = b"a";
pub(crate) const P_OBJECT: u8 = b'o';
pub(crate) const P_TOKEN: u8 = b't';
pub(crate) const P_CONTACT: u8 = b'c';
pub(crate) const P_OUTBOX: u8 = b'q';
pub(crate) const P_SHARE: u8 = b's';
pub(crate) const P_ORPHAN: u8 = b'i';
pub(crate) const P_SEEN: u8 = b'r';
pub(crate) const P_PAGE: u8 = b'p';

pub(crate) fn key(prefix: u8, id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(prefix);
    k.extend_from_slice(id);
    k
}

/// The local account record: user id, account-state address, and the
/// identity's private keys exported under the storage key.
pub(crate) fn encode_account(user_id: &Ghid, account: &Ghid, export: &[u8]) -> Result<Vec<u8>> {
    let mut w = Writer::default();
    w.ghid(user_id).ghid(account).blob(export)?;
    Ok(w.0)
}

pub(crate) fn decode_account(b: &[u8]) -> Result<(Ghid, Ghid, Vec<u8>)> {
    let mut r = reader(b);
    let u = r.ghid()?;
    let a = r.ghid()?;
    let e = read_blob(&mut r)?.to_vec();
    r.finish()?;
    Ok((u, a, e))
}

pub(crate) fn encode_orphan(o: &Orphan) -> Vec<u8> {
    let mut w = Writer::default();
    w.ghid(&o.address).ghid(&o.origin).bytes(&o.api_id.0);
    w.0
}

pub(crate) fn decode_orphan(b: &[u8]) -> Result<Orphan> {
    let mut r = reader(b);
    let address = r.ghid()?;
    let origin = r.ghid()?;
    let api_id = ApiId(r.array()?);
    r.finish()?;
    Ok(Orphan {
        address,
        origin,
        api_id,
    })
}
