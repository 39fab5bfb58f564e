//! The one error type of `hypergolix-web`, and how it reaches JavaScript: a
//! `HypergolixError` (an `Error` whose `code` names the failure, stable
//! across versions).

use wasm_bindgen::JsValue;

/// Everything that can go wrong in the browser host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// The engine refused (a wrong password is `Core(WrongPassword)`).
    #[error(transparent)]
    Core(#[from] hypergolix_core::Error),
    /// IndexedDB failed or is not available.
    #[error("IndexedDB: {0}")]
    Storage(String),
    /// An option given to `open` is missing or wrong.
    #[error("{0}")]
    BadOption(String),
    /// The database holds another account than the one asked for.
    #[error("the database \"{database}\" holds the account {held}, not {asked}; open it with its own user id or use another `database`")]
    OtherAccount {
        /// The database name.
        database: String,
        /// The user id it holds.
        held: String,
        /// The user id asked for.
        asked: String,
    },
    /// The database holds no account and none was asked for.
    #[error("the database \"{0}\" holds no account: create one, or log in with a user id")]
    NoAccount(String),
    /// An account was to be created in a database that holds one.
    #[error("the database \"{0}\" already holds the account {1}; open it, or create the new account in another `database`")]
    HasAccount(String, String),
    /// The password does not open this browser's copy of the account
    /// (code `wrong_password`, as for a login).
    #[error("wrong password for the database \"{0}\" (a password changed on another device opens it when the server can be reached)")]
    LocalWrongPassword(String),
    /// Another tab or worker has the database open.
    #[error("the database \"{0}\" is open in another tab or worker (one engine per database)")]
    InUse(String),
    /// Logging in needs the server, which did not answer in time.
    #[error("no answer from the persistence server at {0} in time: is it running, and is the URL right?")]
    Unreachable(String),
    /// The login was refused.
    #[error("login failed: {message}")]
    LoginFailed {
        /// The engine's error code (`wrong_password`, ...).
        code: String,
        /// What went wrong.
        message: String,
    },
    /// The engine was closed (or stopped after a storage failure).
    #[error("the engine is closed")]
    Closed,
    /// A JavaScript call failed.
    #[error("JavaScript: {0}")]
    Js(String),
}

impl WebError {
    /// A stable short name for the error (what JavaScript sees as `code`).
    pub fn code(&self) -> &str {
        match self {
            WebError::Core(e) => e.code(),
            WebError::Storage(_) => "storage",
            WebError::BadOption(_) => "bad_option",
            WebError::OtherAccount { .. } => "other_account",
            WebError::NoAccount(_) => "no_account",
            WebError::HasAccount(..) => "has_account",
            WebError::LocalWrongPassword(_) => "wrong_password",
            WebError::InUse(_) => "in_use",
            WebError::Unreachable(_) => "unreachable",
            WebError::LoginFailed { code, .. } => code,
            WebError::Closed => "closed",
            WebError::Js(_) => "js",
        }
    }

    /// From a thrown JavaScript value.
    pub(crate) fn js(v: &JsValue) -> Self {
        WebError::Js(describe(v))
    }
}

/// A thrown JavaScript value as text.
pub(crate) fn describe(v: &JsValue) -> String {
    if let Some(e) = v.dyn_ref_error() {
        return String::from(e.message());
    }
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}

trait DynRefError {
    fn dyn_ref_error(&self) -> Option<&js_sys::Error>;
}

impl DynRefError for JsValue {
    fn dyn_ref_error(&self) -> Option<&js_sys::Error> {
        wasm_bindgen::JsCast::dyn_ref::<js_sys::Error>(self)
    }
}

impl From<WebError> for JsValue {
    fn from(e: WebError) -> JsValue {
        let err = js_sys::Error::new(&e.to_string());
        err.set_name("HypergolixError");
        // Setting a property on a fresh Error object cannot fail.
        let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code().into());
        err.into()
    }
}

/// Result alias for `hypergolix-web`.
pub type Result<T> = core::result::Result<T, WebError>;
