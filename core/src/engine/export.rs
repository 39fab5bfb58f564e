//! The export file: one device's whole account in one encrypted file, to
//! restore it with no server (`hypergolix export FILE` / `import FILE`).
//! It holds the host's local records as they are stored (each sealed under
//! the storage key), the storage key locked under the account password or
//! recovery words, and, for an account kept only in an embedded store,
//! that store's Golix objects. Layout (integers big-endian):
//!
//! ```text
//! HGXE ‖ version(2)=1 ‖ secret kind(1: 1 password, 2 recovery words)
//!      ‖ user id(65) ‖ locked storage key (HGXL, LOCKED_KEY_LEN bytes)
//!      ‖ nonce(12) ‖ ChaCha20-Poly1305(body key, nonce, AAD = all before
//!        the nonce, body)
//! body key = BLAKE2b-512("hypergolix export body v1" ‖ storage key)[..32]
//! body = n(4) ‖ (blob(record key) ‖ blob(sealed value))×n
//!      ‖ m(4) ‖ blob(Golix object)×m
//! ```
//!
//! The AEAD covers the header and the whole body: a file corrupted or cut
//! anywhere does not open ([`Error::CorruptExport`]); a wrong password or
//! words are told apart from that by the lock, which opens first.

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::keys::{derive_key32, lock_storage_key, KdfParams, LockedKey, LOCKED_KEY_LEN};
use super::recovery;
use crate::error::{Error, Result};
use crate::golix::ghid::{Ghid, GHID_LEN};
use crate::golix::suite::{crypto_suite, cs3};

/// The first bytes of an export file.
pub const EXPORT_MAGIC: &[u8; 4] = b"HGXE";
/// The version this build writes and reads.
pub const EXPORT_VERSION: u16 = 1;
/// Header: magic, version, kind, user id, locked key.
const HEADER: usize = 4 + 2 + 1 + GHID_LEN + LOCKED_KEY_LEN;
/// Most records or objects a file may claim (each costs at least 8 bytes).
const MAX_ITEMS: u32 = 1 << 28;

/// What opens an export file (its `Debug` shows which, never the secret).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ExportSecret<'a> {
    /// The account password.
    Password(&'a [u8]),
    /// Recovery words (any valid phrase; the file says which kind it needs).
    Words(&'a str),
}

impl core::fmt::Debug for ExportSecret<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ExportSecret::Password(_) => "Password(..)",
            ExportSecret::Words(_) => "Words(..)",
        })
    }
}

impl ExportSecret<'_> {
    fn kind(&self) -> SecretKind {
        match self {
            ExportSecret::Password(_) => SecretKind::Password,
            ExportSecret::Words(_) => SecretKind::Words,
        }
    }

    /// The bytes the lock is made with: the password, or the words' entropy.
    fn bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        Ok(match self {
            ExportSecret::Password(p) => Zeroizing::new(p.to_vec()),
            ExportSecret::Words(w) => Zeroizing::new(recovery::parse_words(w)?.to_vec()),
        })
    }
}

/// Which secret a file needs, read from its header without any key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    /// The account password it was exported with.
    Password,
    /// The recovery words it was exported with.
    Words,
}

impl SecretKind {
    /// Its byte in the file's header.
    fn byte(self) -> u8 {
        match self {
            SecretKind::Password => 1,
            SecretKind::Words => 2,
        }
    }
}

/// An export, opened.
pub struct Export {
    /// The account.
    pub user_id: Ghid,
    /// The host's storage key the records are sealed under.
    pub storage_key: Zeroizing<[u8; 32]>,
    /// The local records, as stored (values sealed under the storage key).
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    /// An embedded store's Golix objects (none for an account on a server).
    pub objects: Vec<Vec<u8>>,
}

impl core::fmt::Debug for Export {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Export")
            .field("user_id", &self.user_id)
            .field("records", &self.records.len())
            .field("objects", &self.objects.len())
            .finish_non_exhaustive()
    }
}

fn body_key(storage_key: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    derive_key32(b"hypergolix export body v1", &[storage_key])
}

fn put_blob(out: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    let n = u32::try_from(b.len()).map_err(|_| Error::InvalidLength("an item over 4 GiB"))?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(b);
    Ok(())
}

/// Writes an export of `records` and `objects` under `secret` (Argon2id
/// with `params`, the salt and nonces from `rng`).
pub fn write_export(
    export: &Export,
    secret: ExportSecret<'_>,
    params: KdfParams,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    let lock = lock_storage_key(&secret.bytes()?, &export.storage_key, params, rng)?;
    write_export_locked(export, secret.kind(), &lock, rng)
}

/// [`write_export`] with `export.storage_key` already locked under the
/// password (`lock`, made by [`lock_storage_key`]): a host that keeps such
/// a lock, and has checked that the password opens it, saves an Argon2id.
pub fn write_export_locked(
    export: &Export,
    kind: SecretKind,
    lock: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    if lock.len() != LOCKED_KEY_LEN {
        return Err(Error::InvalidLength("a locked storage key"));
    }
    let mut out = Vec::new();
    out.extend_from_slice(EXPORT_MAGIC);
    out.extend_from_slice(&EXPORT_VERSION.to_be_bytes());
    out.push(kind.byte());
    out.extend_from_slice(&export.user_id.to_bytes());
    out.extend_from_slice(lock);
    let mut body = Zeroizing::new(Vec::new());
    let count = |n: usize| {
        u32::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_ITEMS)
            .ok_or(Error::InvalidLength("too many items to export"))
    };
    body.extend_from_slice(&count(export.records.len())?.to_be_bytes());
    for (k, v) in &export.records {
        put_blob(&mut body, k)?;
        put_blob(&mut body, v)?;
    }
    body.extend_from_slice(&count(export.objects.len())?.to_be_bytes());
    for o in &export.objects {
        put_blob(&mut body, o)?;
    }
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let ct = crypto_suite(cs3::SUITE_ID)?.encrypt(
        &body_key(&export.storage_key)[..],
        &nonce,
        &out,
        &body,
    )?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// The account and the secret a file needs, from its header: what to ask
/// for before any Argon2id. Not an export, another version, or cut inside
/// the header: [`Error::CorruptExport`] or [`Error::UnsupportedVersion`].
pub fn peek_export(file: &[u8]) -> Result<(Ghid, SecretKind)> {
    if file.len() < 4 || &file[..4] != EXPORT_MAGIC {
        return Err(Error::CorruptExport("not a Hypergolix export file"));
    }
    if file.len() < HEADER + 12 + 16 {
        return Err(Error::CorruptExport("the file is cut short"));
    }
    let version = u16::from_be_bytes([file[4], file[5]]);
    if version != EXPORT_VERSION {
        return Err(Error::UnsupportedVersion {
            kind: crate::error::ObjectKind::Record,
            version: u32::from(version),
        });
    }
    let kind = match file[6] {
        1 => SecretKind::Password,
        2 => SecretKind::Words,
        _ => return Err(Error::CorruptExport("unknown secret kind")),
    };
    let user_id = Ghid::from_bytes(&file[7..7 + GHID_LEN])
        .map_err(|_| Error::CorruptExport("the user id does not parse"))?;
    Ok((user_id, kind))
}

/// Opens an export with `secret`: a wrong password is
/// [`Error::WrongPassword`], wrong words [`Error::WrongRecoveryWords`], a
/// corrupted or cut file [`Error::CorruptExport`].
pub fn read_export(file: &[u8], secret: ExportSecret<'_>) -> Result<Export> {
    let (user_id, kind) = peek_export(file)?;
    match (kind, secret) {
        (SecretKind::Password, ExportSecret::Password(_))
        | (SecretKind::Words, ExportSecret::Words(_)) => {}
        (SecretKind::Password, _) => {
            return Err(Error::InvalidArgument(
                "this file opens with the account password",
            ))
        }
        (SecretKind::Words, _) => {
            return Err(Error::InvalidArgument(
                "this file opens with the recovery words",
            ))
        }
    }
    let locked = LockedKey::parse(&file[7 + GHID_LEN..HEADER])
        .map_err(|_| Error::CorruptExport("the locked key does not parse"))?;
    let storage_key = locked.unlock(&secret.bytes()?).map_err(|e| match e {
        Error::WrongPassword if kind == SecretKind::Words => Error::WrongRecoveryWords,
        e => e,
    })?;
    let (nonce, ct) = file[HEADER..].split_at(12);
    let body = Zeroizing::new(
        crypto_suite(cs3::SUITE_ID)?
            .decrypt(&body_key(&storage_key)[..], nonce, &file[..HEADER], ct)
            .map_err(|_| Error::CorruptExport("the file is corrupted or cut short"))?,
    );
    let mut r = Cursor { b: &body, at: 0 };
    let n = r.count()?;
    let mut records = Vec::new();
    for _ in 0..n {
        let k = r.blob()?.to_vec();
        let v = r.blob()?.to_vec();
        records.push((k, v));
    }
    let m = r.count()?;
    let mut objects = Vec::new();
    for _ in 0..m {
        objects.push(r.blob()?.to_vec());
    }
    if r.at != body.len() {
        return Err(Error::CorruptExport("trailing bytes in the body"));
    }
    Ok(Export {
        user_id,
        storage_key,
        records,
        objects,
    })
}

/// Reads the body (already authenticated: a failure here is a writer's bug
/// or a file from elsewhere, still refused).
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or(Error::CorruptExport("the body is cut short"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn count(&mut self) -> Result<u32> {
        let mut n = [0u8; 4];
        n.copy_from_slice(self.take(4)?);
        let n = u32::from_be_bytes(n);
        if n > MAX_ITEMS {
            return Err(Error::CorruptExport("too many items"));
        }
        Ok(n)
    }

    fn blob(&mut self) -> Result<&'a [u8]> {
        let n = self.count()?;
        self.take(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golix::address::AddressAlgorithm;
    use rand_chacha::rand_core::SeedableRng;

    fn sample() -> Export {
        Export {
            user_id: Ghid::new(AddressAlgorithm::Blake2b512, [3; 64]),
            storage_key: Zeroizing::new([9; 32]),
            records: vec![(b"a".to_vec(), vec![1, 2, 3]), (b"o\x01".to_vec(), vec![])],
            objects: vec![vec![7; 100]],
        }
    }

    #[test]
    fn an_export_opens_with_its_secret_only_and_never_when_damaged() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let p = KdfParams::INSECURE_TEST;
        let file =
            write_export(&sample(), ExportSecret::Password(b"pw"), p, &mut rng).expect("write");
        assert_eq!(
            peek_export(&file).expect("peek"),
            (sample().user_id, SecretKind::Password)
        );
        let back = read_export(&file, ExportSecret::Password(b"pw")).expect("read");
        assert_eq!(back.records, sample().records);
        assert_eq!(back.objects, sample().objects);
        assert_eq!(*back.storage_key, [9; 32]);
        assert_eq!(
            read_export(&file, ExportSecret::Password(b"no")).err(),
            Some(Error::WrongPassword)
        );
        // Cut anywhere, or any byte changed: refused, never a panic.
        for cut in [0, 3, 10, HEADER, HEADER + 12, file.len() - 1] {
            assert!(read_export(&file[..cut], ExportSecret::Password(b"pw")).is_err());
        }
        for at in [
            0,
            5,
            6,
            7,
            HEADER - 1,
            HEADER + 3,
            HEADER + 20,
            file.len() - 1,
        ] {
            let mut bad = file.clone();
            bad[at] ^= 0x40;
            assert!(
                read_export(&bad, ExportSecret::Password(b"pw")).is_err(),
                "byte {at}"
            );
        }
        let words = recovery::words_of(&[4; 16]).expect("words");
        let file =
            write_export(&sample(), ExportSecret::Words(&words), p, &mut rng).expect("write");
        assert!(read_export(&file, ExportSecret::Words(&words)).is_ok());
        let other = recovery::words_of(&[5; 16]).expect("words");
        assert_eq!(
            read_export(&file, ExportSecret::Words(&other)).err(),
            Some(Error::WrongRecoveryWords)
        );
        assert!(read_export(&file, ExportSecret::Password(b"pw")).is_err());
    }
}
