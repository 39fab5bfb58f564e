//! GHIDs: Golix content addresses (1 address-algorithm byte + 64-byte digest).

use core::fmt;
use core::str::FromStr;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;

pub use crate::address::{AddressAlgorithm, DIGEST_LEN};
use crate::error::{Error, Result};

/// Length of a GHID in bytes.
pub const GHID_LEN: usize = 1 + DIGEST_LEN;

/// A Golix address: the address algorithm and a digest.
///
/// The text form is the URL-safe base64 encoding, with padding, of the 65 bytes
/// (88 characters), exactly as Hypergolix 0.1.0 prints them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ghid {
    algo: AddressAlgorithm,
    digest: [u8; DIGEST_LEN],
}

impl Ghid {
    /// Builds a GHID from its parts.
    pub fn new(algo: AddressAlgorithm, digest: [u8; DIGEST_LEN]) -> Self {
        Self { algo, digest }
    }

    /// Parses exactly 65 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != GHID_LEN {
            return Err(Error::InvalidLength("a GHID is 65 bytes"));
        }
        let algo = AddressAlgorithm::from_byte(bytes[0])?;
        let mut digest = [0u8; DIGEST_LEN];
        digest.copy_from_slice(&bytes[1..]);
        Ok(Self { algo, digest })
    }

    /// The 65-byte wire form.
    pub fn to_bytes(&self) -> [u8; GHID_LEN] {
        let mut out = [0u8; GHID_LEN];
        out[0] = self.algo.byte();
        out[1..].copy_from_slice(&self.digest);
        out
    }

    /// The address algorithm.
    pub fn algorithm(&self) -> AddressAlgorithm {
        self.algo
    }

    /// The 64-byte digest (without the algorithm byte).
    pub fn digest(&self) -> &[u8; DIGEST_LEN] {
        &self.digest
    }

    /// The text form (URL-safe base64 with padding, 88 characters).
    pub fn to_text(&self) -> String {
        URL_SAFE.encode(self.to_bytes())
    }
}

impl fmt::Display for Ghid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl fmt::Debug for Ghid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_text();
        write!(f, "Ghid({}...)", &text[..12])
    }
}

impl FromStr for Ghid {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bytes = URL_SAFE.decode(s).map_err(|_| Error::InvalidGhidText)?;
        if bytes.len() != GHID_LEN {
            return Err(Error::InvalidGhidText);
        }
        Ghid::from_bytes(&bytes)
    }
}

impl serde::Serialize for Ghid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> serde::Deserialize<'de> for Ghid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_matches_hypergolix_sample() {
        // Agent A's fingerprint from tests/interop/cs1-objects/INDEX.md.
        let text = "ATegEkIetz3XzxMboJlpRfXByJmn0pxWiUjhhDSm7Fo2pqb-nJxrqWnYHj1hllF-ygn7yqkhCBSvsT7yKpdSBH8=";
        let g: Ghid = text.parse().expect("valid");
        assert_eq!(g.algorithm(), AddressAlgorithm::Sha512);
        assert_eq!(g.to_text(), text);
        assert_eq!(text.len(), 88);
    }

    #[test]
    fn rejects_bad_text() {
        assert_eq!("".parse::<Ghid>(), Err(Error::InvalidGhidText));
        // Missing padding is rejected, as Python's urlsafe_b64decode does.
        let unpadded = "ATegEkIetz3XzxMboJlpRfXByJmn0pxWiUjhhDSm7Fo2pqb-nJxrqWnYHj1hllF-ygn7yqkhCBSvsT7yKpdSBH8";
        assert_eq!(unpadded.parse::<Ghid>(), Err(Error::InvalidGhidText));
        // Algorithm 0 is the spec's test dummy and is not accepted.
        let zero = URL_SAFE.encode([0u8; 65]);
        assert_eq!(zero.parse::<Ghid>(), Err(Error::UnknownAddressAlgorithm(0)));
    }

    #[test]
    fn serde_round_trip() {
        let g = Ghid::new(AddressAlgorithm::Blake2b512, [7u8; 64]);
        let json = serde_json::to_string(&g).expect("serialize");
        assert_eq!(json, format!("\"{}\"", g.to_text()));
        let back: Ghid = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, g);
    }
}
