//! The app IPC protocol of Hypergolix 0.1.0 (app link ↔ local service),
//! byte-compatible with the original (`docs/protocol/ipc.md` and the captured
//! messages in `tests/interop/ipc-samples`), and its mapping onto the
//! engine's typed requests, replies and pushes.
//!
//! Several codes mean different things in each direction (`!O` is an update
//! from a link and an update push from the service), so decoding needs to
//! know who sent the message: [`Side`].

use crate::address::AddressAlgorithm;
use crate::app::{
    ApiId, AppPush, AppReply, AppRequest, AppToken, Listed, NewObject, ObjDef, SecretBytes,
    API_ID_LEN,
};
use crate::frame::{Frame, WireError};
use crate::ghid::{Ghid, GHID_LEN};

/// Who sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The app's link.
    Link,
    /// The local service.
    Service,
}

/// An IPC NAK error code (0.1.0 `ipc.ERROR_CODES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IpcErrorCode {
    /// 0000: generic failure (also: unknown command).
    Exception,
    /// 0001: a malformed Golix primitive.
    MalformedGolixPrimitive,
    /// 0002: verification failed.
    VerificationFailure,
    /// 0003: invalid identity.
    InvalidIdentity,
    /// 0004: unbound container.
    UnboundContainer,
    /// 0005: already debound.
    AlreadyDebound,
    /// 0006: invalid target.
    InvalidTarget,
    /// 0007: inconsistent author (not allowed for this author).
    InconsistentAuthor,
    /// 0008: no such object.
    DoesNotExist,
    /// 0009: illegal dynamic frame.
    IllegalDynamicFrame,
    /// 000a: a remote refused.
    RemoteNak,
    /// 0100 (not in 0.1.0): a share's recipient is not known to the
    /// persistence server yet; worth retrying (a new agent publishes its
    /// identity when it first connects).
    UnknownRecipient,
    /// ffff: an IPC-level error (bad token, token in use, limits).
    IpcError,
    /// Any other code a peer sent.
    Other(u16),
}

impl IpcErrorCode {
    /// The wire value.
    pub fn to_u16(self) -> u16 {
        match self {
            IpcErrorCode::Exception => 0x0000,
            IpcErrorCode::MalformedGolixPrimitive => 0x0001,
            IpcErrorCode::VerificationFailure => 0x0002,
            IpcErrorCode::InvalidIdentity => 0x0003,
            IpcErrorCode::UnboundContainer => 0x0004,
            IpcErrorCode::AlreadyDebound => 0x0005,
            IpcErrorCode::InvalidTarget => 0x0006,
            IpcErrorCode::InconsistentAuthor => 0x0007,
            IpcErrorCode::DoesNotExist => 0x0008,
            IpcErrorCode::IllegalDynamicFrame => 0x0009,
            IpcErrorCode::RemoteNak => 0x000a,
            IpcErrorCode::UnknownRecipient => 0x0100,
            IpcErrorCode::IpcError => 0xffff,
            IpcErrorCode::Other(v) => v,
        }
    }

    /// From the wire value.
    pub fn from_u16(v: u16) -> Self {
        match v {
            0x0000 => IpcErrorCode::Exception,
            0x0001 => IpcErrorCode::MalformedGolixPrimitive,
            0x0002 => IpcErrorCode::VerificationFailure,
            0x0003 => IpcErrorCode::InvalidIdentity,
            0x0004 => IpcErrorCode::UnboundContainer,
            0x0005 => IpcErrorCode::AlreadyDebound,
            0x0006 => IpcErrorCode::InvalidTarget,
            0x0007 => IpcErrorCode::InconsistentAuthor,
            0x0008 => IpcErrorCode::DoesNotExist,
            0x0009 => IpcErrorCode::IllegalDynamicFrame,
            0x000a => IpcErrorCode::RemoteNak,
            0x0100 => IpcErrorCode::UnknownRecipient,
            0xffff => IpcErrorCode::IpcError,
            v => IpcErrorCode::Other(v),
        }
    }
}

/// The 0.1.0 object definition: version(1)=0 ‖ address(65) ‖ author(65) ‖
/// private(1) ‖ dynamic(1) ‖ legroom(1) ‖ api_id(65) ‖ is_link(1) ‖ state.
/// A GHID or api_id of 65 zero bytes is "None".
#[derive(Clone, PartialEq, Eq)]
pub struct WireObjDef {
    /// Address (None in `+O`).
    pub address: Option<Ghid>,
    /// Author (None from links).
    pub author: Option<Ghid>,
    /// Private flag.
    pub private: bool,
    /// Dynamic flag (`00` also stands for None).
    pub dynamic: bool,
    /// Legroom (0 = None, "use the default").
    pub legroom: u8,
    /// The api_id (None = 65 zero bytes).
    pub api_id: Option<ApiId>,
    /// Link flag.
    pub is_link: bool,
    /// The app's bytes.
    pub state: Vec<u8>,
}

impl core::fmt::Debug for WireObjDef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WireObjDef")
            .field("address", &self.address)
            .field("dynamic", &self.dynamic)
            .field("private", &self.private)
            .field("legroom", &self.legroom)
            .field("is_link", &self.is_link)
            .field("state_len", &self.state.len())
            .finish()
    }
}

/// Length of an object definition without its state.
pub const OBJDEF_HEADER_LEN: usize = 1 + GHID_LEN + GHID_LEN + 1 + 1 + 1 + GHID_LEN + 1;

fn bad(code: [u8; 2], why: &'static str) -> WireError {
    WireError::BadBody {
        code: Frame::code_text(code),
        why,
    }
}

fn opt_ghid(code: [u8; 2], b: &[u8]) -> Result<Option<Ghid>, WireError> {
    if b.iter().all(|x| *x == 0) {
        return Ok(None);
    }
    Ghid::from_bytes(b)
        .map(Some)
        .map_err(|_| bad(code, "invalid GHID"))
}

fn ghid(code: [u8; 2], b: &[u8]) -> Result<Ghid, WireError> {
    opt_ghid(code, b)?.ok_or(bad(code, "a GHID is required"))
}

fn boolean(code: [u8; 2], b: u8) -> Result<bool, WireError> {
    match b {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(bad(code, "a boolean must be 00 or 01")),
    }
}

impl WireObjDef {
    /// Parses an object definition (the whole body).
    pub fn parse(code: [u8; 2], b: &[u8]) -> Result<Self, WireError> {
        if b.len() < OBJDEF_HEADER_LEN {
            return Err(bad(code, "object definition too short"));
        }
        if b[0] != 0 {
            return Err(bad(code, "unknown object definition version"));
        }
        let g = |o: usize| &b[o..o + GHID_LEN];
        let api = g(134);
        Ok(Self {
            address: opt_ghid(code, g(1))?,
            author: opt_ghid(code, g(66))?,
            private: boolean(code, b[131])?,
            dynamic: boolean(code, b[132])?,
            legroom: b[133],
            api_id: if api.iter().all(|x| *x == 0) {
                None
            } else {
                Some(ApiId::from_slice(api).map_err(|_| bad(code, "api_id"))?)
            },
            is_link: boolean(code, b[199])?,
            state: b[OBJDEF_HEADER_LEN..].to_vec(),
        })
    }

    /// Serializes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(OBJDEF_HEADER_LEN + self.state.len());
        out.push(0);
        let zero = [0u8; GHID_LEN];
        out.extend_from_slice(&self.address.map_or(zero, |g| g.to_bytes()));
        out.extend_from_slice(&self.author.map_or(zero, |g| g.to_bytes()));
        out.push(u8::from(self.private));
        out.push(u8::from(self.dynamic));
        out.push(self.legroom);
        out.extend_from_slice(&self.api_id.map_or(zero, |a| a.0));
        out.push(u8::from(self.is_link));
        out.extend_from_slice(&self.state);
        out
    }

    /// What the service sends for an object (`>O` answer, `!O` push):
    /// legroom 0, as 0.1.0 does.
    pub fn from_objdef(o: &ObjDef, private: bool) -> Self {
        Self {
            address: Some(o.address),
            author: Some(o.author),
            private,
            dynamic: o.dynamic,
            legroom: 0,
            api_id: Some(o.api_id),
            is_link: o.is_link,
            state: o.state.clone(),
        }
    }
}

/// A request, in either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpcRequest {
    // ------------------------------------------------ link → service
    /// `?I` from a link: who is the agent?
    Whoami,
    /// `+T`: new (null) or existing token.
    SetToken(AppToken),
    /// `>$` from a link: the startup object.
    GetStartup,
    /// `+$`: register the startup object.
    RegisterStartup(Ghid),
    /// `-$`: deregister it.
    DeregisterStartup,
    /// `+A`: register an api_id.
    RegisterApi(ApiId),
    /// `-A`: deregister it.
    DeregisterApi(ApiId),
    /// `+O`: new object.
    NewObject(WireObjDef),
    /// `>O`: get an object.
    GetObject(Ghid),
    /// `!O` from a link: update.
    UpdateObject(WireObjDef),
    /// `~O`: sync.
    SyncObject(Ghid),
    /// `@O` from a link: share with a recipient.
    ShareObject {
        /// The object.
        address: Ghid,
        /// The recipient identity.
        recipient: Ghid,
    },
    /// `*O`: freeze.
    FreezeObject(Ghid),
    /// `#O`: hold.
    HoldObject(Ghid),
    /// `-O`: discard.
    DiscardObject(Ghid),
    /// `XO` from a link: delete.
    DeleteObject(Ghid),
    /// `%O` from a link (native dialect only): unshare.
    UnshareObject {
        /// The object.
        address: Ghid,
        /// The identity to take it back from.
        recipient: Ghid,
    },
    /// `?S` from a link (native dialect only): whom the object is shared with.
    SharedWith(Ghid),
    /// `?L` from a link (native dialect only): the objects this session may
    /// see; answered with [`LISTED_LEN`]-byte records (see [`listing_body`]).
    ListObjects,
    /// `!P` from a link (native dialect only): change the account password
    /// (body: current password length u16 BE ‖ current ‖ new).
    ChangePassword {
        /// The password the account has now.
        current: SecretBytes,
        /// The new one.
        new: SecretBytes,
    },
    /// `?W` from a link (native dialect only): new recovery words (body:
    /// the current password); answered with the words, UTF-8, separated
    /// by single spaces.
    RecoveryWords(SecretBytes),
    // ------------------------------------------------ service → link
    /// `?I` from the service: the agent's identity.
    NotifyWhoami(Ghid),
    /// `>$` from the service: the startup object.
    NotifyStartup(Ghid),
    /// `!O` from the service: an update push.
    PushUpdate(WireObjDef),
    /// `@O` from the service: a share push.
    PushShare {
        /// The object.
        address: Ghid,
        /// Who shared it.
        origin: Ghid,
        /// Its api_id.
        api_id: ApiId,
    },
    /// `XO` from the service: a delete push.
    PushDelete(Ghid),
    /// `^S`: a share succeeded.
    ShareSuccess {
        /// The object.
        address: Ghid,
        /// The recipient.
        recipient: Ghid,
    },
    /// `^F`: a share failed.
    ShareFailure {
        /// The object.
        address: Ghid,
        /// The recipient.
        recipient: Ghid,
    },
}

/// One IPC message.
// Messages are decoded and handled one at a time; boxing the request would
// only add an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpcMessage {
    /// A request with its token.
    Request {
        /// Token chosen by the requester.
        token: u16,
        /// The request.
        request: IpcRequest,
    },
    /// `AK` with a command-specific body.
    Ack {
        /// The request's token.
        token: u16,
        /// Body.
        body: Vec<u8>,
    },
    /// `NK`: error code and UTF-8 message (0.1.0 also sends an empty body).
    Nak {
        /// The request's token.
        token: u16,
        /// Code, if the body had one.
        code: Option<IpcErrorCode>,
        /// Message.
        message: String,
    },
    /// A request with a code this side does not know (answer with `NK 0000`).
    Unknown {
        /// Token.
        token: u16,
        /// The code.
        code: [u8; 2],
    },
}

fn two_ghids(code: [u8; 2], b: &[u8]) -> Result<(Ghid, Ghid), WireError> {
    if b.len() != 2 * GHID_LEN {
        return Err(bad(code, "expected two 65-byte GHIDs"));
    }
    Ok((ghid(code, &b[..GHID_LEN])?, ghid(code, &b[GHID_LEN..])?))
}

fn one_ghid(code: [u8; 2], b: &[u8]) -> Result<Ghid, WireError> {
    if b.len() != GHID_LEN {
        return Err(bad(code, "expected one 65-byte GHID"));
    }
    ghid(code, b)
}

fn empty(code: [u8; 2], b: &[u8]) -> Result<(), WireError> {
    if b.is_empty() {
        Ok(())
    } else {
        Err(bad(code, "expected an empty body"))
    }
}

fn api(code: [u8; 2], b: &[u8]) -> Result<ApiId, WireError> {
    ApiId::from_slice(b).map_err(|_| bad(code, "expected a 65-byte api_id"))
}

impl IpcRequest {
    /// Commands 0.1.0 never had (`%O`, `?S`): served on native-dialect
    /// connections only, so a 0.1.0 link sees the answer 0.1.0 gave to an
    /// unknown code.
    pub fn native_only(&self) -> bool {
        matches!(
            self,
            IpcRequest::UnshareObject { .. }
                | IpcRequest::SharedWith(_)
                | IpcRequest::ListObjects
                | IpcRequest::ChangePassword { .. }
                | IpcRequest::RecoveryWords(_)
        )
    }

    /// The command code.
    pub fn code(&self) -> [u8; 2] {
        match self {
            IpcRequest::Whoami | IpcRequest::NotifyWhoami(_) => *b"?I",
            IpcRequest::SetToken(_) => *b"+T",
            IpcRequest::GetStartup | IpcRequest::NotifyStartup(_) => *b">$",
            IpcRequest::RegisterStartup(_) => *b"+$",
            IpcRequest::DeregisterStartup => *b"-$",
            IpcRequest::RegisterApi(_) => *b"+A",
            IpcRequest::DeregisterApi(_) => *b"-A",
            IpcRequest::NewObject(_) => *b"+O",
            IpcRequest::GetObject(_) => *b">O",
            IpcRequest::UpdateObject(_) | IpcRequest::PushUpdate(_) => *b"!O",
            IpcRequest::SyncObject(_) => *b"~O",
            IpcRequest::ShareObject { .. } | IpcRequest::PushShare { .. } => *b"@O",
            IpcRequest::FreezeObject(_) => *b"*O",
            IpcRequest::HoldObject(_) => *b"#O",
            IpcRequest::DiscardObject(_) => *b"-O",
            IpcRequest::DeleteObject(_) | IpcRequest::PushDelete(_) => *b"XO",
            IpcRequest::UnshareObject { .. } => *b"%O",
            IpcRequest::SharedWith(_) => *b"?S",
            IpcRequest::ListObjects => *b"?L",
            IpcRequest::ChangePassword { .. } => *b"!P",
            IpcRequest::RecoveryWords(_) => *b"?W",
            IpcRequest::ShareSuccess { .. } => *b"^S",
            IpcRequest::ShareFailure { .. } => *b"^F",
        }
    }

    fn body(&self) -> Vec<u8> {
        match self {
            IpcRequest::Whoami
            | IpcRequest::GetStartup
            | IpcRequest::DeregisterStartup
            | IpcRequest::ListObjects => Vec::new(),
            IpcRequest::SetToken(t) => t.0.to_vec(),
            // Copies of a password: wiped by the caller's frame only if it
            // zeroizes it; the link encodes straight into the socket.
            IpcRequest::ChangePassword { current, new } => {
                let cur = current.as_bytes();
                let len = u16::try_from(cur.len()).unwrap_or(u16::MAX);
                let mut b = len.to_be_bytes().to_vec();
                b.extend_from_slice(&cur[..usize::from(len)]);
                b.extend_from_slice(new.as_bytes());
                b
            }
            IpcRequest::RecoveryWords(p) => p.as_bytes().to_vec(),
            IpcRequest::RegisterApi(a) | IpcRequest::DeregisterApi(a) => a.0.to_vec(),
            IpcRequest::NewObject(o) | IpcRequest::UpdateObject(o) | IpcRequest::PushUpdate(o) => {
                o.to_bytes()
            }
            IpcRequest::RegisterStartup(g)
            | IpcRequest::GetObject(g)
            | IpcRequest::SyncObject(g)
            | IpcRequest::FreezeObject(g)
            | IpcRequest::HoldObject(g)
            | IpcRequest::DiscardObject(g)
            | IpcRequest::DeleteObject(g)
            | IpcRequest::SharedWith(g)
            | IpcRequest::NotifyWhoami(g)
            | IpcRequest::NotifyStartup(g)
            | IpcRequest::PushDelete(g) => g.to_bytes().to_vec(),
            IpcRequest::ShareObject { address, recipient }
            | IpcRequest::UnshareObject { address, recipient }
            | IpcRequest::ShareSuccess { address, recipient }
            | IpcRequest::ShareFailure { address, recipient } => {
                let mut b = address.to_bytes().to_vec();
                b.extend_from_slice(&recipient.to_bytes());
                b
            }
            IpcRequest::PushShare {
                address,
                origin,
                api_id,
            } => {
                let mut b = address.to_bytes().to_vec();
                b.extend_from_slice(&origin.to_bytes());
                b.extend_from_slice(&api_id.0);
                b
            }
        }
    }

    fn decode(from: Side, code: [u8; 2], b: &[u8]) -> Result<Option<Self>, WireError> {
        use IpcRequest as R;
        let link = from == Side::Link;
        Ok(Some(match (&code, link) {
            (b"?I", true) => {
                empty(code, b)?;
                R::Whoami
            }
            (b"?I", false) => R::NotifyWhoami(one_ghid(code, b)?),
            (b"+T", true) => R::SetToken(AppToken(
                b.try_into()
                    .map_err(|_| bad(code, "expected a 16-byte token"))?,
            )),
            (b">$", true) => {
                empty(code, b)?;
                R::GetStartup
            }
            (b">$", false) => R::NotifyStartup(one_ghid(code, b)?),
            (b"+$", true) => R::RegisterStartup(one_ghid(code, b)?),
            (b"-$", true) => {
                empty(code, b)?;
                R::DeregisterStartup
            }
            (b"+A", true) => R::RegisterApi(api(code, b)?),
            (b"-A", true) => R::DeregisterApi(api(code, b)?),
            (b"+O", true) => R::NewObject(WireObjDef::parse(code, b)?),
            (b">O", true) => R::GetObject(one_ghid(code, b)?),
            (b"!O", true) => R::UpdateObject(WireObjDef::parse(code, b)?),
            (b"!O", false) => R::PushUpdate(WireObjDef::parse(code, b)?),
            (b"~O", true) => R::SyncObject(one_ghid(code, b)?),
            (b"@O", true) => {
                let (address, recipient) = two_ghids(code, b)?;
                R::ShareObject { address, recipient }
            }
            (b"@O", false) => {
                if b.len() != 3 * GHID_LEN {
                    return Err(bad(code, "expected GHID, origin and api_id"));
                }
                R::PushShare {
                    address: ghid(code, &b[..GHID_LEN])?,
                    origin: ghid(code, &b[GHID_LEN..2 * GHID_LEN])?,
                    api_id: api(code, &b[2 * GHID_LEN..])?,
                }
            }
            (b"*O", true) => R::FreezeObject(one_ghid(code, b)?),
            (b"#O", true) => R::HoldObject(one_ghid(code, b)?),
            (b"-O", true) => R::DiscardObject(one_ghid(code, b)?),
            (b"XO", true) => R::DeleteObject(one_ghid(code, b)?),
            (b"XO", false) => R::PushDelete(one_ghid(code, b)?),
            (b"%O", true) => {
                let (address, recipient) = two_ghids(code, b)?;
                R::UnshareObject { address, recipient }
            }
            (b"?S", true) => R::SharedWith(one_ghid(code, b)?),
            (b"?L", true) => {
                empty(code, b)?;
                R::ListObjects
            }
            (b"!P", true) => {
                let (len, rest) = b
                    .split_first_chunk::<2>()
                    .ok_or_else(|| bad(code, "expected a password length"))?;
                let len = usize::from(u16::from_be_bytes(*len));
                if rest.len() < len {
                    return Err(bad(code, "the current password is cut short"));
                }
                let (current, new) = rest.split_at(len);
                R::ChangePassword {
                    current: SecretBytes::new(current),
                    new: SecretBytes::new(new),
                }
            }
            (b"?W", true) => R::RecoveryWords(SecretBytes::new(b)),
            (b"^S", false) => {
                let (address, recipient) = two_ghids(code, b)?;
                R::ShareSuccess { address, recipient }
            }
            (b"^F", false) => {
                let (address, recipient) = two_ghids(code, b)?;
                R::ShareFailure { address, recipient }
            }
            _ => return Ok(None),
        }))
    }
}

impl IpcMessage {
    /// Decodes one websocket message sent by `from`. Bad framing or a bad
    /// body is an error; an unknown code is [`IpcMessage::Unknown`].
    pub fn decode(from: Side, bytes: &[u8]) -> Result<Self, WireError> {
        let f = Frame::parse(bytes)?;
        match &f.code {
            b"AK" => Ok(IpcMessage::Ack {
                token: f.token,
                body: f.body,
            }),
            b"NK" => {
                let (code, message) = if f.body.len() >= 2 {
                    (
                        Some(IpcErrorCode::from_u16(u16::from_be_bytes([
                            f.body[0], f.body[1],
                        ]))),
                        String::from_utf8_lossy(&f.body[2..]).into_owned(),
                    )
                } else {
                    (None, String::new())
                };
                Ok(IpcMessage::Nak {
                    token: f.token,
                    code,
                    message,
                })
            }
            _ => Ok(match IpcRequest::decode(from, f.code, &f.body)? {
                Some(request) => IpcMessage::Request {
                    token: f.token,
                    request,
                },
                None => IpcMessage::Unknown {
                    token: f.token,
                    code: f.code,
                },
            }),
        }
    }

    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            IpcMessage::Request { token, request } => {
                Frame::new(request.code(), *token, request.body()).to_bytes()
            }
            IpcMessage::Ack { token, body } => Frame::new(*b"AK", *token, body.clone()).to_bytes(),
            IpcMessage::Nak {
                token,
                code,
                message,
            } => {
                let mut body = Vec::new();
                if let Some(c) = code {
                    body.extend_from_slice(&c.to_u16().to_be_bytes());
                    body.extend_from_slice(message.as_bytes());
                }
                Frame::new(*b"NK", *token, body).to_bytes()
            }
            IpcMessage::Unknown { token, code } => Frame::new(*code, *token, Vec::new()).to_bytes(),
        }
    }

    /// The service's `NK` for a code it does not know: `00 00` + the code
    /// as Python's `repr(bytes)` (0.1.0: `b'ZZ'`).
    pub fn unknown_code_nak(token: u16, code: [u8; 2]) -> Self {
        let repr: String = code
            .iter()
            .map(|b| {
                if b.is_ascii_graphic() && *b != b'\'' && *b != b'\\' {
                    char::from(*b).to_string()
                } else {
                    format!("\\x{b:02x}")
                }
            })
            .collect();
        IpcMessage::Nak {
            token,
            code: Some(IpcErrorCode::Exception),
            message: format!("b'{repr}'"),
        }
    }
}

/// The engine request for a link's request (`None` for the service-only
/// codes a link must not send).
pub fn to_app_request(r: IpcRequest) -> Option<AppRequest> {
    Some(match r {
        IpcRequest::Whoami => AppRequest::Whoami,
        IpcRequest::SetToken(t) => AppRequest::SetToken(t),
        IpcRequest::GetStartup => AppRequest::GetStartup,
        IpcRequest::RegisterStartup(g) => AppRequest::RegisterStartup(g),
        IpcRequest::DeregisterStartup => AppRequest::DeregisterStartup,
        IpcRequest::RegisterApi(a) => AppRequest::RegisterApi(a),
        IpcRequest::DeregisterApi(a) => AppRequest::DeregisterApi(a),
        IpcRequest::NewObject(o) => AppRequest::New(NewObject {
            api_id: o.api_id.unwrap_or_else(ApiId::default_bytes),
            private: o.private,
            dynamic: o.dynamic,
            legroom: o.legroom,
            is_link: o.is_link,
            state: o.state,
        }),
        IpcRequest::GetObject(g) => AppRequest::Get(g),
        IpcRequest::UpdateObject(o) => AppRequest::Update {
            address: o.address?,
            state: o.state,
        },
        IpcRequest::SyncObject(g) => AppRequest::Sync(g),
        IpcRequest::ShareObject { address, recipient } => AppRequest::Share { address, recipient },
        IpcRequest::FreezeObject(g) => AppRequest::Freeze(g),
        IpcRequest::HoldObject(g) => AppRequest::Hold(g),
        IpcRequest::DiscardObject(g) => AppRequest::Discard(g),
        IpcRequest::DeleteObject(g) => AppRequest::Delete(g),
        IpcRequest::UnshareObject { address, recipient } => {
            AppRequest::Unshare { address, recipient }
        }
        IpcRequest::SharedWith(g) => AppRequest::SharedWith(g),
        IpcRequest::ListObjects => AppRequest::List,
        IpcRequest::ChangePassword { current, new } => AppRequest::ChangePassword { current, new },
        IpcRequest::RecoveryWords(password) => AppRequest::RecoveryWords { password },
        _ => return None,
    })
}

/// The `AK` body for an engine reply, as 0.1.0 sends it.
pub fn reply_body(r: &AppReply) -> Vec<u8> {
    match r {
        AppReply::Done => vec![1],
        AppReply::Ghid(g) => g.to_bytes().to_vec(),
        AppReply::Token(t) => t.0.to_vec(),
        AppReply::Startup(g) => g.map(|g| g.to_bytes().to_vec()).unwrap_or_default(),
        AppReply::Object(o) => WireObjDef::from_objdef(o, o.private).to_bytes(),
        AppReply::Ghids(gs) => gs.iter().flat_map(|g| g.to_bytes()).collect(),
        AppReply::Listing(l) => listing_body(l),
        AppReply::Words(w) => w.as_bytes().to_vec(),
    }
}

/// The length of one record of a `?L` answer: address, author (65 bytes
/// each), api_id (65), flags (1: dynamic 0x01, owned 0x02, private 0x04,
/// link 0x08, loaded 0x10), size and changed_ms (8 bytes each, big-endian).
pub const LISTED_LEN: usize = 2 * GHID_LEN + API_ID_LEN + 1 + 8 + 8;

/// The `AK` body of a `?L` answer: one [`LISTED_LEN`]-byte record per object.
pub fn listing_body(l: &[Listed]) -> Vec<u8> {
    let mut b = Vec::with_capacity(l.len() * LISTED_LEN);
    for o in l {
        b.extend_from_slice(&o.address.to_bytes());
        b.extend_from_slice(&o.author.to_bytes());
        b.extend_from_slice(&o.api_id.0);
        let flags = u8::from(o.dynamic)
            | u8::from(o.owned) << 1
            | u8::from(o.private) << 2
            | u8::from(o.is_link) << 3
            | u8::from(o.loaded) << 4;
        b.push(flags);
        b.extend_from_slice(&o.size.to_be_bytes());
        b.extend_from_slice(&o.changed_ms.to_be_bytes());
    }
    b
}

/// Parses the `AK` body of a `?L` answer.
pub fn parse_listing(b: &[u8]) -> Result<Vec<Listed>, WireError> {
    let code = *b"?L";
    if b.len() % LISTED_LEN != 0 {
        return Err(bad(code, "a listing is a whole number of records"));
    }
    b.chunks_exact(LISTED_LEN)
        .map(|r| {
            let (address, r) = r.split_at(GHID_LEN);
            let (author, r) = r.split_at(GHID_LEN);
            let (api_id, r) = r.split_at(API_ID_LEN);
            let (flags, r) = r.split_at(1);
            let (size, changed) = r.split_at(8);
            let f = flags[0];
            let n = |x: &[u8]| u64::from_be_bytes(x.try_into().unwrap_or_default());
            Ok(Listed {
                address: ghid(code, address)?,
                author: ghid(code, author)?,
                api_id: api(code, api_id)?,
                dynamic: f & 0x01 != 0,
                owned: f & 0x02 != 0,
                private: f & 0x04 != 0,
                is_link: f & 0x08 != 0,
                loaded: f & 0x10 != 0,
                size: n(size),
                changed_ms: n(changed),
            })
        })
        .collect()
}

/// The service's request for an engine push.
pub fn push_request(p: &AppPush) -> IpcRequest {
    match p {
        // 0.1.0 sends private 00 and legroom 0 in pushes.
        AppPush::Update(o) => IpcRequest::PushUpdate(WireObjDef::from_objdef(o, false)),
        AppPush::Share {
            address,
            origin,
            api_id,
        } => IpcRequest::PushShare {
            address: *address,
            origin: *origin,
            api_id: *api_id,
        },
        AppPush::Delete(g) => IpcRequest::PushDelete(*g),
        AppPush::ShareSuccess { address, recipient } => IpcRequest::ShareSuccess {
            address: *address,
            recipient: *recipient,
        },
        AppPush::ShareFailure { address, recipient } => IpcRequest::ShareFailure {
            address: *address,
            recipient: *recipient,
        },
    }
}

/// The websocket subprotocol (`Sec-WebSocket-Protocol`) a link offers to
/// see GHIDs as they are ([`GhidDialect::Native`]). Links that offer nothing
/// (every 0.1.0 link) get [`GhidDialect::Legacy`].
pub const NATIVE_GHIDS_SUBPROTOCOL: &str = "hypergolix-ipc.native-ghids";

/// How GHIDs are written on one app connection.
///
/// Our GHIDs use address algorithm 0x02 (BLAKE2b-512). The 0.1.0 link's
/// `golix.utils.Ghid` refuses every algorithm but 0x00 and 0x01, so it could
/// not even parse the agent's identity. A link only ever uses GHIDs as
/// names (it never hashes anything), so on a legacy connection the service
/// writes each GHID with the algorithm byte 0x01 in front of the same
/// 64-byte digest. Every connection reads 0x01 back as 0x02 (and 0x02 as it
/// is). The mapping is one to one because the engine holds no SHA-512
/// (suite 0x1) objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GhidDialect {
    /// GHIDs as they are: the links of this project ask for it with
    /// [`NATIVE_GHIDS_SUBPROTOCOL`].
    Native,
    /// GHIDs as the 0.1.0 link can parse them (see the type's documentation).
    #[default]
    Legacy,
}

impl GhidDialect {
    /// The dialect a connection asked for in its offered subprotocols.
    pub fn from_offered<'a>(mut offered: impl Iterator<Item = &'a str>) -> Self {
        if offered.any(|p| p.trim() == NATIVE_GHIDS_SUBPROTOCOL) {
            GhidDialect::Native
        } else {
            GhidDialect::Legacy
        }
    }

    /// A GHID as this connection writes it.
    pub fn outward(self, g: Ghid) -> Ghid {
        match (self, g.algorithm()) {
            (GhidDialect::Legacy, AddressAlgorithm::Blake2b512) => {
                Ghid::new(AddressAlgorithm::Sha512, *g.digest())
            }
            _ => g,
        }
    }

    /// A GHID this connection wrote, as the engine knows it. On every
    /// connection `01` reads as `02`, so an address copied from a 0.1.0
    /// app (or `hypergolix whoami --legacy`) works in any app.
    pub fn inward(self, g: Ghid) -> Ghid {
        match g.algorithm() {
            AddressAlgorithm::Sha512 => Ghid::new(AddressAlgorithm::Blake2b512, *g.digest()),
            AddressAlgorithm::Blake2b512 => g,
        }
    }

    fn map_def(self, o: &mut WireObjDef, f: fn(Self, Ghid) -> Ghid) {
        o.address = o.address.map(|g| f(self, g));
        o.author = o.author.map(|g| f(self, g));
        // A link's state is the address it points to.
        if o.is_link {
            if let Ok(g) = Ghid::from_bytes(&o.state) {
                o.state = f(self, g).to_bytes().to_vec();
            }
        }
    }

    fn map_request(self, r: &mut IpcRequest, f: fn(Self, Ghid) -> Ghid) {
        use IpcRequest as R;
        match r {
            R::Whoami
            | R::SetToken(_)
            | R::GetStartup
            | R::DeregisterStartup
            | R::ListObjects
            | R::ChangePassword { .. }
            | R::RecoveryWords(_)
            | R::RegisterApi(_)
            | R::DeregisterApi(_) => {}
            R::NewObject(o) | R::UpdateObject(o) | R::PushUpdate(o) => self.map_def(o, f),
            R::RegisterStartup(g)
            | R::GetObject(g)
            | R::SyncObject(g)
            | R::FreezeObject(g)
            | R::HoldObject(g)
            | R::DiscardObject(g)
            | R::DeleteObject(g)
            | R::SharedWith(g)
            | R::NotifyWhoami(g)
            | R::NotifyStartup(g)
            | R::PushDelete(g) => *g = f(self, *g),
            R::ShareObject { address, recipient }
            | R::UnshareObject { address, recipient }
            | R::ShareSuccess { address, recipient }
            | R::ShareFailure { address, recipient } => {
                *address = f(self, *address);
                *recipient = f(self, *recipient);
            }
            R::PushShare {
                address, origin, ..
            } => {
                *address = f(self, *address);
                *origin = f(self, *origin);
            }
        }
    }

    /// A request this connection sent, with its GHIDs as the engine knows them.
    pub fn request_inward(self, mut r: IpcRequest) -> IpcRequest {
        self.map_request(&mut r, Self::inward);
        r
    }

    /// A request to send on this connection, with its GHIDs as it writes them.
    pub fn request_outward(self, mut r: IpcRequest) -> IpcRequest {
        self.map_request(&mut r, Self::outward);
        r
    }

    /// The `AK` body for an engine reply on this connection.
    pub fn reply_body(self, r: &AppReply) -> Vec<u8> {
        match r {
            AppReply::Done | AppReply::Token(_) | AppReply::Words(_) => reply_body(r),
            AppReply::Ghid(g) => reply_body(&AppReply::Ghid(self.outward(*g))),
            AppReply::Startup(g) => reply_body(&AppReply::Startup(g.map(|g| self.outward(g)))),
            AppReply::Object(o) => {
                let mut def = WireObjDef::from_objdef(o, o.private);
                self.map_def(&mut def, Self::outward);
                def.to_bytes()
            }
            AppReply::Ghids(gs) => reply_body(&AppReply::Ghids(
                gs.iter().map(|g| self.outward(*g)).collect(),
            )),
            AppReply::Listing(l) => listing_body(
                &l.iter()
                    .map(|o| Listed {
                        address: self.outward(o.address),
                        author: self.outward(o.author),
                        ..o.clone()
                    })
                    .collect::<Vec<_>>(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blake(n: u8) -> Ghid {
        Ghid::new(AddressAlgorithm::Blake2b512, [n; 64])
    }

    #[test]
    fn legacy_connections_see_algorithm_1_and_map_it_back() {
        let d = GhidDialect::Legacy;
        let g = blake(7);
        let out = d.outward(g);
        assert_eq!(out.to_bytes()[0], 0x01);
        assert_eq!(out.digest(), g.digest());
        assert_eq!(d.inward(out), g);
        // A GHID a legacy link sends as it is stays as it is.
        assert_eq!(d.inward(g), g);
        // Native connections see GHIDs unchanged, and read a 0.1.0 form too.
        assert_eq!(GhidDialect::Native.outward(g), g);
        assert_eq!(GhidDialect::Native.inward(out), g);
    }

    #[test]
    fn every_ghid_of_a_request_is_mapped_including_a_links_target() {
        let d = GhidDialect::Legacy;
        let def = WireObjDef {
            address: Some(blake(1)),
            author: Some(blake(2)),
            private: false,
            dynamic: true,
            legroom: 0,
            api_id: None,
            is_link: true,
            state: blake(3).to_bytes().to_vec(),
        };
        let out = d.request_outward(IpcRequest::PushUpdate(def.clone()));
        let IpcRequest::PushUpdate(o) = &out else {
            panic!("same variant")
        };
        assert_eq!(o.address.map(|g| g.to_bytes()[0]), Some(0x01));
        assert_eq!(o.author.map(|g| g.to_bytes()[0]), Some(0x01));
        assert_eq!(o.state[0], 0x01);
        assert_eq!(d.request_inward(out), IpcRequest::PushUpdate(def));

        let share = IpcRequest::PushShare {
            address: blake(4),
            origin: blake(5),
            api_id: ApiId::default_bytes(),
        };
        let IpcRequest::PushShare {
            address, origin, ..
        } = d.request_outward(share)
        else {
            panic!("same variant")
        };
        assert_eq!((address.to_bytes()[0], origin.to_bytes()[0]), (1, 1));
    }

    #[test]
    fn account_requests_round_trip_and_hide_their_secrets() {
        let change = IpcRequest::ChangePassword {
            current: SecretBytes::new(b"old pw"),
            new: SecretBytes::new(b"new: with \x00 and all"),
        };
        let words = IpcRequest::RecoveryWords(SecretBytes::new(b"pw"));
        for r in [change, words] {
            assert!(r.native_only());
            let m = IpcMessage::Request {
                token: 9,
                request: r.clone(),
            };
            assert_eq!(IpcMessage::decode(Side::Link, &m.encode()), Ok(m));
            assert!(!format!("{r:?}").contains("pw"), "{r:?}");
        }
        // An empty new password is the engine's to refuse; a length past
        // the body is the codec's.
        let cut = Frame::new(*b"!P", 1, vec![0, 9, b'a']).to_bytes();
        assert!(IpcMessage::decode(Side::Link, &cut).is_err());
        let none = Frame::new(*b"!P", 1, vec![0]).to_bytes();
        assert!(IpcMessage::decode(Side::Link, &none).is_err());
        assert_eq!(
            reply_body(&AppReply::Words(SecretBytes::new(b"abandon ability"))),
            b"abandon ability"
        );
    }

    #[test]
    fn the_native_subprotocol_is_found_among_several() {
        let offered = ["chat", " hypergolix-ipc.native-ghids"];
        assert_eq!(
            GhidDialect::from_offered(offered.into_iter()),
            GhidDialect::Native
        );
        assert_eq!(
            GhidDialect::from_offered(["chat"].into_iter()),
            GhidDialect::Legacy
        );
    }
}
