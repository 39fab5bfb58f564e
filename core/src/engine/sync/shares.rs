//! Sharing: sending an object's key to a recipient (once its identity is
//! here), opening requests addressed to this agent, taking in shared
//! objects, and the answers and debindings that close a request.

use std::cell::Cell;

use super::super::keys::frame_secret;
use super::super::record::{Entry, Payload};
use super::super::state::{self, Kind, ObjRecord, Orphan, OutItem};
use super::super::types::{Action, ApiId, AppPush, DEFAULT_LEGROOM};
use super::super::Engine;
use super::jobs::{need, Job, Need, Progress};
use super::Pending;
use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::golix::{Garq, Geoc, GolixObject, RequestPayload, Secret};
use crate::wire::remote::Request;

impl Engine {
    pub(crate) fn step_share(
        &mut self,
        session: u64,
        req: u64,
        address: Ghid,
        recipient: Ghid,
    ) -> Result<Progress> {
        let sp = match self.need_identity(&recipient) {
            Need::Have(sp) => sp,
            Need::Wait => return Ok(Progress::Waiting),
            Need::Missing => return Err(Error::UnknownRecipient),
        };
        let token = self.sessions.get(&session).and_then(|s| s.token);
        if self
            .agent()?
            .objects
            .get(&address)
            .is_none_or(|r| r.entry.deleted)
        {
            return Err(Error::UnknownObject);
        }
        if !self.note_shared(&address, &recipient) {
            // Shared again after an unshare: a new master is made for it.
            self.reshares.insert((address, recipient), token);
            self.reconcile_sharing(&address);
            self.out.push(Action::Reply {
                session,
                req,
                result: Ok(super::super::types::AppReply::Done),
            });
            return Ok(Progress::Done);
        }
        self.send_handshake(address, &sp, token)?;
        self.out.push(Action::Reply {
            session,
            req,
            result: Ok(super::super::types::AppReply::Done),
        });
        Ok(Progress::Done)
    }

    /// Sends `recipient` the object's current master in a handshake, and
    /// keeps the request so its answer is consumed (and debound) and told to
    /// the app of `token`, if any.
    pub(crate) fn send_handshake(
        &mut self,
        address: Ghid,
        recipient: &crate::golix::SecondParty,
        token: Option<super::super::types::AppToken>,
    ) -> Result<()> {
        let a = self
            .agent
            .as_mut()
            .ok_or(Error::NotReady("not logged in"))?;
        let rec = a.objects.get(&address).ok_or(Error::UnknownObject)?;
        let payload = RequestPayload::Handshake {
            target: address,
            secret: rec.entry.secret.clone(),
        };
        let garq = a.me.make_request(recipient, payload, &mut self.rng)?;
        let g = garq.ghid();
        a.shares_out.insert(
            g,
            state::ShareOut {
                address,
                recipient: recipient.ghid(),
                token,
            },
        );
        self.mark(state::key(state::P_SHARE, &g.to_bytes()));
        self.enqueue(OutItem::Object(garq.to_bytes()));
        Ok(())
    }

    pub(crate) fn step_incoming(&mut self, garq: &Garq) -> Result<Progress> {
        let g = garq.ghid();
        if self.agent.as_ref().is_none_or(|a| a.seen.contains(&g)) {
            return Ok(Progress::Done);
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
                    Need::Wait => return Ok(Progress::Waiting),
                    Need::Missing => {
                        self.remember(g);
                        self.debind(&g);
                        return Ok(Progress::Done);
                    }
                }
            }
            Err(_) => {
                // Garbage addressed to us: let the server drop it.
                self.remember(g);
                self.debind(&g);
                return Ok(Progress::Done);
            }
        };
        match content.payload {
            // Remembered only once the object is taken in: a crash before
            // then leaves the request at the server, which sends it again.
            RequestPayload::Handshake { target, secret } => {
                self.work.runnable.push(Job::Adopt {
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
        Ok(Progress::Done)
    }

    pub(crate) fn remember(&mut self, g: Ghid) {
        if let Some(a) = self.agent.as_mut() {
            a.seen.insert(g);
        }
        self.mark(state::key(state::P_SEEN, &g.to_bytes()));
    }

    pub(crate) fn step_adopt(
        &mut self,
        address: Ghid,
        secret: &Secret,
        origin: Ghid,
        request: Option<Ghid>,
    ) -> Result<Progress> {
        let held = self
            .agent
            .as_ref()
            .and_then(|a| a.objects.get(&address))
            .map(|r| !r.entry.deleted);
        if held == Some(false) {
            // Deleted here (a deletion wins on every device): a handshake
            // for it, such as a rotation's, does not bring it back.
            if let Some(r) = request {
                self.finish_request(origin, r);
            }
            return Ok(Progress::Done);
        }
        if held == Some(true) {
            self.take_master(&address, secret, &origin);
        } else {
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
                        Need::Wait => return Ok(Progress::Waiting),
                        Need::Missing => {
                            frame.verify(&binder)?;
                            // The frame is here before its container (frames
                            // are uploaded first): keep the object, and the
                            // frame's push completes it when the container lands.
                            self.adopt_pending(address, secret, binder.ghid(), origin);
                            if let Some(r) = request {
                                self.finish_request(origin, r);
                            }
                            return Ok(Progress::Done);
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
                    sharing: Default::default(),
                },
                state: p.state,
                changed_ms: self.now_ms,
                dirty: false,
                current,
                container: Some(container),
                unsent: None,
                rotating: None,
                rotating_withheld: Vec::new(),
                rekey_only: false,
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
            } else {
                self.watch_owner_binding(&address);
            }
            self.account_changed();
            self.deliver_share(address, origin, api_id);
        }
        if let Some(r) = request {
            self.finish_request(origin, r);
        }
        Ok(Progress::Done)
    }

    /// Accepts a share request once its object is held: answer, debind.
    pub(crate) fn finish_request(&mut self, origin: Ghid, r: Ghid) {
        if self.agent.as_ref().is_some_and(|a| !a.seen.contains(&r)) {
            self.remember(r);
            self.answer_request(&origin, r, true);
            self.debind(&r);
        }
    }

    /// Keeps a shared dynamic object whose state cannot be read yet.
    pub(crate) fn adopt_pending(
        &mut self,
        address: Ghid,
        secret: &Secret,
        author: Ghid,
        origin: Ghid,
    ) {
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
                    api_id: ApiId([0; super::super::types::API_ID_LEN]),
                    dynamic: true,
                    owned,
                    is_link: false,
                    deleted: false,
                    private: None,
                    legroom: DEFAULT_LEGROOM,
                    secret: secret.clone(),
                    sharing: Default::default(),
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
    pub(crate) fn answer_request(&mut self, origin: &Ghid, request: Ghid, ok: bool) {
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
