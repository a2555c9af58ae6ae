//! A destination's signing material: its HMAC secret, its ed25519 key pair, and during a
//! rotation's grace period the ones it replaced. The store only ever holds these sealed
//! (`crate::sealed`); nothing here prints a secret (`Debug` is redacted).

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::clock::Millis;
use crate::secret::SigningSecret;

/// An ed25519 private key (Standard Webhooks `v1a`), held as its 32-byte seed. The key
/// pair is derived (a scalar multiplication) the first time it signs or shows its public
/// key, not when the keys are opened: most destinations sign with HMAC only, and a
/// fan-out to thousands of destinations opens all their keys, so deriving each pair at
/// once spent much of the server's time on keys it never used.
#[derive(Clone)]
pub struct Ed25519Key {
    /// Wiped when dropped, as the expanded `SigningKey` wipes itself.
    seed: Zeroizing<[u8; 32]>,
    expanded: OnceLock<SigningKey>,
}

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519Key({})", self.public_key())
    }
}

impl PartialEq for Ed25519Key {
    fn eq(&self, other: &Self) -> bool {
        *self.seed == *other.seed
    }
}

impl Ed25519Key {
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(seed.as_mut());
        Self::from_seed(seed)
    }

    fn from_seed(seed: Zeroizing<[u8; 32]>) -> Self {
        Self {
            seed,
            expanded: OnceLock::new(),
        }
    }

    fn key(&self) -> &SigningKey {
        self.expanded
            .get_or_init(|| SigningKey::from_bytes(&self.seed))
    }

    /// `whpk_<base64 of the 32-byte public key>`, what receivers verify with.
    pub fn public_key(&self) -> String {
        format!(
            "whpk_{}",
            STANDARD.encode(self.key().verifying_key().as_bytes())
        )
    }

    /// The base64 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        STANDARD.encode(self.key().sign(message).to_bytes())
    }
}

/// The keys a rotation replaced, still signed with until `until`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetiredKeys {
    pub secret: SigningSecret,
    pub ed25519: Ed25519Key,
    pub until: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SigningKeys {
    pub secret: SigningSecret,
    pub ed25519: Ed25519Key,
    pub retired: Option<RetiredKeys>,
}

impl SigningKeys {
    /// Fresh keys: `secret` if the caller chose one, else a generated one.
    pub fn new(secret: Option<SigningSecret>) -> Self {
        Self {
            secret: secret.unwrap_or_else(SigningSecret::generate),
            ed25519: Ed25519Key::generate(),
            retired: None,
        }
    }

    /// New keys that replace these; the current ones keep signing until `until`.
    pub fn rotate(&self, secret: Option<SigningSecret>, until: Millis) -> Self {
        Self {
            retired: Some(RetiredKeys {
                secret: self.secret.clone(),
                ed25519: self.ed25519.clone(),
                until,
            }),
            ..Self::new(secret)
        }
    }

    /// The retired keys, if they still sign at `now`.
    pub fn retired_at(&self, now: Millis) -> Option<&RetiredKeys> {
        self.retired.as_ref().filter(|r| now < r.until)
    }

    pub(crate) fn to_stored(&self) -> Vec<u8> {
        let stored = Stored {
            secret: self.secret.expose().to_owned(),
            ed25519: STANDARD.encode(self.ed25519.seed.as_slice()),
            retired: self.retired.as_ref().map(|r| StoredRetired {
                secret: r.secret.expose().to_owned(),
                ed25519: STANDARD.encode(r.ed25519.seed.as_slice()),
                until: r.until,
            }),
        };
        serde_json::to_vec(&stored).expect("keys serialise")
    }

    pub(crate) fn from_stored(bytes: &[u8]) -> Option<Self> {
        let stored: Stored = serde_json::from_slice(bytes).ok()?;
        Some(Self {
            secret: SigningSecret::parse("secret", &stored.secret).ok()?,
            ed25519: ed25519_from(&stored.ed25519)?,
            retired: match stored.retired {
                None => None,
                Some(r) => Some(RetiredKeys {
                    secret: SigningSecret::parse("secret", &r.secret).ok()?,
                    ed25519: ed25519_from(&r.ed25519)?,
                    until: r.until,
                }),
            },
        })
    }
}

fn ed25519_from(text: &str) -> Option<Ed25519Key> {
    let bytes: [u8; 32] = STANDARD.decode(text).ok()?.try_into().ok()?;
    Some(Ed25519Key::from_seed(Zeroizing::new(bytes)))
}

#[derive(Serialize, Deserialize)]
struct Stored {
    secret: String,
    ed25519: String,
    retired: Option<StoredRetired>,
}

#[derive(Serialize, Deserialize)]
struct StoredRetired {
    secret: String,
    ed25519: String,
    until: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_storage_and_rotation_keeps_the_old_ones_for_the_grace_period() {
        let keys = SigningKeys::new(None);
        assert_eq!(SigningKeys::from_stored(&keys.to_stored()).unwrap(), keys);
        let rotated = keys.rotate(None, 1_000);
        assert_ne!(rotated.secret, keys.secret);
        assert_ne!(rotated.ed25519.public_key(), keys.ed25519.public_key());
        assert_eq!(rotated.retired_at(999).unwrap().secret, keys.secret);
        assert!(rotated.retired_at(1_000).is_none());
        assert_eq!(
            SigningKeys::from_stored(&rotated.to_stored()).unwrap(),
            rotated
        );
        assert!(SigningKeys::from_stored(b"{}").is_none());
    }

    #[test]
    fn debug_output_shows_only_public_parts() {
        let keys = SigningKeys::new(None);
        let shown = format!("{keys:?}");
        assert!(!shown.contains(keys.secret.expose()));
        assert!(!shown.contains(&STANDARD.encode(keys.ed25519.seed.as_slice())));
        assert!(shown.contains(&keys.ed25519.public_key()));
    }
}
