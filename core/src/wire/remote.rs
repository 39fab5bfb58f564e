//! The remote protocol of Hypergolix 0.1.0 (service ↔ persistence server):
//! commands, responses and the NAK error codes.

use super::frame::{Frame, WireError};
use crate::golix::ghid::{Ghid, GHID_LEN};

/// Response code for success.
pub const ACK: [u8; 2] = *b"AK";
/// Response code for failure.
pub const NAK: [u8; 2] = *b"NK";

/// A request, from either side (the server pushes `!!`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `??`: is the server ready?
    Ping,
    /// `PB`: publish one packed Golix object.
    Publish(Vec<u8>),
    /// `GT`: fetch an object (a dynamic GHID gives its current frame).
    Get(Ghid),
    /// `+S`: subscribe to a dynamic GHID (frames, debinding) or an identity (requests to it).
    Subscribe(Ghid),
    /// `-S`: unsubscribe.
    Unsubscribe(Ghid),
    /// `?S`: list this connection's subscriptions.
    ListSubscriptions,
    /// `?B`: list the bindings of a GHID.
    ListBindings(Ghid),
    /// `?D`: list the debindings of a GHID.
    ListDebindings(Ghid),
    /// `?E`: does an object exist?
    Exists(Ghid),
    /// `XX`: drop every subscription of this connection.
    Disconnect,
    /// `!!` (server → client): a subscription update.
    Push {
        /// The subscribed GHID.
        subscription: Ghid,
        /// The packed object (a GOBD frame, a GARQ, or the GDXX that removed one).
        object: Vec<u8>,
    },
}

impl Request {
    /// The command code.
    pub fn code(&self) -> [u8; 2] {
        match self {
            Request::Ping => *b"??",
            Request::Publish(_) => *b"PB",
            Request::Get(_) => *b"GT",
            Request::Subscribe(_) => *b"+S",
            Request::Unsubscribe(_) => *b"-S",
            Request::ListSubscriptions => *b"?S",
            Request::ListBindings(_) => *b"?B",
            Request::ListDebindings(_) => *b"?D",
            Request::Exists(_) => *b"?E",
            Request::Disconnect => *b"XX",
            Request::Push { .. } => *b"!!",
        }
    }

    fn body(&self) -> Vec<u8> {
        match self {
            Request::Ping | Request::ListSubscriptions | Request::Disconnect => Vec::new(),
            Request::Publish(o) => o.clone(),
            Request::Get(g)
            | Request::Subscribe(g)
            | Request::Unsubscribe(g)
            | Request::ListBindings(g)
            | Request::ListDebindings(g)
            | Request::Exists(g) => g.to_bytes().to_vec(),
            Request::Push {
                subscription,
                object,
            } => {
                let mut b = subscription.to_bytes().to_vec();
                b.extend_from_slice(object);
                b
            }
        }
    }
}

/// A NAK error code (the 0.1.0 `remotes.ERROR_CODES` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 0000: generic failure.
    Generic = 0x0000,
    /// 0001: the object or message is malformed.
    Malformed = 0x0001,
    /// 0002: hash or signature verification failed.
    VerificationFailed = 0x0002,
    /// 0003: the author, binder or recipient identity is unknown or invalid.
    InvalidIdentity = 0x0003,
    /// 0004: a container with no binding.
    UnboundContainer = 0x0004,
    /// 0005: the object was debound.
    AlreadyDebound = 0x0005,
    /// 0006: the target is not a valid target for this object.
    InvalidTarget = 0x0006,
    /// 0007: the signer may not do this (wrong binder or debinder).
    InconsistentAuthor = 0x0007,
    /// 0008: no such object.
    DoesNotExist = 0x0008,
    /// 0009: a dynamic frame breaks the frame rules (counter, binder, cycle).
    IllegalDynamicFrame = 0x0009,
    /// 000a: a remote refused.
    RemoteNak = 0x000a,
    /// 000b: unknown token.
    UnknownToken = 0x000b,
    /// 000e: communications error (unknown command, bad framing, limits).
    CommsError = 0x000e,
    /// fffe: a value was out of range.
    ValueError = 0xfffe,
    /// ffff: unexpected failure.
    Exception = 0xffff,
}

impl ErrorCode {
    /// The code a server answers with when core refuses something.
    pub fn for_error(e: &crate::error::Error) -> Self {
        use crate::error::{Error, Refusal};
        match e {
            Error::Refused { reason, .. } => match reason {
                Refusal::Malformed => ErrorCode::Malformed,
                Refusal::VerificationFailed | Refusal::UnsupportedSuite => {
                    ErrorCode::VerificationFailed
                }
                Refusal::InvalidIdentity => ErrorCode::InvalidIdentity,
                Refusal::UnboundContainer => ErrorCode::UnboundContainer,
                Refusal::AlreadyDebound => ErrorCode::AlreadyDebound,
                Refusal::InvalidTarget => ErrorCode::InvalidTarget,
                Refusal::InconsistentAuthor => ErrorCode::InconsistentAuthor,
                Refusal::DoesNotExist => ErrorCode::DoesNotExist,
                Refusal::IllegalDynamicFrame => ErrorCode::IllegalDynamicFrame,
            },
            Error::Wire(WireError::BadBody { .. }) => ErrorCode::Malformed,
            Error::Wire(_) => ErrorCode::CommsError,
            Error::Storage(_) => ErrorCode::Exception,
            _ => ErrorCode::Malformed,
        }
    }

    /// From the wire value; unknown values are [`ErrorCode::Generic`].
    pub fn from_u16(v: u16) -> Self {
        match v {
            0x0001 => Self::Malformed,
            0x0002 => Self::VerificationFailed,
            0x0003 => Self::InvalidIdentity,
            0x0004 => Self::UnboundContainer,
            0x0005 => Self::AlreadyDebound,
            0x0006 => Self::InvalidTarget,
            0x0007 => Self::InconsistentAuthor,
            0x0008 => Self::DoesNotExist,
            0x0009 => Self::IllegalDynamicFrame,
            0x000a => Self::RemoteNak,
            0x000b => Self::UnknownToken,
            0x000e => Self::CommsError,
            0xfffe => Self::ValueError,
            0xffff => Self::Exception,
            _ => Self::Generic,
        }
    }
}

/// One remote-protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request with its token.
    Request {
        /// Token (chosen by the requester).
        token: u16,
        /// The request.
        request: Request,
    },
    /// `AK`: success, with a command-specific body.
    Ack {
        /// The request's token.
        token: u16,
        /// Body (`01`, an object, a GHID list, ...).
        body: Vec<u8>,
    },
    /// `NK`: failure.
    Nak {
        /// The request's token.
        token: u16,
        /// Error code.
        code: ErrorCode,
        /// Human-readable reason (UTF-8).
        message: String,
    },
}

fn one_ghid(code: [u8; 2], body: &[u8]) -> Result<Ghid, WireError> {
    if body.len() != GHID_LEN {
        return Err(WireError::BadBody {
            code: Frame::code_text(code),
            why: "expected exactly one 65-byte GHID",
        });
    }
    Ghid::from_bytes(body).map_err(|_| WireError::BadBody {
        code: Frame::code_text(code),
        why: "invalid GHID",
    })
}

fn empty(code: [u8; 2], body: &[u8]) -> Result<(), WireError> {
    if body.is_empty() {
        Ok(())
    } else {
        Err(WireError::BadBody {
            code: Frame::code_text(code),
            why: "expected an empty body",
        })
    }
}

impl Message {
    /// Decodes one websocket message.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let frame = Frame::parse(bytes)?;
        let (code, token, body) = (frame.code, frame.token, frame.body);
        let request = match &code {
            b"AK" => return Ok(Message::Ack { token, body }),
            b"NK" => {
                let (c, msg) = if body.len() >= 2 {
                    (
                        u16::from_be_bytes([body[0], body[1]]),
                        String::from_utf8_lossy(&body[2..]).into_owned(),
                    )
                } else {
                    (0, String::new())
                };
                return Ok(Message::Nak {
                    token,
                    code: ErrorCode::from_u16(c),
                    message: msg,
                });
            }
            b"??" => empty(code, &body).map(|_| Request::Ping)?,
            b"PB" => {
                if body.is_empty() {
                    return Err(WireError::BadBody {
                        code: "PB".into(),
                        why: "no object",
                    });
                }
                Request::Publish(body)
            }
            b"GT" => Request::Get(one_ghid(code, &body)?),
            b"+S" => Request::Subscribe(one_ghid(code, &body)?),
            b"-S" => Request::Unsubscribe(one_ghid(code, &body)?),
            b"?S" => empty(code, &body).map(|_| Request::ListSubscriptions)?,
            b"?B" => Request::ListBindings(one_ghid(code, &body)?),
            b"?D" => Request::ListDebindings(one_ghid(code, &body)?),
            b"?E" => Request::Exists(one_ghid(code, &body)?),
            b"XX" => empty(code, &body).map(|_| Request::Disconnect)?,
            b"!!" => {
                if body.len() <= GHID_LEN {
                    return Err(WireError::BadBody {
                        code: "!!".into(),
                        why: "expected a GHID and an object",
                    });
                }
                let subscription =
                    Ghid::from_bytes(&body[..GHID_LEN]).map_err(|_| WireError::BadBody {
                        code: "!!".into(),
                        why: "invalid GHID",
                    })?;
                Request::Push {
                    subscription,
                    object: body[GHID_LEN..].to_vec(),
                }
            }
            _ => return Err(WireError::UnknownCode(code)),
        };
        Ok(Message::Request { token, request })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Message::Request { token, request } => {
                Frame::new(request.code(), *token, request.body()).to_bytes()
            }
            Message::Ack { token, body } => Frame::new(ACK, *token, body.clone()).to_bytes(),
            Message::Nak {
                token,
                code,
                message,
            } => {
                let mut body = (*code as u16).to_be_bytes().to_vec();
                body.extend_from_slice(message.as_bytes());
                Frame::new(NAK, *token, body).to_bytes()
            }
        }
    }
}

/// Encodes a GHID list (plain concatenation, no count).
pub fn encode_ghid_list(ghids: &[Ghid]) -> Vec<u8> {
    ghids.iter().flat_map(|g| g.to_bytes()).collect()
}

/// Decodes a GHID list.
pub fn decode_ghid_list(bytes: &[u8]) -> Result<Vec<Ghid>, WireError> {
    if bytes.len() % GHID_LEN != 0 {
        return Err(WireError::BadBody {
            code: "AK".into(),
            why: "GHID list is not a multiple of 65 bytes",
        });
    }
    bytes
        .chunks_exact(GHID_LEN)
        .map(|c| {
            Ghid::from_bytes(c).map_err(|_| WireError::BadBody {
                code: "AK".into(),
                why: "invalid GHID in list",
            })
        })
        .collect()
}
