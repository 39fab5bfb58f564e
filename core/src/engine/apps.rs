//! App sessions: tokens, api registrations, startup objects, and the object
//! operations of the IPC API (new, get, update, share, freeze, hold, discard,
//! delete). Private objects are visible only to the token that made them.

use super::record::{Entry, Payload};
use super::state::{self, Kind, ObjRecord, OutItem, Session};
use super::sync::account::RootChange;
use super::sync::{Job, Pending, ReplyTo};
use super::types::{AppPush, AppReply, AppRequest, AppToken, Listed, NewObject, ObjDef, SessionId};
use super::Engine;
use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::golix::secret::FreshSecret;
use crate::golix::suite::cs3;
use crate::golix::Gobs;
use crate::wire::remote::Request;

/// The app's view of a record.
pub(crate) fn objdef(r: &ObjRecord) -> ObjDef {
    ObjDef {
        address: r.entry.address,
        author: r.entry.author,
        api_id: r.entry.api_id,
        private: r.entry.private.is_some(),
        dynamic: r.entry.dynamic,
        owned: r.entry.owned,
        legroom: r.entry.legroom,
        is_link: r.entry.is_link,
        state: r.state.clone(),
    }
}

fn visible(r: &ObjRecord, s: &Session) -> bool {
    r.kind == Kind::App
        && !r.entry.deleted
        && (r.entry.private.is_none() || r.entry.private == s.token)
}

impl Engine {
    /// Handles one app request; `None` means the reply comes later.
    pub(crate) fn app_request(
        &mut self,
        session: SessionId,
        req: u64,
        request: AppRequest,
    ) -> Option<Result<AppReply>> {
        self.sessions.entry(session).or_default();
        if self.agent.is_none() {
            return Some(Err(Error::NotReady("no account is logged in")));
        }
        match request {
            AppRequest::Share { address, recipient } => match self.check_share(session, &address) {
                Ok(()) => {
                    self.work.runnable.push(Job::Share {
                        session,
                        req,
                        address,
                        recipient,
                    });
                    None
                }
                Err(e) => Some(Err(e)),
            },
            AppRequest::ChangePassword { current, new } => {
                let change = RootChange::Password(new.0);
                let to = ReplyTo::App { session, req };
                match self.start_reroot(to, current.as_bytes(), change) {
                    Ok(()) => None,
                    Err(e) => Some(Err(e)),
                }
            }
            AppRequest::RecoveryWords { password } => {
                let to = ReplyTo::App { session, req };
                match self.start_reroot(to, password.as_bytes(), RootChange::RecoveryWords) {
                    Ok(()) => None,
                    Err(e) => Some(Err(e)),
                }
            }
            other => Some(self.app_request_now(session, other)),
        }
    }

    fn session(&self, session: SessionId) -> Result<&Session> {
        self.sessions
            .get(&session)
            .ok_or(Error::NotReady("unknown session"))
    }

    /// The record of `address` if this session may see it.
    pub(crate) fn visible_record(&self, session: SessionId, address: &Ghid) -> Result<&ObjRecord> {
        let s = self.session(session)?;
        let r = self
            .agent()?
            .objects
            .get(address)
            .filter(|r| visible(r, s))
            .ok_or(Error::UnknownObject)?;
        if !r.loaded {
            return Err(Error::NotReady("the object is still being fetched"));
        }
        Ok(r)
    }

    /// `?L`: every object the session may see (see [`visible`]): the same
    /// rule as for reading one, so a private object of another app token is
    /// never listed.
    fn list(&self, session: SessionId) -> Result<AppReply> {
        let s = self.session(session)?;
        Ok(AppReply::Listing(
            self.agent()?
                .objects
                .values()
                .filter(|r| visible(r, s))
                .map(|r| Listed {
                    address: r.entry.address,
                    author: r.entry.author,
                    api_id: r.entry.api_id,
                    dynamic: r.entry.dynamic,
                    owned: r.entry.owned,
                    private: r.entry.private.is_some(),
                    is_link: r.entry.is_link,
                    loaded: r.loaded,
                    size: r.state.len() as u64,
                    changed_ms: r.changed_ms,
                })
                .collect(),
        ))
    }

    fn check_share(&self, session: SessionId, address: &Ghid) -> Result<()> {
        let r = self.visible_record(session, address)?;
        if r.entry.private.is_some() {
            return Err(Error::NotAllowed("private objects cannot be shared"));
        }
        Ok(())
    }

    fn token_of(&self, session: SessionId) -> Result<AppToken> {
        self.session(session)?
            .token
            .ok_or(Error::NotAllowed("this needs an app token (+T)"))
    }

    fn app_request_now(&mut self, session: SessionId, request: AppRequest) -> Result<AppReply> {
        match request {
            AppRequest::Whoami => Ok(AppReply::Ghid(self.my_ghid()?)),
            AppRequest::SetToken(t) => self.set_token(session, t),
            AppRequest::GetStartup => {
                let t = self.token_of(session)?;
                Ok(AppReply::Startup(
                    self.agent()?.tokens.get(&t).copied().flatten(),
                ))
            }
            AppRequest::RegisterStartup(g) => {
                let t = self.token_of(session)?;
                self.visible_record(session, &g)?;
                self.agent_mut()?.tokens.insert(t, Some(g));
                self.mark(state::key(state::P_TOKEN, &t.0));
                self.account_changed();
                Ok(AppReply::Done)
            }
            AppRequest::DeregisterStartup => {
                let t = self.token_of(session)?;
                self.agent_mut()?.tokens.insert(t, None);
                self.mark(state::key(state::P_TOKEN, &t.0));
                self.account_changed();
                Ok(AppReply::Done)
            }
            AppRequest::RegisterApi(api) => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.apis.insert(api);
                }
                // Shares that arrived while no app listened for this api_id.
                let waiting: Vec<(u64, state::Orphan)> = self
                    .agent()?
                    .orphans
                    .iter()
                    .filter(|(_, o)| o.api_id == api)
                    .map(|(k, o)| (*k, o.clone()))
                    .collect();
                for (k, o) in waiting {
                    self.agent_mut()?.orphans.remove(&k);
                    self.mark(state::key(state::P_ORPHAN, &k.to_be_bytes()));
                    self.push_to(
                        session,
                        AppPush::Share {
                            address: o.address,
                            origin: o.origin,
                            api_id: o.api_id,
                        },
                    );
                }
                Ok(AppReply::Done)
            }
            AppRequest::DeregisterApi(api) => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.apis.remove(&api);
                }
                Ok(AppReply::Done)
            }
            AppRequest::New(n) => self.new_object(session, n),
            AppRequest::Get(g) => {
                let def = objdef(self.visible_record(session, &g)?);
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.tracking.insert(g);
                }
                Ok(AppReply::Object(def))
            }
            AppRequest::Update { address, state } => self.update(session, address, state),
            AppRequest::Sync(g) => {
                let r = self.visible_record(session, &g)?;
                if r.entry.dynamic {
                    self.send(Request::Get(g), Pending::CurrentFrame(g));
                }
                Ok(AppReply::Done)
            }
            AppRequest::Share { .. }
            | AppRequest::ChangePassword { .. }
            | AppRequest::RecoveryWords { .. } => {
                Err(Error::InvalidArgument("handled asynchronously"))
            }
            AppRequest::Freeze(g) => {
                let r = self.visible_record(session, &g)?;
                if !r.entry.dynamic {
                    return Err(Error::NotAllowed("only dynamic objects can be frozen"));
                }
                let n = NewObject {
                    api_id: r.entry.api_id,
                    private: r.entry.private.is_some(),
                    dynamic: false,
                    legroom: 0,
                    is_link: r.entry.is_link,
                    state: r.state.clone(),
                };
                self.new_object(session, n)
            }
            AppRequest::Hold(g) => {
                let r = self.visible_record(session, &g)?;
                if r.held.is_some() {
                    return Ok(AppReply::Done);
                }
                let gobs = self.agent()?.me.make_static_binding(&g);
                self.stats.signed += 1;
                let held = gobs.ghid();
                self.enqueue(OutItem::Object(gobs.to_bytes()));
                if let Some(r) = self.agent_mut()?.objects.get_mut(&g) {
                    r.held = Some(held);
                }
                self.mark_object(&g);
                Ok(AppReply::Done)
            }
            AppRequest::Discard(g) => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.tracking.remove(&g);
                }
                Ok(AppReply::Done)
            }
            AppRequest::Delete(g) => self.delete(session, g),
            AppRequest::Unshare { address, recipient } => self.unshare(session, address, recipient),
            AppRequest::SharedWith(g) => self.shared_with(session, &g),
            AppRequest::List => self.list(session),
        }
    }

    fn set_token(&mut self, session: SessionId, t: AppToken) -> Result<AppReply> {
        let t = if t.is_null() {
            let mut b = [0u8; 16];
            rand_core::RngCore::fill_bytes(&mut self.rng, &mut b);
            let t = AppToken(b);
            self.agent_mut()?.tokens.insert(t, None);
            self.mark(state::key(state::P_TOKEN, &t.0));
            self.account_changed();
            t
        } else {
            if !self.agent()?.tokens.contains_key(&t) {
                return Err(Error::NotAllowed("unknown app token"));
            }
            if self
                .sessions
                .iter()
                .any(|(id, s)| *id != session && s.token == Some(t))
            {
                return Err(Error::NotAllowed(
                    "the token is in use by another connection",
                ));
            }
            t
        };
        if let Some(s) = self.sessions.get_mut(&session) {
            s.token = Some(t);
        }
        Ok(AppReply::Token(t))
    }

    fn new_object(&mut self, session: SessionId, n: NewObject) -> Result<AppReply> {
        let now = self.now_ms;
        let private = if n.private {
            Some(self.token_of(session)?)
        } else {
            None
        };
        if n.is_link {
            Ghid::from_bytes(&n.state)
                .map_err(|_| Error::InvalidArgument("a link's state must be a 65-byte address"))?;
        }
        let legroom = if n.legroom == 0 {
            self.cfg.default_legroom
        } else {
            n.legroom
        };
        let payload = Payload {
            api_id: n.api_id,
            is_link: n.is_link,
            state: n.state.clone(),
        }
        .to_bytes();
        let me = self.my_ghid()?;
        let record = |address, secret, dynamic, current, container, unsent, held| ObjRecord {
            kind: Kind::App,
            entry: Entry {
                address,
                author: me,
                api_id: n.api_id,
                dynamic,
                owned: true,
                is_link: n.is_link,
                deleted: false,
                private,
                legroom: if dynamic { legroom } else { 0 },
                secret,
                sharing: Default::default(),
            },
            state: n.state.clone(),
            dirty: false,
            current,
            container,
            unsent,
            rotating: None,
            rotating_withheld: Vec::new(),
            rekey_only: false,
            held,
            loaded: true,
            changed_ms: now,
        };
        let address = if n.dynamic {
            let master = FreshSecret::generate(cs3::SUITE_ID, &mut self.rng)?.into_secret();
            let (frame, geoc) = super::first_frame(&self.agent()?.me, &master, &payload)?;
            self.stats.signed += 2;
            let address = frame.dynamic_ghid();
            let rec = record(
                address,
                master,
                true,
                None,
                None,
                Some((frame.to_bytes(), geoc)),
                None,
            );
            self.agent_mut()?.objects.insert(address, rec);
            self.enqueue(OutItem::Flush(address));
            self.send(Request::Subscribe(address), Pending::Ignore);
            address
        } else {
            let fresh = FreshSecret::generate(cs3::SUITE_ID, &mut self.rng)?;
            let a = self.agent()?;
            let (geoc, secret) = a.me.make_container(fresh, &payload)?;
            let gobs = a.me.make_static_binding(&geoc.ghid());
            self.stats.signed += 2;
            let address = geoc.ghid();
            let rec = record(
                address,
                secret,
                false,
                None,
                Some(address),
                None,
                Some(gobs.ghid()),
            );
            self.agent_mut()?.objects.insert(address, rec);
            // The binding first: servers refuse unbound containers.
            self.enqueue(OutItem::Object(gobs.to_bytes()));
            self.enqueue(OutItem::Object(geoc.to_bytes()));
            address
        };
        self.mark_object(&address);
        self.account_changed();
        if let Some(s) = self.sessions.get_mut(&session) {
            s.tracking.insert(address);
        }
        Ok(AppReply::Ghid(address))
    }

    fn update(&mut self, session: SessionId, address: Ghid, state: Vec<u8>) -> Result<AppReply> {
        let now = self.now_ms;
        let r = self.visible_record(session, &address)?;
        if !r.entry.dynamic {
            return Err(Error::NotAllowed("static objects cannot be updated"));
        }
        if !r.entry.owned {
            return Err(Error::NotAllowed("only the object's author can update it"));
        }
        if r.entry.is_link {
            Ghid::from_bytes(&state)
                .map_err(|_| Error::InvalidArgument("a link's state must be a 65-byte address"))?;
        }
        let def = {
            let rec = self
                .agent_mut()?
                .objects
                .get_mut(&address)
                .ok_or(Error::UnknownObject)?;
            rec.state = state;
            rec.dirty = true;
            rec.changed_ms = now;
            objdef(rec)
        };
        self.mark_object(&address);
        self.enqueue(OutItem::Flush(address));
        if let Some(s) = self.sessions.get_mut(&session) {
            s.tracking.insert(address);
        }
        let others: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(id, s)| **id != session && s.tracking.contains(&address))
            .map(|(id, _)| *id)
            .collect();
        for s in others {
            self.push_to(s, AppPush::Update(def.clone()));
        }
        Ok(AppReply::Done)
    }

    fn delete(&mut self, session: SessionId, address: Ghid) -> Result<AppReply> {
        let r = self.visible_record(session, &address)?;
        let (owned, dynamic, held) = (r.entry.owned, r.entry.dynamic, r.held);
        if owned && dynamic {
            self.debind(&address);
        }
        let binding = if owned && !dynamic {
            // The agent's binding of its static object, whichever of its
            // devices made it: the same identity and container give the
            // same GHID (a device that learned the object from the account
            // state has no `held` of its own). Its debinding is also how
            // the recipients learn of the delete.
            Some(Gobs::ghid_for(cs3::SUITE_ID, &self.my_ghid()?, &address))
        } else {
            held
        };
        if let Some(h) = binding {
            self.debind(&h);
        }
        if let Some(s) = self.sessions.get_mut(&session) {
            s.tracking.remove(&address);
        }
        self.mark_deleted(&address);
        Ok(AppReply::Done)
    }
}
