//! The Golix protocol: GHIDs, the six object types, secrets, cipher suites and
//! identities. Byte-exact parsing and serialization, creation and verification.
//! Stateless and IO-free. Normative text: `docs/protocol/`.

pub use hypergolix_base::address;
pub(crate) mod codec;
pub mod garq;
pub mod geoc;
pub use hypergolix_base::ghid;
pub mod gidc;
pub mod gobd;
pub mod identity;
pub mod object;
pub mod pair;
#[cfg(feature = "bench")]
pub mod portable_bench;
pub mod secret;
pub(crate) mod signed;
pub mod suite;
#[cfg(feature = "vectors")]
pub mod vectors;

pub use address::AddressAlgorithm;
pub use garq::{Garq, RequestContent, RequestPayload};
pub use geoc::Geoc;
pub use ghid::Ghid;
pub use gidc::Gidc;
pub use gobd::Gobd;
pub use identity::{FirstParty, SecondParty};
pub use object::GolixObject;
pub use pair::{Gdxx, Gobs};
pub use secret::{FreshSecret, Secret};
