//! The remote protocol of Hypergolix 0.1.0 (service ↔ persistence server):
//! commands, responses and the NAK error codes.

use super::frame::{Frame, WireError};
use crate::golix::ghid::{Ghid, GHID_LEN};

/// Response code for success.
pub const ACK: [u8; 2] = *b"AK";
/// Response code for failure.
pub const NAK: [u8; 2] = *b"NK";

/// The websocket subprotocol (`Sec-WebSocket-Protocol`) with which a client
/// asks the server to push a frame's container with the frame (`!C`, see
/// [`Request::Push`]). Our engines offer it; 0.1.0 clients do not, and are
/// never sent `!C`. A server that does not know it ignores the offer.
pub const PUSH_CONTAINERS_SUBPROTOCOL: &str = "hypergolix-remote.push-containers";

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
    /// `!!` (server → client): a subscription update; `!C` when it
    /// carries the frame's container too (only to a client that asked with
    /// [`PUSH_CONTAINERS_SUBPROTOCOL`]).
    Push {
        /// The subscribed GHID.
        subscription: Ghid,
        /// The packed object (a GOBD frame, a GARQ, or the GDXX that removed one).
        object: Vec<u8>,
        /// The packed GEOC the frame binds, sparing the client a `GT`
        /// (`!C`; `None` for `!!`). Content-addressed: a client checks it
        /// against the frame's target before using it.
        container: Option<Vec<u8>>,
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
            Request::Push {
                container: None, ..
            } => *b"!!",
            Request::Push {
                container: Some(_), ..
            } => *b"!C",
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
                container: None,
            } => {
                let mut b = subscription.to_bytes().to_vec();
                b.extend_from_slice(object);
                b
            }
            Request::Push {
                subscription,
                object,
                container: Some(c),
            } => {
                // GHID, the frame's length (u32, big-endian), frame, container.
                let mut b = subscription.to_bytes().to_vec();
                b.extend_from_slice(&(object.len() as u32).to_be_bytes());
                b.extend_from_slice(object);
                b.extend_from_slice(c);
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

/// The body of `!C`: GHID, frame length (u32 BE), frame, container.
fn push_with_container(body: &[u8]) -> Result<Request, WireError> {
    let bad = |why| WireError::BadBody {
        code: "!C".into(),
        why,
    };
    let subscription = body
        .get(..GHID_LEN)
        .ok_or(bad("expected a GHID, a frame and a container"))?;
    let subscription = Ghid::from_bytes(subscription).map_err(|_| bad("invalid GHID"))?;
    let len = body
        .get(GHID_LEN..GHID_LEN + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or(bad("expected the frame's length"))?;
    let len = u32::from_be_bytes(len) as usize;
    let rest = &body[GHID_LEN + 4..];
    if len == 0 || len >= rest.len() {
        return Err(bad("the frame's length leaves no frame or no container"));
    }
    Ok(Request::Push {
        subscription,
        object: rest[..len].to_vec(),
        container: Some(rest[len..].to_vec()),
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
                    container: None,
                }
            }
            b"!C" => push_with_container(&body)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ghid(n: u8) -> Ghid {
        let mut b = [0u8; GHID_LEN];
        b[0] = 1;
        b[1] = n;
        Ghid::from_bytes(&b).expect("ghid")
    }

    #[test]
    fn a_push_with_its_container_round_trips_as_bang_c() {
        let m = Message::Request {
            token: 7,
            request: Request::Push {
                subscription: ghid(1),
                object: b"frame bytes".to_vec(),
                container: Some(b"container".to_vec()),
            },
        };
        let bytes = m.encode();
        assert_eq!(&bytes[2..4], b"!C");
        assert_eq!(Message::decode(&bytes).expect("decodes"), m);
        let plain = Message::Request {
            token: 7,
            request: Request::Push {
                subscription: ghid(1),
                object: b"frame bytes".to_vec(),
                container: None,
            },
        };
        let bytes = plain.encode();
        assert_eq!(&bytes[2..4], b"!!");
        assert_eq!(Message::decode(&bytes).expect("decodes"), plain);
    }

    #[test]
    fn a_bang_c_whose_length_does_not_fit_is_refused() {
        let frame = |body: Vec<u8>| Frame::new(*b"!C", 1, body).to_bytes();
        let mut head = ghid(2).to_bytes().to_vec();
        assert!(Message::decode(&frame(head.clone())).is_err(), "no length");
        for len in [0u32, 5, 6, u32::MAX] {
            let mut b = head.clone();
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(b"abcde");
            let e = Message::decode(&frame(b)).expect_err("refused");
            assert!(matches!(e, WireError::BadBody { .. }), "{len}: {e:?}");
        }
        head.extend_from_slice(&4u32.to_be_bytes());
        head.extend_from_slice(b"abcde");
        let Message::Request {
            request: Request::Push {
                object, container, ..
            },
            ..
        } = Message::decode(&frame(head)).expect("fits")
        else {
            panic!("not a push");
        };
        assert_eq!((object, container), (b"abcd".to_vec(), Some(b"e".to_vec())));
    }
}
