//! Key derivations of the engine: the password → account root key
//! (Argon2id), every dynamic frame's secret from its object's master secret,
//! and the sealing of local records under the host's storage key.

use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::golix::secret::{FreshSecret, Secret};
use crate::golix::suite::{crypto_suite, cs3};

/// Argon2id cost parameters for turning a password into the account root key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// The default for every device and browser: 19 MiB, 2 passes, 1 lane
    /// (OWASP's first Argon2id recommendation; ~0.1 s native, well under a
    /// second in browser wasm, small enough for phones). See `docs/engine.md`.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// Cheap parameters for tests and the simulation only. Never use them
    /// for a real account.
    pub const INSECURE_TEST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
}

/// What the password gives: the root object's master secret and the key
/// that wraps the identity's private keys inside it.
pub(crate) struct PasswordKeys {
    pub root_master: Secret,
    pub wrap_key: Zeroizing<[u8; 32]>,
}

/// Argon2id (version 0x13) of `password` and `salt` into `out` (its length
/// is the output length).
pub(crate) fn argon2id(
    password: &[u8],
    salt: &[u8],
    params: KdfParams,
    out: &mut [u8],
) -> Result<()> {
    let p = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(out.len()),
    )
    .map_err(|_| Error::InvalidArgument("invalid Argon2id parameters"))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(password, salt, out)
        .map_err(|_| Error::InvalidArgument("Argon2id failed"))
}

/// Argon2id(password, salt = the identity GHID's 65 bytes) → 76 bytes:
/// ChaCha20 key (32) ‖ nonce (12) of the root master secret, then the wrap key (32).
pub(crate) fn password_keys(
    password: &[u8],
    identity: &Ghid,
    params: KdfParams,
) -> Result<PasswordKeys> {
    let mut out = Zeroizing::new([0u8; 76]);
    argon2id(password, &identity.to_bytes(), params, &mut out[..])?;
    let root_master =
        FreshSecret::from_parts(cs3::SUITE_ID, &out[..32], &out[32..44])?.into_secret();
    let mut wrap_key = Zeroizing::new([0u8; 32]);
    wrap_key.copy_from_slice(&out[44..76]);
    Ok(PasswordKeys {
        root_master,
        wrap_key,
    })
}

/// The secret of a dynamic object's frame: from the master secret and the
/// previous frame's container (the frame's `targets[1]`); the first frame
/// (counter 0, no previous container) uses the binder's identity GHID in both
/// places. Anyone holding the master reads every frame, whatever they missed.
pub(crate) fn frame_secret(
    master: &Secret,
    binder: &Ghid,
    previous_container: Option<&Ghid>,
    dynamic: Option<&Ghid>,
) -> Result<FreshSecret> {
    match (previous_container, dynamic) {
        (Some(c), Some(d)) => master.ratchet(c, d),
        _ => master.ratchet(binder, binder),
    }
}

/// A 32-byte key derived from secrets: BLAKE2b-512 of `label` and then
/// each of `parts`, cut to 32 bytes (the rest of the digest is wiped).
pub(crate) fn derive_key32(label: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    use blake2::{Blake2b512, Digest};
    let mut h = Blake2b512::new();
    h.update(label);
    for p in parts {
        h.update(p);
    }
    let mut d = h.finalize();
    let mut k = Zeroizing::new([0u8; 32]);
    k.copy_from_slice(&d[..32]);
    zeroize::Zeroize::zeroize(d.as_mut_slice());
    k
}

/// Seals a local record: nonce(12) ‖ ChaCha20-Poly1305(key, nonce, AAD = the
/// record's key, value).
pub(crate) fn seal_local(
    key: &[u8; 32],
    record_key: &[u8],
    value: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let ct = crypto_suite(cs3::SUITE_ID)?.encrypt(key, &nonce, record_key, value)?;
    let mut out = Vec::with_capacity(12 + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a local record sealed by [`seal_local`].
pub(crate) fn open_local(
    key: &[u8; 32],
    record_key: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < 12 {
        return Err(Error::Storage("local record too short".into()));
    }
    let (nonce, ct) = sealed.split_at(12);
    crypto_suite(cs3::SUITE_ID)?
        .decrypt(key, nonce, record_key, ct)
        .map(Zeroizing::new)
        .map_err(|_| Error::Storage("local record does not open with the storage key".into()))
}

/// Magic of a locked storage key ([`lock_storage_key`]).
const LOCK_MAGIC: &[u8; 4] = b"HGXL";
/// Its only version.
const LOCK_VERSION: u8 = 1;
/// Salt length of a locked storage key.
const LOCK_SALT: usize = 16;
/// Header: magic, version, memory (KiB), passes, lanes, salt, nonce.
const LOCK_HEADER: usize = 4 + 1 + 4 + 4 + 4 + LOCK_SALT + 12;
/// The whole record: header, then the sealed 32-byte key and its 16-byte tag.
pub const LOCKED_KEY_LEN: usize = LOCK_HEADER + 32 + 16;
/// The most memory a locked key may ask Argon2id for (1 GiB): a corrupted
/// or hostile record cannot make unlocking take all the memory there is.
const LOCK_MAX_MEMORY_KIB: u32 = 1024 * 1024;
/// The most passes a locked key may ask for.
const LOCK_MAX_PASSES: u32 = 64;

fn lock_kek(password: &[u8], salt: &[u8], params: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let mut kek = Zeroizing::new([0u8; 32]);
    argon2id(password, salt, params, &mut kek[..])?;
    Ok(kek)
}

/// Seals a host's 32-byte storage key under a password, for hosts that have
/// no private file to keep it in (the browser keeps the result in
/// IndexedDB): Argon2id(password, a random 16-byte salt, `params`) → a key
/// that seals the storage key with ChaCha20-Poly1305, the header as AAD.
///
/// Layout ([`LOCKED_KEY_LEN`] bytes): `HGXL ‖ version(1)=1 ‖ memory KiB(4) ‖
/// passes(4) ‖ lanes(4) ‖ salt(16) ‖ nonce(12) ‖ sealed key(32) ‖ tag(16)`,
/// integers big-endian. The parameters travel with the record, so a later
/// version can raise them.
pub fn lock_storage_key(
    password: &[u8],
    storage_key: &[u8; 32],
    params: KdfParams,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(LOCKED_KEY_LEN);
    out.extend_from_slice(LOCK_MAGIC);
    out.push(LOCK_VERSION);
    out.extend_from_slice(&params.memory_kib.to_be_bytes());
    out.extend_from_slice(&params.iterations.to_be_bytes());
    out.extend_from_slice(&params.parallelism.to_be_bytes());
    let mut salt_nonce = [0u8; LOCK_SALT + 12];
    rng.fill_bytes(&mut salt_nonce);
    out.extend_from_slice(&salt_nonce);
    let kek = lock_kek(password, &salt_nonce[..LOCK_SALT], params)?;
    let ct = crypto_suite(cs3::SUITE_ID)?.encrypt(
        &kek[..],
        &salt_nonce[LOCK_SALT..],
        &out[..LOCK_HEADER],
        storage_key,
    )?;
    out.extend_from_slice(&ct);
    Ok(out)
}

/// A storage key locked by [`lock_storage_key`], parsed: its Argon2id
/// parameters are known (and bounded) before any work is done.
#[derive(Clone, PartialEq, Eq)]
pub struct LockedKey {
    params: KdfParams,
    bytes: [u8; LOCKED_KEY_LEN],
}

impl core::fmt::Debug for LockedKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LockedKey")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl LockedKey {
    /// Parses a locked key. A record that is not one (wrong length,
    /// another magic or version, parameters beyond 1 GiB or 64 passes) is
    /// [`Error::Storage`].
    pub fn parse(locked: &[u8]) -> Result<Self> {
        let bad = |why: &str| Error::Storage(format!("locked storage key: {why}"));
        let bytes: [u8; LOCKED_KEY_LEN] = locked.try_into().map_err(|_| bad("wrong length"))?;
        if &bytes[..4] != LOCK_MAGIC || bytes[4] != LOCK_VERSION {
            return Err(bad("not a version-1 HGXL record"));
        }
        let int = |at: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[at..at + 4]);
            u32::from_be_bytes(b)
        };
        let params = KdfParams {
            memory_kib: int(5),
            iterations: int(9),
            parallelism: int(13),
        };
        if params.memory_kib > LOCK_MAX_MEMORY_KIB || params.iterations > LOCK_MAX_PASSES {
            return Err(bad("Argon2id parameters beyond the limits"));
        }
        Ok(Self { params, bytes })
    }

    /// The Argon2id parameters unlocking will use.
    pub fn params(&self) -> KdfParams {
        self.params
    }

    /// Opens the storage key. A wrong password is [`Error::WrongPassword`];
    /// parameters Argon2id refuses are [`Error::Storage`].
    pub fn unlock(&self, password: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let b = &self.bytes;
        let salt = &b[17..17 + LOCK_SALT];
        let nonce = &b[17 + LOCK_SALT..LOCK_HEADER];
        let kek = lock_kek(password, salt, self.params).map_err(|_| {
            Error::Storage("locked storage key: invalid Argon2id parameters".into())
        })?;
        let plain = Zeroizing::new(
            crypto_suite(cs3::SUITE_ID)?
                .decrypt(&kek[..], nonce, &b[..LOCK_HEADER], &b[LOCK_HEADER..])
                .map_err(|_| Error::WrongPassword)?,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return Err(Error::Storage(
                "locked storage key: the sealed key is not 32 bytes".into(),
            ));
        }
        key.copy_from_slice(&plain);
        Ok(key)
    }
}

/// Length of a storage key locked under the account key
/// ([`lock_storage_key_for_account`]): nonce, sealed key, tag.
pub const ACCOUNT_LOCK_LEN: usize = 12 + 32 + 16;
/// The AAD of that lock.
const ACCOUNT_LOCK_AAD: &[u8] = b"HGXM storage key under the account key";

/// Seals a host's storage key under the account key
/// ([`Engine::account_lock_key`](super::Engine::account_lock_key)), a
/// second lock beside the password's: a browser whose copy is locked under
/// a password changed on another device opens the account root with the
/// new password, derives the account key and unlocks its copy with this.
/// Layout: `nonce(12) ‖ ChaCha20-Poly1305(account key, nonce, AAD, key)`.
pub fn lock_storage_key_for_account(
    account_key: &[u8; 32],
    storage_key: &[u8; 32],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    seal_local(account_key, ACCOUNT_LOCK_AAD, storage_key, rng)
}

/// Opens [`lock_storage_key_for_account`]'s lock: another account's key,
/// or a damaged lock, is [`Error::WrongPassword`].
pub fn unlock_storage_key_for_account(
    account_key: &[u8; 32],
    sealed: &[u8],
) -> Result<Zeroizing<[u8; 32]>> {
    if sealed.len() != ACCOUNT_LOCK_LEN {
        return Err(Error::Storage(
            "the account lock has the wrong length".into(),
        ));
    }
    let plain =
        open_local(account_key, ACCOUNT_LOCK_AAD, sealed).map_err(|_| Error::WrongPassword)?;
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&plain[..32]);
    Ok(key)
}

/// Opens a storage key sealed by [`lock_storage_key`]: [`LockedKey::parse`]
/// then [`LockedKey::unlock`].
pub fn unlock_storage_key(password: &[u8], locked: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    LockedKey::parse(locked)?.unlock(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golix::address::AddressAlgorithm;

    #[test]
    fn password_keys_depend_on_password_and_identity() {
        let a = Ghid::new(AddressAlgorithm::Blake2b512, [1; 64]);
        let b = Ghid::new(AddressAlgorithm::Blake2b512, [2; 64]);
        let k1 = password_keys(b"pw", &a, KdfParams::INSECURE_TEST).expect("kdf");
        let k2 = password_keys(b"pw", &a, KdfParams::INSECURE_TEST).expect("kdf");
        let k3 = password_keys(b"pw2", &a, KdfParams::INSECURE_TEST).expect("kdf");
        let k4 = password_keys(b"pw", &b, KdfParams::INSECURE_TEST).expect("kdf");
        assert!(k1.root_master == k2.root_master && *k1.wrap_key == *k2.wrap_key);
        assert!(k1.root_master != k3.root_master);
        assert!(k1.root_master != k4.root_master);
    }

    #[test]
    fn local_records_are_bound_to_their_key() {
        use rand_chacha::rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let key = [9u8; 32];
        let s = seal_local(&key, b"o/1", b"value", &mut rng).expect("seal");
        assert_eq!(&open_local(&key, b"o/1", &s).expect("open")[..], b"value");
        assert!(open_local(&key, b"o/2", &s).is_err());
        assert!(open_local(&[8u8; 32], b"o/1", &s).is_err());
        assert!(open_local(&key, b"o/1", &s[..5]).is_err());
    }

    #[test]
    fn storage_key_lock_opens_with_its_password_only() {
        use rand_chacha::rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let key = [0x5au8; 32];
        let locked =
            lock_storage_key(b"pw", &key, KdfParams::INSECURE_TEST, &mut rng).expect("lock");
        assert_eq!(locked.len(), LOCKED_KEY_LEN);
        assert_eq!(
            LockedKey::parse(&locked).expect("parse").params(),
            KdfParams::INSECURE_TEST
        );
        assert_eq!(*unlock_storage_key(b"pw", &locked).expect("unlock"), key);
        assert_eq!(
            unlock_storage_key(b"pw2", &locked).err(),
            Some(Error::WrongPassword)
        );
        // Every byte is bound: a flipped bit anywhere is refused.
        for i in 0..locked.len() {
            let mut bad = locked.clone();
            bad[i] ^= 1;
            assert!(unlock_storage_key(b"pw", &bad).is_err(), "byte {i}");
        }
        assert!(matches!(
            unlock_storage_key(b"pw", &locked[..40]),
            Err(Error::Storage(_))
        ));
        // Hostile parameters are refused before Argon2id runs.
        let mut huge = locked.clone();
        huge[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            unlock_storage_key(b"pw", &huge),
            Err(Error::Storage(_))
        ));
    }
}
