//! The engine's side of the remote protocol, by concern:
//! - this file: the requests in flight and the connection (up, down, a
//!   message from the server);
//! - [`outbox`]: publishing in order, frames built when their turn comes,
//!   the server's answers to what was published;
//! - [`incoming`]: pushed frames and debindings, applying a frame once its
//!   container is here, loading objects the account state lists;
//! - [`jobs`]: the retry-until-ready job model (see `docs/engine.md`);
//! - [`login`]: opening an account from the server;
//! - [`account`]: password changes, recovery words, recovery;
//! - [`shares`]: sharing, incoming requests, taking in shared objects;
//! - [`revoke`]: unshare, key rotation, new masters from an owner.

pub(crate) mod account;
mod incoming;
pub(crate) mod jobs;
mod login;
mod outbox;
mod revoke;
mod shares;

use super::state::Kind;
use super::types::Action;
use super::Engine;
use crate::golix::ghid::Ghid;
use crate::wire::remote::{ErrorCode, Message, Request};

pub(crate) use jobs::{Job, Jobs, ReplyTo};

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
    /// `?D` of the owner's binding of a received static object (its address).
    OwnerDebindings(Ghid),
    /// The ping after `+S` to a recovery identity: every request held
    /// for it has been pushed by the time its answer comes.
    RequestsListed(Ghid),
    /// Nothing to do with the answer (`+S`, `-S`).
    Ignore,
}

impl Engine {
    // ----------------------------------------------------------- connection

    /// Every request in flight is lost with the connection.
    pub(crate) fn forget_requests(&mut self) {
        self.pending.clear();
        self.in_flight.clear();
        self.work.fetching.clear();
        self.recovery_connection_lost();
    }

    pub(crate) fn on_server_up(&mut self) {
        self.forget_requests();
        self.work.unpark_all();
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
        let received_static: Vec<Ghid> = a
            .objects
            .values()
            .filter(|r| !r.entry.dynamic && !r.entry.owned && !r.entry.deleted)
            .map(|r| r.entry.address)
            .collect();
        let unloaded: Vec<Ghid> = a
            .objects
            .values()
            .filter(|r| !r.loaded && !r.entry.deleted && !r.entry.dynamic)
            .map(|r| r.entry.address)
            .collect();
        for address in unloaded {
            self.work.runnable.push(Job::Load {
                address,
                announce: None,
            });
        }
        self.send(Request::Subscribe(me), Pending::Ignore);
        for g in follow {
            self.send(Request::Subscribe(g), Pending::Ignore);
            self.send(Request::Get(g), Pending::CurrentFrame(g));
        }
        for g in received_static {
            self.watch_owner_binding(&g);
        }
        // Sharing work lives in the records, not in jobs that survive a
        // restart: a rotation or a handshake still owed is started again.
        let owned: Vec<Ghid> = self
            .agent
            .as_ref()
            .map(|a| {
                a.objects
                    .values()
                    .filter(|r| {
                        r.entry.owned && r.entry.dynamic && !r.entry.sharing.recipients.is_empty()
                    })
                    .map(|r| r.entry.address)
                    .collect()
            })
            .unwrap_or_default();
        for g in owned {
            self.reconcile_sharing(&g);
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
                        container,
                    },
            } => {
                self.out.push(Action::Send(Message::Ack {
                    token,
                    body: vec![1],
                }));
                self.on_push(subscription, &object, container);
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
}
