//! Framing: `version(2) ‖ code(2 ASCII) ‖ token(u16 BE) ‖ body`, one frame per
//! binary websocket message.

use thiserror::Error;

/// The only protocol version: `00 00`.
pub const VERSION: [u8; 2] = [0, 0];
/// Bytes before the body.
pub const HEADER_LEN: usize = 6;

/// A framing or command-decoding failure. Every variant maps to a NAK or a
/// clean close; none is fatal to the process.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer than six bytes.
    #[error("frame shorter than its 6-byte header ({0} bytes)")]
    Truncated(usize),
    /// The version is not `00 00`.
    #[error("unsupported protocol version {0:02x?}")]
    BadVersion([u8; 2]),
    /// The command code is not known.
    #[error("unknown command {0:?}")]
    UnknownCode([u8; 2]),
    /// The body does not fit the command.
    #[error("malformed {code} body: {why}")]
    BadBody {
        /// The command, as text.
        code: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The frame exceeds the configured size limit.
    #[error("frame of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The frame size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// One framed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Two ASCII bytes naming the command (or `AK`/`NK` for responses).
    pub code: [u8; 2],
    /// Request token, echoed by the response.
    pub token: u16,
    /// The rest of the message.
    pub body: Vec<u8>,
}

impl Frame {
    /// Builds a frame.
    pub fn new(code: [u8; 2], token: u16, body: Vec<u8>) -> Self {
        Self { code, token, body }
    }

    /// Parses one websocket message.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Truncated(bytes.len()));
        }
        let version = [bytes[0], bytes[1]];
        if version != VERSION {
            return Err(WireError::BadVersion(version));
        }
        Ok(Self {
            code: [bytes[2], bytes[3]],
            token: u16::from_be_bytes([bytes[4], bytes[5]]),
            body: bytes[HEADER_LEN..].to_vec(),
        })
    }

    /// The token of a message whose header is intact, even if the rest is not
    /// (so a NAK can name the request it refuses).
    pub fn peek_token(bytes: &[u8]) -> Option<u16> {
        (bytes.len() >= HEADER_LEN).then(|| u16::from_be_bytes([bytes[4], bytes[5]]))
    }

    /// Serializes the frame.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        out.extend_from_slice(&VERSION);
        out.extend_from_slice(&self.code);
        out.extend_from_slice(&self.token.to_be_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// The code as printable text (`"PB"`, or hex for non-ASCII codes).
    pub fn code_text(code: [u8; 2]) -> String {
        if code.iter().all(|b| b.is_ascii_graphic()) {
            String::from_utf8_lossy(&code).into_owned()
        } else {
            format!("{:02x}{:02x}", code[0], code[1])
        }
    }
}
