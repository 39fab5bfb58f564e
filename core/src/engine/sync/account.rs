//! Changing the account root: a new password, new recovery words, and
//! recovering an account with its words on a device that has nothing.
//! Each reads the root the server holds now, so a change made on another
//! device is never undone and the current password is checked against
//! the account as it is, not as this device last saw it.

use zeroize::Zeroizing;

use super::super::keys::{self, frame_secret};
use super::super::record::{Entry, RecoveryContent, RootContent};
use super::super::recovery::{self, RecoveryKeys};
use super::super::state::{ObjRecord, OutItem};
use super::super::types::{Action, AppReply, SecretBytes};
use super::super::{first_frame, Engine};
use super::jobs::{Need, Progress, ReplyTo};
use super::Pending;
use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::golix::secret::FreshSecret;
use crate::golix::suite::cs3;
use crate::golix::{FirstParty, Garq, Geoc, Gobd, RequestPayload, Secret};
use crate::wire::remote::Request;

/// Why a root change fails when another device changed the root first.
const ROOT_RACED: &str = "the account was changed on another device at the same moment; \
     nothing was changed here: ask again";

/// Why a root change fails when the server has no root for the account.
const NOT_AT_SERVER: &str =
    "the persistence server does not hold this account (is it the server the account lives on?)";

/// What a [`Job::Reroot`] changes.
#[derive(Clone)]
pub(crate) enum RootChange {
    /// A new password.
    Password(Zeroizing<Vec<u8>>),
    /// New recovery words (the old ones stop opening the account).
    RecoveryWords,
}

/// A recovery under way: the keys the words gave, and the requests the
/// server holds for the recovery identity.
pub(crate) struct Recovering {
    pub user_id: Ghid,
    pub keys: RecoveryKeys,
    /// Requests pushed to the recovery identity.
    pub requests: Vec<Garq>,
    /// The server has sent every request it holds for it (the answer to a
    /// ping sent after the `+S` came back: pending requests follow the
    /// `+S` answer on the same connection).
    pub listed: bool,
    /// `+S` and the ping were sent on this connection.
    pub asked: bool,
}

/// The current root as the server holds it: its frame, and its content
/// opened with the password.
struct OpenRoot {
    frame: Gobd,
    content: RootContent,
}

impl Engine {
    /// The ping after `+S` to the recovery identity `rid` was answered:
    /// the requests it holds are all here.
    pub(crate) fn requests_listed(&mut self, rid: Ghid) {
        if let Some(r) = self.recovering.as_mut() {
            if r.keys.identity.ghid() == rid {
                r.listed = true;
            }
        }
        self.work.unpark(&rid);
    }

    /// The server refused this device's next root frame: another device
    /// changed the root at the same moment (its frame took the counter).
    /// This change is undone here, whoever waits for it is told, and the
    /// next one reads the root anew. (The generic conflict path would keep
    /// the frame to publish it on top of the winner's, which this device
    /// cannot read once the password changed: it would wait forever.)
    pub(crate) fn root_rejected(&mut self, address: Ghid) {
        if let Some(before) = self.root_before.take() {
            if let Some(rec) = self
                .agent
                .as_mut()
                .and_then(|a| a.objects.get_mut(&address))
            {
                *rec = *before;
            }
        }
        if let Some(rec) = self
            .agent
            .as_mut()
            .and_then(|a| a.objects.get_mut(&address))
        {
            rec.dirty = false;
            rec.drop_unsent();
        }
        self.stats.conflicts += 1;
        self.mark_object(&address);
        self.work.fetched.remove(&address);
        // A recovery racing another device's root change: its new root
        // will not be published; the opening is not held up for it.
        self.recovered_unpublished = false;
        let waited = !self.root_waiters.is_empty();
        for (to, _) in std::mem::take(&mut self.root_waiters) {
            self.out.push(to.action(Err(Error::NotAllowed(ROOT_RACED))));
        }
        if waited || self.reroot_active {
            self.reroot_active = false;
            self.next_reroot();
        }
        self.work.unpark(&address);
    }

    /// A frame and container of `address` are at the server: if it is the
    /// root, whoever waits for a root change is answered.
    pub(crate) fn root_published(&mut self, address: Ghid) {
        if self.user_id() != Some(address) {
            return;
        }
        self.root_before = None;
        let unsent = self
            .agent
            .as_ref()
            .and_then(|a| a.objects.get(&address))
            .is_some_and(|r| r.dirty || r.unsent.is_some());
        if unsent {
            return;
        }
        // A recovery's new password now opens the account everywhere.
        self.recovered_unpublished = false;
        let answered = !self.root_waiters.is_empty();
        for (to, reply) in std::mem::take(&mut self.root_waiters) {
            self.out.push(to.action(Ok(reply)));
        }
        if answered {
            self.reroot_active = false;
            self.next_reroot();
        }
        // A root change that waited for this one goes on, reading the root
        // anew (a frame fetched before is no longer the current one).
        self.work.fetched.remove(&address);
        self.work.unpark(&address);
    }

    /// Whether a root change of this device is not at the server yet (a
    /// new one would be built on the server's older root).
    fn root_unsent(&self) -> bool {
        let Some(user_id) = self.user_id() else {
            return false;
        };
        self.queued_flush.contains(&user_id)
            || !self.root_waiters.is_empty()
            || self
                .agent
                .as_ref()
                .and_then(|a| a.objects.get(&user_id))
                .is_some_and(|r| r.dirty || r.unsent.is_some())
    }

    /// The connection went: a recovery that had not heard every request
    /// asks again on the next one.
    pub(crate) fn recovery_connection_lost(&mut self) {
        if let Some(r) = self.recovering.as_mut() {
            if !r.listed {
                r.asked = false;
                r.requests.clear();
            }
        }
    }

    /// Opens the current root with `password` ([`Error::WrongPassword`]
    /// if it does not).
    fn open_root(
        &mut self,
        user_id: Ghid,
        password: &[u8],
    ) -> Result<Need<(OpenRoot, keys::PasswordKeys)>> {
        let (frame, id, geoc) = match self.need_root(user_id)? {
            Need::Have(r) => r,
            Need::Wait => return Ok(Need::Wait),
            Need::Missing => return Ok(Need::Missing),
        };
        if Some(id.ghid()) != self.identity() {
            return Err(Error::WrongIdentity);
        }
        let (content, pk, _) = self.open_root_with(&frame, &id, &geoc, password)?;
        Ok(Need::Have((OpenRoot { frame, content }, pk)))
    }

    /// Makes a recovery object and the handshake that names it to the
    /// recovery identity of fresh words; queues both (and the recovery
    /// identity's GIDC) to be published. Returns the object and the words.
    pub(crate) fn make_recovery(
        &mut self,
        user_id: Ghid,
        account: Ghid,
        account_secret: &Secret,
    ) -> Result<(Ghid, Zeroizing<String>)> {
        let mut entropy = Zeroizing::new([0u8; recovery::ENTROPY_LEN]);
        rand_core::RngCore::fill_bytes(&mut self.rng, &mut entropy[..]);
        let words = recovery::words_of(&entropy)?;
        let rk = recovery::recovery_keys(&entropy, &user_id, self.cfg.kdf)?;
        let a = self
            .agent
            .as_ref()
            .ok_or(Error::NotReady("not logged in"))?;
        let export = a.me.export(&rk.wrap_key, &mut self.rng)?;
        let content = RecoveryContent {
            user_id,
            identity_export: export,
            account,
            account_secret: account_secret.clone(),
        }
        .to_bytes()?;
        let master = FreshSecret::generate(cs3::SUITE_ID, &mut self.rng)?.into_secret();
        let (frame, geoc) = first_frame(&a.me, &master, &content)?;
        let object = frame.dynamic_ghid();
        let payload = RequestPayload::Handshake {
            target: object,
            secret: master,
        };
        let garq =
            a.me.make_request(rk.identity.second_party(), payload, &mut self.rng)?;
        self.stats.signed += 3;
        // In this order: the server keeps a container only once a frame
        // binds it, and a request only once its recipient is known.
        self.enqueue(OutItem::Object(
            rk.identity.second_party().gidc().to_bytes(),
        ));
        self.enqueue(OutItem::Object(frame.to_bytes()));
        self.enqueue(OutItem::Object(geoc));
        self.enqueue(OutItem::Object(garq.to_bytes()));
        Ok((object, words))
    }

    /// A password change or new recovery words: the current root is read
    /// and opened with `current`, then the next root frame is built on it.
    pub(crate) fn step_reroot(
        &mut self,
        to: ReplyTo,
        current: &[u8],
        change: &RootChange,
    ) -> Result<Progress> {
        let user_id = self.user_id().ok_or(Error::NotReady("not logged in"))?;
        // A root change of this device still on its way (the account's
        // first frames, or an earlier change): this one is built on it
        // once the server has it.
        if self.root_unsent() {
            self.work.parked_on = Some(user_id);
            return Ok(Progress::Waiting);
        }
        let (root, pk) = match self.open_root(user_id, current)? {
            Need::Have(r) => r,
            Need::Wait => return Ok(Progress::Waiting),
            Need::Missing => return Err(Error::NotAllowed(NOT_AT_SERVER)),
        };
        let OpenRoot { frame, content } = root;
        let (master, identity_export, recovery, reply) = match change {
            RootChange::Password(new) => {
                let npk = keys::password_keys(new, &frame.binder(), self.cfg.kdf)?;
                let export = self
                    .agent
                    .as_ref()
                    .ok_or(Error::NotReady("not logged in"))?
                    .me
                    .export(&npk.wrap_key, &mut self.rng)?;
                (npk.root_master, export, content.recovery, AppReply::Done)
            }
            RootChange::RecoveryWords => {
                let (object, words) =
                    self.make_recovery(user_id, content.account, &content.account_secret)?;
                if let Some(old) = content.recovery {
                    // The old words' handshake now names a debound object.
                    self.debind(&old);
                }
                (
                    pk.root_master,
                    content.identity_export.clone(),
                    Some(object),
                    AppReply::Words(SecretBytes(Zeroizing::new(words.as_bytes().to_vec()))),
                )
            }
        };
        let next = RootContent {
            identity_export,
            account: content.account,
            account_secret: content.account_secret.clone(),
            recovery,
        }
        .to_bytes()?;
        self.replace_root(user_id, frame, master, next)?;
        // Answered once the new root is at the server: a new password
        // then opens the account everywhere, and new words work.
        self.root_waiters.push((to, reply));
        Ok(Progress::Done)
    }

    /// The root's next frame holds `content` under `master`, built on the
    /// server's current `frame`.
    fn replace_root(
        &mut self,
        user_id: Ghid,
        frame: Gobd,
        master: Secret,
        content: Zeroizing<Vec<u8>>,
    ) -> Result<()> {
        let rec = self
            .agent
            .as_mut()
            .ok_or(Error::NotReady("not logged in"))?
            .objects
            .get_mut(&user_id)
            .ok_or(Error::Storage("account root record missing".into()))?;
        // Kept until the server takes the new frame: a frame of another
        // device's change that wins the counter sends this one back.
        self.root_before = Some(Box::new(rec.clone()));
        if rec
            .current
            .as_ref()
            .is_none_or(|c| c.counter() < frame.counter())
        {
            rec.container = Some(frame.target());
            rec.current = Some(frame);
        }
        rec.entry.secret = master;
        rec.state = content.to_vec();
        rec.dirty = true;
        // Built on the server's current frame, with a master this device
        // holds: nothing about the root is unreadable any more.
        self.locked.remove(&user_id);
        self.mark_object(&user_id);
        self.enqueue(OutItem::Flush(user_id));
        Ok(())
    }

    /// Recovery on a device with no account: the root, then the requests
    /// held for the recovery identity, the recovery object one of them
    /// names, and the identity's keys in it; then a new root frame under
    /// `new_password`.
    pub(crate) fn step_recover(&mut self, new_password: &[u8]) -> Result<Progress> {
        if self.agent.is_some() {
            return Err(Error::NotAllowed("this engine already has an account"));
        }
        let Some(user_id) = self.recovering.as_ref().map(|r| r.user_id) else {
            return Err(Error::NotReady("no recovery under way"));
        };
        let (frame, id, _geoc) = match self.need_root(user_id)? {
            Need::Have(r) => r,
            Need::Wait => return Ok(Progress::Waiting),
            Need::Missing => return Err(Error::NotAllowed(NOT_AT_SERVER)),
        };
        let rid = self
            .recovering
            .as_ref()
            .map(|r| r.keys.identity.ghid())
            .ok_or(Error::NotReady("no recovery under way"))?;
        let (listed, asked) = self
            .recovering
            .as_ref()
            .map_or((false, false), |r| (r.listed, r.asked));
        if !listed {
            if !asked && self.online {
                if let Some(r) = self.recovering.as_mut() {
                    r.asked = true;
                }
                self.send(Request::Subscribe(rid), Pending::Ignore);
                self.send(Request::Ping, Pending::RequestsListed(rid));
            }
            self.work.parked_on = Some(rid);
            return Ok(Progress::Waiting);
        }
        // Every request to the recovery identity that opens, comes from
        // the account's identity and names an object.
        let named: Vec<(Ghid, Secret)> = {
            let r = self
                .recovering
                .as_ref()
                .ok_or(Error::NotReady("no recovery under way"))?;
            r.requests
                .iter()
                .filter_map(|g| {
                    let c = r
                        .keys
                        .identity
                        .open_request(g, |x| (*x == id.ghid()).then(|| id.clone()))
                        .ok()?;
                    match c.payload {
                        RequestPayload::Handshake { target, secret } => Some((target, secret)),
                        _ => None,
                    }
                })
                .collect()
        };
        let mut found = None;
        for (object, master) in named {
            let f = match self.need(&object) {
                Need::Have(b) => Gobd::parse(&b)?,
                Need::Wait => return Ok(Progress::Waiting),
                // Debound: words that were replaced.
                Need::Missing => continue,
            };
            if f.dynamic_ghid() != object || f.binder() != id.ghid() {
                continue;
            }
            f.verify(&id)?;
            let geoc = match self.need(&f.target()) {
                Need::Have(b) => Geoc::parse(&b)?,
                Need::Wait => return Ok(Progress::Waiting),
                Need::Missing => continue,
            };
            geoc.verify(&id)?;
            let secret = frame_secret(&master, &id.ghid(), f.targets().get(1), Some(&object))?;
            let Ok(plain) = geoc.decrypt(&secret.into_secret()) else {
                continue;
            };
            let plain = Zeroizing::new(plain);
            let content = RecoveryContent::parse(&plain)?;
            if content.user_id == user_id {
                found = Some((object, content));
                break;
            }
        }
        let (object, content) = found.ok_or(Error::WrongRecoveryWords)?;
        let wrap = self
            .recovering
            .as_ref()
            .map(|r| r.keys.wrap_key.clone())
            .ok_or(Error::NotReady("no recovery under way"))?;
        let me = FirstParty::import(&content.identity_export, &wrap)
            .map_err(|_| Error::WrongRecoveryWords)?;
        if me.ghid() != id.ghid() {
            return Err(Error::WrongIdentity);
        }
        // The next root frame holds the same account under the new
        // password; the words keep opening it until they are replaced.
        let pk = keys::password_keys(new_password, &id.ghid(), self.cfg.kdf)?;
        let export = me.export(&pk.wrap_key, &mut self.rng)?;
        let next = RootContent {
            identity_export: export,
            account: content.account,
            account_secret: content.account_secret.clone(),
            recovery: Some(object),
        }
        .to_bytes()?;
        let identity = self.hold_account(
            me,
            ObjRecord::root(
                Entry::internal(user_id, id.ghid(), pk.root_master),
                frame,
                next.to_vec(),
                true,
            ),
            content.account,
            content.account_secret,
        );
        self.recovering = None;
        self.recovered_unpublished = true;
        self.enqueue(OutItem::Flush(user_id));
        if self.online {
            self.send(Request::Unsubscribe(rid), Pending::Ignore);
        }
        self.out.push(Action::Ready { user_id, identity });
        if self.online {
            self.on_server_up();
        }
        Ok(Progress::Done)
    }
}
