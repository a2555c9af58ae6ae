//! Standard Webhooks signing: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::SigningSecret;

/// The value of the `webhook-signature` header for one request.
pub fn sign_standard(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.key()).expect("HMAC accepts keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors published with the Standard Webhooks reference libraries (../shared/vectors).
    #[test]
    fn matches_published_standard_webhooks_vectors() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../tests/vectors/standard-webhooks.json")).unwrap();
        let sign = |v: &serde_json::Value| {
            let secret = SigningSecret::parse("secret", v["secret"].as_str().unwrap()).unwrap();
            sign_standard(
                &secret,
                v["id"].as_str().unwrap(),
                v["timestamp"].as_i64().unwrap(),
                v["body"].as_str().unwrap().as_bytes(),
            )
        };
        let valid = vectors["valid"].as_array().unwrap();
        assert!(!valid.is_empty());
        for v in valid {
            assert_eq!(sign(v), v["signature"].as_str().unwrap());
        }
        for v in vectors["invalid"].as_array().unwrap() {
            assert_ne!(sign(v), v["signature"].as_str().unwrap());
        }
    }

    #[test]
    fn any_change_to_id_timestamp_or_body_changes_the_signature() {
        let s = SigningSecret::generate();
        let base = sign_standard(&s, "evt_1", 100, b"{}");
        assert_ne!(base, sign_standard(&s, "evt_2", 100, b"{}"));
        assert_ne!(base, sign_standard(&s, "evt_1", 101, b"{}"));
        assert_ne!(base, sign_standard(&s, "evt_1", 100, b"{ }"));
        assert_ne!(
            base,
            sign_standard(&SigningSecret::generate(), "evt_1", 100, b"{}")
        );
    }
}
