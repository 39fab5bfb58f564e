//! A whole persistence server without IO: the rules over a backend, plus
//! per-connection subscriptions and the `!!` pushes. Connections are numbers
//! chosen by the caller; [`Node::handle`] takes one decoded message and
//! returns the messages to send, each with its connection. The deterministic
//! simulation runs it in one process; a host can embed it as an in-process
//! store.

use std::collections::{BTreeMap, BTreeSet};

use super::rules::{PersistConfig, Persister};
use super::store::PersistBackend;
use crate::error::Result;
use crate::golix::ghid::Ghid;
use crate::golix::GolixObject;
use crate::wire::remote::{encode_ghid_list, ErrorCode, Message, Request};

/// A connection number.
pub type ConnId = u64;

/// A single server node. See the module documentation.
#[derive(Debug)]
pub struct Node<B: PersistBackend> {
    backend: B,
    rules: Persister,
    subs: BTreeMap<ConnId, BTreeSet<Ghid>>,
    next_push_token: u16,
}

impl<B: PersistBackend> Node<B> {
    /// A node over `backend` with default rules.
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            rules: Persister::new(PersistConfig::default()),
            subs: BTreeMap::new(),
            next_push_token: 0,
        }
    }

    /// The backend (for inspection in tests).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Stops the node, giving back its backend (a restart keeps the data
    /// and loses every connection and subscription).
    pub fn into_backend(self) -> B {
        self.backend
    }

    /// A connection closed: its subscriptions go.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.subs.remove(&conn);
    }

    fn push(&mut self, to: ConnId, subscription: Ghid, object: Vec<u8>) -> (ConnId, Message) {
        let token = self.next_push_token;
        self.next_push_token = self.next_push_token.wrapping_add(1);
        (
            to,
            Message::Request {
                token,
                request: Request::Push {
                    subscription,
                    object,
                },
            },
        )
    }

    /// Handles one message from `conn`; returns what to send, and to whom.
    pub fn handle(&mut self, conn: ConnId, m: Message) -> Vec<(ConnId, Message)> {
        let (token, request) = match m {
            Message::Request { token, request } => (token, request),
            // Answers to our pushes need nothing.
            Message::Ack { .. } | Message::Nak { .. } => return Vec::new(),
        };
        let mut out = Vec::new();
        let reply = match self.answer(conn, request, &mut out) {
            Ok(body) => Message::Ack { token, body },
            Err(e) => Message::Nak {
                token,
                code: ErrorCode::for_error(&e),
                message: e.to_string(),
            },
        };
        out.insert(0, (conn, reply));
        out
    }

    fn answer(
        &mut self,
        conn: ConnId,
        request: Request,
        out: &mut Vec<(ConnId, Message)>,
    ) -> Result<Vec<u8>> {
        let rules = &self.rules;
        match request {
            Request::Ping => Ok(vec![1]),
            Request::Publish(bytes) => {
                let outcome = self
                    .backend
                    .transact(&mut |txn| rules.publish(txn, &bytes))?;
                for n in outcome.notifications {
                    let to: Vec<ConnId> = self
                        .subs
                        .iter()
                        .filter(|(c, s)| **c != conn && s.contains(&n.subscription))
                        .map(|(c, _)| *c)
                        .collect();
                    for c in to {
                        let p = self.push(c, n.subscription, n.object.clone());
                        out.push(p);
                    }
                }
                Ok(vec![u8::from(outcome.new)])
            }
            Request::Get(g) => self.backend.read(&mut |txn| rules.get(txn, &g)),
            Request::Subscribe(g) => {
                self.subs.entry(conn).or_default().insert(g);
                let is_identity = self.backend.read(&mut |txn| {
                    Ok(matches!(
                        rules.get(txn, &g).ok().map(|b| GolixObject::parse(&b)),
                        Some(Ok(GolixObject::Gidc(_)))
                    ))
                })?;
                if is_identity {
                    let pending = self
                        .backend
                        .read(&mut |txn| rules.pending_requests(txn, &g))?;
                    for p in pending {
                        let m = self.push(conn, g, p);
                        out.push(m);
                    }
                }
                Ok(vec![1])
            }
            Request::Unsubscribe(g) => {
                let had = self.subs.get_mut(&conn).is_some_and(|s| s.remove(&g));
                Ok(vec![u8::from(had)])
            }
            Request::ListSubscriptions => {
                let s: Vec<Ghid> = self
                    .subs
                    .get(&conn)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                Ok(encode_ghid_list(&s))
            }
            Request::ListBindings(g) => Ok(encode_ghid_list(
                &self.backend.read(&mut |txn| rules.list_bindings(txn, &g))?,
            )),
            Request::ListDebindings(g) => Ok(encode_ghid_list(
                &self
                    .backend
                    .read(&mut |txn| rules.list_debindings(txn, &g))?,
            )),
            Request::Exists(g) => Ok(vec![u8::from(
                self.backend.read(&mut |txn| rules.exists(txn, &g))?,
            )]),
            Request::Disconnect => {
                self.subs.remove(&conn);
                Ok(vec![1])
            }
            Request::Push { .. } => {
                Err(crate::error::Error::Wire(crate::wire::WireError::BadBody {
                    code: "!!".into(),
                    why: "clients do not push",
                }))
            }
        }
    }
}
