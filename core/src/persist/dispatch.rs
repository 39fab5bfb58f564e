//! What a persistence server does with each message, for every server there
//! is: the in-process [`Node`](super::Node) (the deterministic simulation and
//! the local service's embedded store) and the networked `hypergolix serve`
//! in `wasi-host`. Both route a message with [`route`], answer reads with
//! [`Dispatcher::read`], verify and commit publishes with
//! [`Dispatcher::prepare`] and [`Dispatcher::commit`], answer them with
//! [`publish_answer`], keep subscriptions in one
//! [`Subscriptions`](super::Subscriptions) table and fan out with
//! [`Subscriptions::fanout`](super::Subscriptions::fanout).
//!
//! What stays in a host is IO and concurrency only: sockets, which task runs a
//! read or a commit, how many publishes one commit batches, assigning push
//! tokens, cutting off a consumer whose outbound queue is full, and relaying
//! other nodes' commits that a shared backend announces
//! ([`PersistBackend::announce`]).

use super::rules::{Checked, Persister, PublishOutcome};
use super::store::PersistBackend;
use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::wire::remote::{encode_ghid_list, ErrorCode, Message, Request};
use crate::wire::{Frame, WireError};

/// A read-only request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// `GT`: an object, or a dynamic GHID's current frame.
    Get(Ghid),
    /// `?E`: whether it is stored.
    Exists(Ghid),
    /// `?B`: its live bindings.
    ListBindings(Ghid),
    /// `?D`: its debinding.
    ListDebindings(Ghid),
}

/// A request about the sending connection's own subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubOp {
    /// `+S`: subscribe (then push the requests still pending for it).
    Subscribe(Ghid),
    /// `xS`: unsubscribe.
    Unsubscribe(Ghid),
    /// `?S`: list them.
    List,
    /// `XX`: drop them all.
    Disconnect,
}

/// What a message asks of the server.
#[derive(Debug)]
pub enum Route {
    /// Send this answer now (a ping, a refusal of an undecodable request).
    Answer(Message),
    /// A publish: [`Dispatcher::prepare`], [`Dispatcher::commit`], then
    /// [`publish_answer`] and the fan-out.
    Publish {
        /// The request's token.
        token: u16,
        /// The packed object.
        object: Vec<u8>,
    },
    /// A read: [`Dispatcher::read`].
    Read {
        /// The request's token.
        token: u16,
        /// What to read.
        query: Query,
    },
    /// A subscription request: [`Subscriptions::apply`](super::Subscriptions::apply).
    Subscription {
        /// The request's token.
        token: u16,
        /// What to do.
        op: SubOp,
    },
    /// Nothing to do (a client's answer to one of our pushes).
    Nothing,
    /// Close the connection: the message cannot even be framed.
    Close(&'static str),
}

/// Routes a decoded message.
pub fn route(m: Message) -> Route {
    let (token, request) = match m {
        Message::Request { token, request } => (token, request),
        Message::Ack { .. } | Message::Nak { .. } => return Route::Nothing,
    };
    let read = |query| Route::Read { token, query };
    let sub = |op| Route::Subscription { token, op };
    match request {
        Request::Ping => Route::Answer(Message::Ack {
            token,
            body: vec![1],
        }),
        Request::Publish(object) => Route::Publish { token, object },
        Request::Get(g) => read(Query::Get(g)),
        Request::Exists(g) => read(Query::Exists(g)),
        Request::ListBindings(g) => read(Query::ListBindings(g)),
        Request::ListDebindings(g) => read(Query::ListDebindings(g)),
        Request::Subscribe(g) => sub(SubOp::Subscribe(g)),
        Request::Unsubscribe(g) => sub(SubOp::Unsubscribe(g)),
        Request::ListSubscriptions => sub(SubOp::List),
        Request::Disconnect => sub(SubOp::Disconnect),
        Request::Push { .. } => Route::Answer(refusal(
            token,
            &Error::Wire(WireError::BadBody {
                code: "!!".into(),
                why: "only the server pushes",
            }),
        )),
    }
}

/// Routes the bytes of one websocket message: a message too short for its
/// header closes the connection; any other undecodable one is refused under
/// the token it carries.
pub fn route_bytes(bytes: &[u8]) -> Route {
    match Message::decode(bytes) {
        Ok(m) => route(m),
        Err(WireError::Truncated(_)) => Route::Close("message shorter than its header"),
        Err(e) => Route::Answer(refusal(
            Frame::peek_token(bytes).unwrap_or(0),
            &Error::Wire(e),
        )),
    }
}

/// The `NK` answer for an error.
pub fn refusal(token: u16, e: &Error) -> Message {
    Message::Nak {
        token,
        code: ErrorCode::for_error(e),
        message: e.to_string(),
    }
}

/// A push of `object` to a subscriber of `subscription`, under the
/// subscriber connection's next push token: `!!`, or `!C` with a
/// frame's `container` (only for a connection that asked for containers).
pub fn push(
    token: u16,
    subscription: Ghid,
    object: Vec<u8>,
    container: Option<Vec<u8>>,
) -> Message {
    Message::Request {
        token,
        request: Request::Push {
            subscription,
            object,
            container,
        },
    }
}

/// The answer to a publish once its commit is known: `AK` with whether the
/// object was new, or `NK`.
pub fn publish_answer(token: u16, result: &Result<bool>) -> Message {
    match result {
        Ok(new) => Message::Ack {
            token,
            body: vec![u8::from(*new)],
        },
        Err(e) => refusal(token, e),
    }
}

/// A publish on its way to a commit.
#[derive(Debug, Clone)]
pub enum Input {
    /// Not yet verified: the signer's identity was not cached, so the commit
    /// reads it from the store and verifies there.
    Raw(Vec<u8>),
    /// Parsed and signature-checked ahead of the commit (on the connection's
    /// own task in `hypergolix serve`, so verification runs in parallel).
    Checked(Box<Checked>),
}

/// The rules over one backend. Every method takes `&self`, so a host may call
/// them from many tasks at once (reads in parallel, commits from one writer).
#[derive(Debug)]
pub struct Dispatcher<B: PersistBackend> {
    backend: B,
    rules: Persister,
}

impl<B: PersistBackend> Dispatcher<B> {
    /// The rules over `backend`.
    pub fn new(backend: B, rules: Persister) -> Self {
        Self { backend, rules }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Gives back the backend.
    pub fn into_backend(self) -> B {
        self.backend
    }

    /// Parses a publish and verifies it now when its signer's identity is
    /// cached; otherwise leaves that to [`Dispatcher::commit`]. An object
    /// that does not parse is refused here.
    pub fn prepare(&self, object: Vec<u8>) -> Result<Input> {
        Ok(match self.rules.check_cached(object)? {
            Ok(checked) => Input::Checked(Box::new(checked)),
            Err(raw) => Input::Raw(raw),
        })
    }

    /// Applies publishes in order in one durable transaction (group commit).
    /// Each refusal is that publish's own (a refusal writes nothing); a
    /// storage failure fails the whole batch (`Err`): nothing was written and
    /// every publish in it must be refused. When it returns `Ok`, what it
    /// wrote is durable and the outcomes' notifications may be pushed.
    pub fn commit(&self, inputs: &[Input]) -> Result<Vec<Result<PublishOutcome>>> {
        let rules = &self.rules;
        // The keys the checked inputs will read, fetched at once by a
        // backend whose reads are round trips.
        let hints: Vec<Vec<u8>> = inputs
            .iter()
            .filter_map(|i| match i {
                Input::Checked(c) => Some(Persister::read_set(c)),
                Input::Raw(_) => None,
            })
            .flatten()
            .collect();
        self.backend.transact(&mut |txn| {
            txn.prefetch(&hints)?;
            let mut results = Vec::with_capacity(inputs.len());
            for input in inputs {
                let r = match input {
                    Input::Raw(bytes) => rules.publish(txn, bytes),
                    Input::Checked(c) => rules.publish_checked(txn, c),
                };
                match r {
                    Err(e @ Error::Storage(_)) => return Err(e),
                    r => results.push(r),
                }
            }
            Ok(results)
        })
    }

    /// Answers a read.
    pub fn read(&self, token: u16, query: Query) -> Message {
        match self.query(query) {
            Ok(body) => Message::Ack { token, body },
            Err(e) => refusal(token, &e),
        }
    }

    fn query(&self, query: Query) -> Result<Vec<u8>> {
        let rules = &self.rules;
        self.backend.read(&mut |txn| match query {
            Query::Get(g) => rules.get(txn, &g),
            Query::Exists(g) => Ok(vec![u8::from(rules.exists(txn, &g)?)]),
            Query::ListBindings(g) => Ok(encode_ghid_list(&rules.list_bindings(txn, &g)?)),
            Query::ListDebindings(g) => Ok(encode_ghid_list(&rules.list_debindings(txn, &g)?)),
        })
    }

    /// The current bytes of an object (what a relayed nudge pushes).
    pub fn get(&self, g: &Ghid) -> Result<Vec<u8>> {
        self.query(Query::Get(*g))
    }

    /// The requests still pending for `recipient`, pushed to a connection
    /// right after it subscribes to that identity (empty for any GHID that is
    /// not an identity with pending requests).
    pub fn pending(&self, recipient: &Ghid) -> Result<Vec<Vec<u8>>> {
        let rules = &self.rules;
        self.backend
            .read(&mut |txn| rules.pending_requests(txn, recipient))
    }

    /// What a subscriber of `sub` holds once up to date (see
    /// [`Persister::current`]): what a server pushes when it may have missed
    /// another node's commits.
    pub fn current(&self, sub: &Ghid) -> Result<Vec<Vec<u8>>> {
        let rules = &self.rules;
        self.backend.read(&mut |txn| rules.current(txn, sub))
    }

    /// Whether the store answers a read (a health check).
    pub fn healthy(&self) -> Result<()> {
        self.backend.read(&mut |_| Ok(()))
    }
}
