//! A destination's signing material: its HMAC secret, its ed25519 key pair, and during
//! rotations' grace periods the ones they replaced. The store only ever holds these sealed
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

/// Retired keys kept at most: each signs every request, so a burst of rotations cannot
/// grow the signature header without bound; beyond this the grace ending first ends.
pub const MAX_RETIRED: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct SigningKeys {
    pub secret: SigningSecret,
    pub ed25519: Ed25519Key,
    /// Replaced keys whose grace had not ended at the last rotation, latest ending first.
    pub retired: Vec<RetiredKeys>,
}

impl SigningKeys {
    /// Fresh keys: `secret` if the caller chose one, else a generated one.
    pub fn new(secret: Option<SigningSecret>) -> Self {
        Self {
            secret: secret.unwrap_or_else(SigningSecret::generate),
            ed25519: Ed25519Key::generate(),
            retired: Vec::new(),
        }
    }

    /// New keys that replace these at `now`; the current ones keep signing until
    /// `until`, and earlier ones until their own grace ends (up to `MAX_RETIRED`).
    pub fn rotate(&self, secret: Option<SigningSecret>, now: Millis, until: Millis) -> Self {
        let mut retired: Vec<RetiredKeys> = self
            .retired
            .iter()
            .filter(|r| now < r.until)
            .cloned()
            .chain([RetiredKeys {
                secret: self.secret.clone(),
                ed25519: self.ed25519.clone(),
                until,
            }])
            .collect();
        retired.sort_by_key(|r| std::cmp::Reverse(r.until));
        retired.truncate(MAX_RETIRED);
        Self {
            retired,
            ..Self::new(secret)
        }
    }

    /// The retired keys that still sign at `now`.
    pub fn retired_at(&self, now: Millis) -> impl Iterator<Item = &RetiredKeys> {
        self.retired.iter().filter(move |r| now < r.until)
    }

    /// When the last retired key stops signing, if one still signs at `now`.
    pub fn grace_ends(&self, now: Millis) -> Option<Millis> {
        self.retired_at(now).map(|r| r.until).max()
    }

    pub(crate) fn to_stored(&self) -> Vec<u8> {
        let stored = Stored {
            secret: self.secret.expose().to_owned(),
            ed25519: STANDARD.encode(self.ed25519.seed.as_slice()),
            retired: Retired::Many(
                self.retired
                    .iter()
                    .map(|r| StoredRetired {
                        secret: r.secret.expose().to_owned(),
                        ed25519: STANDARD.encode(r.ed25519.seed.as_slice()),
                        until: r.until,
                    })
                    .collect(),
            ),
        };
        serde_json::to_vec(&stored).expect("keys serialise")
    }

    pub(crate) fn from_stored(bytes: &[u8]) -> Option<Self> {
        let stored: Stored = serde_json::from_slice(bytes).ok()?;
        Some(Self {
            secret: SigningSecret::parse("secret", &stored.secret).ok()?,
            ed25519: ed25519_from(&stored.ed25519)?,
            retired: match stored.retired {
                Retired::None => Vec::new(),
                Retired::One(r) => vec![r],
                Retired::Many(all) => all,
            }
            .into_iter()
            .map(|r| {
                Some(RetiredKeys {
                    secret: SigningSecret::parse("secret", &r.secret).ok()?,
                    ed25519: ed25519_from(&r.ed25519)?,
                    until: r.until,
                })
            })
            .collect::<Option<_>>()?,
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
    retired: Retired,
}

/// Keys sealed before rotations overlapped hold one retired set, or `null`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Retired {
    None,
    One(StoredRetired),
    Many(Vec<StoredRetired>),
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
        let rotated = keys.rotate(None, 0, 1_000);
        assert_ne!(rotated.secret, keys.secret);
        assert_ne!(rotated.ed25519.public_key(), keys.ed25519.public_key());
        assert_eq!(rotated.retired_at(999).next().unwrap().secret, keys.secret);
        assert!(rotated.retired_at(1_000).next().is_none());
        assert_eq!(
            SigningKeys::from_stored(&rotated.to_stored()).unwrap(),
            rotated
        );
        assert!(SigningKeys::from_stored(b"{}").is_none());
    }

    #[test]
    fn a_rotation_within_a_grace_keeps_every_key_whose_grace_has_not_ended() {
        let first = SigningKeys::new(None);
        let second = first.rotate(None, 0, 1_000);
        let third = second.rotate(None, 500, 2_000);
        let secrets = |at| {
            third
                .retired_at(at)
                .map(|r| r.secret.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(secrets(999), [second.secret.clone(), first.secret.clone()]);
        assert_eq!(secrets(1_000), std::slice::from_ref(&second.secret));
        assert_eq!(third.grace_ends(999), Some(2_000));
        assert_eq!(third.grace_ends(2_000), None);
        // A rotation after a grace ended drops the key it kept.
        let fourth = third.rotate(None, 1_500, 3_000);
        assert_eq!(fourth.retired.len(), 2);
        assert_eq!(
            SigningKeys::from_stored(&fourth.to_stored()).unwrap(),
            fourth
        );
    }

    #[test]
    fn rotations_keep_at_most_max_retired_keys_dropping_the_grace_ending_first() {
        let mut keys = SigningKeys::new(None);
        for n in 0..MAX_RETIRED as i64 + 3 {
            keys = keys.rotate(None, n, 10_000 + n);
        }
        assert_eq!(keys.retired.len(), MAX_RETIRED);
        assert_eq!(keys.retired.last().unwrap().until, 10_003);
    }

    #[test]
    fn keys_sealed_with_one_retired_set_or_none_still_open() {
        let keys = SigningKeys::new(None);
        let old = format!(
            r#"{{"secret":"{}","ed25519":"{}","retired":null}}"#,
            keys.secret.expose(),
            STANDARD.encode(keys.ed25519.seed.as_slice())
        );
        assert_eq!(SigningKeys::from_stored(old.as_bytes()).unwrap(), keys);
        let retired = SigningKeys::new(None);
        let one = format!(
            r#"{{"secret":"{}","ed25519":"{}","retired":{{"secret":"{}","ed25519":"{}","until":7}}}}"#,
            keys.secret.expose(),
            STANDARD.encode(keys.ed25519.seed.as_slice()),
            retired.secret.expose(),
            STANDARD.encode(retired.ed25519.seed.as_slice())
        );
        let opened = SigningKeys::from_stored(one.as_bytes()).unwrap();
        assert_eq!(opened.retired.len(), 1);
        assert_eq!(opened.retired[0].secret, retired.secret);
        assert_eq!(opened.retired[0].until, 7);
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
