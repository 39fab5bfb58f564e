//! GARQ: asymmetric requests, and the request payloads they carry
//! (handshake `HS`, ack `AK`, nak `NK`, raw `00 00`).

use super::codec::{write_header, Reader};
use super::ghid::{Ghid, GHID_LEN};
use super::secret::Secret;
use super::suite::{suite, RequestPayloadLen};
use crate::error::{Error, ObjectKind, Result};

/// A parsed asymmetric request. Only the recipient is public; the author and
/// payload are inside the sealed payload, opened by
/// [`FirstParty::open_request`](super::identity::FirstParty::open_request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Garq {
    suite: u8,
    recipient: Ghid,
    payload: Vec<u8>,
    ghid: Ghid,
    mac: Vec<u8>,
}

impl Garq {
    /// Magic number.
    pub const MAGIC: [u8; 4] = *b"GARQ";
    /// The one supported version.
    pub const VERSION: u32 = 12;

    /// Bytes 0..74 (magic, version, suite, recipient): the sealing AAD.
    pub(crate) fn prefix(suite_id: u8, recipient: &Ghid) -> Vec<u8> {
        let mut buf = Vec::with_capacity(74);
        write_header(&mut buf, &Self::MAGIC, Self::VERSION, suite_id);
        buf.extend_from_slice(&recipient.to_bytes());
        buf
    }

    /// The hashed body: prefix, payload (length-prefixed where the suite says so).
    pub(crate) fn body(suite_id: u8, recipient: &Ghid, payload: &[u8]) -> Result<Vec<u8>> {
        let layout = suite(suite_id)?.layout();
        let mut buf = Self::prefix(suite_id, recipient);
        match layout.request_payload {
            RequestPayloadLen::Fixed(n) if payload.len() != n => {
                return Err(Error::InvalidLength("request payload length for suite"));
            }
            RequestPayloadLen::Fixed(_) => {}
            RequestPayloadLen::U16Prefixed => {
                let n = u16::try_from(payload.len())
                    .map_err(|_| Error::InvalidLength("request payload too long"))?;
                buf.extend_from_slice(&n.to_be_bytes());
            }
        }
        buf.extend_from_slice(payload);
        Ok(buf)
    }

    pub(crate) fn from_parts(
        suite: u8,
        recipient: Ghid,
        payload: Vec<u8>,
        ghid: Ghid,
        mac: Vec<u8>,
    ) -> Self {
        Self {
            suite,
            recipient,
            payload,
            ghid,
            mac,
        }
    }

    /// Parses a GARQ (layout, file hash, end of input).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, ObjectKind::Garq);
        r.header(&Self::MAGIC, Self::VERSION)?;
        let suite_id = r.u8()?;
        let layout = suite(suite_id)?.layout();
        let recipient = r.ghid()?;
        let len = match layout.request_payload {
            RequestPayloadLen::Fixed(n) => n,
            RequestPayloadLen::U16Prefixed => usize::from(r.u16()?),
        };
        let payload = r.take(len)?.to_vec();
        let ghid = r.file_hash()?;
        let mac = r.take(layout.mac_len)?.to_vec();
        r.finish()?;
        Ok(Self {
            suite: suite_id,
            recipient,
            payload,
            ghid,
            mac,
        })
    }

    /// Serializes the GARQ.
    pub fn to_bytes(&self) -> Vec<u8> {
        // The payload length was validated when this value was built or parsed.
        let mut buf = Self::body(self.suite, &self.recipient, &self.payload).unwrap_or_default();
        buf.extend_from_slice(&self.ghid.to_bytes());
        buf.extend_from_slice(&self.mac);
        buf
    }

    /// The request's GHID.
    pub fn ghid(&self) -> Ghid {
        self.ghid
    }
    /// The recipient's identity GHID.
    pub fn recipient(&self) -> Ghid {
        self.recipient
    }
    /// The cipher suite.
    pub fn suite(&self) -> u8 {
        self.suite
    }
    /// The sealed payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    /// The MAC bytes.
    pub fn mac(&self) -> &[u8] {
        &self.mac
    }
}

/// What a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestPayload {
    /// `HS`: share `target` (a GEOC or dynamic GHID) and the secret of its current container.
    Handshake {
        /// The shared object.
        target: Ghid,
        /// The secret of the container the target currently resolves to.
        secret: Secret,
    },
    /// `AK`: the request `target` (a GARQ GHID) was accepted.
    Ack {
        /// The GHID of the GARQ being answered.
        target: Ghid,
        /// Status code (0 by default).
        status: u32,
    },
    /// `NK`: the request `target` (a GARQ GHID) was refused.
    Nak {
        /// The GHID of the GARQ being answered.
        target: Ghid,
        /// Status code (0 by default).
        status: u32,
    },
    /// `00 00`: arbitrary bytes.
    Raw(Vec<u8>),
}

const TYPE_HS: [u8; 2] = *b"HS";
const TYPE_AK: [u8; 2] = *b"AK";
const TYPE_NK: [u8; 2] = *b"NK";
const TYPE_RAW: [u8; 2] = [0, 0];

/// The inner container of a request: the author and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContent {
    /// The author's identity GHID.
    pub author: Ghid,
    /// The payload.
    pub payload: RequestPayload,
}

impl RequestContent {
    /// Serializes the inner container: author(65) ‖ type(2) ‖ length u16 ‖ payload.
    pub fn to_bytes(&self) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        let mut body = zeroize::Zeroizing::new(Vec::new());
        let kind = match &self.payload {
            RequestPayload::Handshake { target, secret } => {
                body.extend_from_slice(&target.to_bytes());
                let sb = secret.to_bytes();
                let n =
                    u8::try_from(sb.len()).map_err(|_| Error::InvalidLength("secret too long"))?;
                body.push(n);
                body.extend_from_slice(&sb);
                TYPE_HS
            }
            RequestPayload::Ack { target, status } | RequestPayload::Nak { target, status } => {
                body.extend_from_slice(&target.to_bytes());
                body.extend_from_slice(&status.to_be_bytes());
                if matches!(self.payload, RequestPayload::Ack { .. }) {
                    TYPE_AK
                } else {
                    TYPE_NK
                }
            }
            RequestPayload::Raw(raw) => {
                body.extend_from_slice(raw);
                TYPE_RAW
            }
        };
        let n = u16::try_from(body.len())
            .map_err(|_| Error::InvalidLength("request payload too long"))?;
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(GHID_LEN + 4 + body.len()));
        out.extend_from_slice(&self.author.to_bytes());
        out.extend_from_slice(&kind);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Parses an inner container.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let malformed = |_| Error::MalformedRequest("inner container layout");
        let mut r = Reader::new(bytes, ObjectKind::Garq);
        let author = r.ghid().map_err(malformed)?;
        let kind: [u8; 2] = r.array().map_err(malformed)?;
        let len = usize::from(r.u16().map_err(malformed)?);
        let body = r.take(len).map_err(malformed)?;
        r.finish()
            .map_err(|_| Error::MalformedRequest("bytes after the request payload"))?;
        let mut b = Reader::new(body, ObjectKind::Garq);
        let payload = match kind {
            TYPE_HS => {
                let target = b.ghid().map_err(malformed)?;
                let n = usize::from(b.u8().map_err(malformed)?);
                let secret = Secret::parse(b.take(n).map_err(malformed)?)
                    .map_err(|_| Error::MalformedRequest("handshake secret"))?;
                b.finish()
                    .map_err(|_| Error::MalformedRequest("bytes after the handshake"))?;
                RequestPayload::Handshake { target, secret }
            }
            TYPE_AK | TYPE_NK => {
                let target = b.ghid().map_err(malformed)?;
                let status = b.u32().map_err(malformed)?;
                b.finish()
                    .map_err(|_| Error::MalformedRequest("bytes after the status"))?;
                if kind == TYPE_AK {
                    RequestPayload::Ack { target, status }
                } else {
                    RequestPayload::Nak { target, status }
                }
            }
            TYPE_RAW => RequestPayload::Raw(body.to_vec()),
            _ => return Err(Error::MalformedRequest("unknown payload type")),
        };
        Ok(Self { author, payload })
    }
}
