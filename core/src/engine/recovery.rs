//! Recovery words: the BIP39 phrase that restores an account without its
//! password, and the keys it gives. The phrase is 128 random bits (12
//! English words, the last carrying a 4-bit checksum). With the user id it
//! derives, through Argon2id, a *recovery identity* to which the account
//! sends, once, a handshake naming the *recovery object* (the identity's
//! private keys under a key from the phrase); see `docs/engine.md`,
//! "Recovery words".

use sha2::{Digest, Sha256};
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

/// BIP39's English word list, `bip-0039/english.txt` as published (SHA-256
/// 2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda):
/// 2048 words, sorted, one a line. Kept as text, not as the `bip39`
/// crate's array of 2048 string slices, whose pointer table alone costs
/// the browser's wasm 16 KiB; the tests check it against that crate.
const WORDS: &str = include_str!("bip39-english.txt");

/// Word `i` of the list.
fn word(i: usize) -> Option<&'static str> {
    WORDS.lines().nth(i)
}

/// The index of `w` in the list.
fn find(w: &str) -> Option<u16> {
    WORDS
        .lines()
        .position(|x| x == w)
        .and_then(|i| u16::try_from(i).ok())
}

/// The BIP39 checksum of 128 bits of entropy: the first 4 bits of its
/// SHA-256, after the entropy's 128 (12 words of 11 bits each).
fn checksum(entropy: &[u8; ENTROPY_LEN]) -> u8 {
    Sha256::digest(entropy)[0] >> 4
}

/// The 11-bit word index `i` of the 132 bits entropy ‖ checksum.
fn index(bits: &[u8; ENTROPY_LEN + 1], i: usize) -> usize {
    (0..11).fold(0, |acc, b| {
        let at = i * 11 + b;
        acc << 1 | usize::from(bits[at / 8] >> (7 - at % 8) & 1)
    })
}

/// The phrase for `entropy`: 12 lowercase English BIP39 words separated by
/// single spaces. (BIP39's encoding, checked against the `bip39` crate's
/// in the tests; that crate's parser would cost the browser's wasm a few
/// KiB more.)
pub fn words_of(entropy: &[u8; ENTROPY_LEN]) -> Result<Zeroizing<String>> {
    let mut bits = Zeroizing::new([0u8; ENTROPY_LEN + 1]);
    bits[..ENTROPY_LEN].copy_from_slice(entropy);
    bits[ENTROPY_LEN] = checksum(entropy) << 4;
    let mut s = Zeroizing::new(String::with_capacity(WORD_COUNT * 9));
    for i in 0..WORD_COUNT {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(word(index(&bits, i)).ok_or(Error::InvalidLength("the word list"))?);
    }
    Ok(s)
}

/// Reads a phrase as a person may type it (any case, any whitespace
/// between words): its entropy, or [`Error::BadRecoveryWords`] saying
/// what is wrong (the number of words, which word is not in the list, or
/// the checksum: a word mistyped into another word of the list).
pub fn parse_words(phrase: &str) -> Result<Entropy> {
    // What `hypergolix recovery-words` prints before them may come along.
    let phrase = phrase.trim_start();
    let phrase = phrase.strip_prefix("recovery words:").unwrap_or(phrase);
    let words: Zeroizing<Vec<String>> = Zeroizing::new(
        phrase
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect(),
    );
    if words.len() != WORD_COUNT {
        return Err(Error::BadRecoveryWords(format!(
            "expected {WORD_COUNT} words, got {}",
            words.len()
        )));
    }
    let mut bits = Zeroizing::new([0u8; ENTROPY_LEN + 1]);
    for (i, w) in words.iter().enumerate() {
        // Which word, never the word: the message may reach a log, and a
        // near miss gives most of a secret away.
        let n = find(w).ok_or_else(|| {
            Error::BadRecoveryWords(format!("word {} is not a recovery word", i + 1))
        })?;
        for b in 0..11 {
            if n >> (10 - b) & 1 == 1 {
                let at = i * 11 + b;
                bits[at / 8] |= 0x80 >> (at % 8);
            }
        }
    }
    let mut e = Zeroizing::new([0u8; ENTROPY_LEN]);
    e.copy_from_slice(&bits[..ENTROPY_LEN]);
    if bits[ENTROPY_LEN] >> 4 != checksum(&e) {
        return Err(Error::BadRecoveryWords(
            "the words do not check out (a word is mistyped, or two are swapped)".into(),
        ));
    }
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
    fn the_encoding_and_the_list_are_bip39s() {
        use bip39::{Language, Mnemonic};
        let list: Vec<&str> = WORDS.lines().collect();
        assert_eq!(list.as_slice(), Language::English.word_list().as_slice());
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(39);
        for _ in 0..200 {
            let mut e = [0u8; ENTROPY_LEN];
            rng.fill_bytes(&mut e);
            let ours = words_of(&e).expect("words");
            let theirs = Mnemonic::from_entropy(&e).expect("bip39").to_string();
            assert_eq!(*ours, theirs);
            assert_eq!(*parse_words(&theirs).expect("parse"), e);
        }
        // BIP39's own vector: 0x7f × 16.
        assert_eq!(
            *words_of(&[0x7f; 16]).expect("words"),
            "legal winner thank year wave sausage worth useful legal winner thank yellow"
        );
    }

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
        assert!(!msg(&v.join(" ")).contains("zzzz"), "the word is not shown");
        assert_eq!(
            *parse_words(&format!("recovery words: {}", *w)).expect("as printed"),
            [9u8; ENTROPY_LEN]
        );
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
