//! Legacy suite 0x1 (RSA-4096 / SHA-512 / AES-256-CTR): layout only.
//!
//! Objects made by Hypergolix 0.1.0 can be parsed and hash-checked; their
//! signatures, encryption and MACs are not implemented yet (every crypto method
//! returns [`Error::UnsupportedSuite`]).

use zeroize::Zeroizing;

use super::{
    CipherSuite, PrivateKeys, PublicKeys, RequestPayloadLen, SignatureVerifier, SuiteLayout,
};
use crate::error::{Error, Result};
use crate::golix::address::DIGEST_LEN;

/// The suite byte.
pub const SUITE_ID: u8 = 0x01;

static LAYOUT: SuiteLayout = SuiteLayout {
    id: SUITE_ID,
    signing_key_len: 512,
    encryption_key_len: 512,
    exchange_key_len: 32,
    signature_len: 512,
    mac_len: 64,
    request_payload: RequestPayloadLen::Fixed(512),
    secret_key_len: 32,
    secret_nonce_len: 16,
    ciphertext_overhead: 0,
    seal_random_len: 0,
};

/// Suite 0x1 (layout only).
#[derive(Debug)]
pub struct Suite1;

impl CipherSuite for Suite1 {
    fn layout(&self) -> &'static SuiteLayout {
        &LAYOUT
    }
    fn has_crypto(&self) -> bool {
        false
    }
    fn check_public_keys(&self, keys: &PublicKeys) -> Result<()> {
        // Structural checks only: 4096-bit odd moduli (golix-protocol.md 5.3 #8).
        for (name, n) in [
            ("RSA signing", &keys.signing),
            ("RSA encryption", &keys.encryption),
        ] {
            let top_bit_set = n.first().is_some_and(|b| b & 0x80 != 0);
            let odd = n.last().is_some_and(|b| b & 1 == 1);
            if n.len() != 512 || !top_bit_set || !odd {
                return Err(Error::InvalidKey(name));
            }
        }
        Ok(())
    }
    fn prepare_verifier(&self, _: &[u8]) -> Result<Box<dyn SignatureVerifier>> {
        Err(Error::UnsupportedSuite(SUITE_ID))
    }
    fn encrypt(&self, _: &[u8], _: &[u8], _: &[u8], _: &[u8]) -> Result<Vec<u8>> {
        Err(Error::UnsupportedSuite(SUITE_ID))
    }
    fn decrypt(&self, _: &[u8], _: &[u8], _: &[u8], _: &[u8]) -> Result<Vec<u8>> {
        Err(Error::UnsupportedSuite(SUITE_ID))
    }
    fn seal(&self, _: &[u8], _: &[u8], _: &[u8], _: &[u8]) -> Result<Vec<u8>> {
        Err(Error::UnsupportedSuite(SUITE_ID))
    }
    fn request_mac(&self, _: &[u8], _: &[u8; DIGEST_LEN]) -> Result<Vec<u8>> {
        Err(Error::UnsupportedSuite(SUITE_ID))
    }
    fn verify_request_mac(&self, _: &[u8], _: &[u8; DIGEST_LEN], _: &[u8]) -> Result<()> {
        Err(Error::UnsupportedSuite(SUITE_ID))
    }
    fn ratchet(&self, _: &[u8], _: &[u8], _: &[u8], _: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Err(Error::UnsupportedSuite(SUITE_ID))
    }
    fn private_keys_from_random(&self, _: &[u8]) -> Result<Box<dyn PrivateKeys>> {
        Err(Error::UnsupportedSuite(SUITE_ID))
    }
    fn private_key_random_len(&self) -> usize {
        0
    }
}
