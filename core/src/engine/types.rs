//! What goes in and out of the engine: app requests and pushes (defined in
//! `hypergolix-base`, which apps share), server messages, storage writes.
//! Everything here is plain data.

pub use hypergolix_base::app::*;

use crate::error::Error;
use crate::golix::ghid::Ghid;
use crate::wire::remote::Message;

/// An input to the engine.
#[derive(Debug, Clone)]
pub enum Input {
    /// An app connected.
    AppConnected(SessionId),
    /// An app disconnected (its token is free again).
    AppDisconnected(SessionId),
    /// An app request; `req` is the host's correlation number.
    App {
        /// The session.
        session: SessionId,
        /// Correlation number, echoed in the reply.
        req: u64,
        /// The request.
        request: AppRequest,
    },
    /// The connection to the persistence server is up.
    ServerUp,
    /// The connection to the persistence server is gone (in-flight requests are lost).
    ServerDown,
    /// A message from the persistence server.
    Server(Message),
}

/// One storage write: `None` deletes the key.
pub type StoreWrite = (Vec<u8>, Option<Vec<u8>>);

/// What the host must do after one input, in the order of its fields:
/// carry out [`early`](Step::early), make [`store`](Step::store) durable
/// (atomically), and only then carry out [`then`](Step::then). That order
/// is what makes an acknowledged update survive a crash: an answer or a
/// message in `then` never runs ahead of the write it stands on, while
/// what needs nothing of the write (pushes of state the server already
/// holds durably, a container stored when its frame was built) does not
/// wait for it.
///
/// `A` is what the actions are: the engine's [`Action`]s, or the local
/// service's outputs (`crate::service::Output`).
#[must_use = "a step's actions must be carried out, in order"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step<A = Action> {
    /// First: actions that need nothing of `store`.
    pub early: Vec<A>,
    /// Then: writes to apply atomically and durably (empty: none).
    pub store: Vec<StoreWrite>,
    /// Last: actions that may be carried out only once `store` is durable.
    pub then: Vec<A>,
}

impl<A> Default for Step<A> {
    fn default() -> Self {
        Self {
            early: Vec::new(),
            store: Vec::new(),
            then: Vec::new(),
        }
    }
}

impl<A> Step<A> {
    /// A step with no store write: `actions`, in order.
    pub fn without_store(actions: Vec<A>) -> Self {
        Self {
            early: actions,
            ..Self::default()
        }
    }

    /// Every action, in the order they are carried out (`early`, then
    /// `then`; the store write comes between them).
    pub fn actions(&self) -> impl Iterator<Item = &A> {
        self.early.iter().chain(&self.then)
    }

    /// This step followed by `next`, as one step: `next`'s write joins this
    /// one's (applied after it, atomically), and `next`'s early actions wait
    /// for it too (later than needed, never earlier), after this step's own.
    pub fn followed_by(mut self, next: Step<A>) -> Self {
        self.store.extend(next.store);
        self.then.extend(next.early);
        self.then.extend(next.then);
        self
    }

    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.early.is_empty() && self.store.is_empty() && self.then.is_empty()
    }

    /// The same step with each action turned into zero or one of another
    /// kind (in order, each staying on its side of the store write).
    pub fn map<B>(self, mut f: impl FnMut(A) -> Option<B>) -> Step<B> {
        Step {
            early: self.early.into_iter().filter_map(&mut f).collect(),
            store: self.store,
            then: self.then.into_iter().filter_map(&mut f).collect(),
        }
    }
}

/// Something the host must do; it comes in a [`Step`], which says when.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send a message to the persistence server.
    Send(Message),
    /// Answer an app request.
    Reply {
        /// The session.
        session: SessionId,
        /// The request's correlation number.
        req: u64,
        /// The answer.
        result: Result<AppReply, Error>,
    },
    /// Tell an app session something.
    Push {
        /// The session.
        session: SessionId,
        /// What.
        push: AppPush,
    },
    /// Login finished: the agent is ready (first action after a login or
    /// account creation completes).
    Ready {
        /// The user id (the account root's dynamic GHID).
        user_id: Ghid,
        /// The identity GHID (fingerprint).
        identity: Ghid,
    },
    /// Login failed; the engine holds no account. Nothing was changed.
    LoginFailed(Error),
    /// An account request the host made itself finished
    /// ([`Engine::change_password`](super::Engine::change_password),
    /// [`Engine::recovery_words`](super::Engine::recovery_words)): `Done`,
    /// or `Words` to show the user once.
    HostReply(Result<AppReply, Error>),
}

#[cfg(test)]
mod tests {
    use super::ApiId;

    #[test]
    fn api_ids_take_64_bytes_or_65_with_a_leading_zero_and_nothing_else() {
        let short = ApiId::parse(&[5u8; 64]).expect("64 bytes");
        let mut long = vec![0u8];
        long.extend_from_slice(&[5u8; 64]);
        assert_eq!(ApiId::parse(&long).expect("65 bytes"), short);
        assert_eq!(short, ApiId::from_app_bytes([5u8; 64]));
        let mut bad = long.clone();
        bad[0] = 1;
        assert!(ApiId::parse(&bad).is_err());
        for n in [0, 63, 66, 130] {
            assert!(ApiId::parse(&vec![0u8; n]).is_err(), "{n} bytes");
        }
    }
}
