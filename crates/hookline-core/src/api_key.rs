//! API keys: random bearer tokens shown once and stored only as a SHA-256 hash. The keys
//! are 256 random bits, so a fast hash is enough; a slow password hash would only make
//! every authenticated request slower.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "hk_";

/// A freshly generated key: the plaintext to hand out once, and what to store.
pub struct NewApiKey {
    pub plaintext: String,
    pub hash: String,
    /// The first characters, so people can tell their keys apart in a list.
    pub display_prefix: String,
}

impl NewApiKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let plaintext = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        Self {
            hash: hash_api_key(&plaintext),
            display_prefix: plaintext[..PREFIX.len() + 6].to_owned(),
            plaintext,
        }
    }
}

/// The stored form of a key presented in `Authorization: Bearer`.
pub fn hash_api_key(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_stored_as_hashes() {
        let a = NewApiKey::generate();
        let b = NewApiKey::generate();
        assert_ne!(a.plaintext, b.plaintext);
        assert!(a.plaintext.starts_with("hk_"));
        assert_eq!(a.hash, hash_api_key(&a.plaintext));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.plaintext));
        assert!(a.plaintext.starts_with(&a.display_prefix));
    }

    #[test]
    fn the_stored_form_is_lowercase_hex_sha256_so_existing_keys_keep_working() {
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
