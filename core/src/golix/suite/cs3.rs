//! Cipher suite 0x3: Ed25519, X25519, ChaCha20-Poly1305, BLAKE2b-512.
//!
//! The normative definition, with every length and domain string, is
//! `docs/protocol/cipher-suite-3.md`. Summary:
//!
//! | use | primitive |
//! |---|---|
//! | signatures (GEOC, GOBS, GOBD, GDXX) | Ed25519 (RFC 8032) over the 64-byte file-hash digest; strict verification |
//! | container payloads | ChaCha20-Poly1305 (RFC 8439), key and nonce from the secret, AAD = container header |
//! | GARQ inner container | ephemeral X25519 to the recipient's encryption key → HKDF → ChaCha20-Poly1305 |
//! | GARQ MAC | X25519(exchange keys) → HKDF (salt = XOR of identity digests) → keyed BLAKE2b-512 over the file-hash digest |
//! | key derivation | HKDF (RFC 5869) with HMAC-BLAKE2b-512 |

use blake2::{Blake2b512, Blake2bMac512};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::SimpleHkdf;
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::Zeroizing;

use super::{
    CipherSuite, PrivateKeys, PublicKeys, RequestPayloadLen, SignatureVerifier, SuiteLayout,
};
use crate::error::{Error, Result};
use crate::golix::address::DIGEST_LEN;

/// The suite byte.
pub const SUITE_ID: u8 = 0x03;
/// Length of every public key and of X25519/Ed25519 secrets.
pub const KEY_LEN: usize = 32;
/// Ed25519 signature length.
pub const SIGNATURE_LEN: usize = 64;
/// Keyed BLAKE2b-512 MAC length.
pub const MAC_LEN: usize = 64;
/// ChaCha20-Poly1305 key length.
pub const SECRET_KEY_LEN: usize = 32;
/// ChaCha20-Poly1305 nonce length.
pub const SECRET_NONCE_LEN: usize = 12;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;

/// HKDF `info` for the key that seals a GARQ inner container.
pub const SEAL_INFO: &[u8] = b"Golix CS3 v1 GARQ seal key";
/// HKDF `info` for the GARQ MAC key.
pub const MAC_KEY_INFO: &[u8] = b"Golix CS3 v1 GARQ MAC key";
/// HKDF `info` prefix for the dynamic-object frame ratchet (followed by the dynamic GHID).
pub const RATCHET_INFO: &[u8] = b"Golix CS3 v1 frame ratchet";
/// The fixed nonce used when sealing: each seal key comes from a fresh ephemeral key.
pub const SEAL_NONCE: [u8; SECRET_NONCE_LEN] = [0u8; SECRET_NONCE_LEN];

static LAYOUT: SuiteLayout = SuiteLayout {
    id: SUITE_ID,
    signing_key_len: KEY_LEN,
    encryption_key_len: KEY_LEN,
    exchange_key_len: KEY_LEN,
    signature_len: SIGNATURE_LEN,
    mac_len: MAC_LEN,
    request_payload: RequestPayloadLen::U16Prefixed,
    secret_key_len: SECRET_KEY_LEN,
    secret_nonce_len: SECRET_NONCE_LEN,
    ciphertext_overhead: TAG_LEN,
    seal_random_len: KEY_LEN,
};

/// Suite 0x3.
#[derive(Debug)]
pub struct Suite3;

static SUITE: Suite3 = Suite3;

fn array32(bytes: &[u8], what: &'static str) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| Error::InvalidKey(what))
}

/// Checks an Ed25519 public key: a canonical encoding of a point of the
/// prime-order subgroup (which excludes every small-order "weak" key).
pub fn check_ed25519_key(bytes: &[u8]) -> Result<()> {
    let arr = array32(bytes, "Ed25519")?;
    let point = CompressedEdwardsY(arr)
        .decompress()
        .ok_or(Error::InvalidKey("Ed25519"))?;
    if point.compress().to_bytes() != arr {
        return Err(Error::InvalidKey("Ed25519"));
    }
    if point.is_small_order() || !point.is_torsion_free() {
        return Err(Error::WeakKey("Ed25519"));
    }
    Ok(())
}

/// Checks an X25519 public key: a canonical u-coordinate of a point of the
/// prime-order subgroup of Curve25519 (not on the twist, not small order).
pub fn check_x25519_key(bytes: &[u8]) -> Result<()> {
    let arr = array32(bytes, "X25519")?;
    let edwards = MontgomeryPoint(arr)
        .to_edwards(0)
        .ok_or(Error::InvalidKey("X25519"))?;
    if edwards.to_montgomery().to_bytes() != arr {
        return Err(Error::InvalidKey("X25519"));
    }
    if edwards.is_small_order() || !edwards.is_torsion_free() {
        return Err(Error::WeakKey("X25519"));
    }
    Ok(())
}

/// HKDF-BLAKE2b-512 (RFC 5869 with HMAC-BLAKE2b-512) into `out`.
fn hkdf(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    let hk = SimpleHkdf::<Blake2b512>::new(Some(salt), ikm);
    hk.expand_multi_info(info, out)
        .map_err(|_| Error::InvalidArgument("HKDF output too long"))
}

fn aead(key: &[u8], nonce: &[u8]) -> Result<(ChaCha20Poly1305, Nonce)> {
    if key.len() != SECRET_KEY_LEN || nonce.len() != SECRET_NONCE_LEN {
        return Err(Error::InvalidArgument(
            "ChaCha20-Poly1305 key or nonce length",
        ));
    }
    Ok((
        ChaCha20Poly1305::new(Key::from_slice(key)),
        *Nonce::from_slice(nonce),
    ))
}

fn dh(secret: &StaticSecret, peer: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let peer = XPublic::from(array32(peer, "X25519")?);
    let shared = secret.diffie_hellman(&peer);
    if !shared.was_contributory() {
        return Err(Error::NonContributory);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

fn seal_key(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient);
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf(&salt, shared, &[SEAL_INFO], key.as_mut())?;
    Ok(key)
}

impl CipherSuite for Suite3 {
    fn layout(&self) -> &'static SuiteLayout {
        &LAYOUT
    }

    fn has_crypto(&self) -> bool {
        true
    }

    fn check_public_keys(&self, keys: &PublicKeys) -> Result<()> {
        check_ed25519_key(&keys.signing)?;
        check_x25519_key(&keys.encryption)?;
        check_x25519_key(&keys.exchange)
    }

    fn prepare_verifier(&self, signing_key: &[u8]) -> Result<Box<dyn SignatureVerifier>> {
        let key = VerifyingKey::from_bytes(&array32(signing_key, "Ed25519")?)
            .map_err(|_| Error::InvalidKey("Ed25519"))?;
        Ok(Box::new(Verifier3(key)))
    }

    fn encrypt(&self, key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let (cipher, nonce) = aead(key, nonce)?;
        cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| Error::InvalidArgument("plaintext too long"))
    }

    fn decrypt(&self, key: &[u8], nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
        let (cipher, nonce) = aead(key, nonce)?;
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| Error::DecryptionFailed)
    }

    fn seal(
        &self,
        recipient_encryption_key: &[u8],
        random: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let recipient = array32(recipient_encryption_key, "X25519")?;
        let eph_secret = StaticSecret::from(
            <[u8; 32]>::try_from(random)
                .map_err(|_| Error::InvalidArgument("seal randomness is 32 bytes"))?,
        );
        let eph_public = XPublic::from(&eph_secret).to_bytes();
        let shared = dh(&eph_secret, &recipient)?;
        let key = seal_key(&shared, &eph_public, &recipient)?;
        let ct = self.encrypt(key.as_ref(), &SEAL_NONCE, aad, plaintext)?;
        let mut out = Vec::with_capacity(KEY_LEN + ct.len());
        out.extend_from_slice(&eph_public);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn request_mac(&self, mac_key: &[u8], digest: &[u8; DIGEST_LEN]) -> Result<Vec<u8>> {
        use blake2::digest::Mac;
        let mut mac = <Blake2bMac512 as Mac>::new_from_slice(mac_key)
            .map_err(|_| Error::InvalidArgument("MAC key length"))?;
        mac.update(digest);
        Ok(mac.finalize().into_bytes().to_vec())
    }

    fn verify_request_mac(
        &self,
        mac_key: &[u8],
        digest: &[u8; DIGEST_LEN],
        tag: &[u8],
    ) -> Result<()> {
        use blake2::digest::Mac;
        let mut mac = <Blake2bMac512 as Mac>::new_from_slice(mac_key)
            .map_err(|_| Error::InvalidArgument("MAC key length"))?;
        mac.update(digest);
        mac.verify_slice(tag).map_err(|_| Error::BadMac)
    }

    fn ratchet(
        &self,
        key: &[u8],
        nonce: &[u8],
        previous_container: &[u8],
        dynamic: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        if key.len() != SECRET_KEY_LEN || nonce.len() != SECRET_NONCE_LEN {
            return Err(Error::InvalidArgument("secret length"));
        }
        let mut ikm = Zeroizing::new([0u8; SECRET_KEY_LEN + SECRET_NONCE_LEN]);
        ikm[..SECRET_KEY_LEN].copy_from_slice(key);
        ikm[SECRET_KEY_LEN..].copy_from_slice(nonce);
        let mut out = Zeroizing::new(vec![0u8; SECRET_KEY_LEN + SECRET_NONCE_LEN]);
        hkdf(
            previous_container,
            ikm.as_ref(),
            &[RATCHET_INFO, dynamic],
            &mut out,
        )?;
        Ok(out)
    }

    fn private_keys_from_random(&self, random: &[u8]) -> Result<Box<dyn PrivateKeys>> {
        if random.len() != 3 * KEY_LEN {
            return Err(Error::InvalidArgument(
                "suite 0x3 private keys need 96 random bytes",
            ));
        }
        let part = |i: usize| -> [u8; 32] {
            let mut a = [0u8; 32];
            a.copy_from_slice(&random[i * 32..(i + 1) * 32]);
            a
        };
        Ok(Box::new(Keys3 {
            signing: SigningKey::from_bytes(&part(0)),
            encryption: StaticSecret::from(part(1)),
            exchange: StaticSecret::from(part(2)),
        }))
    }

    fn private_key_random_len(&self) -> usize {
        3 * KEY_LEN
    }
}

/// A decoded Ed25519 public key.
struct Verifier3(VerifyingKey);

impl SignatureVerifier for Verifier3 {
    fn verify(&self, digest: &[u8; DIGEST_LEN], signature: &[u8]) -> Result<()> {
        let sig = Signature::from_slice(signature).map_err(|_| Error::BadSignature)?;
        self.0
            .verify_strict(digest, &sig)
            .map_err(|_| Error::BadSignature)
    }
}

/// Suite 0x3 private keys. All three are zeroized on drop by their crates.
struct Keys3 {
    signing: SigningKey,
    encryption: StaticSecret,
    exchange: StaticSecret,
}

impl PrivateKeys for Keys3 {
    fn suite(&self) -> &'static dyn CipherSuite {
        &SUITE
    }

    fn public_keys(&self) -> PublicKeys {
        PublicKeys {
            signing: self.signing.verifying_key().to_bytes().to_vec(),
            encryption: XPublic::from(&self.encryption).to_bytes().to_vec(),
            exchange: XPublic::from(&self.exchange).to_bytes().to_vec(),
        }
    }

    fn sign(&self, digest: &[u8; DIGEST_LEN]) -> Vec<u8> {
        self.signing.sign(digest).to_bytes().to_vec()
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < KEY_LEN + TAG_LEN {
            return Err(Error::MalformedRequest("sealed payload too short"));
        }
        let eph_public = array32(&sealed[..KEY_LEN], "X25519")?;
        let shared = dh(&self.encryption, &eph_public)?;
        let own = XPublic::from(&self.encryption).to_bytes();
        let key = seal_key(&shared, &eph_public, &own)?;
        SUITE
            .decrypt(key.as_ref(), &SEAL_NONCE, aad, &sealed[KEY_LEN..])
            .map(Zeroizing::new)
    }

    fn request_mac_key(
        &self,
        peer_exchange_key: &[u8],
        salt: &[u8; DIGEST_LEN],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let shared = dh(&self.exchange, peer_exchange_key)?;
        let mut out = Zeroizing::new(vec![0u8; MAC_LEN]);
        hkdf(salt, shared.as_ref(), &[MAC_KEY_INFO], &mut out)?;
        Ok(out)
    }

    fn to_random_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(3 * KEY_LEN));
        out.extend_from_slice(self.signing.as_bytes());
        out.extend_from_slice(self.encryption.as_bytes());
        out.extend_from_slice(self.exchange.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_order_keys_are_weak_or_invalid() {
        // The identity point (y = 1) is small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(check_ed25519_key(&identity), Err(Error::WeakKey("Ed25519")));
        // u = 0 is a low-order X25519 point.
        assert!(check_x25519_key(&[0u8; 32]).is_err());
        // u = 1 maps to the point at infinity / invalid.
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(check_x25519_key(&one).is_err());
    }

    #[test]
    fn generated_keys_pass_checks() {
        let keys = SUITE.private_keys_from_random(&[9u8; 96]).expect("keys");
        SUITE.check_public_keys(&keys.public_keys()).expect("valid");
    }

    #[test]
    fn seal_open_round_trip() {
        let keys = SUITE.private_keys_from_random(&[1u8; 96]).expect("keys");
        let pk = keys.public_keys();
        let sealed = SUITE
            .seal(&pk.encryption, &[2u8; 32], b"aad", b"hello")
            .expect("seal");
        assert_eq!(
            keys.open(b"aad", &sealed).expect("open").as_slice(),
            b"hello"
        );
        assert_eq!(keys.open(b"other", &sealed), Err(Error::DecryptionFailed));
    }
}
