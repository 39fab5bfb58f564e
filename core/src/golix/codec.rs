//! Byte-level reading and writing shared by every object parser.

use super::address::{AddressAlgorithm, DIGEST_LEN};
use super::ghid::{Ghid, GHID_LEN};
use crate::error::{Error, ObjectKind, Result};

/// A bounds-checked cursor over an object's bytes. Every read either returns the
/// requested bytes or [`Error::Truncated`]; nothing here can panic.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    kind: ObjectKind,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], kind: ObjectKind) -> Self {
        Self { buf, pos: 0, kind }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(Error::InvalidLength("length overflows"))?;
        let out = self.buf.get(self.pos..end).ok_or(Error::Truncated {
            kind: self.kind,
            needed: end,
            got: self.buf.len(),
        })?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn ghid(&mut self) -> Result<Ghid> {
        Ok(Ghid::from_bytes(self.take(GHID_LEN)?)?)
    }

    /// Reads the magic number and version and checks both.
    pub(crate) fn header(&mut self, magic: &[u8; 4], version: u32) -> Result<()> {
        let found: [u8; 4] = self.array()?;
        if &found != magic {
            return Err(Error::UnknownMagic(found));
        }
        let v = self.u32()?;
        if v != version {
            return Err(Error::UnsupportedVersion {
                kind: self.kind,
                version: v,
            });
        }
        Ok(())
    }

    /// Reads an address algorithm byte and the digest after it, and checks that
    /// the digest is the hash of every byte before it (algorithm byte included).
    pub(crate) fn file_hash(&mut self) -> Result<Ghid> {
        let algo = AddressAlgorithm::from_byte(self.u8()?)?;
        let hashed_len = self.pos;
        let digest: [u8; DIGEST_LEN] = self.array()?;
        let expected = algo.digest(&self.buf[..hashed_len]);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &digest[..])) {
            return Err(Error::HashMismatch { kind: self.kind });
        }
        Ok(Ghid::new(algo, digest))
    }

    /// Requires that every byte was consumed.
    pub(crate) fn finish(self) -> Result<()> {
        let extra = self.buf.len() - self.pos;
        if extra != 0 {
            return Err(Error::TrailingBytes {
                kind: self.kind,
                extra,
            });
        }
        Ok(())
    }
}

/// Appends the address algorithm byte and the file hash of everything so far,
/// returning the object's GHID.
pub(crate) fn append_file_hash(buf: &mut Vec<u8>, algo: AddressAlgorithm) -> Ghid {
    buf.push(algo.byte());
    let digest = algo.digest(buf);
    buf.extend_from_slice(&digest);
    Ghid::new(algo, digest)
}

/// Writes magic, version and suite.
pub(crate) fn write_header(buf: &mut Vec<u8>, magic: &[u8; 4], version: u32, suite: u8) {
    buf.extend_from_slice(magic);
    buf.extend_from_slice(&version.to_be_bytes());
    buf.push(suite);
}
