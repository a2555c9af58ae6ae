//! Destination signing secrets (`whsec_<base64>`). The type never prints its value:
//! `Debug` is redacted so a secret cannot slip into a log line by accident.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

use crate::ValidationError;

const PREFIX: &str = "whsec_";

#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    text: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningSecret(…{})", self.hint())
    }
}

impl SigningSecret {
    /// 32 random bytes, the middle of the accepted 24–64.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self {
            text: format!("{PREFIX}{}", STANDARD.encode(&key)),
            key,
        }
    }

    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        let err = || {
            ValidationError::new(
                field,
                "must be 'whsec_' followed by the base64 of 24 to 64 bytes",
            )
        };
        let encoded = text.strip_prefix(PREFIX).ok_or_else(err)?;
        let key = STANDARD.decode(encoded).map_err(|_| err())?;
        if !(24..=64).contains(&key.len()) {
            return Err(err());
        }
        Ok(Self {
            text: text.to_owned(),
            key,
        })
    }

    /// The key bytes HMAC is computed with.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The full `whsec_…` text: only for the one response that reveals it, and the store.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The last four characters, enough to tell secrets apart.
    pub fn hint(&self) -> String {
        let start = self.text.len().saturating_sub(4);
        self.text[start..].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_back() {
        let s = SigningSecret::generate();
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(SigningSecret::parse("secret", s.expose()).unwrap(), s);
        assert_eq!(s.key().len(), 32);
    }

    #[test]
    fn length_and_encoding_are_checked() {
        let short = format!("whsec_{}", STANDARD.encode([0u8; 23]));
        let long = format!("whsec_{}", STANDARD.encode([0u8; 65]));
        let ok = format!("whsec_{}", STANDARD.encode([0u8; 24]));
        assert!(SigningSecret::parse("secret", &short).is_err());
        assert!(SigningSecret::parse("secret", &long).is_err());
        assert!(SigningSecret::parse("secret", &ok).is_ok());
        assert!(SigningSecret::parse("secret", "whsec_!!!").is_err());
        assert!(SigningSecret::parse("secret", "sk_abc").is_err());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let s = SigningSecret::generate();
        let shown = format!("{s:?}");
        assert!(!shown.contains(s.expose()));
        assert!(shown.contains(&s.hint()));
    }
}
