//! GOBS (static bindings) and GDXX (debindings): two object types with one layout.

use super::codec::{append_file_hash, write_header, Reader};
use super::ghid::Ghid;
use super::identity::SecondParty;
use super::signed::verify_signature;
use super::suite::suite;
use crate::error::{ObjectKind, Result};

/// The shared layout: signer GHID, target GHID, file hash, signature.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pair {
    suite: u8,
    signer: Ghid,
    target: Ghid,
    ghid: Ghid,
    signature: Vec<u8>,
}

impl Pair {
    fn body(magic: &[u8; 4], version: u32, suite_id: u8, signer: &Ghid, target: &Ghid) -> Vec<u8> {
        let mut buf = Vec::with_capacity(140 + 64 + 64);
        write_header(&mut buf, magic, version, suite_id);
        buf.extend_from_slice(&signer.to_bytes());
        buf.extend_from_slice(&target.to_bytes());
        buf
    }

    fn parse(bytes: &[u8], magic: &[u8; 4], version: u32, kind: ObjectKind) -> Result<Self> {
        let mut r = Reader::new(bytes, kind);
        r.header(magic, version)?;
        let suite_id = r.u8()?;
        let layout = suite(suite_id)?.layout();
        let signer = r.ghid()?;
        let target = r.ghid()?;
        let ghid = r.file_hash()?;
        let signature = r.take(layout.signature_len)?.to_vec();
        r.finish()?;
        Ok(Self {
            suite: suite_id,
            signer,
            target,
            ghid,
            signature,
        })
    }

    fn to_bytes(&self, magic: &[u8; 4], version: u32) -> Vec<u8> {
        let mut buf = Self::body(magic, version, self.suite, &self.signer, &self.target);
        buf.extend_from_slice(&self.ghid.to_bytes());
        buf.extend_from_slice(&self.signature);
        buf
    }
}

macro_rules! pair_object {
    ($(#[$doc:meta])* $name:ident, $magic:expr, $version:expr, $kind:expr, $signer:ident, $signer_doc:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(Pair);

        impl $name {
            /// Magic number.
            pub const MAGIC: [u8; 4] = *$magic;
            /// The one supported version.
            pub const VERSION: u32 = $version;

            pub(crate) fn body(suite_id: u8, signer: &Ghid, target: &Ghid) -> Vec<u8> {
                Pair::body(&Self::MAGIC, Self::VERSION, suite_id, signer, target)
            }

            /// The GHID this object has when `signer` makes it for
            /// `target`: the file hash does not cover the signature, so
            /// anyone can name the object before seeing it.
            pub fn ghid_for(suite_id: u8, signer: &Ghid, target: &Ghid) -> Ghid {
                let mut body = Self::body(suite_id, signer, target);
                append_file_hash(&mut body, signer.algorithm())
            }

            pub(crate) fn from_parts(suite: u8, signer: Ghid, target: Ghid, ghid: Ghid, signature: Vec<u8>) -> Self {
                Self(Pair { suite, signer, target, ghid, signature })
            }

            /// Parses the object (layout, file hash, end of input).
            pub fn parse(bytes: &[u8]) -> Result<Self> {
                Pair::parse(bytes, &Self::MAGIC, Self::VERSION, $kind).map(Self)
            }

            /// Serializes the object.
            pub fn to_bytes(&self) -> Vec<u8> {
                self.0.to_bytes(&Self::MAGIC, Self::VERSION)
            }

            /// Verifies the signature with the signer's identity.
            pub fn verify(&self, signer: &SecondParty) -> Result<()> {
                verify_signature(self.0.suite, &self.0.signer, &self.0.ghid, &self.0.signature, signer)
            }

            /// The object's own GHID.
            pub fn ghid(&self) -> Ghid {
                self.0.ghid
            }
            #[doc = $signer_doc]
            pub fn $signer(&self) -> Ghid {
                self.0.signer
            }
            /// The target GHID.
            pub fn target(&self) -> Ghid {
                self.0.target
            }
            /// The cipher suite.
            pub fn suite(&self) -> u8 {
                self.0.suite
            }
            /// The signature bytes.
            pub fn signature(&self) -> &[u8] {
                &self.0.signature
            }
        }
    };
}

pair_object!(
    /// A static binding: keeps its target (a GEOC or a dynamic GHID) alive.
    Gobs, b"GOBS", 6, ObjectKind::Gobs, binder, "The binder's identity GHID."
);
pair_object!(
    /// A debinding: removes a GOBS, a GOBD (by dynamic GHID), a GARQ or another GDXX.
    Gdxx, b"GDXX", 9, ObjectKind::Gdxx, debinder, "The debinder's identity GHID."
);
