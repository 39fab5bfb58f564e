//! The local service without IO: the engine behind the 0.1.0 IPC protocol.
//! A host feeds it raw websocket payloads from apps and from the
//! persistence server and carries out what comes back, so that the host
//! holds no protocol logic at all: it accepts connections, moves bytes, and
//! keeps the store. The same type runs natively and inside the engine's
//! WASI component (`wasi-host/wit/engine.wit`).
//!
//! Per app connection it answers every request exactly once (`AK`/`NK`,
//! `NK 0000 b'XX'` for unknown codes), drops messages of another protocol
//! version (as 0.1.0 does), sends the engine's pushes as requests with its
//! own tokens, and enforces a per-connection message size limit.

use std::collections::BTreeMap;

use crate::engine::{Action, Engine, Input, SessionId, Step};
use crate::error::Error;
use crate::golix::ghid::Ghid;
use crate::wire::ipc::{push_request, to_app_request, GhidDialect, IpcErrorCode, IpcMessage, Side};
use crate::wire::remote::Message;
use crate::wire::WireError;

/// Default largest app message (0.1.0 used 10 MiB).
pub const DEFAULT_MAX_APP_MESSAGE: usize = 10 * 1024 * 1024;

/// Something the service tells its host to do; outputs come in a
/// [`Step`], which says when (before or after its store write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes to the persistence server.
    ToServer(Vec<u8>),
    /// Send these bytes to an app connection.
    ToApp(SessionId, Vec<u8>),
    /// Close an app connection (it broke the protocol or a limit).
    CloseApp(SessionId, String),
    /// The account is ready.
    Ready {
        /// The user id.
        user_id: Ghid,
        /// The identity GHID.
        identity: Ghid,
    },
    /// Logging in failed; nothing was changed.
    LoginFailed {
        /// The error's stable code ([`Error::code`]: `wrong_password`, ...).
        code: String,
        /// What went wrong, for people.
        message: String,
    },
    /// A line for the host's log.
    Log(String),
}

/// What a host feeds the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceInput {
    /// An app connected, with the GHID dialect it asked for.
    AppOpened(SessionId, GhidDialect),
    /// An app disconnected.
    AppClosed(SessionId),
    /// One websocket message from an app.
    AppBytes(SessionId, Vec<u8>),
    /// One websocket message from an app that went over the host's rate
    /// limit (the host owns the clock): a request is refused with `NK`
    /// without reaching the engine; answers to pushes are dropped.
    AppOverLimit(SessionId, Vec<u8>),
    /// The persistence server connection is up.
    ServerUp,
    /// It is down.
    ServerDown,
    /// One websocket message from the persistence server.
    ServerBytes(Vec<u8>),
}

struct Conn {
    next_token: u16,
    dialect: GhidDialect,
}

/// The local service. See the module documentation.
pub struct Service {
    engine: Engine,
    conns: BTreeMap<SessionId, Conn>,
    /// Request numbers: engine `req` → (session, IPC token).
    reqs: BTreeMap<u64, (SessionId, u16)>,
    next_req: u64,
    max_app_message: usize,
}

impl core::fmt::Debug for Service {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Service")
            .field("engine", &self.engine)
            .field("apps", &self.conns.len())
            .finish()
    }
}

impl Service {
    /// Wraps an engine.
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            conns: BTreeMap::new(),
            reqs: BTreeMap::new(),
            next_req: 1,
            max_app_message: DEFAULT_MAX_APP_MESSAGE,
        }
    }

    /// Sets the largest app message accepted (larger ones close the connection).
    pub fn set_max_app_message(&mut self, bytes: usize) {
        self.max_app_message = bytes;
    }

    /// The engine (for status and diagnostics).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Creates an account (see [`Engine::create_account`]).
    pub fn create_account(&mut self, password: &[u8]) -> Result<Step<Output>, Error> {
        let actions = self.engine.create_account(password)?;
        Ok(self.convert(actions))
    }

    /// Starts logging in (see [`Engine::login`]).
    pub fn login(&mut self, user_id: Ghid, password: &[u8]) -> Result<Step<Output>, Error> {
        let actions = self.engine.login(user_id, password)?;
        Ok(self.convert(actions))
    }

    /// Changes the password (see [`Engine::change_password`]).
    pub fn change_password(&mut self, password: &[u8]) -> Result<Step<Output>, Error> {
        let actions = self.engine.change_password(password)?;
        Ok(self.convert(actions))
    }

    /// Takes over the step an engine returned outside the service (after
    /// [`Engine::restore`]).
    pub fn adopt_step(&mut self, step: Step) -> Step<Output> {
        self.convert(step)
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: ServiceInput) -> Step<Output> {
        match input {
            ServiceInput::AppOpened(s, dialect) => {
                self.conns.insert(
                    s,
                    Conn {
                        next_token: 0,
                        dialect,
                    },
                );
                let a = self.engine.handle(Input::AppConnected(s));
                self.convert(a)
            }
            ServiceInput::AppClosed(s) => {
                self.conns.remove(&s);
                self.reqs.retain(|_, (sess, _)| *sess != s);
                let a = self.engine.handle(Input::AppDisconnected(s));
                self.convert(a)
            }
            ServiceInput::AppBytes(s, bytes) => self.app_bytes(s, &bytes),
            ServiceInput::AppOverLimit(s, bytes) => self.over_limit(s, &bytes),
            ServiceInput::ServerUp => {
                let a = self.engine.handle(Input::ServerUp);
                self.convert(a)
            }
            ServiceInput::ServerDown => {
                let a = self.engine.handle(Input::ServerDown);
                self.convert(a)
            }
            ServiceInput::ServerBytes(bytes) => match Message::decode(&bytes) {
                Ok(m) => {
                    let a = self.engine.handle(Input::Server(m));
                    self.convert(a)
                }
                Err(e) => Step::without_store(vec![Output::Log(format!(
                    "ignored a malformed message from the server: {e}"
                ))]),
            },
        }
    }

    fn app_bytes(&mut self, s: SessionId, bytes: &[u8]) -> Step<Output> {
        let Some(dialect) = self.conns.get(&s).map(|c| c.dialect) else {
            return Step::default();
        };
        if bytes.len() > self.max_app_message {
            return Step::without_store(vec![Output::CloseApp(
                s,
                format!(
                    "message of {} bytes exceeds the limit of {}",
                    bytes.len(),
                    self.max_app_message
                ),
            )]);
        }
        let m = match IpcMessage::decode(Side::Link, bytes) {
            Ok(m) => m,
            // 0.1.0 drops messages of another version without an answer.
            Err(WireError::BadVersion(_)) => return Step::default(),
            Err(WireError::Truncated(_)) => {
                return Step::without_store(vec![Output::CloseApp(
                    s,
                    "a message shorter than its header".into(),
                )])
            }
            Err(e) => {
                // A known command with a bad body: answer NK so the app's
                // waiter does not hang.
                let token = crate::wire::Frame::peek_token(bytes).unwrap_or(0);
                return Step::without_store(vec![self.to_app(
                    s,
                    IpcMessage::Nak {
                        token,
                        code: Some(IpcErrorCode::MalformedGolixPrimitive),
                        message: e.to_string(),
                    },
                )]);
            }
        };
        match m {
            IpcMessage::Request { token, request } => {
                match to_app_request(dialect.request_inward(request)) {
                    Some(r) => {
                        let req = self.next_req;
                        self.next_req += 1;
                        self.reqs.insert(req, (s, token));
                        let a = self.engine.handle(Input::App {
                            session: s,
                            req,
                            request: r,
                        });
                        self.convert(a)
                    }
                    None => Step::without_store(vec![self.to_app(
                        s,
                        IpcMessage::Nak {
                            token,
                            code: Some(IpcErrorCode::IpcError),
                            message: "apps do not send this command".into(),
                        },
                    )]),
                }
            }
            IpcMessage::Unknown { token, code } => Step::without_store(vec![
                self.to_app(s, IpcMessage::unknown_code_nak(token, code))
            ]),
            // Answers to our pushes: nothing waits for them.
            IpcMessage::Ack { .. } | IpcMessage::Nak { .. } => Step::default(),
        }
    }

    fn over_limit(&mut self, s: SessionId, bytes: &[u8]) -> Step<Output> {
        if !self.conns.contains_key(&s) {
            return Step::default();
        }
        match IpcMessage::decode(Side::Link, bytes) {
            Ok(IpcMessage::Ack { .. } | IpcMessage::Nak { .. }) | Err(WireError::BadVersion(_)) => {
                Step::default()
            }
            _ => match crate::wire::Frame::peek_token(bytes) {
                Some(token) => Step::without_store(vec![self.to_app(
                    s,
                    IpcMessage::Nak {
                        token,
                        code: Some(IpcErrorCode::IpcError),
                        message: "rate limit exceeded: slow down and retry".into(),
                    },
                )]),
                None => Step::without_store(vec![Output::CloseApp(
                    s,
                    "a message shorter than its header".into(),
                )]),
            },
        }
    }

    fn to_app(&self, s: SessionId, m: IpcMessage) -> Output {
        Output::ToApp(s, m.encode())
    }

    fn convert(&mut self, step: Step) -> Step<Output> {
        step.map(|a| self.output(a))
    }

    /// What an engine action is for the host (None: nothing, e.g. the
    /// answer to a request of a connection that is gone).
    fn output(&mut self, a: Action) -> Option<Output> {
        Some(match a {
            Action::Send(m) => Output::ToServer(m.encode()),
            Action::Reply { req, result, .. } => {
                let (s, token) = self.reqs.remove(&req)?;
                let dialect = self.conns.get(&s).map(|c| c.dialect).unwrap_or_default();
                let m = match result {
                    Ok(r) => IpcMessage::Ack {
                        token,
                        body: dialect.reply_body(&r),
                    },
                    Err(e) => IpcMessage::Nak {
                        token,
                        code: Some(IpcErrorCode::for_error(&e)),
                        message: e.to_string(),
                    },
                };
                self.to_app(s, m)
            }
            Action::Push { session, push } => {
                let c = self.conns.get_mut(&session)?;
                let token = c.next_token;
                c.next_token = c.next_token.wrapping_add(1);
                let m = IpcMessage::Request {
                    token,
                    request: c.dialect.request_outward(push_request(&push)),
                };
                self.to_app(session, m)
            }
            Action::Ready { user_id, identity } => Output::Ready { user_id, identity },
            Action::LoginFailed(e) => Output::LoginFailed {
                code: e.code().into(),
                message: e.to_string(),
            },
        })
    }
}
