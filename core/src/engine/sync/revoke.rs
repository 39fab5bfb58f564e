//! Taking shares back: `unshare` and the key rotation it causes, sending
//! the current master to every recipient that lacks it, taking in a new
//! master from an object's owner, and the objects whose newest frame this
//! device cannot read yet (`docs/protocol/revocation.md`).

use super::super::record::{Recipient, KEEP_OLDER_MASTERS, MAX_OLDER_MASTERS};
use super::super::state::Kind;
use super::super::types::{AppReply, SessionId};
use super::super::Engine;
use super::jobs::{Job, Need, Progress};
use super::Pending;
use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::golix::Secret;
use crate::wire::remote::Request;

impl Engine {
    /// `%O`: the recipient loses access to every frame published from now
    /// on. The owner's next frame (queued at once) is encrypted under a new
    /// master, sent to the remaining recipients and to the owner's other
    /// devices, never to `recipient`.
    pub(crate) fn unshare(
        &mut self,
        session: SessionId,
        address: Ghid,
        recipient: Ghid,
    ) -> Result<AppReply> {
        let r = self.visible_record(session, &address)?;
        if !r.entry.owned {
            return Err(Error::NotAllowed(
                "only the object's owner can take a share back",
            ));
        }
        if !r.entry.dynamic {
            return Err(Error::NotAllowed(
                "a static object cannot be unshared: its recipients hold its only key \
                 (delete it to tell them it is gone)",
            ));
        }
        let rec = self
            .agent_mut()?
            .objects
            .get_mut(&address)
            .ok_or(Error::UnknownObject)?;
        match rec
            .entry
            .sharing
            .recipients
            .iter_mut()
            .find(|x| x.ghid == recipient)
        {
            // A new unshared turn, also when this device already sees it
            // unshared: another device may have shared it again meanwhile,
            // and an acknowledged unshare must not be a no-op there.
            Some(x) => x.turn = next_turn(x.turn, false),
            None => {
                return Err(Error::NotAllowed(
                    "the object is not shared with this identity",
                ))
            }
        }
        self.mark_object(&address);
        self.account_changed();
        self.reconcile_sharing(&address);
        Ok(AppReply::Done)
    }

    /// `?S`: the identities this agent shared the object with and has not
    /// taken it back from.
    pub(crate) fn shared_with(&self, session: SessionId, address: &Ghid) -> Result<AppReply> {
        let r = self.visible_record(session, address)?;
        Ok(AppReply::Ghids(
            r.entry
                .sharing
                .recipients
                .iter()
                .filter(|x| x.shared())
                .map(|x| x.ghid)
                .collect(),
        ))
    }

    /// Records a share of `address` with `recipient`. True if the current
    /// master may go to it now (and is recorded as sent); false if the
    /// current master was made while it was unshared (`Sharing::withheld`):
    /// frames were published under it while it had no access, so the object
    /// rotates and the new master goes to it (`step_rekey`).
    pub(crate) fn note_shared(&mut self, address: &Ghid, recipient: &Ghid) -> bool {
        let Some(rec) = self.agent.as_mut().and_then(|a| a.objects.get_mut(address)) else {
            return true;
        };
        let owner = rec.entry.owned && rec.entry.dynamic;
        let sh = &mut rec.entry.sharing;
        sh.settle_withheld();
        let rotation = sh.rotation;
        let may_send = sh.may_send(recipient);
        let now = match sh.recipients.iter_mut().find(|x| x.ghid == *recipient) {
            None => {
                sh.recipients.push(Recipient {
                    ghid: *recipient,
                    turn: FIRST_SHARE,
                    sent: rotation,
                });
                super::super::record::sort_recipients(&mut sh.recipients);
                true
            }
            Some(x) => {
                if !x.shared() {
                    x.turn = next_turn(x.turn, true);
                }
                let now = !owner || may_send;
                if now {
                    x.sent = x.sent.max(rotation);
                }
                now
            }
        };
        self.mark_object(address);
        self.account_changed();
        now
    }

    /// Brings one owned object to what its entry says: a frame under a new
    /// master when an unshared identity may hold the current one, else the
    /// current master sent to every recipient that lacks it.
    pub(crate) fn reconcile_sharing(&mut self, address: &Ghid) {
        let Some(rec) = self.agent.as_mut().and_then(|a| a.objects.get_mut(address)) else {
            return;
        };
        if rec.kind != Kind::App || !rec.entry.owned || !rec.entry.dynamic || rec.entry.deleted {
            return;
        }
        if rec.must_rotate() {
            // The next frame rotates (`build_next_frame`): one is published
            // now, with the current state, if none is on its way.
            self.requeue_if_dirty(address);
            return;
        }
        if rec.rotating.is_some() {
            // The rotation in flight sends the new master when it lands.
            return;
        }
        let sh = &rec.entry.sharing;
        let lacking: Vec<Ghid> = sh
            .recipients
            .iter()
            .map(|x| x.ghid)
            .filter(|g| sh.owes(g))
            .collect();
        for recipient in lacking {
            let queued = self.has_job(|j| {
                matches!(j, Job::Rekey { address: a, recipient: r } if a == address && *r == recipient)
            });
            if !queued {
                self.work.runnable.push(Job::Rekey {
                    address: *address,
                    recipient,
                });
            }
        }
    }

    /// Job: send the object's current master to a recipient that lacks it
    /// (a handshake, as a share; the recipient already holding the object
    /// takes it as the object's newest master).
    pub(crate) fn step_rekey(&mut self, address: Ghid, recipient: Ghid) -> Result<Progress> {
        let sp = match self.need_identity(&recipient) {
            Need::Have(sp) => sp,
            Need::Wait => return Ok(Progress::Waiting),
            Need::Missing => return Err(Error::UnknownRecipient),
        };
        let a = self
            .agent
            .as_mut()
            .ok_or(Error::NotReady("not logged in"))?;
        let Some(rec) = a.objects.get_mut(&address) else {
            return Ok(Progress::Done);
        };
        if rec.entry.deleted || rec.rotating.is_some() || rec.entry.sharing.needs_rotation() {
            // A later reconcile sends the master that is current then.
            return Ok(Progress::Done);
        }
        let sh = &mut rec.entry.sharing;
        if !sh.owes(&recipient) {
            return Ok(Progress::Done);
        }
        let rotation = sh.rotation;
        if let Some(x) = sh.recipients.iter_mut().find(|x| x.ghid == recipient) {
            x.sent = rotation;
        }
        // The answer is told to the app that shared again, if this is its share.
        let token = self.reshares.remove(&(address, recipient)).flatten();
        self.send_handshake(address, &sp, token)?;
        self.mark_object(&address);
        self.account_changed();
        Ok(Progress::Done)
    }

    /// A handshake for an object this agent already holds: from the object's
    /// owner it is a new master (a rotation, or a share again after an
    /// unshare); from anyone else it is ignored. True if it was new.
    pub(crate) fn take_master(&mut self, address: &Ghid, secret: &Secret, origin: &Ghid) -> bool {
        let Some(rec) = self.agent.as_mut().and_then(|a| a.objects.get_mut(address)) else {
            return false;
        };
        if rec.entry.owned
            || !rec.entry.dynamic
            || rec.entry.author != *origin
            || rec.entry.secret == *secret
            || rec.entry.sharing.older.contains(secret)
        {
            return false;
        }
        // While its newest frame is unreadable every master is kept: after
        // time offline they arrive in any order.
        let keep = if self.locked.contains_key(address) {
            MAX_OLDER_MASTERS
        } else {
            KEEP_OLDER_MASTERS
        };
        let rotation = rec.entry.sharing.rotation.saturating_add(1);
        rec.entry.replace_master(secret.clone(), rotation, keep);
        self.mark_object(address);
        self.account_changed();
        self.retry_locked(address);
        true
    }

    /// A master arrived for an object whose newest frame could not be read:
    /// read it again.
    pub(crate) fn retry_locked(&mut self, address: &Ghid) {
        if self.locked.remove(address).is_some() {
            self.send(Request::Get(*address), Pending::CurrentFrame(*address));
        }
    }
}

/// The turn of a first share.
const FIRST_SHARE: u32 = 2;

/// The turn after `turn` in which the recipient is shared (`shared`) or not.
/// A turn is `2 × changes + (1 if unshared)`: each share (of an unshared
/// recipient) or unshare is one change more than the turn it was made on, and
/// the greater turn wins a merge. So a request made after another was seen
/// wins, and of a share and an unshare made on the same turn by two devices
/// that had not seen each other's, the unshare wins.
fn next_turn(turn: u32, shared: bool) -> u32 {
    let changes = (turn / 2).saturating_add(1);
    changes.saturating_mul(2).saturating_add(u32::from(!shared))
}
