//! Cipher suites: the per-suite field lengths and all cryptography, behind one trait.
//!
//! The rest of the crate never names an algorithm: it asks [`suite`] for the
//! [`CipherSuite`] of an object's suite byte, and a first-party identity holds its
//! private keys as a [`PrivateKeys`] trait object. Adding the legacy suite 0x1's
//! cryptography means implementing these two traits for it; callers do not change.

pub mod cs1;
pub mod cs3;

use zeroize::Zeroizing;

use super::address::DIGEST_LEN;
use crate::error::{Error, Result};

/// How a GARQ's private payload is laid out for a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestPayloadLen {
    /// A fixed number of bytes (suite 0x1: one RSA-4096 block).
    Fixed(usize),
    /// A big-endian u16 length prefix followed by that many bytes (suite 0x3).
    U16Prefixed,
}

/// Per-suite field lengths. Everything a parser needs to know about a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuiteLayout {
    /// Suite byte.
    pub id: u8,
    /// GIDC signature public key length.
    pub signing_key_len: usize,
    /// GIDC encryption public key length.
    pub encryption_key_len: usize,
    /// GIDC exchange public key length.
    pub exchange_key_len: usize,
    /// Signature length (GEOC, GOBS, GOBD, GDXX).
    pub signature_len: usize,
    /// GARQ MAC length.
    pub mac_len: usize,
    /// GARQ private payload layout.
    pub request_payload: RequestPayloadLen,
    /// Symmetric key length in a secret.
    pub secret_key_len: usize,
    /// Nonce (seed) length in a secret.
    pub secret_nonce_len: usize,
    /// Random bytes consumed by one GARQ seal (ephemeral key material).
    pub seal_random_len: usize,
    /// Bytes a container payload's ciphertext adds to its plaintext (the AEAD tag).
    pub ciphertext_overhead: usize,
}

/// The public keys of an identity, as carried in its GIDC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeys {
    /// Signature verification key.
    pub signing: Vec<u8>,
    /// Encryption key (GARQ sealing).
    pub encryption: Vec<u8>,
    /// Exchange key (GARQ MAC agreement).
    pub exchange: Vec<u8>,
}

/// The public operations of a cipher suite.
pub trait CipherSuite: Send + Sync + 'static {
    /// The field lengths of this suite.
    fn layout(&self) -> &'static SuiteLayout;

    /// Whether this build implements the suite's cryptography (not just its layout).
    fn has_crypto(&self) -> bool;

    /// Checks that a GIDC's public keys are well formed and not weak.
    fn check_public_keys(&self, keys: &PublicKeys) -> Result<()>;

    /// Verifies `signature` over a 64-byte file-hash digest.
    fn verify(
        &self,
        signing_key: &[u8],
        digest: &[u8; DIGEST_LEN],
        signature: &[u8],
    ) -> Result<()> {
        self.prepare_verifier(signing_key)?
            .verify(digest, signature)
    }

    /// Decodes a signing public key once, for repeated verification.
    fn prepare_verifier(&self, signing_key: &[u8]) -> Result<Box<dyn SignatureVerifier>>;

    /// Encrypts a container payload with a secret's key and nonce, binding `aad`.
    fn encrypt(&self, key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>>;

    /// Decrypts a container payload.
    fn decrypt(&self, key: &[u8], nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>>;

    /// Seals a GARQ inner container to the recipient's encryption key.
    /// `random` is exactly [`SuiteLayout::seal_random_len`] bytes.
    fn seal(
        &self,
        recipient_encryption_key: &[u8],
        random: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>>;

    /// Computes the GARQ MAC over the request's file-hash digest with a derived MAC key.
    fn request_mac(&self, mac_key: &[u8], digest: &[u8; DIGEST_LEN]) -> Result<Vec<u8>>;

    /// Checks a GARQ MAC in constant time.
    fn verify_request_mac(
        &self,
        mac_key: &[u8],
        digest: &[u8; DIGEST_LEN],
        mac: &[u8],
    ) -> Result<()>;

    /// Derives the next frame's secret (key, nonce) of a dynamic object from the
    /// previous frame's secret, the previous frame's container GHID and the dynamic GHID.
    fn ratchet(
        &self,
        key: &[u8],
        nonce: &[u8],
        previous_container: &[u8],
        dynamic: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>>;

    /// Builds private keys from the suite's key-generation random bytes
    /// ([`CipherSuite::private_key_random_len`] bytes).
    fn private_keys_from_random(&self, random: &[u8]) -> Result<Box<dyn PrivateKeys>>;

    /// How many random bytes [`CipherSuite::private_keys_from_random`] consumes.
    fn private_key_random_len(&self) -> usize;
}

/// A decoded signature public key, ready to verify many signatures.
pub trait SignatureVerifier: Send + Sync {
    /// Verifies `signature` over a 64-byte file-hash digest.
    fn verify(&self, digest: &[u8; DIGEST_LEN], signature: &[u8]) -> Result<()>;
}

/// The private half of an identity for one suite.
pub trait PrivateKeys: Send + Sync {
    /// The suite these keys belong to.
    fn suite(&self) -> &'static dyn CipherSuite;

    /// The matching public keys.
    fn public_keys(&self) -> PublicKeys;

    /// Signs a 64-byte file-hash digest.
    fn sign(&self, digest: &[u8; DIGEST_LEN]) -> Vec<u8>;

    /// Opens a GARQ inner container sealed to this identity's encryption key.
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>>;

    /// Derives the GARQ MAC key shared with a peer: key agreement between this
    /// identity's exchange key and the peer's, salted with `salt`.
    fn request_mac_key(
        &self,
        peer_exchange_key: &[u8],
        salt: &[u8; DIGEST_LEN],
    ) -> Result<Zeroizing<Vec<u8>>>;

    /// The key-generation random bytes these keys were built from (for export).
    fn to_random_bytes(&self) -> Zeroizing<Vec<u8>>;
}

static CS1: cs1::Suite1 = cs1::Suite1;
static CS3: cs3::Suite3 = cs3::Suite3;

/// The cipher suite for a suite byte. Suite 0x0 (the spec's test dummy) and 0x2
/// (never implemented by anyone) are unknown.
pub fn suite(id: u8) -> Result<&'static dyn CipherSuite> {
    match id {
        cs1::SUITE_ID => Ok(&CS1),
        cs3::SUITE_ID => Ok(&CS3),
        other => Err(Error::UnknownSuite(other)),
    }
}

/// Like [`suite`], but also requires the suite's cryptography to be implemented.
pub fn crypto_suite(id: u8) -> Result<&'static dyn CipherSuite> {
    let s = suite(id)?;
    if s.has_crypto() {
        Ok(s)
    } else {
        Err(Error::UnsupportedSuite(id))
    }
}

/// The default suite for new identities: 0x3.
pub fn default_suite() -> &'static dyn CipherSuite {
    &CS3
}
