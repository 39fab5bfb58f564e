//! Helpers shared by the core integration tests (included with `mod common;`).
#![allow(dead_code)]

use hypergolix_core::golix::suite::cs3::SUITE_ID;
use hypergolix_core::golix::{FirstParty, FreshSecret};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub fn identity(seed: u64) -> FirstParty {
    FirstParty::generate(&mut rng(seed)).expect("identity")
}

pub fn fresh(seed: u64) -> FreshSecret {
    FreshSecret::generate(SUITE_ID, &mut rng(seed)).expect("secret")
}
