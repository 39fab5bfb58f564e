//! Any Golix object: dispatch on the magic number.

use super::garq::Garq;
use super::geoc::Geoc;
use super::ghid::Ghid;
use super::gidc::Gidc;
use super::gobd::Gobd;
use super::identity::SecondParty;
use super::pair::{Gdxx, Gobs};
use crate::error::{Error, ObjectKind, Result};

/// One parsed Golix object of any type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GolixObject {
    /// Identity container.
    Gidc(Gidc),
    /// Encrypted container.
    Geoc(Geoc),
    /// Static binding.
    Gobs(Gobs),
    /// Dynamic binding frame.
    Gobd(Gobd),
    /// Debinding.
    Gdxx(Gdxx),
    /// Asymmetric request.
    Garq(Garq),
}

impl GolixObject {
    /// Parses any object, choosing the type by its magic number.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let magic: [u8; 4] = match bytes.get(..4) {
            Some(m) => [m[0], m[1], m[2], m[3]],
            None => {
                return Err(Error::Truncated {
                    kind: ObjectKind::Gidc,
                    needed: 4,
                    got: bytes.len(),
                })
                .map_err(|_| Error::InvalidLength("shorter than a magic number"))
            }
        };
        match &magic {
            b"GIDC" => Gidc::parse(bytes).map(Self::Gidc),
            b"GEOC" => Geoc::parse(bytes).map(Self::Geoc),
            b"GOBS" => Gobs::parse(bytes).map(Self::Gobs),
            b"GOBD" => Gobd::parse(bytes).map(Self::Gobd),
            b"GDXX" => Gdxx::parse(bytes).map(Self::Gdxx),
            b"GARQ" => Garq::parse(bytes).map(Self::Garq),
            _ => Err(Error::UnknownMagic(magic)),
        }
    }

    /// Serializes the object.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Gidc(o) => o.to_bytes(),
            Self::Geoc(o) => o.to_bytes(),
            Self::Gobs(o) => o.to_bytes(),
            Self::Gobd(o) => o.to_bytes(),
            Self::Gdxx(o) => o.to_bytes(),
            Self::Garq(o) => o.to_bytes(),
        }
    }

    /// The object's own GHID (for a GOBD, the frame GHID).
    pub fn ghid(&self) -> Ghid {
        match self {
            Self::Gidc(o) => o.ghid(),
            Self::Geoc(o) => o.ghid(),
            Self::Gobs(o) => o.ghid(),
            Self::Gobd(o) => o.ghid(),
            Self::Gdxx(o) => o.ghid(),
            Self::Garq(o) => o.ghid(),
        }
    }

    /// The object type.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Self::Gidc(_) => ObjectKind::Gidc,
            Self::Geoc(_) => ObjectKind::Geoc,
            Self::Gobs(_) => ObjectKind::Gobs,
            Self::Gobd(_) => ObjectKind::Gobd,
            Self::Gdxx(_) => ObjectKind::Gdxx,
            Self::Garq(_) => ObjectKind::Garq,
        }
    }

    /// The cipher suite byte.
    pub fn suite(&self) -> u8 {
        match self {
            Self::Gidc(o) => o.suite(),
            Self::Geoc(o) => o.suite(),
            Self::Gobs(o) => o.suite(),
            Self::Gobd(o) => o.suite(),
            Self::Gdxx(o) => o.suite(),
            Self::Garq(o) => o.suite(),
        }
    }

    /// The identity whose key signs the object (author, binder, debinder);
    /// `None` for a GIDC (unsigned) and a GARQ (MACed, author hidden).
    pub fn signer(&self) -> Option<Ghid> {
        match self {
            Self::Geoc(o) => Some(o.author()),
            Self::Gobs(o) => Some(o.binder()),
            Self::Gobd(o) => Some(o.binder()),
            Self::Gdxx(o) => Some(o.debinder()),
            Self::Gidc(_) | Self::Garq(_) => None,
        }
    }

    /// Everything a third party (a persistence server) can check: the object
    /// parsed (layout, hash, frame rules, GIDC keys) and, for signed objects, the
    /// signature under the identity `lookup` returns for the signer. A GARQ's MAC
    /// can only be checked by its recipient.
    pub fn verify_public(&self, lookup: impl Fn(&Ghid) -> Option<SecondParty>) -> Result<()> {
        let signer = match self.signer() {
            None => return Ok(()),
            Some(s) => s,
        };
        let identity = lookup(&signer).ok_or(Error::UnknownAuthor)?;
        match self {
            Self::Geoc(o) => o.verify(&identity),
            Self::Gobs(o) => o.verify(&identity),
            Self::Gobd(o) => o.verify(&identity),
            Self::Gdxx(o) => o.verify(&identity),
            Self::Gidc(_) | Self::Garq(_) => Ok(()),
        }
    }
}
