//! What an app asks of Hypergolix and what it is told: tokens, api_ids,
//! object definitions, requests, replies and pushes. Plain data.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::ghid::{Ghid, GHID_LEN};

/// Length of an app token.
pub const TOKEN_LEN: usize = 16;
/// Length of an api_id.
pub const API_ID_LEN: usize = GHID_LEN;
/// Default number of previous targets a dynamic frame carries ("legroom").
pub const DEFAULT_LEGROOM: u8 = 7;

/// An app token: 16 opaque bytes naming one app across reconnects (IPC `+T`).
/// Compared in constant time: a token is a bearer secret for private objects.
///
/// (Tokens are also kept in ordered maps; those lookups are not constant
/// time, which leaks only which tokens exist to whoever can time the local
/// service's own memory accesses.)
#[derive(Clone, Copy, Eq)]
pub struct AppToken(pub [u8; TOKEN_LEN]);

impl PartialEq for AppToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl core::hash::Hash for AppToken {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialOrd for AppToken {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AppToken {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl core::fmt::Debug for AppToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Only a prefix: the token is a bearer secret.
        write!(f, "AppToken({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

impl AppToken {
    /// The null token, which asks for a new one.
    pub const NULL: AppToken = AppToken([0; TOKEN_LEN]);

    /// Whether this is the null token.
    pub fn is_null(&self) -> bool {
        *self == Self::NULL
    }
}

/// An api_id: 65 bytes naming an app schema (0.1.0: a zero byte then 64 app
/// bytes). Shares are routed to the sessions that registered it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiId(pub [u8; API_ID_LEN]);

impl core::fmt::Debug for ApiId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ApiId(…{:02x}{:02x})", self.0[63], self.0[64])
    }
}

impl ApiId {
    /// The 0.1.0 default for plain byte objects (`00` × 64 then `01`).
    pub fn default_bytes() -> Self {
        let mut b = [0u8; API_ID_LEN];
        b[API_ID_LEN - 1] = 1;
        ApiId(b)
    }

    /// An app's own api_id from its 64 bytes (`00` ‖ the bytes, as 0.1.0's
    /// `ApiID` writes them).
    pub fn from_app_bytes(app: [u8; API_ID_LEN - 1]) -> Self {
        let mut b = [0u8; API_ID_LEN];
        b[1..].copy_from_slice(&app);
        ApiId(b)
    }

    /// An api_id as an app gives it: its 64 bytes, or the 65-byte wire
    /// form with its leading `00`. Anything else is refused. Every link
    /// (Rust, JavaScript, Python) takes api_ids by this one rule.
    pub fn parse(b: &[u8]) -> Result<Self, Error> {
        match b.len() {
            64 => {
                let mut a = [0u8; API_ID_LEN - 1];
                a.copy_from_slice(b);
                Ok(Self::from_app_bytes(a))
            }
            65 if b[0] == 0 => Self::from_slice(b),
            65 => Err(Error::InvalidLength(
                "a 65-byte api_id starts with a 00 byte",
            )),
            _ => Err(Error::InvalidLength(
                "an api_id is 64 bytes (or 65 with a leading 00)",
            )),
        }
    }

    /// From a slice of exactly 65 bytes.
    pub fn from_slice(b: &[u8]) -> Result<Self, Error> {
        b.try_into()
            .map(ApiId)
            .map_err(|_| Error::InvalidLength("api_id must be 65 bytes"))
    }
}

/// One app connection, numbered by the host.
pub type SessionId = u64;

/// An object as apps see it (the IPC object definition, typed).
#[derive(Clone, PartialEq, Eq)]
pub struct ObjDef {
    /// The address: the dynamic GHID, or the container GHID of a static object.
    pub address: Ghid,
    /// The creator's identity.
    pub author: Ghid,
    /// The app schema.
    pub api_id: ApiId,
    /// Visible only to the app token that made it.
    pub private: bool,
    /// Dynamic (updatable) or static.
    pub dynamic: bool,
    /// Whether this agent made it (and so may update and delete it).
    pub owned: bool,
    /// Previous targets each frame carries.
    pub legroom: u8,
    /// The state is the address of another object.
    pub is_link: bool,
    /// The app's bytes (for a link: the 65-byte target address).
    pub state: Vec<u8>,
}

impl core::fmt::Debug for ObjDef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ObjDef")
            .field("address", &self.address)
            .field("dynamic", &self.dynamic)
            .field("private", &self.private)
            .field("owned", &self.owned)
            .field("is_link", &self.is_link)
            .field("state_len", &self.state.len())
            .finish()
    }
}

impl ObjDef {
    /// The target address of a link.
    pub fn link_address(&self) -> Option<Ghid> {
        if self.is_link {
            Ghid::from_bytes(&self.state).ok()
        } else {
            None
        }
    }
}

/// What a new object should be (IPC `+O`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewObject {
    /// The app schema.
    pub api_id: ApiId,
    /// Private to the session's token.
    pub private: bool,
    /// Dynamic or static.
    pub dynamic: bool,
    /// Legroom (0 = default, 7).
    pub legroom: u8,
    /// A link: `state` must be a 65-byte GHID.
    pub is_link: bool,
    /// The initial state.
    pub state: Vec<u8>,
}

/// A password or recovery phrase carried in an account request or reply:
/// wiped from memory when dropped, compared in constant time, never shown
/// by `Debug`.
#[derive(Clone, Default)]
pub struct SecretBytes(pub Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Copies `b`.
    pub fn new(b: &[u8]) -> Self {
        Self(Zeroizing::new(b.to_vec()))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}

impl Eq for SecretBytes {}

impl core::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SecretBytes(..)")
    }
}

/// A request from an app session. Each is answered by exactly one
/// [`Action::Reply`] with the same `req`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRequest {
    /// `?I`: the agent's identity GHID.
    Whoami,
    /// `+T`: the null token asks for a new token; another re-registers it.
    SetToken(AppToken),
    /// `>$`: the token's startup object.
    GetStartup,
    /// `+$`: set the token's startup object.
    RegisterStartup(Ghid),
    /// `-$`: clear it.
    DeregisterStartup,
    /// `+A`: deliver shares with this api_id to this session.
    RegisterApi(ApiId),
    /// `-A`: stop.
    DeregisterApi(ApiId),
    /// `+O`: create an object; answered with its address.
    New(NewObject),
    /// `>O`: get an object (the session then tracks it).
    Get(Ghid),
    /// `!O`: set a dynamic object's state.
    Update {
        /// The object.
        address: Ghid,
        /// Its new state.
        state: Vec<u8>,
    },
    /// `~O`: re-read an object from the server.
    Sync(Ghid),
    /// `@O`: share with another identity.
    Share {
        /// The object.
        address: Ghid,
        /// The recipient's identity GHID.
        recipient: Ghid,
    },
    /// `*O`: freeze a dynamic object into a new static one; answered with its address.
    Freeze(Ghid),
    /// `#O`: hold (statically bind) an object so servers keep it.
    Hold(Ghid),
    /// `-O`: this session stops tracking the object.
    Discard(Ghid),
    /// `XO`: delete (debind) the object; recipients and other devices are told.
    Delete(Ghid),
    /// `%O` (native links only): take back a share. The owner's next frame,
    /// published at once, is encrypted under a new master the recipient is
    /// never sent (`docs/protocol/revocation.md`).
    Unshare {
        /// The object.
        address: Ghid,
        /// The identity to take it back from.
        recipient: Ghid,
    },
    /// `?S` (native links only): the identities this agent has shared the
    /// object with and not taken back.
    SharedWith(Ghid),
    /// `?L` (native links only): the objects this session may see: every
    /// object of the agent (its own and those shared with it) that is not
    /// private, and the private objects of this session's app token.
    List,
    /// `!P` (native links only): change the account password. The current
    /// password is required, and checked against the account root the
    /// server holds now (so a change made on another device counts).
    ChangePassword {
        /// The password the account has now.
        current: SecretBytes,
        /// The new one.
        new: SecretBytes,
    },
    /// `?W` (native links only): make new recovery words for the account,
    /// answered with [`AppReply::Words`]. Words made before stop opening
    /// the account. Needs the current password.
    RecoveryWords {
        /// The password the account has now.
        password: SecretBytes,
    },
}

/// One object of a [`AppReply::Listing`]: what a list of objects shows
/// without reading each one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The object's address.
    pub address: Ghid,
    /// Its author's identity.
    pub author: Ghid,
    /// Its api_id.
    pub api_id: ApiId,
    /// Dynamic (has frames) or static.
    pub dynamic: bool,
    /// This agent made it.
    pub owned: bool,
    /// Private to this session's app token.
    pub private: bool,
    /// A link to another object.
    pub is_link: bool,
    /// Whether its state has been read (false while it is still fetched:
    /// `size` and `changed_ms` are then 0).
    pub loaded: bool,
    /// The length of its current state, in bytes.
    pub size: u64,
    /// When this device last took a new state for it (a local update or a
    /// frame from elsewhere), in milliseconds since the Unix epoch by the
    /// host's clock; 0 when unknown. Golix frames carry no time, so this is
    /// when the change reached this device, not when it was made.
    pub changed_ms: u64,
}

/// A successful answer to an [`AppRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppReply {
    /// Done (IPC `AK 01`).
    Done,
    /// A GHID (whoami, new, freeze).
    Ghid(Ghid),
    /// The session's token.
    Token(AppToken),
    /// The startup object, if any.
    Startup(Option<Ghid>),
    /// An object.
    Object(ObjDef),
    /// A list of GHIDs (shared with).
    Ghids(Vec<Ghid>),
    /// The objects a session may see (`?L`), in address order.
    Listing(Vec<Listed>),
    /// New recovery words (`?W`): the BIP39 phrase, words separated by
    /// single spaces.
    Words(SecretBytes),
}

/// Something the engine tells an app session on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppPush {
    /// `!O`: a tracked object has a new state.
    Update(ObjDef),
    /// `@O`: an object was shared with this agent.
    Share {
        /// The object.
        address: Ghid,
        /// Who shared it.
        origin: Ghid,
        /// Its api_id.
        api_id: ApiId,
    },
    /// `XO`: a tracked object was deleted.
    Delete(Ghid),
    /// `^S`: a share this app made was accepted.
    ShareSuccess {
        /// The object.
        address: Ghid,
        /// The recipient.
        recipient: Ghid,
    },
    /// `^F`: a share this app made was refused.
    ShareFailure {
        /// The object.
        address: Ghid,
        /// The recipient.
        recipient: Ghid,
    },
}
