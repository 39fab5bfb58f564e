//! Secrets: the symmetric key and nonce of one container, and their `SH` serialization.
//!
//! Every secret encrypts exactly one container. The API enforces it: only a
//! [`FreshSecret`] can encrypt, encrypting consumes it, and what comes back is a
//! decrypt-only [`Secret`]. The next secret of a dynamic object comes from
//! [`Secret::ratchet`].

use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::codec::Reader;
use super::ghid::Ghid;
use super::suite::{crypto_suite, suite};
use crate::error::{Error, ObjectKind, Result};

/// Magic of a serialized secret.
pub const SECRET_MAGIC: [u8; 2] = *b"SH";
/// The one supported secret version.
pub const SECRET_VERSION: u16 = 2;

/// A decrypt-only secret (key + nonce) for one container. Zeroized on drop;
/// compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret {
    #[zeroize(skip)]
    suite: u8,
    key: Vec<u8>,
    nonce: Vec<u8>,
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Secret(suite {:#04x}, <redacted>)", self.suite)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.suite == other.suite
            && bool::from(self.key.ct_eq(&other.key) & self.nonce.ct_eq(&other.nonce))
    }
}
impl Eq for Secret {}

impl Secret {
    fn from_parts_checked(suite_id: u8, key: &[u8], nonce: &[u8]) -> Result<Self> {
        let layout = suite(suite_id)?.layout();
        if key.len() != layout.secret_key_len || nonce.len() != layout.secret_nonce_len {
            return Err(Error::InvalidLength("secret key or nonce length for suite"));
        }
        Ok(Self {
            suite: suite_id,
            key: key.to_vec(),
            nonce: nonce.to_vec(),
        })
    }

    /// Parses an `SH` serialization.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, ObjectKind::Secret);
        let magic: [u8; 2] = r.array()?;
        if magic != SECRET_MAGIC {
            return Err(Error::UnknownMagic([magic[0], magic[1], 0, 0]));
        }
        let version = r.u16()?;
        if version != SECRET_VERSION {
            return Err(Error::UnsupportedVersion {
                kind: ObjectKind::Secret,
                version: version.into(),
            });
        }
        let suite_id = r.u8()?;
        let layout = suite(suite_id)?.layout();
        let key = r.take(layout.secret_key_len)?;
        let nonce = r.take(layout.secret_nonce_len)?;
        r.finish()?;
        Self::from_parts_checked(suite_id, key, nonce)
    }

    /// The `SH` serialization (secret material: keep it encrypted).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(5 + self.key.len() + self.nonce.len()));
        out.extend_from_slice(&SECRET_MAGIC);
        out.extend_from_slice(&SECRET_VERSION.to_be_bytes());
        out.push(self.suite);
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.nonce);
        out
    }

    /// The cipher suite of the containers this secret decrypts.
    pub fn suite(&self) -> u8 {
        self.suite
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    pub(crate) fn nonce(&self) -> &[u8] {
        &self.nonce
    }

    /// Derives the secret of a dynamic object's next frame from this one (the
    /// current frame's secret), the current frame's container GHID and the
    /// dynamic GHID. See `docs/protocol/cipher-suite-3.md`, "Frame ratchet".
    pub fn ratchet(&self, container: &Ghid, dynamic: &Ghid) -> Result<FreshSecret> {
        let s = crypto_suite(self.suite)?;
        let out = s.ratchet(
            &self.key,
            &self.nonce,
            &container.to_bytes(),
            &dynamic.to_bytes(),
        )?;
        let k = s.layout().secret_key_len;
        Ok(FreshSecret(Self::from_parts_checked(
            self.suite,
            &out[..k],
            &out[k..],
        )?))
    }
}

/// A secret that has never encrypted anything. Encrypting consumes it.
#[derive(Debug, PartialEq, Eq)]
pub struct FreshSecret(Secret);

impl FreshSecret {
    /// Draws a new random key and nonce for `suite_id` (key first, then nonce).
    pub fn generate(suite_id: u8, rng: &mut impl CryptoRngCore) -> Result<Self> {
        let layout = crypto_suite(suite_id)?.layout();
        let mut key = Zeroizing::new(vec![0u8; layout.secret_key_len]);
        let mut nonce = Zeroizing::new(vec![0u8; layout.secret_nonce_len]);
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut nonce);
        Self::from_parts(suite_id, &key, &nonce)
    }

    /// Builds a fresh secret from explicit bytes. The caller asserts that this
    /// key and nonce have never encrypted anything (vectors, tests, ratchets).
    pub fn from_parts(suite_id: u8, key: &[u8], nonce: &[u8]) -> Result<Self> {
        Secret::from_parts_checked(suite_id, key, nonce).map(Self)
    }

    /// The suite.
    pub fn suite(&self) -> u8 {
        self.0.suite
    }

    /// Gives up the right to encrypt and returns the decrypt-only secret
    /// (a recipient following a ratchet does this).
    pub fn into_secret(self) -> Secret {
        self.0
    }

    pub(crate) fn as_secret(&self) -> &Secret {
        &self.0
    }
}
