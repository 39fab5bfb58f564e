//! The engine's side of the remote protocol: the outbox (publishing in
//! order, frames built when their turn comes), subscriptions and catch-up,
//! incoming frames and debindings, and the jobs that wait for objects from
//! the server (login, incoming shares, objects learned from another device).

use std::cell::Cell;

use zeroize::Zeroizing;

use super::keys::{self, frame_secret};
use super::record::{AccountState, Entry, Payload, RootContent};
use super::state::{self, Agent, Kind, ObjRecord, Orphan, OutItem};
use super::types::{Action, ApiId, AppPush, DEFAULT_LEGROOM};
use super::Engine;
use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::golix::{
    FirstParty, Garq, Gdxx, Geoc, Gobd, GolixObject, RequestPayload, SecondParty, Secret,
};
use crate::wire::remote::{ErrorCode, Message, Request};

/// Most outbox items in flight at once.
const MAX_IN_FLIGHT: usize = 64;

/// What a request to the server was for.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    /// `PB` of an outbox object.
    Item(u64),
    /// `PB` of a frame (first step of a Flush).
    FrameGobd { seq: u64, address: Ghid },
    /// `PB` of a frame's container (second step).
    FrameGeoc { seq: u64, address: Ghid },
    /// `GT` for a job.
    Get(Ghid),
    /// `GT` of a dynamic GHID to catch up.
    CurrentFrame(Ghid),
    /// `?D` of a dynamic GHID that disappeared.
    Debindings(Ghid),
    /// Nothing to do with the answer (`+S`, `-S`).
    Ignore,
}

/// Work that waits for objects from the server.
pub(crate) enum Job {
    /// Log in: fetch the root, open it with the password.
    Login {
        user_id: Ghid,
        password: Zeroizing<Vec<u8>>,
    },
    /// Apply a frame of a known object once its container is here.
    Frame {
        address: Ghid,
        frame: Gobd,
        announce: Option<Ghid>,
    },
    /// Load an object known from the account state.
    Load {
        address: Ghid,
        announce: Option<Ghid>,
    },
    /// Share an object once the recipient's identity is here.
    Share {
        session: u64,
        req: u64,
        address: Ghid,
        recipient: Ghid,
    },
    /// Open a request addressed to this agent.
    Incoming { garq: Garq },
    /// Read a page of the account state.
    LoadPage { page: Ghid, secret: Secret },
    /// Take in an object shared with this agent.
    Adopt {
        address: Ghid,
        secret: Secret,
        origin: Ghid,
        request: Option<Ghid>,
    },
}

impl Job {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Job::Login { .. } => "login",
            Job::Frame { .. } => "apply a frame",
            Job::Load { .. } => "load an object",
            Job::Share { .. } => "share",
            Job::Incoming { .. } => "open a request",
            Job::Adopt { .. } => "take in a shared object",
            Job::LoadPage { .. } => "read an account page",
        }
    }
}

enum Need<T> {
    Have(T),
    Wait,
    Missing,
}

enum Step {
    Done,
    Wait(Box<Job>),
}

macro_rules! need {
    ($e:expr) => {
        match $e {
            Need::Have(v) => v,
            Need::Wait => return Ok(None),
            Need::Missing => return Err(Error::UnknownObject),
        }
    };
}

impl Engine {
    // ----------------------------------------------------------- connection

    /// Every request in flight is lost with the connection.
    fn forget_requests(&mut self) {
        self.pending.clear();
        self.in_flight.clear();
        self.fetching.clear();
    }

    pub(crate) fn on_server_up(&mut self) {
        self.forget_requests();
        self.unpark_all();
        let Some(a) = self.agent.as_ref() else {
            return;
        };
        let me = a.me.ghid();
        let follow: Vec<Ghid> = a
            .objects
            .values()
            .filter(|r| r.entry.dynamic && !r.entry.deleted && r.kind != Kind::Root)
            .map(|r| r.entry.address)
            .collect();
        let unloaded: Vec<Ghid> = a
            .objects
            .values()
            .filter(|r| !r.loaded && !r.entry.deleted && !r.entry.dynamic)
            .map(|r| r.entry.address)
            .collect();
        for address in unloaded {
            self.jobs.push(Job::Load {
                address,
                announce: None,
            });
        }
        self.send(Request::Subscribe(me), Pending::Ignore);
        for g in follow {
            self.send(Request::Subscribe(g), Pending::Ignore);
            self.send(Request::Get(g), Pending::CurrentFrame(g));
        }
    }

    pub(crate) fn on_server_down(&mut self) {
        self.online = false;
        self.forget_requests();
    }

    pub(crate) fn on_server_message(&mut self, m: Message) {
        match m {
            Message::Request {
                token,
                request:
                    Request::Push {
                        subscription,
                        object,
                    },
            } => {
                self.out.push(Action::Send(Message::Ack {
                    token,
                    body: vec![1],
                }));
                self.on_push(subscription, &object);
            }
            Message::Request { token, .. } => {
                self.out.push(Action::Send(Message::Nak {
                    token,
                    code: ErrorCode::CommsError,
                    message: "a client does not serve this command".into(),
                }));
            }
            Message::Ack { token, body } => {
                if let Some(p) = self.pending.remove(&token) {
                    self.on_ack(p, body);
                }
            }
            Message::Nak { token, code, .. } => {
                if let Some(p) = self.pending.remove(&token) {
                    self.on_nak(p, code);
                }
            }
        }
    }

    // --------------------------------------------------------------- outbox

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

    fn drop_item(&mut self, seq: u64) {
        self.in_flight.remove(&seq);
        if let Some(a) = self.agent.as_mut() {
            a.outbox.remove(&seq);
        }
        self.mark(state::key(state::P_OUTBOX, &seq.to_be_bytes()));
    }

    /// Starts publishing the next frame of `address`; false if there is nothing to publish.
    fn start_flush(&mut self, seq: u64, address: Ghid) -> bool {
        self.queued_flush.remove(&address);
        let Some(rec) = self.agent.as_ref().and_then(|a| a.objects.get(&address)) else {
            return false;
        };
        if rec.entry.deleted {
            return false;
        }
        if rec.unsent.is_none() {
            if !rec.dirty || rec.current.is_none() {
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

    fn build_next_frame(&mut self, address: &Ghid) -> Result<()> {
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
        let secret = frame_secret(
            &rec.entry.secret,
            &me.ghid(),
            Some(&current.target()),
            Some(address),
        )?;
        let (geoc, _) = me.make_container(secret, &plaintext)?;
        let legroom = usize::from(rec.entry.legroom.max(1));
        let frame = me.make_next_frame(current, &geoc.ghid(), legroom)?;
        rec.unsent = Some((frame.to_bytes(), geoc.to_bytes()));
        rec.dirty = false;
        self.stats.signed += 2;
        self.mark_object(address);
        Ok(())
    }

    fn on_ack(&mut self, p: Pending, body: Vec<u8>) {
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
                    Some(c.clone())
                });
                self.mark_object(&address);
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
                let dirty = self.agent.as_mut().and_then(|a| {
                    let rec = a.objects.get_mut(&address)?;
                    rec.unsent = None;
                    Some(rec.dirty)
                });
                self.mark_object(&address);
                self.drop_item(seq);
                if dirty == Some(true) {
                    self.enqueue(OutItem::Flush(address));
                }
            }
            Pending::Get(g) => {
                self.fetching.remove(&g);
                self.fetched.insert(g, body);
                self.unpark(&g);
            }
            Pending::CurrentFrame(g) => {
                if let Ok(frame) = Gobd::parse(&body) {
                    self.on_frame(g, frame, None);
                }
                self.requeue_if_dirty(&g);
            }
            Pending::Debindings(g) => {
                if !body.is_empty() {
                    self.mark_deleted(&g);
                }
            }
            Pending::Ignore => {}
        }
    }

    fn on_nak(&mut self, p: Pending, code: ErrorCode) {
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
                    rec.unsent = None;
                    rec.dirty = true;
                }
                self.stats.conflicts += 1;
                self.mark_object(&address);
                self.send(Request::Get(address), Pending::CurrentFrame(address));
            }
            Pending::Get(g) => {
                self.fetching.remove(&g);
                self.missing.insert(g);
                self.unpark(&g);
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
            Pending::Debindings(_) | Pending::Ignore => {}
        }
    }

    // ----------------------------------------------------------- incoming

    fn on_push(&mut self, subscription: Ghid, object: &[u8]) {
        let Ok(obj) = GolixObject::parse(object) else {
            return;
        };
        let Some(a) = self.agent.as_ref() else {
            return;
        };
        if subscription == a.me.ghid() {
            if let GolixObject::Garq(garq) = obj {
                let g = garq.ghid();
                let queued =
                    self.has_job(|j| matches!(j, Job::Incoming { garq: q } if q.ghid() == g));
                if garq.recipient() == a.me.ghid() && !a.seen.contains(&garq.ghid()) && !queued {
                    self.jobs.push(Job::Incoming { garq });
                }
            }
            return;
        }
        match obj {
            GolixObject::Gobd(f) if f.dynamic_ghid() == subscription => {
                self.on_frame(subscription, f, None)
            }
            GolixObject::Gdxx(x) if x.target() == subscription => self.on_debinding(x),
            _ => {}
        }
    }

    /// A frame of an object this agent follows (from a push or a catch-up).
    pub(crate) fn on_frame(&mut self, address: Ghid, frame: Gobd, announce: Option<Ghid>) {
        let Some(rec) = self.agent.as_ref().and_then(|a| a.objects.get(&address)) else {
            return;
        };
        if frame.dynamic_ghid() != address || frame.binder() != rec.entry.author {
            self.stats.stale_frames += 1;
            return;
        }
        if rec
            .current
            .as_ref()
            .is_some_and(|c| frame.counter() <= c.counter())
        {
            self.stats.stale_frames += 1;
            return;
        }
        self.jobs.push(Job::Frame {
            address,
            frame,
            announce,
        });
    }

    fn on_debinding(&mut self, x: Gdxx) {
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

    /// Makes a verified newer frame the base of this device's next frame
    /// when it has local state waiting (see `step_frame`).
    fn rebase_on(&mut self, address: Ghid, frame: &Gobd) {
        let Some(rec) = self
            .agent
            .as_mut()
            .and_then(|a| a.objects.get_mut(&address))
        else {
            return;
        };
        let newer = rec
            .current
            .as_ref()
            .is_none_or(|c| frame.counter() > c.counter());
        if rec.entry.owned && rec.dirty && rec.unsent.is_none() && newer {
            rec.container = Some(frame.target());
            rec.current = Some(frame.clone());
            self.mark_object(&address);
            self.requeue_if_dirty(&address);
        }
    }

    /// Queues a flush for a record with unpublished state and none queued.
    pub(crate) fn requeue_if_dirty(&mut self, address: &Ghid) {
        let needs = self
            .agent
            .as_ref()
            .and_then(|a| a.objects.get(address))
            .is_some_and(|r| (r.dirty || r.unsent.is_some()) && !r.entry.deleted);
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
        rec.unsent = None;
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

    // ----------------------------------------------------------------- jobs

    /// Whether a job like this is already runnable or parked.
    pub(crate) fn has_job(&self, f: impl Fn(&Job) -> bool) -> bool {
        self.jobs.iter().any(&f) || self.parked.values().flatten().any(&f)
    }

    /// Number of jobs, runnable and parked.
    pub(crate) fn job_count(&self) -> usize {
        self.jobs.len() + self.parked.values().map(Vec::len).sum::<usize>()
    }

    /// Jobs waiting for `g` can run again.
    fn unpark(&mut self, g: &Ghid) {
        if let Some(js) = self.parked.remove(g) {
            self.jobs.extend(js);
        }
    }

    /// Every parked job runs again (after a reconnect: their requests were lost).
    pub(crate) fn unpark_all(&mut self) {
        let all: Vec<Job> = std::mem::take(&mut self.parked)
            .into_values()
            .flatten()
            .collect();
        self.jobs.extend(all);
    }

    /// Runs every runnable job until each is done or parked on the object
    /// it waits for (a job is stepped again only when that object arrives).
    pub(crate) fn run_jobs(&mut self) {
        while let Some(job) = self.jobs.pop() {
            self.parked_on = None;
            match self.step(job) {
                Step::Done => {}
                Step::Wait(j) => {
                    // A wait always comes from `need`, which says what for.
                    let g = self.parked_on.unwrap_or(Ghid::new(
                        crate::golix::AddressAlgorithm::Blake2b512,
                        [0; 64],
                    ));
                    self.parked.entry(g).or_default().push(*j);
                }
            }
        }
        if self.parked.is_empty() {
            self.fetched.clear();
            self.missing.clear();
        }
    }

    fn need(&mut self, g: &Ghid) -> Need<Vec<u8>> {
        if let Some(b) = self.fetched.get(g) {
            return Need::Have(b.clone());
        }
        if self.missing.contains(g) {
            return Need::Missing;
        }
        if self.online && self.fetching.insert(*g) {
            self.send(Request::Get(*g), Pending::Get(*g));
        }
        self.parked_on = Some(*g);
        Need::Wait
    }

    /// [`Engine::need`] for other modules: `None` = wait.
    pub(crate) fn need_bytes(&mut self, g: &Ghid) -> Option<Result<Vec<u8>>> {
        match self.need(g) {
            Need::Have(b) => Some(Ok(b)),
            Need::Wait => None,
            Need::Missing => Some(Err(Error::UnknownObject)),
        }
    }

    fn need_identity(&mut self, g: &Ghid) -> Need<SecondParty> {
        if let Some(sp) = self.agent.as_ref().and_then(|a| a.contacts.get(g)) {
            return Need::Have(sp.clone());
        }
        match self.need(g) {
            Need::Have(b) => match SecondParty::parse(&b) {
                Ok(sp) if sp.ghid() == *g => {
                    if let Some(a) = self.agent.as_mut() {
                        a.contacts.insert(*g, sp.clone());
                        self.mark(state::key(state::P_CONTACT, &g.to_bytes()));
                    }
                    Need::Have(sp)
                }
                _ => Need::Missing,
            },
            Need::Wait => Need::Wait,
            Need::Missing => Need::Missing,
        }
    }

    fn step(&mut self, job: Job) -> Step {
        let res = match &job {
            Job::Login { user_id, password } => {
                let (u, p) = (*user_id, password.clone());
                self.step_login(u, &p)
            }
            Job::Frame {
                address,
                frame,
                announce,
            } => {
                let (a, f, n) = (*address, frame.clone(), *announce);
                self.step_frame(a, &f, n)
            }
            Job::Load { address, announce } => {
                let (a, n) = (*address, *announce);
                self.step_load(a, n)
            }
            Job::Share {
                session,
                req,
                address,
                recipient,
            } => {
                let (s, r, a, rc) = (*session, *req, *address, *recipient);
                self.step_share(s, r, a, rc)
            }
            Job::Incoming { garq } => {
                let g = garq.clone();
                self.step_incoming(&g)
            }
            Job::LoadPage { page, secret } => {
                let (p, sec) = (*page, secret.clone());
                self.step_load_page(p, &sec)
            }
            Job::Adopt {
                address,
                secret,
                origin,
                request,
            } => {
                let (a, s, o, r) = (*address, secret.clone(), *origin, *request);
                self.step_adopt(a, &s, o, r)
            }
        };
        match res {
            Ok(None) => Step::Wait(Box::new(job)),
            Ok(Some(())) => Step::Done,
            Err(e) => {
                self.job_failed(job, e);
                Step::Done
            }
        }
    }

    fn job_failed(&mut self, job: Job, e: Error) {
        match job {
            Job::Login { .. } => self.out.push(Action::LoginFailed(e)),
            Job::Share { session, req, .. } => self.out.push(Action::Reply {
                session,
                req,
                result: Err(e),
            }),
            Job::Adopt {
                origin,
                request: Some(r),
                ..
            } if self.agent.as_ref().is_some_and(|a| !a.seen.contains(&r)) => {
                self.remember(r);
                self.answer_request(&origin, r, false);
                self.debind(&r);
            }
            _ => {}
        }
    }

    fn step_login(&mut self, user_id: Ghid, password: &[u8]) -> Result<Option<()>> {
        if self.agent.is_some() {
            return Err(Error::NotAllowed("already logged in"));
        }
        let frame = Gobd::parse(&need!(self.need(&user_id)))?;
        if frame.dynamic_ghid() != user_id {
            return Err(Error::InvalidArgument("the user id is not an account root"));
        }
        let id = SecondParty::parse(&need!(self.need(&frame.binder())))?;
        if id.ghid() != frame.binder() {
            return Err(Error::WrongIdentity);
        }
        frame.verify(&id)?;
        let geoc = Geoc::parse(&need!(self.need(&frame.target())))?;
        if geoc.author() != id.ghid() {
            return Err(Error::WrongIdentity);
        }
        geoc.verify(&id)?;
        let pk = keys::password_keys(password, &id.ghid(), self.cfg.kdf)?;
        let secret = frame_secret(
            &pk.root_master,
            &id.ghid(),
            frame.targets().get(1),
            Some(&user_id),
        )?;
        let plain = Zeroizing::new(
            geoc.decrypt(&secret.into_secret())
                .map_err(|_| Error::WrongPassword)?,
        );
        let root = RootContent::parse(&plain)?;
        let me = FirstParty::import(&root.identity_export, &pk.wrap_key)
            .map_err(|_| Error::WrongPassword)?;
        if me.ghid() != id.ghid() {
            return Err(Error::WrongIdentity);
        }
        let mut agent = Agent::new(me, user_id, root.account);
        let entry = |address, secret| Entry::internal(address, id.ghid(), secret);
        agent.objects.insert(
            user_id,
            ObjRecord {
                kind: Kind::Root,
                entry: entry(user_id, pk.root_master),
                state: plain.to_vec(),
                dirty: false,
                container: Some(frame.target()),
                current: Some(frame),
                unsent: None,
                held: None,
                loaded: true,
            },
        );
        agent.objects.insert(
            root.account,
            ObjRecord::unloaded(Kind::Account, entry(root.account, root.account_secret)),
        );
        let identity = agent.me.ghid();
        self.agent = Some(agent);
        self.mark(state::K_ACCOUNT.to_vec());
        self.mark(state::key(state::P_CONTACT, &identity.to_bytes()));
        self.mark_object(&user_id);
        self.mark_object(&root.account);
        self.out.push(Action::Ready { user_id, identity });
        if self.online {
            self.on_server_up();
        }
        Ok(Some(()))
    }

    fn step_frame(
        &mut self,
        address: Ghid,
        frame: &Gobd,
        announce: Option<Ghid>,
    ) -> Result<Option<()>> {
        let (author, master, stale) = {
            let Some(rec) = self.agent.as_ref().and_then(|a| a.objects.get(&address)) else {
                return Ok(Some(()));
            };
            (
                rec.entry.author,
                rec.entry.secret.clone(),
                rec.entry.deleted
                    || rec
                        .current
                        .as_ref()
                        .is_some_and(|c| frame.counter() <= c.counter()),
            )
        };
        if stale {
            return Ok(Some(()));
        }
        // Everything is fetched before any signature is checked: a job is
        // stepped again on every reply, and crypto must run once.
        let binder = need!(self.need_identity(&author));
        let geoc = match self.need(&frame.target()) {
            Need::Have(b) => Geoc::parse(&b)?,
            Need::Wait => return Ok(None),
            Need::Missing => {
                // The container is not uploaded yet (its push will come).
                // If this device has its own state to publish, the verified
                // frame is enough to build on: the next frame needs only its
                // counter and targets.
                frame.verify(&binder)?;
                self.rebase_on(address, frame);
                return Ok(Some(()));
            }
        };
        frame.verify(&binder)?;
        if geoc.author() != author {
            return Err(Error::WrongIdentity);
        }
        geoc.verify(&binder)?;
        let secret = frame_secret(&master, &author, frame.targets().get(1), Some(&address))?;
        let plain = Zeroizing::new(geoc.decrypt(&secret.into_secret())?);
        self.apply_frame(address, frame.clone(), &plain, announce)?;
        self.requeue_if_dirty(&address);
        Ok(Some(()))
    }

    /// A verified, decrypted frame: the object's new published state.
    fn apply_frame(
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
                let (remote, local, conflict, first_load, learned_api) = {
                    let rec = self
                        .agent
                        .as_mut()
                        .and_then(|a| a.objects.get_mut(&address))
                        .ok_or(Error::UnknownObject)?;
                    let mut learned_api = false;
                    if !rec.loaded && rec.entry.api_id.0 == [0; super::types::API_ID_LEN] {
                        // First state of an object known only by its address
                        // and secret (a pending share): the frame names it.
                        rec.entry.api_id = p.api_id;
                        rec.entry.is_link = p.is_link;
                        learned_api = true;
                    } else if p.api_id != rec.entry.api_id || p.is_link != rec.entry.is_link {
                        return Err(Error::InvalidArgument("a frame changed the api_id"));
                    }
                    let first_load = !rec.loaded;
                    let ours_pending = rec.dirty
                        || rec.unsent.as_ref().is_some_and(|(f, _)| {
                            rec.current.as_ref().map(|c| c.to_bytes()) != Some(f.clone())
                        });
                    rec.container = Some(frame.target());
                    rec.current = Some(frame);
                    rec.loaded = true;
                    let mut remote = super::apps::objdef(rec);
                    remote.state = p.state.clone();
                    if ours_pending {
                        rec.dirty = true;
                        rec.unsent = None;
                    } else {
                        rec.state = p.state;
                    }
                    (
                        remote,
                        super::apps::objdef(rec),
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
                    rec.unsent = None;
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

    fn step_load(&mut self, address: Ghid, announce: Option<Ghid>) -> Result<Option<()>> {
        let Some(rec) = self.agent.as_ref().and_then(|a| a.objects.get(&address)) else {
            return Ok(Some(()));
        };
        if rec.loaded || rec.entry.deleted {
            return Ok(Some(()));
        }
        let (dynamic, author, secret) = (
            rec.entry.dynamic,
            rec.entry.author,
            rec.entry.secret.clone(),
        );
        let bytes = need!(self.need(&address));
        if dynamic {
            let frame = Gobd::parse(&bytes)?;
            self.on_frame(address, frame, announce);
            return Ok(Some(()));
        }
        let author_id = need!(self.need_identity(&author));
        let geoc = Geoc::parse(&bytes)?;
        if geoc.author() != author {
            return Err(Error::WrongIdentity);
        }
        geoc.verify(&author_id)?;
        let p = Payload::parse(&geoc.decrypt(&secret)?)?;
        if let Some(rec) = self
            .agent
            .as_mut()
            .and_then(|a| a.objects.get_mut(&address))
        {
            rec.state = p.state;
            rec.container = Some(address);
            rec.loaded = true;
        }
        self.mark_object(&address);
        if let Some(origin) = announce {
            self.deliver_share(address, origin, p.api_id);
        }
        Ok(Some(()))
    }

    fn step_share(
        &mut self,
        session: u64,
        req: u64,
        address: Ghid,
        recipient: Ghid,
    ) -> Result<Option<()>> {
        let sp = match self.need_identity(&recipient) {
            Need::Have(sp) => sp,
            Need::Wait => return Ok(None),
            Need::Missing => return Err(Error::UnknownRecipient),
        };
        let token = self.sessions.get(&session).and_then(|s| s.token);
        let a = self
            .agent
            .as_mut()
            .ok_or(Error::NotReady("not logged in"))?;
        let rec = a.objects.get(&address).ok_or(Error::UnknownObject)?;
        if rec.entry.deleted {
            return Err(Error::UnknownObject);
        }
        let payload = RequestPayload::Handshake {
            target: address,
            secret: rec.entry.secret.clone(),
        };
        let garq = a.me.make_request(&sp, payload, &mut self.rng)?;
        let g = garq.ghid();
        a.shares_out.insert(
            g,
            state::ShareOut {
                address,
                recipient,
                token,
            },
        );
        self.mark(state::key(state::P_SHARE, &g.to_bytes()));
        self.enqueue(OutItem::Object(garq.to_bytes()));
        self.out.push(Action::Reply {
            session,
            req,
            result: Ok(super::types::AppReply::Done),
        });
        Ok(Some(()))
    }

    fn step_incoming(&mut self, garq: &Garq) -> Result<Option<()>> {
        let g = garq.ghid();
        if self.agent.as_ref().is_none_or(|a| a.seen.contains(&g)) {
            return Ok(Some(()));
        }
        let asked = Cell::new(None);
        let opened = {
            let a = self.agent()?;
            a.me.open_request(garq, |x| {
                asked.set(Some(*x));
                a.contacts.get(x).cloned()
            })
        };
        let content = match opened {
            Ok(c) => c,
            Err(Error::UnknownAuthor) => {
                let Some(author) = asked.get() else {
                    return Err(Error::UnknownAuthor);
                };
                match self.need_identity(&author) {
                    // Now known: open it again.
                    Need::Have(_) => return self.step_incoming(garq),
                    Need::Wait => return Ok(None),
                    Need::Missing => {
                        self.remember(g);
                        self.debind(&g);
                        return Ok(Some(()));
                    }
                }
            }
            Err(_) => {
                // Garbage addressed to us: let the server drop it.
                self.remember(g);
                self.debind(&g);
                return Ok(Some(()));
            }
        };
        match content.payload {
            // Remembered only once the object is taken in: a crash before
            // then leaves the request at the server, which sends it again.
            RequestPayload::Handshake { target, secret } => {
                self.jobs.push(Job::Adopt {
                    address: target,
                    secret,
                    origin: content.author,
                    request: Some(g),
                });
            }
            RequestPayload::Ack { target, .. } | RequestPayload::Nak { target, .. } => {
                self.remember(g);
                let ok = matches!(content.payload, RequestPayload::Ack { .. });
                let share = self
                    .agent
                    .as_mut()
                    .and_then(|a| a.shares_out.remove(&target));
                // Answers to another device's shares are left for that device.
                if let Some(share) = share {
                    self.mark(state::key(state::P_SHARE, &target.to_bytes()));
                    self.debind(&g);
                    let push = if ok {
                        AppPush::ShareSuccess {
                            address: share.address,
                            recipient: share.recipient,
                        }
                    } else {
                        AppPush::ShareFailure {
                            address: share.address,
                            recipient: share.recipient,
                        }
                    };
                    let to: Vec<u64> = self
                        .sessions
                        .iter()
                        .filter(|(_, s)| share.token.is_some() && s.token == share.token)
                        .map(|(id, _)| *id)
                        .collect();
                    for s in to {
                        self.push_to(s, push.clone());
                    }
                }
            }
            RequestPayload::Raw(_) => {
                self.remember(g);
                self.debind(&g);
            }
        }
        Ok(Some(()))
    }

    fn remember(&mut self, g: Ghid) {
        if let Some(a) = self.agent.as_mut() {
            a.seen.insert(g);
        }
        self.mark(state::key(state::P_SEEN, &g.to_bytes()));
    }

    fn step_adopt(
        &mut self,
        address: Ghid,
        secret: &Secret,
        origin: Ghid,
        request: Option<Ghid>,
    ) -> Result<Option<()>> {
        let known = self
            .agent
            .as_ref()
            .and_then(|a| a.objects.get(&address))
            .is_some_and(|r| !r.entry.deleted);
        if !known {
            let bytes = need!(self.need(&address));
            let me = self.my_ghid()?;
            let (author, p, current, container) = match GolixObject::parse(&bytes)? {
                GolixObject::Gobd(frame) => {
                    if frame.dynamic_ghid() != address {
                        return Err(Error::WrongIdentity);
                    }
                    let binder = need!(self.need_identity(&frame.binder()));
                    let geoc = match self.need(&frame.target()) {
                        Need::Have(b) => Geoc::parse(&b)?,
                        Need::Wait => return Ok(None),
                        Need::Missing => {
                            frame.verify(&binder)?;
                            // The frame is here before its container (frames
                            // are uploaded first): keep the object, and the
                            // frame's push completes it when the container lands.
                            self.adopt_pending(address, secret, binder.ghid(), origin);
                            if let Some(r) = request {
                                self.finish_request(origin, r);
                            }
                            return Ok(Some(()));
                        }
                    };
                    frame.verify(&binder)?;
                    if geoc.author() != binder.ghid() {
                        return Err(Error::WrongIdentity);
                    }
                    geoc.verify(&binder)?;
                    let fs = frame_secret(
                        secret,
                        &binder.ghid(),
                        frame.targets().get(1),
                        Some(&address),
                    )?;
                    let p = Payload::parse(&geoc.decrypt(&fs.into_secret())?)?;
                    let container = frame.target();
                    (binder.ghid(), p, Some(frame), container)
                }
                GolixObject::Geoc(geoc) => {
                    let author = need!(self.need_identity(&geoc.author()));
                    geoc.verify(&author)?;
                    let p = Payload::parse(&geoc.decrypt(secret)?)?;
                    (author.ghid(), p, None, address)
                }
                _ => {
                    return Err(Error::InvalidArgument(
                        "a share names neither a frame nor a container",
                    ))
                }
            };
            let dynamic = current.is_some();
            let rec = ObjRecord {
                kind: Kind::App,
                entry: Entry {
                    address,
                    author,
                    api_id: p.api_id,
                    dynamic,
                    owned: author == me,
                    is_link: p.is_link,
                    deleted: false,
                    private: None,
                    legroom: if dynamic { DEFAULT_LEGROOM } else { 0 },
                    secret: secret.clone(),
                },
                state: p.state,
                dirty: false,
                current,
                container: Some(container),
                unsent: None,
                held: None,
                loaded: true,
            };
            let api_id = rec.entry.api_id;
            if let Some(a) = self.agent.as_mut() {
                a.objects.insert(address, rec);
            }
            self.mark_object(&address);
            if dynamic {
                // The frame was read before this subscription: a frame
                // published in between is pushed to nobody, so read the
                // current one again behind the subscription (the server
                // answers in order, so nothing falls between the two).
                self.send(Request::Subscribe(address), Pending::Ignore);
                self.send(Request::Get(address), Pending::CurrentFrame(address));
            }
            self.account_changed();
            self.deliver_share(address, origin, api_id);
        }
        if let Some(r) = request {
            self.finish_request(origin, r);
        }
        Ok(Some(()))
    }

    /// Accepts a share request once its object is held: answer, debind.
    fn finish_request(&mut self, origin: Ghid, r: Ghid) {
        if self.agent.as_ref().is_some_and(|a| !a.seen.contains(&r)) {
            self.remember(r);
            self.answer_request(&origin, r, true);
            self.debind(&r);
        }
    }

    /// Keeps a shared dynamic object whose state cannot be read yet.
    fn adopt_pending(&mut self, address: Ghid, secret: &Secret, author: Ghid, origin: Ghid) {
        let Some(a) = self.agent.as_mut() else {
            return;
        };
        let owned = author == a.me.ghid();
        a.objects.entry(address).or_insert_with(|| {
            ObjRecord::unloaded(
                Kind::App,
                Entry {
                    address,
                    author,
                    api_id: ApiId([0; super::types::API_ID_LEN]),
                    dynamic: true,
                    owned,
                    is_link: false,
                    deleted: false,
                    private: None,
                    legroom: DEFAULT_LEGROOM,
                    secret: secret.clone(),
                },
            )
        });
        self.announce_on_load.insert(address, origin);
        self.mark_object(&address);
        self.send(Request::Subscribe(address), Pending::Ignore);
        self.send(Request::Get(address), Pending::CurrentFrame(address));
        self.account_changed();
    }

    /// Pushes an incoming share to the sessions registered for its api_id,
    /// or keeps it until one registers.
    pub(crate) fn deliver_share(&mut self, address: Ghid, origin: Ghid, api_id: ApiId) {
        let to: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.apis.contains(&api_id))
            .map(|(id, _)| *id)
            .collect();
        if to.is_empty() {
            if let Some(a) = self.agent.as_mut() {
                let seq = a.orphans.keys().next_back().map_or(0, |k| k + 1);
                a.orphans.insert(
                    seq,
                    Orphan {
                        address,
                        origin,
                        api_id,
                    },
                );
                self.mark(state::key(state::P_ORPHAN, &seq.to_be_bytes()));
            }
            return;
        }
        for s in to {
            self.push_to(
                s,
                AppPush::Share {
                    address,
                    origin,
                    api_id,
                },
            );
        }
    }

    /// Publishes a debinding of `target`.
    pub(crate) fn debind(&mut self, target: &Ghid) {
        let Some(a) = self.agent.as_ref() else {
            return;
        };
        let x = a.me.make_debinding(target);
        self.stats.signed += 1;
        self.enqueue(OutItem::Object(x.to_bytes()));
    }

    /// Answers a share request with an `AK` or `NK` request of our own.
    fn answer_request(&mut self, origin: &Ghid, request: Ghid, ok: bool) {
        let Some(a) = self.agent.as_mut() else {
            return;
        };
        let Some(sp) = a.contacts.get(origin).cloned() else {
            return;
        };
        let payload = if ok {
            RequestPayload::Ack {
                target: request,
                status: 0,
            }
        } else {
            RequestPayload::Nak {
                target: request,
                status: 0,
            }
        };
        if let Ok(garq) = a.me.make_request(&sp, payload, &mut self.rng) {
            self.enqueue(OutItem::Object(garq.to_bytes()));
        }
    }
}
