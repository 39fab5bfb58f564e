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
//! own tokens, and enforces a per-connection message size limit. When apps
//! may come in after a login, and how long a login may take, is decided here
//! too ([`opening`]), with time as an input, so every host behaves alike.

mod opening;

use std::collections::BTreeMap;

use opening::{login_timed_out, Credentials, Opening};
pub use opening::{Policy, DEFAULT_MAX_APP_MESSAGE};
use zeroize::Zeroizing;

use crate::engine::{Action, AppReply, Engine, Input, SessionId, Step};
use crate::error::Error;
use crate::golix::ghid::Ghid;
use crate::wire::ipc::{push_request, to_app_request, GhidDialect, IpcErrorCode, IpcMessage, Side};
use crate::wire::remote::Message;
use crate::wire::WireError;

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
    /// Opening the account after a login: this many of the objects it
    /// lists are still to be read (said each time it changes, until
    /// [`Output::Loaded`]).
    Loading(usize),
    /// Apps may come in: the account is open and its objects are read, or
    /// the wait for them ended with `missing` still unread ([`Policy`]).
    Loaded {
        /// Objects not read yet (read when the server has them).
        missing: usize,
    },
    /// Logging in failed; nothing was changed. Codes are the engine's
    /// ([`Error::code`]) and `unreachable` or `timeout` when the login ran
    /// out of time ([`Policy::login_wait_ms`]). The service is finished: a
    /// host drops it (a login that completes after its time ran out is not
    /// taken up again).
    LoginFailed {
        /// The error's stable code ([`Error::code`]: `wrong_password`, ...).
        code: String,
        /// What went wrong, for people.
        message: String,
    },
    /// An account request the host made itself finished
    /// ([`Service::change_password`], [`Service::recovery_words`]).
    HostReply(Result<AppReply, Error>),
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
    /// The host's clock, in milliseconds (any monotonic origin): deadlines
    /// that passed take effect. Hosts send it at
    /// [`Service::next_deadline`] at the latest.
    Tick(u64),
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
    policy: Policy,
    opening: Opening,
    /// The clock, as last told.
    now: u64,
    server_up: bool,
    /// The server was up at some point during the current login.
    server_seen: bool,
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
            policy: Policy::default(),
            opening: Opening::Idle,
            now: 0,
            server_up: false,
            server_seen: false,
        }
    }

    /// Sets the limits and waits.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// The limits and waits in force.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Sets the largest app message accepted (larger ones close the connection).
    pub fn set_max_app_message(&mut self, bytes: usize) {
        self.policy.max_app_message = bytes;
    }

    /// The wall clock, in milliseconds since the Unix epoch: hosts set it
    /// before each input. The engine records it when an object's state
    /// changes (`?L` shows it) and acts on nothing by it; deadlines run on
    /// [`ServiceInput::Tick`]'s clock.
    pub fn set_wall_clock(&mut self, unix_ms: u64) {
        self.engine.set_now(unix_ms);
    }

    /// When the host must send [`ServiceInput::Tick`] next, on the clock it
    /// ticks with (none: no deadline pending; a time already past, such as
    /// 0, means as soon as it can).
    pub fn next_deadline(&self) -> Option<u64> {
        self.opening.deadline()
    }

    /// Logs in to an existing account on this (new) device, under the
    /// [`opening`] policy: starts once the server is up, fails with
    /// `unreachable` or `timeout` after [`Policy::login_wait_ms`], and lets
    /// apps in ([`Output::Loaded`]) once the account's objects are read.
    /// `now` is the host's clock.
    pub fn open_login(
        &mut self,
        user_id: Ghid,
        password: &[u8],
        now: u64,
    ) -> Result<Step<Output>, Error> {
        self.open_with(
            user_id,
            Credentials::Password(Zeroizing::new(password.to_vec())),
            now,
        )
    }

    /// Recovers an account with its recovery words on this (new) device
    /// and sets `new_password` ([`Engine::recover`]), under the same policy
    /// as [`Service::open_login`]. Words that are not a phrase are refused
    /// here, before anything waits for the server.
    pub fn open_recover(
        &mut self,
        user_id: Ghid,
        phrase: &str,
        new_password: &[u8],
        now: u64,
    ) -> Result<Step<Output>, Error> {
        crate::engine::recovery::parse_words(phrase)?;
        if new_password.is_empty() {
            return Err(Error::InvalidArgument("the new password is empty"));
        }
        self.open_with(
            user_id,
            Credentials::Recovery {
                phrase: Zeroizing::new(phrase.to_owned()),
                new_password: Zeroizing::new(new_password.to_vec()),
            },
            now,
        )
    }

    fn open_with(
        &mut self,
        user_id: Ghid,
        with: Credentials,
        now: u64,
    ) -> Result<Step<Output>, Error> {
        if self.engine.user_id().is_some() || !matches!(self.opening, Opening::Idle) {
            return Err(Error::NotAllowed(
                "this service already has an account or a login",
            ));
        }
        self.now = self.now.max(now);
        let deadline = self.now.saturating_add(self.policy.login_wait_ms);
        self.server_seen = self.server_up;
        if self.server_up {
            let out = self.begin_login(user_id, &with, deadline)?;
            return Ok(self.settle(out));
        }
        self.opening = Opening::Queued {
            user_id,
            with,
            deadline,
        };
        Ok(Step::default())
    }

    /// Hands the login to the engine (the server is up).
    fn begin_login(
        &mut self,
        user_id: Ghid,
        with: &Credentials,
        deadline: u64,
    ) -> Result<Step<Output>, Error> {
        let step = match with {
            Credentials::Password(p) => self.engine.login(user_id, p)?,
            Credentials::Recovery {
                phrase,
                new_password,
            } => self.engine.recover(user_id, phrase, new_password)?,
        };
        self.opening = Opening::LoggingIn { deadline };
        Ok(self.convert(step))
    }

    /// The engine (for status and diagnostics).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Creates an account (see [`Engine::create_account`]).
    pub fn create_account(&mut self, password: &[u8]) -> Result<Step<Output>, Error> {
        let actions = self.engine.create_account(password)?;
        let out = self.convert(actions);
        Ok(self.settle(out))
    }

    /// Creates an account and its recovery words (see
    /// [`Engine::create_account_with_words`]).
    pub fn create_account_with_words(
        &mut self,
        password: &[u8],
    ) -> Result<(Step<Output>, Zeroizing<String>), Error> {
        let (actions, words) = self.engine.create_account_with_words(password)?;
        let out = self.convert(actions);
        Ok((self.settle(out), words))
    }

    /// Changes the password (see [`Engine::change_password`]): the outcome
    /// comes as [`Output::HostReply`].
    pub fn change_password(&mut self, current: &[u8], new: &[u8]) -> Result<Step<Output>, Error> {
        let actions = self.engine.change_password(current, new)?;
        Ok(self.convert(actions))
    }

    /// New recovery words (see [`Engine::recovery_words`]): they come as
    /// [`Output::HostReply`].
    pub fn recovery_words(&mut self, password: &[u8]) -> Result<Step<Output>, Error> {
        let actions = self.engine.recovery_words(password)?;
        Ok(self.convert(actions))
    }

    /// Takes over the step an engine returned outside the service (after
    /// [`Engine::restore`]).
    pub fn adopt_step(&mut self, step: Step) -> Step<Output> {
        let out = self.convert(step);
        self.settle(out)
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: ServiceInput) -> Step<Output> {
        let out = self.input(input);
        self.settle(out)
    }

    fn input(&mut self, input: ServiceInput) -> Step<Output> {
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
                self.server_up = true;
                self.server_seen = true;
                let a = self.engine.handle(Input::ServerUp);
                let up = self.convert(a);
                match std::mem::take(&mut self.opening) {
                    Opening::Queued {
                        user_id,
                        with,
                        deadline,
                    } => match self.begin_login(user_id, &with, deadline) {
                        Ok(login) => up.followed_by(login),
                        Err(e) => {
                            self.opening = Opening::Done;
                            up.followed_by(Step::without_store(vec![Output::LoginFailed {
                                code: e.code().into(),
                                message: e.to_string(),
                            }]))
                        }
                    },
                    other => {
                        self.opening = other;
                        up
                    }
                }
            }
            ServiceInput::ServerDown => {
                self.server_up = false;
                let a = self.engine.handle(Input::ServerDown);
                self.convert(a)
            }
            ServiceInput::Tick(now) => {
                self.now = self.now.max(now);
                self.expire()
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
        if bytes.len() > self.policy.max_app_message {
            return Step::without_store(vec![Output::CloseApp(
                s,
                format!(
                    "message of {} bytes exceeds the limit of {}",
                    bytes.len(),
                    self.policy.max_app_message
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
            IpcMessage::Request { token, request }
                if request.native_only() && dialect == GhidDialect::Legacy =>
            {
                Step::without_store(vec![
                    self.to_app(s, IpcMessage::unknown_code_nak(token, request.code()))
                ])
            }
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

    /// Deadlines that passed (see [`opening`]).
    fn expire(&mut self) -> Step<Output> {
        if let Opening::Loading {
            deadline: deadline @ None,
            ..
        } = &mut self.opening
        {
            // The first tick since the account opened starts the wait.
            *deadline = Some(self.now.saturating_add(self.policy.load_wait_ms));
            return Step::default();
        }
        let Some(deadline) = self.opening.deadline() else {
            return Step::default();
        };
        if self.now < deadline {
            return Step::default();
        }
        match std::mem::replace(&mut self.opening, Opening::Done) {
            Opening::Queued { .. } | Opening::LoggingIn { .. } => {
                Step::without_store(vec![login_timed_out(self.server_seen)])
            }
            Opening::Loading { .. } => {
                let missing = self.engine.loading();
                Step::without_store(vec![
                    Output::Log(format!(
                        "{missing} of the account's objects are not on the server yet; going on without them (they are read when they arrive)"
                    )),
                    Output::Loaded { missing },
                ])
            }
            other => {
                self.opening = other;
                Step::default()
            }
        }
    }

    /// Moves the opening on after a step: the account opened, a login
    /// failed, objects were read.
    fn settle(&mut self, mut step: Step<Output>) -> Step<Output> {
        // Apps are in: nothing left to decide (the steady state, every step).
        if matches!(self.opening, Opening::Done) {
            return step;
        }
        let mut open_at_once = false;
        for o in step.actions() {
            match o {
                Output::Ready { .. } => {
                    self.opening = match std::mem::take(&mut self.opening) {
                        Opening::LoggingIn { .. } | Opening::Queued { .. } => Opening::Loading {
                            deadline: None,
                            told: None,
                        },
                        Opening::Idle => {
                            open_at_once = true;
                            Opening::Done
                        }
                        other => other,
                    };
                }
                Output::LoginFailed { .. } => self.opening = Opening::Done,
                _ => {}
            }
        }
        if open_at_once {
            step.then.push(Output::Loaded { missing: 0 });
        }
        if let Opening::Loading { told, .. } = &mut self.opening {
            let left = self.engine.loading();
            if left == 0 {
                self.opening = Opening::Done;
                step.then.push(Output::Loaded { missing: 0 });
            } else if *told != Some(left) {
                *told = Some(left);
                step.then.push(Output::Loading(left));
            }
        }
        step
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
                        code: Some(e.ipc_code()),
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
            Action::HostReply(r) => Output::HostReply(r),
        })
    }
}
