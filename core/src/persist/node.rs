//! A whole persistence server in one process, without IO: the
//! [`Dispatcher`] and the [`Subscriptions`] table driven one message at a
//! time. Connections are numbers chosen by the caller; [`Node::handle`] takes
//! one message and returns the messages to send, each with its connection.
//! The deterministic simulation runs it, and the local service embeds it as
//! its default store. `hypergolix serve` drives the same dispatcher and table
//! from many tasks (see [`super::dispatch`]).

use super::dispatch::{self, publish_answer, route, route_bytes, Dispatcher, Route};
use super::rules::Persister;
use super::store::PersistBackend;
use super::subs::{subscribe_answer, Applied, Subscriptions};
use crate::golix::ghid::Ghid;
use crate::wire::remote::Message;
use std::collections::BTreeSet;

/// A connection number.
pub type ConnId = u64;

/// A single server node. See the module documentation.
#[derive(Debug)]
pub struct Node<B: PersistBackend> {
    dispatcher: Dispatcher<B>,
    subs: Subscriptions,
    next_push_token: u16,
    /// Connections that asked for frames' containers with the frames
    /// (the websocket subprotocol `PUSH_CONTAINERS_SUBPROTOCOL`).
    containers: BTreeSet<ConnId>,
}

impl<B: PersistBackend> Node<B> {
    /// A node over `backend` with default rules.
    pub fn new(backend: B) -> Self {
        Self {
            dispatcher: Dispatcher::new(backend, Persister::default()),
            subs: Subscriptions::new(),
            next_push_token: 0,
            containers: BTreeSet::new(),
        }
    }

    /// The backend (for inspection in tests).
    pub fn backend(&self) -> &B {
        self.dispatcher.backend()
    }

    /// Stops the node, giving back its backend (a restart keeps the data
    /// and loses every connection and subscription).
    pub fn into_backend(self) -> B {
        self.dispatcher.into_backend()
    }

    /// A connection closed: its subscriptions go.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.subs.disconnect(conn);
        self.containers.remove(&conn);
    }

    /// `conn` asked (in its websocket handshake) for frames pushed with
    /// their containers (`!C`) until it disconnects.
    pub fn push_containers(&mut self, conn: ConnId) {
        self.containers.insert(conn);
    }

    fn push(
        &mut self,
        to: ConnId,
        subscription: Ghid,
        object: Vec<u8>,
        container: Option<Vec<u8>>,
    ) -> (ConnId, Message) {
        let token = self.next_push_token;
        self.next_push_token = self.next_push_token.wrapping_add(1);
        let container = container.filter(|_| self.containers.contains(&to));
        (to, dispatch::push(token, subscription, object, container))
    }

    /// Handles one decoded message from `conn`; returns what to send, and to
    /// whom (the answer to `conn` first).
    pub fn handle(&mut self, conn: ConnId, m: Message) -> Vec<(ConnId, Message)> {
        self.dispatch(conn, route(m))
    }

    /// Handles the bytes of one message from `conn`, as a networked server
    /// receives them. Bytes too short to frame close the connection (its
    /// subscriptions go; nothing is sent).
    pub fn handle_bytes(&mut self, conn: ConnId, bytes: &[u8]) -> Vec<(ConnId, Message)> {
        self.dispatch(conn, route_bytes(bytes))
    }

    fn dispatch(&mut self, conn: ConnId, route: Route) -> Vec<(ConnId, Message)> {
        match route {
            Route::Nothing => Vec::new(),
            Route::Close(_) => {
                self.disconnect(conn);
                Vec::new()
            }
            Route::Answer(m) => vec![(conn, m)],
            Route::Read { token, query } => vec![(conn, self.dispatcher.read(token, query))],
            Route::Subscription { token, op } => match self.subs.apply(conn, token, op) {
                Applied::Answer(m) => vec![(conn, m)],
                Applied::ReadPending { token, recipient } => {
                    let (answer, pending) =
                        subscribe_answer(token, self.dispatcher.pending(&recipient));
                    let mut out = vec![(conn, answer)];
                    for object in pending {
                        out.push(self.push(conn, recipient, object, None));
                    }
                    out
                }
            },
            Route::Publish { token, object } => {
                let outcome = self.dispatcher.prepare(object).and_then(|input| {
                    let mut results = self.dispatcher.commit(std::slice::from_ref(&input))?;
                    results.pop().unwrap_or_else(|| {
                        Err(crate::Error::Storage("commit returned no outcome".into()))
                    })
                });
                let (answer, notes) = match outcome {
                    Ok(o) => (Ok(o.new), o.notifications),
                    Err(e) => (Err(e), Vec::new()),
                };
                let mut out = vec![(conn, publish_answer(token, &answer))];
                for (n, to) in self.subs.fanout(&notes, Some(conn)) {
                    for c in to {
                        out.push(self.push(
                            c,
                            n.subscription,
                            n.object.clone(),
                            n.container.clone(),
                        ));
                    }
                }
                out
            }
        }
    }
}
