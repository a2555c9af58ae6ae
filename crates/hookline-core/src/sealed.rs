//! Secrets at rest. Destination keys and sensitive header values are sealed with
//! XChaCha20-Poly1305 under the server's master key before they reach the store, bound to
//! their destination's id (so a sealed value copied onto another row does not open), and
//! opened only where a request is signed or a hint is shown. A leaked database file holds
//! no usable secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::keys::SigningKeys;

const PREFIX: &str = "hlk1.";
const NONCE_LEN: usize = 24;

/// The 32-byte key everything at rest is sealed with.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the master key must be the base64 of exactly 32 bytes")]
    BadMasterKey,
    #[error("sealed keys do not open with this master key (wrong key, or altered data)")]
    DoesNotOpen,
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    pub fn parse(text: &str) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::BadMasterKey)?;
        Ok(Self(bytes.try_into().map_err(|_| SealError::BadMasterKey)?))
    }

    /// The base64 text `parse` reads: for writing the key file.
    pub fn to_text(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Seals `keys` for the row `owner` (a destination or org id).
    pub fn seal(&self, keys: &SigningKeys, owner: &str) -> SealedKeys {
        SealedKeys(self.seal_bytes(&keys.to_stored(), owner.as_bytes()))
    }

    pub fn open(&self, sealed: &SealedKeys, owner: &str) -> Result<SigningKeys, SealError> {
        let plain = self.open_bytes(&sealed.0, owner.as_bytes())?;
        SigningKeys::from_stored(&plain).ok_or(SealError::DoesNotOpen)
    }

    /// Seals one header value of destination `owner`, bound to the header's name too, so
    /// a sealed value moved to another header or another row does not open.
    pub fn seal_header(&self, value: &str, owner: &str, name: &str) -> SealedText {
        SealedText(self.seal_bytes(value.as_bytes(), &header_binding(owner, name)))
    }

    pub fn open_header(
        &self,
        sealed: &SealedText,
        owner: &str,
        name: &str,
    ) -> Result<String, SealError> {
        let plain = self.open_bytes(&sealed.0, &header_binding(owner, name))?;
        String::from_utf8(plain).map_err(|_| SealError::DoesNotOpen)
    }

    fn seal_bytes(&self, plain: &[u8], binding: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: binding,
                },
            )
            .expect("XChaCha20-Poly1305 seals any length we store");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    fn open_bytes(&self, sealed: &str, binding: &[u8]) -> Result<Vec<u8>, SealError> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or(SealError::DoesNotOpen)?;
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: binding,
                },
            )
            .map_err(|_| SealError::DoesNotOpen)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }
}

/// Keys as the store keeps them: opaque without the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKeys(String);

impl SealedKeys {
    /// Wraps a value read back from the store.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a header value is sealed against: its row and its name, in a domain of its own
/// (keys are bound to the bare row id), so a header value never opens as keys.
fn header_binding(owner: &str, name: &str) -> Vec<u8> {
    format!("header:{owner}:{name}").into_bytes()
}

/// One sealed header value as the store keeps it: opaque without the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedText(String);

impl SealedText {
    /// Wraps a value read back from the store.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_key_and_owner() {
        let master = MasterKey::generate();
        let keys = SigningKeys::new(None);
        let sealed = master.seal(&keys, "dst_1");
        assert!(!sealed.as_str().contains(keys.secret.expose()));
        assert_eq!(master.open(&sealed, "dst_1").unwrap(), keys);
        assert_eq!(
            master.open(&sealed, "dst_2"),
            Err(SealError::DoesNotOpen),
            "bound to its row"
        );
        assert_eq!(
            MasterKey::generate().open(&sealed, "dst_1"),
            Err(SealError::DoesNotOpen)
        );
        let mut tampered = sealed.as_str().to_owned();
        tampered.pop();
        tampered.push('A');
        assert!(master.open(&SealedKeys(tampered), "dst_1").is_err());
    }

    #[test]
    fn sealed_header_values_open_only_for_their_row_and_name() {
        let master = MasterKey::generate();
        let sealed = master.seal_header("Bearer t0k3n", "dst_1", "authorization");
        assert!(!sealed.as_str().contains("t0k3n"));
        assert_eq!(
            master
                .open_header(&sealed, "dst_1", "authorization")
                .unwrap(),
            "Bearer t0k3n"
        );
        assert!(
            master
                .open_header(&sealed, "dst_2", "authorization")
                .is_err()
        );
        assert!(master.open_header(&sealed, "dst_1", "cookie").is_err());
        let as_keys = SealedKeys(sealed.as_str().to_owned());
        assert!(master.open(&as_keys, "dst_1").is_err());
    }

    #[test]
    fn master_keys_parse_from_base64_of_32_bytes() {
        let key = MasterKey::generate();
        let again = MasterKey::parse(&key.to_text()).unwrap();
        let keys = SigningKeys::new(None);
        assert_eq!(again.open(&key.seal(&keys, "x"), "x").unwrap(), keys);
        assert_eq!(
            MasterKey::parse("c2hvcnQ=").unwrap_err(),
            SealError::BadMasterKey
        );
        assert_eq!(
            MasterKey::parse("not base64!").unwrap_err(),
            SealError::BadMasterKey
        );
    }
}
