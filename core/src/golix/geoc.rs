//! GEOC: encrypted object containers.

use super::codec::{write_header, Reader};
use super::ghid::Ghid;
use super::identity::SecondParty;
use super::secret::Secret;
use super::signed::verify_signature;
use super::suite::{crypto_suite, suite};
use crate::error::{Error, ObjectKind, Result};

/// A parsed encrypted container. Parsing checks layout and file hash; call
/// [`Geoc::verify`] with the author's identity to check the signature, and
/// [`Geoc::decrypt`] with its secret to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geoc {
    suite: u8,
    author: Ghid,
    payload: Vec<u8>,
    ghid: Ghid,
    signature: Vec<u8>,
}

impl Geoc {
    /// Magic number.
    pub const MAGIC: [u8; 4] = *b"GEOC";
    /// The one supported version.
    pub const VERSION: u32 = 14;

    /// The header bytes (magic through payload length): the hashed prefix before
    /// the payload, and the AEAD associated data of suite 0x3.
    pub(crate) fn header(suite_id: u8, author: &Ghid, payload_len: usize) -> Vec<u8> {
        let mut buf = Vec::with_capacity(82);
        write_header(&mut buf, &Self::MAGIC, Self::VERSION, suite_id);
        buf.extend_from_slice(&author.to_bytes());
        buf.extend_from_slice(&(payload_len as u64).to_be_bytes());
        buf
    }

    pub(crate) fn from_parts(
        suite: u8,
        author: Ghid,
        payload: Vec<u8>,
        ghid: Ghid,
        signature: Vec<u8>,
    ) -> Self {
        Self {
            suite,
            author,
            payload,
            ghid,
            signature,
        }
    }

    /// Parses a GEOC.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, ObjectKind::Geoc);
        r.header(&Self::MAGIC, Self::VERSION)?;
        let suite_id = r.u8()?;
        let layout = suite(suite_id)?.layout();
        let author = r.ghid()?;
        let len = usize::try_from(r.u64()?).map_err(|_| Error::InvalidLength("payload length"))?;
        let payload = r.take(len)?.to_vec();
        let ghid = r.file_hash()?;
        let signature = r.take(layout.signature_len)?.to_vec();
        r.finish()?;
        Ok(Self {
            suite: suite_id,
            author,
            payload,
            ghid,
            signature,
        })
    }

    /// Serializes the GEOC.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = Self::header(self.suite, &self.author, self.payload.len());
        buf.reserve(self.payload.len() + 65 + self.signature.len());
        buf.extend_from_slice(&self.payload);
        buf.extend_from_slice(&self.ghid.to_bytes());
        buf.extend_from_slice(&self.signature);
        buf
    }

    /// Verifies the author's signature.
    pub fn verify(&self, author: &SecondParty) -> Result<()> {
        verify_signature(
            self.suite,
            &self.author,
            &self.ghid,
            &self.signature,
            author,
        )
    }

    /// Decrypts the payload. Verify the container first.
    pub fn decrypt(&self, secret: &Secret) -> Result<Vec<u8>> {
        if secret.suite() != self.suite {
            return Err(Error::SuiteMismatch {
                object: self.suite,
                key: secret.suite(),
            });
        }
        let aad = Self::header(self.suite, &self.author, self.payload.len());
        crypto_suite(self.suite)?.decrypt(secret.key(), secret.nonce(), &aad, &self.payload)
    }

    /// The container's GHID.
    pub fn ghid(&self) -> Ghid {
        self.ghid
    }
    /// The author's identity GHID.
    pub fn author(&self) -> Ghid {
        self.author
    }
    /// The cipher suite.
    pub fn suite(&self) -> u8 {
        self.suite
    }
    /// The encrypted payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    /// The signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}
