//! GOBD: dynamic binding frames.

use super::address::{AddressAlgorithm, DIGEST_LEN};
use super::codec::{write_header, Reader};
use super::ghid::{Ghid, GHID_LEN};
use super::identity::SecondParty;
use super::signed::verify_signature;
use super::suite::suite;
use crate::error::{Error, ObjectKind, Result};

/// Most GHIDs a target vector can hold (its byte length is a u16).
pub const MAX_TARGETS: usize = u16::MAX as usize / GHID_LEN;

/// A parsed dynamic binding frame.
///
/// Parsing enforces the frame rules of `docs/protocol/objects.md`: a first frame
/// has counter 0 and exactly one target and its dynamic hash is recomputed and
/// checked; a later frame has a counter above 0 and at least two targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gobd {
    suite: u8,
    binder: Ghid,
    counter: u64,
    targets: Vec<Ghid>,
    dynamic: Ghid,
    ghid: Ghid,
    signature: Vec<u8>,
}

impl Gobd {
    /// Magic number.
    pub const MAGIC: [u8; 4] = *b"GOBD";
    /// The one supported version.
    pub const VERSION: u32 = 16;

    fn check_shape(counter: u64, targets: &[Ghid]) -> Result<()> {
        if targets.is_empty() {
            return Err(Error::IllegalFrame("empty target vector"));
        }
        if targets.len() > MAX_TARGETS {
            return Err(Error::InvalidLength("too many targets"));
        }
        if counter == 0 && targets.len() != 1 {
            return Err(Error::IllegalFrame(
                "a first frame (counter 0) has exactly one target",
            ));
        }
        if counter > 0 && targets.len() < 2 {
            return Err(Error::IllegalFrame(
                "a later frame carries at least two targets",
            ));
        }
        Ok(())
    }

    /// Everything up to and including the dynamic address algorithm byte.
    fn dynamic_prefix(
        suite_id: u8,
        binder: &Ghid,
        counter: u64,
        targets: &[Ghid],
        dyn_algo: AddressAlgorithm,
    ) -> Vec<u8> {
        let mut buf = Vec::with_capacity(85 + targets.len() * GHID_LEN + 65 + 65 + 64);
        write_header(&mut buf, &Self::MAGIC, Self::VERSION, suite_id);
        buf.extend_from_slice(&binder.to_bytes());
        buf.extend_from_slice(&counter.to_be_bytes());
        // check_shape bounds targets.len() * 65 below u16::MAX.
        buf.extend_from_slice(&((targets.len() * GHID_LEN) as u16).to_be_bytes());
        for t in targets {
            buf.extend_from_slice(&t.to_bytes());
        }
        buf.push(dyn_algo.byte());
        buf
    }

    /// The hashed part of a frame (everything before the frame's own address
    /// algorithm byte), computing the dynamic GHID for a first frame.
    pub(crate) fn body(
        suite_id: u8,
        binder: &Ghid,
        counter: u64,
        targets: &[Ghid],
        dynamic: Option<Ghid>,
        algo: AddressAlgorithm,
    ) -> Result<(Vec<u8>, Ghid)> {
        Self::check_shape(counter, targets)?;
        let dyn_algo = dynamic.map_or(algo, |d| d.algorithm());
        let mut buf = Self::dynamic_prefix(suite_id, binder, counter, targets, dyn_algo);
        let dynamic = match (counter, dynamic) {
            (0, None) => Ghid::new(dyn_algo, dyn_algo.digest(&buf)),
            (0, Some(_)) => {
                return Err(Error::InvalidArgument(
                    "a first frame computes its own dynamic GHID",
                ))
            }
            (_, Some(d)) => d,
            (_, None) => {
                return Err(Error::InvalidArgument(
                    "a later frame needs the dynamic GHID",
                ))
            }
        };
        buf.extend_from_slice(dynamic.digest());
        Ok((buf, dynamic))
    }

    pub(crate) fn from_parts(
        suite: u8,
        binder: Ghid,
        counter: u64,
        targets: Vec<Ghid>,
        dynamic: Ghid,
        ghid: Ghid,
        signature: Vec<u8>,
    ) -> Self {
        Self {
            suite,
            binder,
            counter,
            targets,
            dynamic,
            ghid,
            signature,
        }
    }

    /// Parses a frame.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, ObjectKind::Gobd);
        r.header(&Self::MAGIC, Self::VERSION)?;
        let suite_id = r.u8()?;
        let layout = suite(suite_id)?.layout();
        let binder = r.ghid()?;
        let counter = r.u64()?;
        let len = usize::from(r.u16()?);
        if len % GHID_LEN != 0 {
            return Err(Error::InvalidLength(
                "target vector is not a whole number of GHIDs",
            ));
        }
        let raw = r.take(len)?;
        let targets = raw
            .chunks_exact(GHID_LEN)
            .map(Ghid::from_bytes)
            .collect::<core::result::Result<Vec<_>, _>>()?;
        let dyn_algo = AddressAlgorithm::from_byte(r.u8()?)?;
        let dyn_prefix_len = r.position();
        let dyn_digest: [u8; DIGEST_LEN] = r.array()?;
        let ghid = r.file_hash()?;
        let signature = r.take(layout.signature_len)?.to_vec();
        r.finish()?;
        Self::check_shape(counter, &targets)?;
        if counter == 0 {
            let expected = dyn_algo.digest(&bytes[..dyn_prefix_len]);
            if !bool::from(subtle::ConstantTimeEq::ct_eq(
                &expected[..],
                &dyn_digest[..],
            )) {
                return Err(Error::DynamicHashMismatch);
            }
        }
        let dynamic = Ghid::new(dyn_algo, dyn_digest);
        Ok(Self {
            suite: suite_id,
            binder,
            counter,
            targets,
            dynamic,
            ghid,
            signature,
        })
    }

    /// Serializes the frame.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = Self::dynamic_prefix(
            self.suite,
            &self.binder,
            self.counter,
            &self.targets,
            self.dynamic.algorithm(),
        );
        buf.extend_from_slice(self.dynamic.digest());
        buf.extend_from_slice(&self.ghid.to_bytes());
        buf.extend_from_slice(&self.signature);
        buf
    }

    /// Verifies the binder's signature.
    pub fn verify(&self, binder: &SecondParty) -> Result<()> {
        verify_signature(
            self.suite,
            &self.binder,
            &self.ghid,
            &self.signature,
            binder,
        )
    }

    /// The frame's own (static) GHID.
    pub fn ghid(&self) -> Ghid {
        self.ghid
    }
    /// The dynamic GHID, fixed for the binding's whole life.
    pub fn dynamic_ghid(&self) -> Ghid {
        self.dynamic
    }
    /// The binder's identity GHID.
    pub fn binder(&self) -> Ghid {
        self.binder
    }
    /// The frame counter.
    pub fn counter(&self) -> u64 {
        self.counter
    }
    /// The target vector, most recent first.
    pub fn targets(&self) -> &[Ghid] {
        &self.targets
    }
    /// The current target (the first entry of the target vector).
    pub fn target(&self) -> Ghid {
        // Parsing and construction both guarantee at least one target.
        self.targets[0]
    }
    /// The cipher suite.
    pub fn suite(&self) -> u8 {
        self.suite
    }
    /// The signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}
