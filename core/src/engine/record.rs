//! Byte encodings of what the engine keeps: app payloads inside containers
//! (`hgxd`), the account state and account root that live encrypted at the
//! persistence server, and the records of the local store. All are
//! length-checked big-endian layouts read with the same bounds-checked
//! reader as the Golix objects; `docs/engine.md` lists them.

use zeroize::Zeroizing;

use super::types::{ApiId, AppToken, API_ID_LEN, TOKEN_LEN};
use crate::error::{Error, ObjectKind, Result};
use crate::golix::codec::Reader;
use crate::golix::ghid::Ghid;
use crate::golix::secret::Secret;

/// Appends big-endian fields.
#[derive(Default)]
pub(crate) struct Writer(pub Vec<u8>);

impl Writer {
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    pub(crate) fn ghid(&mut self, g: &Ghid) -> &mut Self {
        self.bytes(&g.to_bytes())
    }
    pub(crate) fn opt_ghid(&mut self, g: Option<&Ghid>) -> &mut Self {
        match g {
            Some(g) => self.u8(1).ghid(g),
            None => self.u8(0),
        }
    }
    /// A u32 length then the bytes.
    pub(crate) fn blob(&mut self, b: &[u8]) -> Result<&mut Self> {
        let n =
            u32::try_from(b.len()).map_err(|_| Error::InvalidLength("record field too long"))?;
        Ok(self.u32(n).bytes(b))
    }
    pub(crate) fn opt_blob(&mut self, b: Option<&[u8]>) -> Result<&mut Self> {
        match b {
            Some(b) => self.u8(1).blob(b),
            None => Ok(self.u8(0)),
        }
    }
}

pub(crate) fn reader(b: &[u8]) -> Reader<'_> {
    Reader::new(b, ObjectKind::Record)
}

pub(crate) fn read_blob<'a>(r: &mut Reader<'a>) -> Result<&'a [u8]> {
    let n = r.u32()? as usize;
    r.take(n)
}

pub(crate) fn read_opt_blob<'a>(r: &mut Reader<'a>) -> Result<Option<&'a [u8]>> {
    Ok(match r.u8()? {
        0 => None,
        1 => Some(read_blob(r)?),
        _ => return Err(Error::InvalidArgument("bad option flag in record")),
    })
}

pub(crate) fn read_opt_ghid(r: &mut Reader<'_>) -> Result<Option<Ghid>> {
    Ok(match r.u8()? {
        0 => None,
        1 => Some(r.ghid()?),
        _ => return Err(Error::InvalidArgument("bad option flag in record")),
    })
}

pub(crate) fn read_bool(r: &mut Reader<'_>) -> Result<bool> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::InvalidArgument("bad boolean in record")),
    }
}

fn read_secret(r: &mut Reader<'_>) -> Result<Secret> {
    let n = usize::from(r.u8()?);
    Secret::parse(r.take(n)?)
}

fn write_secret(w: &mut Writer, s: &Secret) -> Result<()> {
    let b = s.to_bytes();
    let n = u8::try_from(b.len()).map_err(|_| Error::InvalidLength("secret too long"))?;
    w.u8(n).bytes(&b);
    Ok(())
}

// ---------------------------------------------------------------- app payload

/// Magic of an app payload inside a container (0.1.0's `hgxd`).
pub const PAYLOAD_MAGIC: [u8; 4] = *b"hgxd";
/// Payload format byte: the state is app bytes (0.1.0's only format).
const PAYLOAD_STATE: u8 = 0;
/// Payload format byte: the state is the 65-byte address of another object.
const PAYLOAD_LINK: u8 = 1;

/// An app payload: `hgxd` ‖ format(1) ‖ api_id(65) ‖ state.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Payload {
    pub api_id: ApiId,
    pub is_link: bool,
    pub state: Vec<u8>,
}

impl Payload {
    pub(crate) fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(5 + API_ID_LEN + self.state.len()));
        out.extend_from_slice(&PAYLOAD_MAGIC);
        out.push(if self.is_link {
            PAYLOAD_LINK
        } else {
            PAYLOAD_STATE
        });
        out.extend_from_slice(&self.api_id.0);
        out.extend_from_slice(&self.state);
        out
    }

    pub(crate) fn parse(b: &[u8]) -> Result<Self> {
        let mut r = reader(b);
        let magic: [u8; 4] = r.array()?;
        if magic != PAYLOAD_MAGIC {
            return Err(Error::InvalidArgument(
                "container does not hold an app payload",
            ));
        }
        let is_link = match r.u8()? {
            PAYLOAD_STATE => false,
            PAYLOAD_LINK => true,
            _ => return Err(Error::InvalidArgument("unknown app payload format")),
        };
        let api_id = ApiId(r.array()?);
        let state = r.take(b.len() - r.position())?.to_vec();
        if is_link {
            Ghid::from_bytes(&state)?;
        }
        Ok(Self {
            api_id,
            is_link,
            state,
        })
    }
}

// ------------------------------------------------------------- account state

/// What every device of an agent knows about one object (synced through the
/// account state).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub address: Ghid,
    pub author: Ghid,
    pub api_id: ApiId,
    pub dynamic: bool,
    pub owned: bool,
    pub is_link: bool,
    pub deleted: bool,
    pub private: Option<AppToken>,
    pub legroom: u8,
    /// Dynamic: the object's master secret (every frame's secret derives from
    /// it). Static: the container's secret.
    pub secret: Secret,
    /// Key rotations and whom the object was shared with.
    pub sharing: Sharing,
}

/// Masters a record keeps besides the current one once it reads the
/// object's newest frame: frames published under a master replaced since
/// (a race with a rotation) stay readable.
pub(crate) const KEEP_OLDER_MASTERS: usize = 8;
/// Most masters a record may hold besides the current one: while a reader's
/// newest frame is unreadable it keeps every master it is sent (they arrive
/// in any order after time offline), up to this many.
pub(crate) const MAX_OLDER_MASTERS: usize = 255;

/// One identity an object was shared with, and what it was last sent.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Recipient {
    /// The recipient's identity GHID.
    pub ghid: Ghid,
    /// `2 × changes + (1 if unshared)`: even while shared, odd once
    /// unshared. Devices merge by taking the greater turn, so a later
    /// request wins, and of a concurrent share and unshare the unshare.
    pub turn: u32,
    /// The rotation whose master the recipient was last sent.
    pub sent: u32,
}

impl Recipient {
    /// Whether the recipient currently has access.
    pub(crate) fn shared(&self) -> bool {
        self.turn % 2 == 0
    }

    /// Shared, and it was not sent the current master (of `rotation`).
    pub(crate) fn lacks(&self, rotation: u32) -> bool {
        self.shared() && self.sent < rotation
    }
}

/// Key rotation and recipients of an object (`docs/protocol/revocation.md`).
#[derive(Clone, Default)]
pub(crate) struct Sharing {
    /// How many times the master was replaced (0: the object's first).
    pub rotation: u32,
    /// Masters this device replaced, newest first (at most
    /// `MAX_OLDER_MASTERS`). Not merged between devices: a bounded union
    /// would never settle.
    pub older: Vec<Secret>,
    /// Identities this agent shared the object with, shared or unshared,
    /// sorted by GHID (so that devices' lists compare equal).
    pub recipients: Vec<Recipient>,
    /// The identities unshared when the current master was made (as the
    /// device that made it knew them): frames were published under it while
    /// they had no access, so it is never sent to them, even once shared
    /// with again (a new master is made for them instead). Sorted.
    pub withheld: Vec<Ghid>,
}

impl PartialEq for Sharing {
    fn eq(&self, o: &Self) -> bool {
        self.rotation == o.rotation
            && self.recipients == o.recipients
            && self.withheld == o.withheld
            && self.older.len() == o.older.len()
            && self.older.iter().zip(&o.older).all(|(a, b)| a == b)
    }
}
impl Eq for Sharing {}

impl Sharing {
    fn is_empty(&self) -> bool {
        self.rotation == 0
            && self.older.is_empty()
            && self.recipients.is_empty()
            && self.withheld.is_empty()
    }

    /// Equal apart from the older masters, which are each device's own (the
    /// masters it replaced itself): devices agree on everything else.
    pub(crate) fn same(&self, o: &Self) -> bool {
        self.rotation == o.rotation
            && self.recipients == o.recipients
            && self.withheld == o.withheld
    }

    /// Whether `g` is shared, lacks the current master, and may be sent it:
    /// a handshake is owed to it.
    pub(crate) fn owes(&self, g: &Ghid) -> bool {
        self.may_send(g)
            && self
                .recipients
                .iter()
                .any(|x| x.ghid == *g && x.lacks(self.rotation))
    }

    /// Whether the current master may be sent to `g`.
    pub(crate) fn may_send(&self, g: &Ghid) -> bool {
        !self.withheld.contains(g)
    }

    /// Whether an unshared identity may hold the current master: the next
    /// frame must then be encrypted under a new one.
    /// Also when a recipient shared again after an unshare lacks it but may
    /// not be sent it (`withheld`).
    pub(crate) fn needs_rotation(&self) -> bool {
        self.recipients.iter().any(|r| {
            (!r.shared() && r.sent >= self.rotation)
                || (r.lacks(self.rotation) && !self.may_send(&r.ghid))
        })
    }

    /// Remembers `old` as the newest replaced master; false if it was
    /// already known. `keep` is how many older masters to keep at most.
    pub(crate) fn retire(&mut self, old: Secret, keep: usize) -> bool {
        if self.older.contains(&old) {
            return false;
        }
        self.older.insert(0, old);
        self.older.truncate(keep.min(MAX_OLDER_MASTERS));
        true
    }

    /// Adds to `withheld` every unshared recipient that lacks the current
    /// master: frames may be published under it while it has no access, so
    /// it must never be sent this master, even once shared with again. A
    /// monotone union, the same on every device after a merge.
    pub(crate) fn settle_withheld(&mut self) -> bool {
        let mut changed = false;
        for r in &self.recipients {
            if !r.shared() && r.sent < self.rotation && !self.withheld.contains(&r.ghid) {
                self.withheld.push(r.ghid);
                changed = true;
            }
        }
        if changed {
            sort_ghids(&mut self.withheld);
        }
        changed
    }
}

impl Entry {
    /// The entry of one of the agent's own internal dynamic objects (the
    /// account root and the account state): no api_id, default legroom.
    pub(crate) fn internal(address: Ghid, author: Ghid, secret: Secret) -> Self {
        Self {
            address,
            author,
            api_id: ApiId([0; API_ID_LEN]),
            dynamic: true,
            owned: true,
            is_link: false,
            deleted: false,
            private: None,
            legroom: super::types::DEFAULT_LEGROOM,
            secret,
            sharing: Sharing::default(),
        }
    }

    /// Makes `master` current as of `rotation`; the one it replaces becomes
    /// the newest older master (at most `keep` are kept).
    pub(crate) fn replace_master(&mut self, master: Secret, rotation: u32, keep: usize) {
        let old = std::mem::replace(&mut self.secret, master);
        self.sharing.retire(old, keep);
        self.sharing.rotation = rotation;
    }

    /// Equal apart from the secret (an object's secret never changes, so
    /// this is equality for every entry of one address, and much cheaper
    /// than a constant-time secret comparison).
    pub(crate) fn same(&self, o: &Entry) -> bool {
        self.address == o.address
            && self.deleted == o.deleted
            && self.api_id == o.api_id
            && self.is_link == o.is_link
            && self.private == o.private
            && self.owned == o.owned
            && self.dynamic == o.dynamic
            && self.legroom == o.legroom
            && self.author == o.author
            && self.sharing.same(&o.sharing)
            && (self.sharing.rotation == 0 || self.secret == o.secret)
    }
}

const F_DYNAMIC: u8 = 1;
const F_OWNED: u8 = 2;
const F_LINK: u8 = 4;
const F_DELETED: u8 = 8;
const F_PRIVATE: u8 = 16;
/// Rotation, older masters and recipients follow the secret.
const F_SHARING: u8 = 32;

impl Entry {
    pub(crate) fn write(&self, w: &mut Writer) -> Result<()> {
        let mut flags = 0;
        for (on, f) in [
            (self.dynamic, F_DYNAMIC),
            (self.owned, F_OWNED),
            (self.is_link, F_LINK),
            (self.deleted, F_DELETED),
            (self.private.is_some(), F_PRIVATE),
            (!self.sharing.is_empty(), F_SHARING),
        ] {
            if on {
                flags |= f;
            }
        }
        w.ghid(&self.address)
            .ghid(&self.author)
            .bytes(&self.api_id.0)
            .u8(flags)
            .u8(self.legroom);
        if let Some(t) = &self.private {
            w.bytes(&t.0);
        }
        write_secret(w, &self.secret)?;
        if !self.sharing.is_empty() {
            let sh = &self.sharing;
            w.u32(sh.rotation);
            let k = u8::try_from(sh.older.len())
                .map_err(|_| Error::InvalidLength("too many older masters"))?;
            w.u8(k);
            for s in &sh.older {
                write_secret(w, s)?;
            }
            let n = u16::try_from(sh.recipients.len())
                .map_err(|_| Error::InvalidLength("too many recipients"))?;
            w.u16(n);
            for r in &sh.recipients {
                w.ghid(&r.ghid).u32(r.turn).u32(r.sent);
            }
            let n = u16::try_from(sh.withheld.len())
                .map_err(|_| Error::InvalidLength("too many identities withheld"))?;
            w.u16(n);
            for g in &sh.withheld {
                w.ghid(g);
            }
        }
        Ok(())
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        let address = r.ghid()?;
        let author = r.ghid()?;
        let api_id = ApiId(r.array()?);
        let flags = r.u8()?;
        if flags & !(F_DYNAMIC | F_OWNED | F_LINK | F_DELETED | F_PRIVATE | F_SHARING) != 0 {
            return Err(Error::InvalidArgument("unknown entry flags"));
        }
        let legroom = r.u8()?;
        let private = if flags & F_PRIVATE != 0 {
            Some(AppToken(r.array::<TOKEN_LEN>()?))
        } else {
            None
        };
        Ok(Self {
            address,
            author,
            api_id,
            dynamic: flags & F_DYNAMIC != 0,
            owned: flags & F_OWNED != 0,
            is_link: flags & F_LINK != 0,
            deleted: flags & F_DELETED != 0,
            private,
            legroom,
            secret: read_secret(r)?,
            sharing: if flags & F_SHARING != 0 {
                read_sharing(r)?
            } else {
                Sharing::default()
            },
        })
    }
}

fn read_sharing(r: &mut Reader<'_>) -> Result<Sharing> {
    let rotation = r.u32()?;
    let k = usize::from(r.u8()?);
    if k > MAX_OLDER_MASTERS {
        return Err(Error::InvalidLength("too many older masters"));
    }
    let mut older = Vec::with_capacity(k);
    for _ in 0..k {
        older.push(read_secret(r)?);
    }
    let n = r.u16()?;
    let mut recipients = Vec::new();
    for _ in 0..n {
        let ghid = r.ghid()?;
        if recipients.iter().any(|x: &Recipient| x.ghid == ghid) {
            return Err(Error::InvalidArgument("a recipient listed twice"));
        }
        recipients.push(Recipient {
            ghid,
            turn: r.u32()?,
            sent: r.u32()?,
        });
    }
    let n = r.u16()?;
    let mut withheld = Vec::new();
    for _ in 0..n {
        withheld.push(r.ghid()?);
    }
    // Written sorted and unique; made so again, so that any input compares
    // as devices do.
    sort_recipients(&mut recipients);
    sort_ghids(&mut withheld);
    withheld.dedup();
    Ok(Sharing {
        rotation,
        older,
        recipients,
        withheld,
    })
}

/// Magic of the account state's plaintext.
const ACCOUNT_MAGIC: [u8; 4] = *b"HGXA";
const ACCOUNT_VERSION: u16 = 1;

/// The account state: every object this agent holds, its app tokens and
/// their startup objects. Kept at the server as an ordinary dynamic object of
/// the agent, encrypted; every device merges it (see `docs/engine.md`).
/// Most entries live in immutable *pages* (static objects of the agent) that
/// the state only names, so a change republishes only the recent entries.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct AccountState {
    /// Pages: (address, secret) of static objects holding entries.
    pub pages: Vec<(Ghid, Secret)>,
    /// Entries not in the pages, or newer than the pages' copies.
    pub entries: Vec<Entry>,
    /// Every token ever issued, with its startup object.
    pub tokens: Vec<(AppToken, Option<Ghid>)>,
}

impl AccountState {
    pub(crate) fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        let mut w = Writer::default();
        w.bytes(&ACCOUNT_MAGIC).u16(ACCOUNT_VERSION);
        w.u32(u32::try_from(self.pages.len()).map_err(|_| Error::InvalidLength("too many pages"))?);
        for (g, sec) in &self.pages {
            w.ghid(g);
            write_secret(&mut w, sec)?;
        }
        w.u32(
            u32::try_from(self.entries.len())
                .map_err(|_| Error::InvalidLength("too many objects"))?,
        );
        for e in &self.entries {
            e.write(&mut w)?;
        }
        w.u32(
            u32::try_from(self.tokens.len())
                .map_err(|_| Error::InvalidLength("too many tokens"))?,
        );
        for (t, s) in &self.tokens {
            w.bytes(&t.0).opt_ghid(s.as_ref());
        }
        Ok(Zeroizing::new(w.0))
    }

    pub(crate) fn parse(b: &[u8]) -> Result<Self> {
        let mut r = reader(b);
        let magic: [u8; 4] = r.array()?;
        if magic != ACCOUNT_MAGIC || r.u16()? != ACCOUNT_VERSION {
            return Err(Error::InvalidArgument("not an account state"));
        }
        let n = r.u32()?;
        let mut pages = Vec::new();
        for _ in 0..n {
            let g = r.ghid()?;
            pages.push((g, read_secret(&mut r)?));
        }
        let n = r.u32()?;
        let mut entries = Vec::new();
        for _ in 0..n {
            entries.push(Entry::read(&mut r)?);
        }
        let n = r.u32()?;
        let mut tokens = Vec::new();
        for _ in 0..n {
            tokens.push((AppToken(r.array()?), read_opt_ghid(&mut r)?));
        }
        r.finish()?;
        Ok(Self {
            pages,
            entries,
            tokens,
        })
    }
}

const PAGE_MAGIC: [u8; 4] = *b"HGXP";
const PAGE_VERSION: u16 = 1;

/// A page of account entries: `HGXP ‖ version(2) ‖ n(4) ‖ entry×n`.
pub(crate) fn page_to_bytes(entries: &[Entry]) -> Result<Zeroizing<Vec<u8>>> {
    let mut w = Writer::default();
    w.bytes(&PAGE_MAGIC).u16(PAGE_VERSION);
    w.u32(u32::try_from(entries.len()).map_err(|_| Error::InvalidLength("page too long"))?);
    for e in entries {
        e.write(&mut w)?;
    }
    Ok(Zeroizing::new(w.0))
}

/// Parses a page.
pub(crate) fn page_parse(b: &[u8]) -> Result<Vec<Entry>> {
    let mut r = reader(b);
    let magic: [u8; 4] = r.array()?;
    if magic != PAGE_MAGIC || r.u16()? != PAGE_VERSION {
        return Err(Error::InvalidArgument("not an account page"));
    }
    let n = r.u32()?;
    let mut entries = Vec::new();
    for _ in 0..n {
        entries.push(Entry::read(&mut r)?);
    }
    r.finish()?;
    Ok(entries)
}

/// Sorts GHIDs. The lists sorted here (who an object is shared with,
/// withheld from) are short and grow an entry at a time, so an insertion
/// sort is linear on them; std's sort would cost the browser's wasm
/// kilobytes per instantiation.
pub(crate) fn sort_ghids(v: &mut [Ghid]) {
    insertion_sort(v, |g| g);
}

/// Sorts recipients by GHID (unique in a list), as [`sort_ghids`].
pub(crate) fn sort_recipients(v: &mut [Recipient]) {
    insertion_sort(v, |r| &r.ghid);
}

/// Stable insertion sort by `key`.
fn insertion_sort<T>(v: &mut [T], key: impl Fn(&T) -> &Ghid) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && key(&v[j - 1]) > key(&v[j]) {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

// ------------------------------------------------------------------ the root

const ROOT_MAGIC: [u8; 4] = *b"HGXR";
/// Version 2 adds the recovery object; version 1 roots (no recovery words)
/// are still read.
const ROOT_VERSION: u16 = 2;

/// The account root's plaintext (`HGXR`): the identity's private keys
/// under the password's wrap key, the account state, and the recovery
/// object the current recovery words open (to debind it when they are
/// replaced).
pub(crate) struct RootContent {
    pub identity_export: Vec<u8>,
    pub account: Ghid,
    pub account_secret: Secret,
    pub recovery: Option<Ghid>,
}

impl RootContent {
    pub(crate) fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        let mut w = Writer::default();
        w.bytes(&ROOT_MAGIC).u16(ROOT_VERSION);
        w.blob(&self.identity_export)?;
        w.ghid(&self.account);
        write_secret(&mut w, &self.account_secret)?;
        w.opt_ghid(self.recovery.as_ref());
        Ok(Zeroizing::new(w.0))
    }

    pub(crate) fn parse(b: &[u8]) -> Result<Self> {
        let mut r = reader(b);
        let magic: [u8; 4] = r.array()?;
        let version = r.u16()?;
        if magic != ROOT_MAGIC || !(1..=ROOT_VERSION).contains(&version) {
            return Err(Error::InvalidArgument("not an account root"));
        }
        let identity_export = read_blob(&mut r)?.to_vec();
        let account = r.ghid()?;
        let account_secret = read_secret(&mut r)?;
        let recovery = if version >= 2 {
            read_opt_ghid(&mut r)?
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            identity_export,
            account,
            account_secret,
            recovery,
        })
    }
}

const RECOVERY_MAGIC: [u8; 4] = *b"HGXK";
const RECOVERY_VERSION: u16 = 1;

/// The recovery object's plaintext (`HGXK`): what recovery words open.
/// The identity's private keys are under the phrase's wrap key.
pub(crate) struct RecoveryContent {
    pub user_id: Ghid,
    pub identity_export: Vec<u8>,
    pub account: Ghid,
    pub account_secret: Secret,
}

impl RecoveryContent {
    pub(crate) fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        let mut w = Writer::default();
        w.bytes(&RECOVERY_MAGIC).u16(RECOVERY_VERSION);
        w.ghid(&self.user_id);
        w.blob(&self.identity_export)?;
        w.ghid(&self.account);
        write_secret(&mut w, &self.account_secret)?;
        Ok(Zeroizing::new(w.0))
    }

    pub(crate) fn parse(b: &[u8]) -> Result<Self> {
        let mut r = reader(b);
        let magic: [u8; 4] = r.array()?;
        if magic != RECOVERY_MAGIC || r.u16()? != RECOVERY_VERSION {
            return Err(Error::InvalidArgument("not a recovery object"));
        }
        let user_id = r.ghid()?;
        let identity_export = read_blob(&mut r)?.to_vec();
        let account = r.ghid()?;
        let account_secret = read_secret(&mut r)?;
        r.finish()?;
        Ok(Self {
            user_id,
            identity_export,
            account,
            account_secret,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golix::address::AddressAlgorithm;
    use crate::golix::secret::FreshSecret;
    use proptest::prelude::*;

    fn secret(b: u8) -> Secret {
        FreshSecret::from_parts(3, &[b; 32], &[b; 12])
            .expect("secret")
            .into_secret()
    }

    fn ghid(b: u8) -> Ghid {
        Ghid::new(AddressAlgorithm::Blake2b512, [b; 64])
    }

    #[test]
    fn account_state_round_trips() {
        let st = AccountState {
            pages: vec![(ghid(9), secret(10))],
            entries: vec![
                Entry {
                    address: ghid(1),
                    author: ghid(2),
                    api_id: ApiId::default_bytes(),
                    dynamic: true,
                    owned: true,
                    is_link: false,
                    deleted: false,
                    private: Some(AppToken([7; 16])),
                    legroom: 7,
                    secret: secret(3),
                    sharing: Default::default(),
                },
                Entry {
                    address: ghid(4),
                    author: ghid(5),
                    api_id: ApiId([9; 65]),
                    dynamic: false,
                    owned: false,
                    is_link: true,
                    deleted: true,
                    private: None,
                    legroom: 0,
                    secret: secret(6),
                    sharing: Default::default(),
                },
                Entry {
                    address: ghid(11),
                    author: ghid(12),
                    api_id: ApiId([4; 65]),
                    dynamic: true,
                    owned: true,
                    is_link: false,
                    deleted: false,
                    private: None,
                    legroom: 7,
                    secret: secret(13),
                    sharing: Sharing {
                        rotation: 3,
                        older: vec![secret(14), secret(15)],
                        recipients: vec![
                            Recipient {
                                ghid: ghid(16),
                                turn: 2,
                                sent: 3,
                            },
                            Recipient {
                                ghid: ghid(17),
                                turn: 5,
                                sent: 2,
                            },
                        ],
                        withheld: vec![ghid(17)],
                    },
                },
            ],
            tokens: vec![
                (AppToken([1; 16]), Some(ghid(8))),
                (AppToken([2; 16]), None),
            ],
        };
        let b = st.to_bytes().expect("encode");
        assert!(AccountState::parse(&b).expect("parse") == st);
        // An entry without sharing fields is written as before them.
        let mut plain = Writer::default();
        st.entries[0].write(&mut plain).expect("write");
        assert_eq!(plain.0[65 + 65 + 65] & F_SHARING, 0);
        for cut in 0..b.len() {
            assert!(AccountState::parse(&b[..cut]).is_err());
        }
    }

    #[test]
    fn payload_round_trips_and_checks_links() {
        let p = Payload {
            api_id: ApiId::default_bytes(),
            is_link: false,
            state: b"hello".to_vec(),
        };
        assert!(Payload::parse(&p.to_bytes()).expect("parse") == p);
        let link = Payload {
            api_id: ApiId::default_bytes(),
            is_link: true,
            state: b"not a ghid".to_vec(),
        };
        assert!(Payload::parse(&link.to_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = AccountState::parse(&b);
            let _ = RootContent::parse(&b);
            let _ = RecoveryContent::parse(&b);
            let _ = Payload::parse(&b);
            let _ = page_parse(&b);
        }
    }
}
