//! The outbox: objects published in order, at most a window of them in
//! flight; a dynamic object's next frame built only when its turn comes
//! (frame first, its container once the frame is accepted); the server's
//! answers to them.

use zeroize::Zeroizing;

use super::super::keys::frame_secret;
use super::super::record::{Payload, KEEP_OLDER_MASTERS};
use super::super::state::{self, Kind, OutItem};
use super::super::Engine;
use super::{Job, Pending, MAX_IN_FLIGHT};
use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::golix::{FreshSecret, Gobd};
use crate::wire::remote::{ErrorCode, Request};

impl Engine {
    /// Sends whatever the outbox allows: objects pipelined, a frame blocks
    /// everything after it until its container is acknowledged.
    pub(crate) fn pump(&mut self) {
        if !self.online {
            return;
        }
        loop {
            let Some(a) = self.agent.as_ref() else {
                return;
            };
            let mut next = None;
            for (seq, item) in &a.outbox {
                if self.in_flight.contains(seq) {
                    if matches!(item, OutItem::Flush(_)) {
                        return;
                    }
                    continue;
                }
                next = Some((*seq, item.clone()));
                break;
            }
            let Some((seq, item)) = next else {
                return;
            };
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                return;
            }
            match item {
                OutItem::Object(bytes) => {
                    self.in_flight.insert(seq);
                    self.send(Request::Publish(bytes), Pending::Item(seq));
                }
                OutItem::Flush(address) => {
                    if !self.start_flush(seq, address) {
                        self.drop_item(seq);
                    }
                }
            }
        }
    }

    pub(crate) fn drop_item(&mut self, seq: u64) {
        self.in_flight.remove(&seq);
        if let Some(a) = self.agent.as_mut() {
            a.outbox.remove(&seq);
        }
        self.mark(state::key(state::P_OUTBOX, &seq.to_be_bytes()));
    }

    /// Starts publishing the next frame of `address`; false if there is nothing to publish.
    pub(crate) fn start_flush(&mut self, seq: u64, address: Ghid) -> bool {
        self.queued_flush.remove(&address);
        let Some(rec) = self.agent.as_ref().and_then(|a| a.objects.get(&address)) else {
            return false;
        };
        if rec.entry.deleted {
            return false;
        }
        if rec.unsent.is_none() && self.is_locked(&address) {
            // The newest frame is under a master this device lacks: nothing
            // is built on it until that master arrives (`retry_locked`).
            return false;
        }
        if rec.unsent.is_none() {
            if !(rec.dirty || rec.must_rotate()) || rec.current.is_none() {
                return false;
            }
            match self.build_next_frame(&address) {
                Ok(()) => {}
                Err(_) => return false,
            }
        }
        let Some(frame) = self
            .agent
            .as_ref()
            .and_then(|a| a.objects.get(&address))
            .and_then(|r| r.unsent.as_ref().map(|u| u.0.clone()))
        else {
            return false;
        };
        self.in_flight.insert(seq);
        self.send(Request::Publish(frame), Pending::FrameGobd { seq, address });
        true
    }

    pub(crate) fn build_next_frame(&mut self, address: &Ghid) -> Result<()> {
        let mut account = if self.agent()?.account == *address {
            Some(self.account_frame_state().to_bytes()?)
        } else {
            None
        };
        let plaintext = {
            let a = self.agent()?;
            let rec = a.objects.get(address).ok_or(Error::UnknownObject)?;
            match rec.kind {
                Kind::App => Payload {
                    api_id: rec.entry.api_id,
                    is_link: rec.entry.is_link,
                    state: rec.state.clone(),
                }
                .to_bytes(),
                Kind::Account => account.take().ok_or(Error::UnknownObject)?,
                Kind::Root => Zeroizing::new(rec.state.clone()),
            }
        };
        let a = self
            .agent
            .as_mut()
            .ok_or(Error::NotReady("not logged in"))?;
        let me = &a.me;
        let rec = a.objects.get_mut(address).ok_or(Error::UnknownObject)?;
        let current = rec
            .current
            .as_ref()
            .ok_or(Error::NotReady("no frame yet"))?;
        // An unshared identity may hold the master: this frame is the first
        // under a new one (`docs/protocol/revocation.md`).
        let rotating = if rec.must_rotate() {
            Some(FreshSecret::generate(me.suite(), &mut self.rng)?.into_secret())
        } else {
            None
        };
        let secret = frame_secret(
            rotating.as_ref().unwrap_or(&rec.entry.secret),
            &me.ghid(),
            Some(&current.target()),
            Some(address),
        )?;
        let (geoc, _) = me.make_container(secret, &plaintext)?;
        let legroom = usize::from(rec.entry.legroom.max(1));
        let frame = me.make_next_frame(current, &geoc.ghid(), legroom)?;
        rec.unsent = Some((frame.to_bytes(), geoc.to_bytes()));
        rec.rekey_only = rotating.is_some() && !rec.dirty;
        rec.rotating_withheld = if rotating.is_some() {
            unshared(&rec.entry.sharing)
        } else {
            Vec::new()
        };
        rec.rotating = rotating;
        rec.dirty = false;
        self.stats.signed += 2;
        self.mark_object(address);
        Ok(())
    }

    pub(crate) fn on_ack(&mut self, p: Pending, body: Vec<u8>) {
        match p {
            Pending::Item(seq) => {
                let item = self
                    .agent
                    .as_ref()
                    .and_then(|a| a.outbox.get(&seq).cloned());
                self.drop_item(seq);
                if let Some(OutItem::Object(bytes)) = item {
                    self.object_published(&bytes);
                }
            }
            Pending::FrameGobd { seq, address } => {
                let geoc = self.agent.as_mut().and_then(|a| {
                    let rec = a.objects.get_mut(&address)?;
                    let (f, c) = rec.unsent.as_ref()?;
                    let frame = Gobd::parse(f).ok()?;
                    let is_newer = rec
                        .current
                        .as_ref()
                        .is_none_or(|cur| frame.counter() > cur.counter());
                    if is_newer {
                        rec.container = Some(frame.target());
                        rec.current = Some(frame);
                    }
                    let c = c.clone();
                    let rotated = rec.rotating.take().map(|m| {
                        // The rotation won its counter: its master is the
                        // object's from now on, never to be sent to those
                        // unshared now (every frame under it comes later).
                        let rotation = rec.entry.sharing.rotation.saturating_add(1);
                        rec.entry.replace_master(m, rotation, KEEP_OLDER_MASTERS);
                        // Withheld from those unshared when it was made
                        // and those unshared now.
                        let mut withheld = std::mem::take(&mut rec.rotating_withheld);
                        let sh = &mut rec.entry.sharing;
                        withheld.extend(unshared(sh));
                        super::super::record::sort_ghids(&mut withheld);
                        withheld.dedup();
                        sh.withheld = withheld;
                    });
                    Some((c, rotated.is_some()))
                });
                self.mark_object(&address);
                let geoc = match geoc {
                    Some((c, rotated)) => {
                        if rotated {
                            // The owner's other devices learn the master from
                            // the account state; the remaining recipients
                            // from a handshake each, queued behind this
                            // flush (so after the container).
                            self.account_changed();
                            self.reconcile_sharing(&address);
                        }
                        Some(c)
                    }
                    None => None,
                };
                match geoc {
                    // The container was stored with its frame when both were
                    // built; this step only records that the frame won.
                    Some(c) => {
                        self.send_early(Request::Publish(c), Pending::FrameGeoc { seq, address })
                    }
                    None => self.drop_item(seq),
                }
            }
            Pending::FrameGeoc { seq, address } => {
                if let Some(rec) = self
                    .agent
                    .as_mut()
                    .and_then(|a| a.objects.get_mut(&address))
                {
                    rec.drop_unsent();
                }
                self.mark_object(&address);
                self.drop_item(seq);
                self.requeue_if_dirty(&address);
                self.root_published(address);
            }
            Pending::Get(g) => {
                self.work.fetching.remove(&g);
                self.work.fetched.insert(g, body);
                self.work.unpark(&g);
            }
            Pending::CurrentFrame(g) => {
                if let Ok(frame) = Gobd::parse(&body) {
                    let _ = self.on_frame(g, frame, None);
                }
                self.requeue_if_dirty(&g);
            }
            Pending::Debindings(g) => {
                if !body.is_empty() {
                    self.mark_deleted(&g);
                }
            }
            Pending::OwnerDebindings(address) => {
                if let Some(gdxx) = body.get(..65).and_then(|b| Ghid::from_bytes(b).ok()) {
                    self.work.runnable.push(Job::Debound { address, gdxx });
                }
            }
            Pending::RequestsListed(g) => self.requests_listed(g),
            Pending::Ignore => {}
        }
    }

    pub(crate) fn on_nak(&mut self, p: Pending, code: ErrorCode) {
        match p {
            Pending::Item(seq) => {
                // A permanent refusal (a replayed or already-debound object):
                // nothing can make the server take it.
                self.drop_item(seq);
            }
            Pending::FrameGobd { seq, address } | Pending::FrameGeoc { seq, address } => {
                self.drop_item(seq);
                if code == ErrorCode::AlreadyDebound {
                    self.mark_deleted(&address);
                    return;
                }
                if self.user_id() == Some(address) {
                    self.root_rejected(address);
                    return;
                }
                // Another device moved the object on: our state is still the
                // newest this device knows, so it is published again on top of
                // the winner's frame once that is read (docs/engine.md).
                if let Some(rec) = self
                    .agent
                    .as_mut()
                    .and_then(|a| a.objects.get_mut(&address))
                {
                    if rec.entry.deleted {
                        return;
                    }
                    // A frame built only to rotate carries no edit: the
                    // rotation is redone on the winner's frame.
                    rec.dirty |= !rec.rekey_only;
                    rec.drop_unsent();
                }
                self.stats.conflicts += 1;
                self.mark_object(&address);
                self.send(Request::Get(address), Pending::CurrentFrame(address));
            }
            Pending::Get(g) => {
                self.work.fetching.remove(&g);
                self.work.missing.insert(g);
                self.work.unpark(&g);
            }
            Pending::CurrentFrame(g) => {
                let known = self
                    .agent
                    .as_ref()
                    .and_then(|a| a.objects.get(&g))
                    .is_some_and(|r| r.current.is_some() && r.unsent.is_none());
                if code == ErrorCode::DoesNotExist && known {
                    self.send(Request::ListDebindings(g), Pending::Debindings(g));
                }
            }
            Pending::RequestsListed(g) => self.requests_listed(g),
            Pending::Debindings(_) | Pending::OwnerDebindings(_) | Pending::Ignore => {}
        }
    }
}

/// The recipients of `sh` that are unshared, sorted.
fn unshared(sh: &super::super::record::Sharing) -> Vec<Ghid> {
    let mut v: Vec<Ghid> = sh
        .recipients
        .iter()
        .filter(|x| !x.shared())
        .map(|x| x.ghid)
        .collect();
    super::super::record::sort_ghids(&mut v);
    v
}
