//! Recovery words: the BIP39 phrase that restores an account without its
//! password, and the keys it gives. The phrase is 128 random bits (12
//! English words, the last carrying a 4-bit checksum). With the user id it
//! derives, through Argon2id, a *recovery identity* to which the account
//! sends, once, a handshake naming the *recovery object* (the identity's
//! private keys under a key from the phrase); see `docs/engine.md`,
//! "Recovery words".

use bip39::{Language, Mnemonic};
use zeroize::Zeroizing;

use super::keys::{argon2id, KdfParams};
use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::golix::suite::{crypto_suite, cs3};
use crate::golix::FirstParty;

/// Random bits of a phrase, in bytes (12 words).
pub const ENTROPY_LEN: usize = 16;
/// Words in a phrase.
pub const WORD_COUNT: usize = 12;

/// The entropy of a phrase: what the words encode.
pub type Entropy = Zeroizing<[u8; ENTROPY_LEN]>;

/// The phrase for `entropy`: 12 lowercase English BIP39 words separated by
/// single spaces.
pub fn words_of(entropy: &[u8; ENTROPY_LEN]) -> Result<Zeroizing<String>> {
    let m = Mnemonic::from_entropy_in(Language::English, entropy)
        .map_err(|_| Error::BadRecoveryWords("cannot encode the entropy".into()))?;
    let mut s = Zeroizing::new(String::with_capacity(WORD_COUNT * 9));
    for (i, w) in m.words().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(w);
    }
    Ok(s)
}

/// Reads a phrase as a person may type it (any case, any whitespace
/// between words): its entropy, or [`Error::BadRecoveryWords`] saying
/// what is wrong (the number of words, which word is not in the list, or
/// the checksum: a word mistyped into another word of the list).
pub fn parse_words(phrase: &str) -> Result<Entropy> {
    let words: Vec<String> = phrase
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    let words = Zeroizing::new(words);
    if words.len() != WORD_COUNT {
        return Err(Error::BadRecoveryWords(format!(
            "expected {WORD_COUNT} words, got {}",
            words.len()
        )));
    }
    let joined = Zeroizing::new(words.join(" "));
    let m = Mnemonic::parse_in_normalized(Language::English, &joined).map_err(|e| {
        Error::BadRecoveryWords(match e {
            bip39::Error::UnknownWord(i) => format!(
                "word {} ({:?}) is not a recovery word",
                i + 1,
                words.get(i).map(String::as_str).unwrap_or("")
            ),
            bip39::Error::InvalidChecksum => {
                "the words do not check out (a word is mistyped, or two are swapped)".into()
            }
            other => other.to_string(),
        })
    })?;
    let (bytes, len) = m.to_entropy_array();
    let bytes = Zeroizing::new(bytes);
    if len != ENTROPY_LEN {
        return Err(Error::BadRecoveryWords(format!(
            "expected {WORD_COUNT} words"
        )));
    }
    let mut e = Zeroizing::new([0u8; ENTROPY_LEN]);
    e.copy_from_slice(&bytes[..ENTROPY_LEN]);
    Ok(e)
}

/// What a phrase gives for one account.
pub(crate) struct RecoveryKeys {
    /// The recovery identity: the account's handshake naming the recovery
    /// object is addressed to it.
    pub identity: FirstParty,
    /// Wraps the account identity's private keys in the recovery object.
    pub wrap_key: Zeroizing<[u8; 32]>,
}

/// Argon2id(entropy, salt = the user id's 65 bytes) → the suite's
/// key-generation bytes of the recovery identity, then a 32-byte wrap key.
/// Salting with the user id makes the same words give another identity
/// for another account; the Argon2id cost is what testing a phrase costs.
pub(crate) fn recovery_keys(
    entropy: &[u8; ENTROPY_LEN],
    user_id: &Ghid,
    params: KdfParams,
) -> Result<RecoveryKeys> {
    let n = crypto_suite(cs3::SUITE_ID)?.private_key_random_len();
    let mut out = Zeroizing::new(vec![0u8; n + 32]);
    argon2id(entropy, &user_id.to_bytes(), params, &mut out)?;
    let identity = FirstParty::from_random(cs3::SUITE_ID, &out[..n])?;
    let mut wrap_key = Zeroizing::new([0u8; 32]);
    wrap_key.copy_from_slice(&out[n..]);
    Ok(RecoveryKeys { identity, wrap_key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golix::address::AddressAlgorithm;

    #[test]
    fn words_round_trip_in_any_case_and_spacing() {
        let e = [7u8; ENTROPY_LEN];
        let w = words_of(&e).expect("words");
        assert_eq!(w.split(' ').count(), WORD_COUNT);
        let messy = format!("  {}\n", w.to_uppercase().replace(' ', " \t "));
        assert_eq!(*parse_words(&messy).expect("parse"), e);
    }

    #[test]
    fn bad_phrases_say_what_is_wrong() {
        let w = words_of(&[9u8; ENTROPY_LEN]).expect("words");
        let mut v: Vec<&str> = w.split(' ').collect();
        let msg = |s: &str| match parse_words(s) {
            Err(Error::BadRecoveryWords(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(msg(&v[..11].join(" ")).contains("got 11"));
        v[3] = "zzzz";
        assert!(msg(&v.join(" ")).contains("word 4"));
        // Another word of the list in place of the last: the checksum fails
        // (1 in 16 such words passes it; "zoo" does not here).
        let mut v: Vec<&str> = w.split(' ').collect();
        v[11] = if v[11] == "zoo" { "abandon" } else { "zoo" };
        assert!(msg(&v.join(" ")).contains("do not check out"));
    }

    #[test]
    fn the_recovery_identity_depends_on_words_and_account() {
        let u1 = Ghid::new(AddressAlgorithm::Blake2b512, [1; 64]);
        let u2 = Ghid::new(AddressAlgorithm::Blake2b512, [2; 64]);
        let p = KdfParams::INSECURE_TEST;
        let id = |e: u8, u: &Ghid| {
            recovery_keys(&[e; ENTROPY_LEN], u, p)
                .expect("keys")
                .identity
                .ghid()
        };
        assert_eq!(id(1, &u1), id(1, &u1));
        assert_ne!(id(1, &u1), id(2, &u1));
        assert_ne!(id(1, &u1), id(1, &u2));
    }
}
