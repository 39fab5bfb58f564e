//! Address algorithms: how a Golix object's file hash (and so its GHID) is computed.

use blake2::{Blake2b512, Digest};
use sha2::Sha512;

use crate::error::{Error, Result};

/// Length in bytes of every digest of the address algorithms this build knows.
pub const DIGEST_LEN: usize = 64;

/// An address algorithm (the byte in front of every digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum AddressAlgorithm {
    /// 0x01: SHA-512 (legacy suite 0x1 objects). Parsed and hash-checked only.
    Sha512 = 0x01,
    /// 0x02: unkeyed BLAKE2b-512 (RFC 7693). The default.
    Blake2b512 = 0x02,
}

impl AddressAlgorithm {
    /// Parses an algorithm byte. Algorithm 0x00 (the spec's test dummy) is rejected.
    pub fn from_byte(b: u8) -> Result<Self> {
        match b {
            0x01 => Ok(Self::Sha512),
            0x02 => Ok(Self::Blake2b512),
            other => Err(Error::UnknownAddressAlgorithm(other)),
        }
    }

    /// The algorithm byte.
    pub fn byte(self) -> u8 {
        self as u8
    }

    /// Hashes `data`, returning the 64-byte digest.
    pub fn digest(self, data: &[u8]) -> [u8; DIGEST_LEN] {
        let mut out = [0u8; DIGEST_LEN];
        match self {
            Self::Sha512 => out.copy_from_slice(&Sha512::digest(data)),
            Self::Blake2b512 => out.copy_from_slice(&Blake2b512::digest(data)),
        }
        out
    }
}
