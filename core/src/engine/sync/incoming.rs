//! What the server pushes: frames and debindings of subscribed objects;
//! applying a frame once its container is here (conflicts included);
//! loading the objects the account state lists.

use zeroize::Zeroizing;

use super::super::keys::frame_secret;
use super::super::record::{AccountState, Payload};
use super::super::state::{Kind, OutItem};
use super::super::types::AppPush;
use super::super::Engine;
use super::jobs::{need, Job, Need, Progress};
use super::Pending;
use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::golix::suite::cs3;
use crate::golix::{Gdxx, Geoc, Gobd, Gobs, GolixObject};
use crate::wire::remote::Request;

impl Engine {
    /// A push of a subscribed object; `container` is the frame's container
    /// when the server sent it along (`!C`), kept as if fetched so that the
    /// frame's job needs no `GT` (only if it is the one the frame binds:
    /// containers are content-addressed).
    pub(crate) fn on_push(
        &mut self,
        subscription: Ghid,
        object: &[u8],
        container: Option<Vec<u8>>,
    ) {
        let Ok(obj) = GolixObject::parse(object) else {
            return;
        };
        if let (Some(r), GolixObject::Garq(garq)) = (self.recovering.as_mut(), &obj) {
            let rid = r.keys.identity.ghid();
            // Bounded. Only the server (which sees the recovery identity
            // get its request) can send it others, and a server can as
            // well withhold the real one; the bound keeps memory small.
            if subscription == rid && garq.recipient() == rid && r.requests.len() < 1024 {
                r.requests.push(garq.clone());
            }
            return;
        }
        let Some(a) = self.agent.as_ref() else {
            return;
        };
        if subscription == a.me.ghid() {
            if let GolixObject::Garq(garq) = obj {
                let g = garq.ghid();
                let queued =
                    self.has_job(|j| matches!(j, Job::Incoming { garq: q } if q.ghid() == g));
                if garq.recipient() == a.me.ghid() && !a.seen.contains(&garq.ghid()) && !queued {
                    self.work.runnable.push(Job::Incoming { garq });
                }
            }
            return;
        }
        match obj {
            GolixObject::Gobd(f) if f.dynamic_ghid() == subscription => {
                let target = f.target();
                // Kept only for a frame that will be read (memory stays
                // bounded whatever a server pushes).
                if self.on_frame(subscription, f, None) {
                    if let Some(c) = container {
                        self.keep_pushed_container(target, c);
                    }
                }
            }
            GolixObject::Gdxx(x) if x.target() == subscription => self.on_debinding(x),
            _ => {}
        }
    }

    /// Keeps a container pushed with `frame` for the frame's job, if it is
    /// the container the frame binds.
    fn keep_pushed_container(&mut self, target: Ghid, container: Vec<u8>) {
        if self.work.fetched.contains_key(&target) {
            return;
        }
        match GolixObject::parse(&container) {
            Ok(GolixObject::Geoc(g)) if g.ghid() == target => {
                self.work.fetched.insert(target, container);
                self.stats.pushed_containers += 1;
            }
            _ => self.stats.bad_pushed_containers += 1,
        }
    }

    /// A frame of an object this agent follows (from a push or a catch-up);
    /// true if it is queued to be read.
    pub(crate) fn on_frame(&mut self, address: Ghid, frame: Gobd, announce: Option<Ghid>) -> bool {
        let Some(rec) = self.agent.as_ref().and_then(|a| a.objects.get(&address)) else {
            return false;
        };
        if frame.dynamic_ghid() != address || frame.binder() != rec.entry.author {
            self.stats.stale_frames += 1;
            return false;
        }
        if rec
            .current
            .as_ref()
            .is_some_and(|c| frame.counter() <= c.counter())
        {
            self.stats.stale_frames += 1;
            return false;
        }
        self.work.runnable.push(Job::Frame {
            address,
            frame,
            announce,
        });
        true
    }

    pub(crate) fn on_debinding(&mut self, x: Gdxx) {
        if let Some(address) = self.owner_bindings.get(&x.target()).copied() {
            self.on_owner_debinding(address, &x);
            return;
        }
        let target = x.target();
        let Some(rec) = self.agent.as_ref().and_then(|a| a.objects.get(&target)) else {
            return;
        };
        if rec.entry.deleted || x.debinder() != rec.entry.author {
            return;
        }
        let Some(author) = self
            .agent
            .as_ref()
            .and_then(|a| a.contacts.get(&x.debinder()))
        else {
            return;
        };
        if x.verify(author).is_ok() {
            self.mark_deleted(&target);
        }
    }

    /// Nothing is built on `address` until a frame of at least `counter`
    /// is read.
    fn lock(&mut self, address: Ghid, counter: u64) {
        let c = self.locked.entry(address).or_insert(counter);
        *c = (*c).max(counter);
    }

    /// A reader read the newest frame with its master number `which`
    /// (0 = current): that master becomes current (masters arrive in any
    /// order after time offline) and only a few older ones are kept.
    fn settle_masters(&mut self, address: &Ghid, which: usize) {
        let Some(rec) = self.agent.as_mut().and_then(|a| a.objects.get_mut(address)) else {
            return;
        };
        if rec.entry.owned {
            // An owner's current master is the newest rotation's, always.
            return;
        }
        let sh = &mut rec.entry.sharing;
        let before = sh.older.len();
        if which > 0 && which <= sh.older.len() {
            let working = sh.older.remove(which - 1);
            let old = std::mem::replace(&mut rec.entry.secret, working);
            sh.older.insert(0, old);
        }
        sh.older.truncate(super::super::record::KEEP_OLDER_MASTERS);
        if which > 0 || sh.older.len() != before {
            self.mark_object(address);
        }
    }

    /// Follows the owner's binding of a static object received from
    /// another agent: its debinding (pushed, or found by `?D` after time
    /// offline) is the owner's delete reaching this holder.
    pub(crate) fn watch_owner_binding(&mut self, address: &Ghid) {
        let Some(rec) = self.agent.as_ref().and_then(|a| a.objects.get(address)) else {
            return;
        };
        if rec.kind != Kind::App || rec.entry.dynamic || rec.entry.owned || rec.entry.deleted {
            return;
        }
        let binding = Gobs::ghid_for(cs3::SUITE_ID, &rec.entry.author, address);
        self.owner_bindings.insert(binding, *address);
        if self.online {
            self.send(Request::Subscribe(binding), Pending::Ignore);
            self.send(
                Request::ListDebindings(binding),
                Pending::OwnerDebindings(*address),
            );
        }
    }

    /// A debinding of the owner's binding of a static object this agent
    /// received: verified, it deletes the object here.
    fn on_owner_debinding(&mut self, address: Ghid, x: &Gdxx) {
        let Some(rec) = self.agent.as_ref().and_then(|a| a.objects.get(&address)) else {
            return;
        };
        let author = rec.entry.author;
        if rec.entry.deleted
            || x.debinder() != author
            || x.target() != Gobs::ghid_for(cs3::SUITE_ID, &author, &address)
        {
            return;
        }
        let verified = self
            .agent
            .as_ref()
            .and_then(|a| a.contacts.get(&author))
            .is_some_and(|sp| x.verify(sp).is_ok());
        if verified {
            self.mark_deleted(&address);
        }
    }

    /// Job: the server says the owner's binding of a received static object
    /// was debound; fetch that debinding and check it before deleting.
    pub(crate) fn step_debound(&mut self, address: Ghid, gdxx: Ghid) -> Result<Progress> {
        let Some(rec) = self.agent.as_ref().and_then(|a| a.objects.get(&address)) else {
            return Ok(Progress::Done);
        };
        if rec.entry.deleted {
            return Ok(Progress::Done);
        }
        let author = rec.entry.author;
        let bytes = need!(self.need(&gdxx));
        need!(self.need_identity(&author));
        let x = Gdxx::parse(&bytes)?;
        self.on_owner_debinding(address, &x);
        Ok(Progress::Done)
    }

    /// Queues a flush for a record with unpublished state and none queued.
    pub(crate) fn requeue_if_dirty(&mut self, address: &Ghid) {
        let needs = self
            .agent
            .as_ref()
            .and_then(|a| a.objects.get(address))
            .is_some_and(|r| r.wants_frame());
        if needs && !self.queued_flush.contains(address) {
            self.enqueue(OutItem::Flush(*address));
        }
    }

    /// The object is gone: tell the sessions tracking it, stop following it,
    /// and keep a tombstone in the account state.
    pub(crate) fn mark_deleted(&mut self, address: &Ghid) {
        let Some(rec) = self.agent.as_mut().and_then(|a| a.objects.get_mut(address)) else {
            return;
        };
        if rec.entry.deleted {
            return;
        }
        rec.entry.deleted = true;
        rec.drop_unsent();
        rec.dirty = false;
        rec.state.clear();
        let dynamic = rec.entry.dynamic;
        self.mark_object(address);
        let trackers: Vec<u64> = self
            .sessions
            .iter_mut()
            .filter_map(|(id, s)| s.tracking.remove(address).then_some(*id))
            .collect();
        for s in trackers {
            self.push_to(s, AppPush::Delete(*address));
        }
        if dynamic {
            self.send(Request::Unsubscribe(*address), Pending::Ignore);
        }
        self.account_changed();
    }

    pub(crate) fn step_frame(
        &mut self,
        address: Ghid,
        frame: &Gobd,
        announce: Option<Ghid>,
    ) -> Result<Progress> {
        let (author, masters, stale) = {
            let Some(rec) = self.agent.as_ref().and_then(|a| a.objects.get(&address)) else {
                return Ok(Progress::Done);
            };
            (
                rec.entry.author,
                std::iter::once(&rec.entry.secret)
                    .chain(&rec.entry.sharing.older)
                    .cloned()
                    .collect::<Vec<_>>(),
                rec.entry.deleted
                    || rec
                        .current
                        .as_ref()
                        .is_some_and(|c| frame.counter() <= c.counter()),
            )
        };
        if stale {
            return Ok(Progress::Done);
        }
        // Everything is fetched before any signature is checked: a job is
        // stepped again on every reply, and crypto must run once.
        let binder = need!(self.need_identity(&author));
        let geoc = match self.need(&frame.target()) {
            Need::Have(b) => Geoc::parse(&b)?,
            Need::Wait => return Ok(Progress::Waiting),
            Need::Missing => {
                // The container is not uploaded yet: the frame's push comes
                // when it lands. Nothing is built on the object until then:
                // the frame may be under a master this device does not have
                // yet (a rotation), and building on the older one would only
                // be refused.
                frame.verify(&binder)?;
                self.lock(address, frame.counter());
                return Ok(Progress::Done);
            }
        };
        frame.verify(&binder)?;
        if geoc.author() != author {
            return Err(Error::WrongIdentity);
        }
        geoc.verify(&binder)?;
        // The current master first, then those it replaced (a frame
        // published before a rotation this device already knows of).
        let mut plain = None;
        for (i, master) in masters.iter().enumerate() {
            let secret = frame_secret(master, &author, frame.targets().get(1), Some(&address))?;
            if let Ok(p) = geoc.decrypt(&secret.into_secret()) {
                plain = Some((i, Zeroizing::new(p)));
                break;
            }
        }
        let Some((which, plain)) = plain else {
            // Signed by the owner, yet under none of our masters: a rotation
            // whose master has not reached this device (it is retried when
            // one does), or access taken back. The last state read stays.
            self.lock(address, frame.counter());
            self.stats.locked_frames += 1;
            return Ok(Progress::Done);
        };
        self.locked.remove(&address);
        self.settle_masters(&address, which);
        self.apply_frame(address, frame.clone(), &plain, announce)?;
        self.requeue_if_dirty(&address);
        Ok(Progress::Done)
    }

    /// A verified, decrypted frame: the object's new published state.
    pub(crate) fn apply_frame(
        &mut self,
        address: Ghid,
        frame: Gobd,
        plain: &[u8],
        announce: Option<Ghid>,
    ) -> Result<()> {
        let kind = self
            .agent
            .as_ref()
            .and_then(|a| a.objects.get(&address))
            .map(|r| r.kind)
            .ok_or(Error::UnknownObject)?;
        match kind {
            Kind::App => {
                let p = Payload::parse(plain)?;
                let now = self.now_ms;
                let (remote, local, conflict, first_load, learned_api) = {
                    let rec = self
                        .agent
                        .as_mut()
                        .and_then(|a| a.objects.get_mut(&address))
                        .ok_or(Error::UnknownObject)?;
                    let mut learned_api = false;
                    if !rec.loaded && rec.entry.api_id.0 == [0; super::super::types::API_ID_LEN] {
                        // First state of an object known only by its address
                        // and secret (a pending share): the frame names it.
                        rec.entry.api_id = p.api_id;
                        rec.entry.is_link = p.is_link;
                        learned_api = true;
                    } else if p.api_id != rec.entry.api_id || p.is_link != rec.entry.is_link {
                        return Err(Error::InvalidArgument("a frame changed the api_id"));
                    }
                    let first_load = !rec.loaded;
                    // Our frame built and not accepted lost to this one; a
                    // frame built only to rotate carries no edit of ours.
                    let unsent_lost = rec.unsent.as_ref().is_some_and(|(f, _)| {
                        rec.current.as_ref().map(|c| c.to_bytes()) != Some(f.clone())
                    });
                    let ours_pending = rec.dirty || (unsent_lost && !rec.rekey_only);
                    rec.container = Some(frame.target());
                    rec.current = Some(frame);
                    rec.loaded = true;
                    let mut remote = super::super::apps::objdef(rec);
                    remote.state = p.state.clone();
                    if ours_pending {
                        rec.dirty = true;
                        rec.drop_unsent();
                    } else {
                        if rec.state != p.state || first_load {
                            rec.changed_ms = now;
                        }
                        rec.state = p.state;
                        if unsent_lost {
                            rec.drop_unsent();
                        }
                    }
                    (
                        remote,
                        super::super::apps::objdef(rec),
                        ours_pending,
                        first_load,
                        learned_api,
                    )
                };
                let announce = announce.or_else(|| {
                    first_load
                        .then(|| self.announce_on_load.remove(&address))
                        .flatten()
                });
                if learned_api {
                    // The account state now carries the api_id.
                    self.account_changed();
                }
                self.mark_object(&address);
                let trackers: Vec<u64> = self
                    .sessions
                    .iter()
                    .filter(|(_, s)| s.tracking.contains(&address))
                    .map(|(id, _)| *id)
                    .collect();
                for s in &trackers {
                    self.push_to(*s, AppPush::Update(remote.clone()));
                    if conflict {
                        self.push_to(*s, AppPush::Update(local.clone()));
                    }
                }
                if conflict {
                    self.stats.conflicts += 1;
                    self.enqueue(OutItem::Flush(address));
                }
                if let Some(origin) = announce {
                    self.deliver_share(address, origin, local.api_id);
                }
            }
            Kind::Account => {
                let st = AccountState::parse(plain)?;
                if let Some(rec) = self
                    .agent
                    .as_mut()
                    .and_then(|a| a.objects.get_mut(&address))
                {
                    rec.container = Some(frame.target());
                    rec.current = Some(frame);
                    rec.loaded = true;
                    rec.drop_unsent();
                }
                self.mark_object(&address);
                self.merge_account(st);
            }
            Kind::Root => {
                if let Some(rec) = self
                    .agent
                    .as_mut()
                    .and_then(|a| a.objects.get_mut(&address))
                {
                    rec.container = Some(frame.target());
                    rec.current = Some(frame);
                }
                self.mark_object(&address);
            }
        }
        Ok(())
    }

    pub(crate) fn step_load(&mut self, address: Ghid, announce: Option<Ghid>) -> Result<Progress> {
        let Some(rec) = self.agent.as_ref().and_then(|a| a.objects.get(&address)) else {
            return Ok(Progress::Done);
        };
        if rec.loaded || rec.entry.deleted {
            return Ok(Progress::Done);
        }
        let (dynamic, author, secret) = (
            rec.entry.dynamic,
            rec.entry.author,
            rec.entry.secret.clone(),
        );
        let bytes = need!(self.need(&address));
        if dynamic {
            let frame = Gobd::parse(&bytes)?;
            let _ = self.on_frame(address, frame, announce);
            return Ok(Progress::Done);
        }
        let author_id = need!(self.need_identity(&author));
        let geoc = Geoc::parse(&bytes)?;
        if geoc.author() != author {
            return Err(Error::WrongIdentity);
        }
        geoc.verify(&author_id)?;
        let p = Payload::parse(&geoc.decrypt(&secret)?)?;
        let now = self.now_ms;
        if let Some(rec) = self
            .agent
            .as_mut()
            .and_then(|a| a.objects.get_mut(&address))
        {
            rec.state = p.state;
            rec.container = Some(address);
            rec.loaded = true;
            rec.changed_ms = now;
        }
        self.mark_object(&address);
        self.watch_owner_binding(&address);
        if let Some(origin) = announce {
            self.deliver_share(address, origin, p.api_id);
        }
        Ok(Progress::Done)
    }
}
