//! Signature checks shared by every signed object type.

use super::ghid::Ghid;
use super::identity::SecondParty;
use super::suite::crypto_suite;
use crate::error::{Error, Result};

/// Verifies an object's signature with `identity`, which must be the identity the
/// object names as its signer and must use the object's cipher suite.
pub(crate) fn verify_signature(
    object_suite: u8,
    signer: &Ghid,
    ghid: &Ghid,
    signature: &[u8],
    identity: &SecondParty,
) -> Result<()> {
    if identity.ghid() != *signer {
        return Err(Error::WrongIdentity);
    }
    if identity.suite() != object_suite {
        return Err(Error::SuiteMismatch {
            object: object_suite,
            key: identity.suite(),
        });
    }
    crypto_suite(object_suite)?;
    identity.verify_digest(ghid.digest(), signature)
}
