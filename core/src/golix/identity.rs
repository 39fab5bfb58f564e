//! Identities: [`FirstParty`] (holds private keys, creates objects) and
//! [`SecondParty`] (public keys from a GIDC, verifies objects).

use std::sync::Arc;

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::address::{AddressAlgorithm, DIGEST_LEN};
use super::codec::{append_file_hash, write_header, Reader};
use super::garq::{Garq, RequestContent, RequestPayload};
use super::geoc::Geoc;
use super::ghid::Ghid;
use super::gidc::Gidc;
use super::gobd::Gobd;
use super::pair::{Gdxx, Gobs};
use super::secret::{FreshSecret, Secret};
use super::suite::{
    crypto_suite, default_suite, suite, PrivateKeys, PublicKeys, SignatureVerifier,
};
use crate::error::{Error, ObjectKind, Result};

/// A second-party (public) identity, built from a verified GIDC. Its signing
/// key is decoded once, so verifying many objects costs only the signature check.
#[derive(Clone)]
pub struct SecondParty {
    gidc: Gidc,
    verifier: Option<Arc<dyn SignatureVerifier>>,
}

impl core::fmt::Debug for SecondParty {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "SecondParty({:?}, suite {:#04x})",
            self.gidc.ghid(),
            self.gidc.suite()
        )
    }
}

impl PartialEq for SecondParty {
    fn eq(&self, other: &Self) -> bool {
        self.gidc == other.gidc
    }
}
impl Eq for SecondParty {}

impl SecondParty {
    /// Wraps a parsed GIDC (parsing already checked its hash and keys).
    pub fn from_gidc(gidc: Gidc) -> Self {
        // Suites without cryptography in this build have no verifier; verifying
        // then reports the suite as unsupported.
        let verifier = suite(gidc.suite())
            .ok()
            .filter(|s| s.has_crypto())
            .and_then(|s| s.prepare_verifier(&gidc.keys().signing).ok())
            .map(Arc::from);
        Self { gidc, verifier }
    }

    /// Verifies a signature over a file-hash digest with this identity's key.
    pub fn verify_digest(&self, digest: &[u8; DIGEST_LEN], signature: &[u8]) -> Result<()> {
        match &self.verifier {
            Some(v) => v.verify(digest, signature),
            None => Err(crypto_suite(self.suite())
                .err()
                .unwrap_or(Error::InvalidKey("signing"))),
        }
    }

    /// Parses a GIDC into an identity.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        Gidc::parse(bytes).map(Self::from_gidc)
    }

    /// The identity GHID (the GIDC's GHID).
    pub fn ghid(&self) -> Ghid {
        self.gidc.ghid()
    }

    /// The cipher suite.
    pub fn suite(&self) -> u8 {
        self.gidc.suite()
    }

    /// The public keys.
    pub fn keys(&self) -> &PublicKeys {
        self.gidc.keys()
    }

    /// The identity container.
    pub fn gidc(&self) -> &Gidc {
        &self.gidc
    }
}

/// XOR of two identities' digests: the GARQ MAC key salt.
fn mac_salt(a: &Ghid, b: &Ghid) -> [u8; DIGEST_LEN] {
    let mut out = [0u8; DIGEST_LEN];
    for (o, (x, y)) in out.iter_mut().zip(a.digest().iter().zip(b.digest().iter())) {
        *o = x ^ y;
    }
    out
}

/// Magic of an exported (encrypted) private-key container.
pub const EXPORT_MAGIC: [u8; 4] = *b"GPRV";
/// Version of the exported private-key container.
pub const EXPORT_VERSION: u32 = 1;
/// Length of the key that encrypts an export.
pub const EXPORT_KEY_LEN: usize = 32;
/// Length of the export nonce.
pub const EXPORT_NONCE_LEN: usize = 12;

/// A first-party identity: private keys plus the matching public identity.
/// Key material is zeroized on drop.
pub struct FirstParty {
    keys: Box<dyn PrivateKeys>,
    public: SecondParty,
}

impl core::fmt::Debug for FirstParty {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "FirstParty({:?}, <private keys redacted>)",
            self.public.ghid()
        )
    }
}

impl FirstParty {
    /// Generates a new identity with the default suite (0x3).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Result<Self> {
        let s = default_suite();
        let mut random = Zeroizing::new(vec![0u8; s.private_key_random_len()]);
        rng.fill_bytes(&mut random);
        Self::from_random(s.layout().id, &random)
    }

    /// Builds an identity deterministically from the suite's key-generation
    /// bytes (suite 0x3: Ed25519 seed ‖ X25519 encryption secret ‖ X25519 exchange secret).
    pub fn from_random(suite_id: u8, random: &[u8]) -> Result<Self> {
        let keys = crypto_suite(suite_id)?.private_keys_from_random(random)?;
        let gidc = Gidc::new(suite_id, keys.public_keys(), AddressAlgorithm::Blake2b512)?;
        Ok(Self {
            keys,
            public: SecondParty::from_gidc(gidc),
        })
    }

    /// The public identity.
    pub fn second_party(&self) -> &SecondParty {
        &self.public
    }

    /// The identity GHID.
    pub fn ghid(&self) -> Ghid {
        self.public.ghid()
    }

    /// The cipher suite.
    pub fn suite(&self) -> u8 {
        self.public.suite()
    }

    fn algo(&self) -> AddressAlgorithm {
        AddressAlgorithm::Blake2b512
    }

    fn sign_body(&self, mut body: Vec<u8>) -> (Vec<u8>, Ghid, Vec<u8>) {
        let ghid = append_file_hash(&mut body, self.algo());
        let sig = self.keys.sign(ghid.digest());
        (body, ghid, sig)
    }

    /// Encrypts `plaintext` into a signed container, consuming the fresh secret
    /// and returning the decrypt-only secret for sharing.
    pub fn make_container(&self, secret: FreshSecret, plaintext: &[u8]) -> Result<(Geoc, Secret)> {
        let s = crypto_suite(self.suite())?;
        if secret.suite() != self.suite() {
            return Err(Error::SuiteMismatch {
                object: self.suite(),
                key: secret.suite(),
            });
        }
        let ct_len = plaintext.len() + s.layout().ciphertext_overhead;
        let aad = Geoc::header(self.suite(), &self.ghid(), ct_len);
        let ct = s.encrypt(
            secret.as_secret().key(),
            secret.as_secret().nonce(),
            &aad,
            plaintext,
        )?;
        debug_assert_eq!(ct.len(), ct_len);
        let mut body = aad;
        body.extend_from_slice(&ct);
        let (_, ghid, sig) = self.sign_body(body);
        Ok((
            Geoc::from_parts(self.suite(), self.ghid(), ct, ghid, sig),
            secret.into_secret(),
        ))
    }

    /// Creates a static binding to `target`.
    pub fn make_static_binding(&self, target: &Ghid) -> Gobs {
        let (_, ghid, sig) = self.sign_body(Gobs::body(self.suite(), &self.ghid(), target));
        Gobs::from_parts(self.suite(), self.ghid(), *target, ghid, sig)
    }

    /// Creates a debinding of `target`.
    pub fn make_debinding(&self, target: &Ghid) -> Gdxx {
        let (_, ghid, sig) = self.sign_body(Gdxx::body(self.suite(), &self.ghid(), target));
        Gdxx::from_parts(self.suite(), self.ghid(), *target, ghid, sig)
    }

    /// Creates the first frame (counter 0) of a new dynamic binding to `target`.
    pub fn make_first_frame(&self, target: &Ghid) -> Result<Gobd> {
        self.make_frame(0, vec![*target], None)
    }

    /// Creates the frame after `previous` (which must be this identity's): counter
    /// + 1, targets = `new_target` followed by up to `history` previous targets.
    pub fn make_next_frame(
        &self,
        previous: &Gobd,
        new_target: &Ghid,
        history: usize,
    ) -> Result<Gobd> {
        if previous.binder() != self.ghid() {
            return Err(Error::WrongIdentity);
        }
        let counter = previous
            .counter()
            .checked_add(1)
            .ok_or(Error::IllegalFrame("counter overflow"))?;
        let mut targets = vec![*new_target];
        targets.extend(previous.targets().iter().take(history.max(1)));
        self.make_frame(counter, targets, Some(previous.dynamic_ghid()))
    }

    /// Creates any frame: counter 0 with one target and no dynamic GHID (it is
    /// computed), or a later counter with two or more targets and the dynamic GHID.
    pub fn make_frame(
        &self,
        counter: u64,
        targets: Vec<Ghid>,
        dynamic: Option<Ghid>,
    ) -> Result<Gobd> {
        let (body, dynamic) = Gobd::body(
            self.suite(),
            &self.ghid(),
            counter,
            &targets,
            dynamic,
            self.algo(),
        )?;
        let (_, ghid, sig) = self.sign_body(body);
        Ok(Gobd::from_parts(
            self.suite(),
            self.ghid(),
            counter,
            targets,
            dynamic,
            ghid,
            sig,
        ))
    }

    /// Creates a request to `recipient`, drawing the sealing randomness from `rng`.
    pub fn make_request(
        &self,
        recipient: &SecondParty,
        payload: RequestPayload,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Garq> {
        let mut random = Zeroizing::new(vec![
            0u8;
            crypto_suite(self.suite())?.layout().seal_random_len
        ]);
        rng.fill_bytes(&mut random);
        self.make_request_with_random(recipient, payload, &random)
    }

    /// Creates a request with explicit sealing randomness (suite 0x3: the
    /// ephemeral X25519 secret, 32 bytes). Never reuse it.
    pub fn make_request_with_random(
        &self,
        recipient: &SecondParty,
        payload: RequestPayload,
        random: &[u8],
    ) -> Result<Garq> {
        let s = crypto_suite(self.suite())?;
        if recipient.suite() != self.suite() {
            return Err(Error::SuiteMismatch {
                object: self.suite(),
                key: recipient.suite(),
            });
        }
        if let RequestPayload::Handshake { secret, .. } = &payload {
            if secret.suite() != self.suite() {
                return Err(Error::SuiteMismatch {
                    object: self.suite(),
                    key: secret.suite(),
                });
            }
        }
        let inner = RequestContent {
            author: self.ghid(),
            payload,
        }
        .to_bytes()?;
        let aad = Garq::prefix(self.suite(), &recipient.ghid());
        let sealed = s.seal(&recipient.keys().encryption, random, &aad, &inner)?;
        let mut body = Garq::body(self.suite(), &recipient.ghid(), &sealed)?;
        let ghid = append_file_hash(&mut body, self.algo());
        let mac_key = self.keys.request_mac_key(
            &recipient.keys().exchange,
            &mac_salt(&self.ghid(), &recipient.ghid()),
        )?;
        let mac = s.request_mac(&mac_key, ghid.digest())?;
        Ok(Garq::from_parts(
            self.suite(),
            recipient.ghid(),
            sealed,
            ghid,
            mac,
        ))
    }

    /// Opens a request addressed to this identity, in the order of
    /// `docs/protocol/objects.md`: recipient check → suite check → decrypt →
    /// parse → author lookup → MAC check. `lookup` returns a known identity.
    pub fn open_request(
        &self,
        request: &Garq,
        lookup: impl Fn(&Ghid) -> Option<SecondParty>,
    ) -> Result<RequestContent> {
        if request.recipient() != self.ghid() {
            return Err(Error::WrongRecipient);
        }
        if request.suite() != self.suite() {
            return Err(Error::SuiteMismatch {
                object: request.suite(),
                key: self.suite(),
            });
        }
        let s = crypto_suite(self.suite())?;
        let aad = Garq::prefix(request.suite(), &request.recipient());
        let inner = self.keys.open(&aad, request.payload())?;
        let content = RequestContent::parse(&inner)?;
        let author = lookup(&content.author).ok_or(Error::UnknownAuthor)?;
        if author.ghid() != content.author {
            return Err(Error::WrongIdentity);
        }
        if author.suite() != request.suite() {
            return Err(Error::SuiteMismatch {
                object: request.suite(),
                key: author.suite(),
            });
        }
        let mac_key = self.keys.request_mac_key(
            &author.keys().exchange,
            &mac_salt(&author.ghid(), &self.ghid()),
        )?;
        s.verify_request_mac(&mac_key, request.ghid().digest(), request.mac())?;
        if let RequestPayload::Handshake { secret, .. } = &content.payload {
            if secret.suite() != request.suite() {
                return Err(Error::SuiteMismatch {
                    object: request.suite(),
                    key: secret.suite(),
                });
            }
        }
        Ok(content)
    }

    /// Exports the private keys encrypted under `key` (32 bytes) with a nonce drawn
    /// from `rng`. Layout: `GPRV` ‖ version u32 ‖ suite ‖ identity GHID ‖ nonce(12) ‖
    /// ChaCha20-Poly1305(key, nonce, AAD = everything before the ciphertext, key-generation bytes).
    pub fn export(
        &self,
        key: &[u8; EXPORT_KEY_LEN],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>> {
        let mut nonce = [0u8; EXPORT_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        self.export_with_nonce(key, &nonce)
    }

    /// [`FirstParty::export`] with an explicit nonce (never reuse one under the same key).
    pub fn export_with_nonce(
        &self,
        key: &[u8; EXPORT_KEY_LEN],
        nonce: &[u8; EXPORT_NONCE_LEN],
    ) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        write_header(&mut out, &EXPORT_MAGIC, EXPORT_VERSION, self.suite());
        out.extend_from_slice(&self.ghid().to_bytes());
        out.extend_from_slice(nonce);
        // Always ChaCha20-Poly1305 (suite 0x3's AEAD), whatever the identity's suite.
        let ct = crypto_suite(super::suite::cs3::SUITE_ID)?.encrypt(
            key,
            nonce,
            &out,
            &self.keys.to_random_bytes(),
        )?;
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Imports an export made by [`FirstParty::export`]. A wrong key gives
    /// [`Error::DecryptionFailed`].
    pub fn import(bytes: &[u8], key: &[u8; EXPORT_KEY_LEN]) -> Result<Self> {
        let mut r = Reader::new(bytes, ObjectKind::PrivateKeys);
        r.header(&EXPORT_MAGIC, EXPORT_VERSION)?;
        let suite_id = r.u8()?;
        let s = suite(suite_id)?;
        let ghid = r.ghid()?;
        let nonce: [u8; EXPORT_NONCE_LEN] = r.array()?;
        let aad_len = r.position();
        let ct = r.take(s.private_key_random_len() + super::suite::cs3::TAG_LEN)?;
        r.finish()?;
        let random = Zeroizing::new(crypto_suite(super::suite::cs3::SUITE_ID)?.decrypt(
            key,
            &nonce,
            &bytes[..aad_len],
            ct,
        )?);
        let me = Self::from_random(suite_id, &random)?;
        if me.ghid() != ghid {
            return Err(Error::WrongIdentity);
        }
        Ok(me)
    }
}
