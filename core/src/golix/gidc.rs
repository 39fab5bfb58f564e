//! GIDC: identity containers (public keys, self-certifying by hash).

use super::address::AddressAlgorithm;
use super::codec::{append_file_hash, write_header, Reader};
use super::ghid::Ghid;
use super::suite::{suite, PublicKeys};
use crate::error::{ObjectKind, Result};

/// A parsed identity container.
///
/// Parsing checks the layout, the file hash and (for suites whose cryptography
/// this build implements) that every public key is valid and not weak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gidc {
    suite: u8,
    keys: PublicKeys,
    ghid: Ghid,
}

impl Gidc {
    /// Magic number.
    pub const MAGIC: [u8; 4] = *b"GIDC";
    /// The one supported version.
    pub const VERSION: u32 = 2;

    /// Builds and hashes a GIDC for `keys` (which are checked first).
    pub fn new(suite_id: u8, keys: PublicKeys, algo: AddressAlgorithm) -> Result<Self> {
        let s = suite(suite_id)?;
        let layout = s.layout();
        if keys.signing.len() != layout.signing_key_len
            || keys.encryption.len() != layout.encryption_key_len
            || keys.exchange.len() != layout.exchange_key_len
        {
            return Err(crate::Error::InvalidArgument("public key length for suite"));
        }
        s.check_public_keys(&keys)?;
        let mut buf = Vec::new();
        Self::write_body(&mut buf, suite_id, &keys);
        let ghid = append_file_hash(&mut buf, algo);
        Ok(Self {
            suite: suite_id,
            keys,
            ghid,
        })
    }

    fn write_body(buf: &mut Vec<u8>, suite_id: u8, keys: &PublicKeys) {
        write_header(buf, &Self::MAGIC, Self::VERSION, suite_id);
        buf.extend_from_slice(&keys.signing);
        buf.extend_from_slice(&keys.encryption);
        buf.extend_from_slice(&keys.exchange);
    }

    /// Parses a GIDC, checking layout, hash, key validity and end of input.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, ObjectKind::Gidc);
        r.header(&Self::MAGIC, Self::VERSION)?;
        let suite_id = r.u8()?;
        let s = suite(suite_id)?;
        let layout = s.layout();
        let keys = PublicKeys {
            signing: r.take(layout.signing_key_len)?.to_vec(),
            encryption: r.take(layout.encryption_key_len)?.to_vec(),
            exchange: r.take(layout.exchange_key_len)?.to_vec(),
        };
        let ghid = r.file_hash()?;
        r.finish()?;
        s.check_public_keys(&keys)?;
        Ok(Self {
            suite: suite_id,
            keys,
            ghid,
        })
    }

    /// Serializes the GIDC.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        Self::write_body(&mut buf, self.suite, &self.keys);
        buf.push(self.ghid.algorithm().byte());
        buf.extend_from_slice(self.ghid.digest());
        buf
    }

    /// The identity's GHID.
    pub fn ghid(&self) -> Ghid {
        self.ghid
    }

    /// The cipher suite.
    pub fn suite(&self) -> u8 {
        self.suite
    }

    /// The public keys.
    pub fn keys(&self) -> &PublicKeys {
        &self.keys
    }
}
