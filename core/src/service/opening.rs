//! How the local service opens an account and when apps may come in: one
//! policy for every host, with time as an input (a host passes its clock in
//! [`ServiceInput::Tick`](super::ServiceInput::Tick) and wakes the service at
//! [`Service::next_deadline`](super::Service::next_deadline)).
//!
//! - A login on a new device waits for the server: it starts when the server
//!   is up. If the account is not open within [`Policy::login_wait_ms`], the
//!   login fails with `unreachable` (the server never answered) or `timeout`
//!   (it was reached, but the login did not complete).
//! - Once such a login has opened the account, apps wait until every object
//!   it lists is read ([`Engine::loading`](crate::engine::Engine::loading) is
//!   0), with [`Output::Loading`] as progress; after
//!   [`Policy::load_wait_ms`] they come in without the missing ones
//!   ([`Output::Loaded`] says how many), which are read when the server has
//!   them.
//! - A new account, or one restored from the local store, lets apps in as
//!   soon as it is open.

use zeroize::Zeroizing;

use super::Output;
use crate::golix::ghid::Ghid;

/// Limits and waits, the same on every host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Largest app message accepted; a larger one closes the connection.
    pub max_app_message: usize,
    /// How long a login on a new device may take to open the account,
    /// waiting for the server included.
    pub login_wait_ms: u64,
    /// How long apps wait, once such a login opened the account, for the
    /// objects it lists.
    pub load_wait_ms: u64,
}

/// Default largest app message (0.1.0 used 10 MiB).
pub const DEFAULT_MAX_APP_MESSAGE: usize = 10 * 1024 * 1024;

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_app_message: DEFAULT_MAX_APP_MESSAGE,
            login_wait_ms: 30_000,
            load_wait_ms: 60_000,
        }
    }
}

/// How a new device opens an existing account.
pub enum Credentials {
    /// With its password.
    Password(Zeroizing<Vec<u8>>),
    /// With its recovery words, setting a new password.
    Recovery {
        /// The words.
        phrase: Zeroizing<String>,
        /// The password from now on.
        new_password: Zeroizing<Vec<u8>>,
    },
}

impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Credentials::Password(_) => "Password(..)",
            Credentials::Recovery { .. } => "Recovery(..)",
        })
    }
}

/// Where opening the account stands.
#[derive(Debug, Default)]
pub(super) enum Opening {
    /// Nothing asked yet (or an account restored: it opens on its own).
    #[default]
    Idle,
    /// A login waits for the server.
    Queued {
        user_id: Ghid,
        with: Credentials,
        deadline: u64,
    },
    /// A login was started; the account is not open yet.
    LoggingIn { deadline: u64 },
    /// Open after a login: apps wait for its objects. The wait is measured
    /// from the first tick after the account opened (`deadline: None`
    /// until then: the service learns the time only from its host).
    Loading {
        deadline: Option<u64>,
        told: Option<usize>,
    },
    /// Apps are served (or the login failed: nothing more to decide).
    Done,
}

impl Opening {
    /// When the service must be woken next, if ever.
    pub(super) fn deadline(&self) -> Option<u64> {
        match self {
            Opening::Queued { deadline, .. } | Opening::LoggingIn { deadline } => Some(*deadline),
            Opening::Loading { deadline, .. } => Some(deadline.unwrap_or(0)),
            Opening::Idle | Opening::Done => None,
        }
    }
}

/// What a login that ran out of time says.
pub(super) fn login_timed_out(server_was_up: bool) -> Output {
    if server_was_up {
        Output::LoginFailed {
            code: "timeout".into(),
            message: "the server did not complete the login in time".into(),
        }
    } else {
        Output::LoginFailed {
            code: "unreachable".into(),
            message: "the server could not be reached".into(),
        }
    }
}
