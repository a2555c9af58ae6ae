//! Receiver-side verification of Hookline deliveries, per Standard Webhooks: the
//! `webhook-signature` header holds space-separated `v1,<base64 HMAC-SHA256>` entries
//! over `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with the base64 after
//! `whsec_`. A request verifies when any entry matches (so rotation periods work) and
//! its timestamp is within five minutes of now (so captured requests cannot be replayed
//! later). Comparisons are constant-time.
//!
//! ```
//! use hookline_verify::{verify, Signed, VerifyError};
//! let signed = Signed {
//!     id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
//!     timestamp: "1614265330",
//!     signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
//!     body: br#"{"test": 2432232314}"#,
//! };
//! let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! assert_eq!(verify(secret, &signed, 1614265330), Ok(()));
//! assert_eq!(verify(secret, &signed, 1614265330 + 301), Err(VerifyError::TimestampTooOld));
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a timestamp may be from now, either way, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// The parts of a request that a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// `webhook-id`
    pub id: &'a str,
    /// `webhook-timestamp`
    pub timestamp: &'a str,
    /// `webhook-signature`
    pub signature: &'a str,
    pub body: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the secret is not 'whsec_' followed by base64")]
    InvalidSecret,
    #[error("webhook-timestamp is not a number of seconds")]
    InvalidTimestamp,
    #[error("webhook-timestamp is more than 5 minutes old")]
    TimestampTooOld,
    #[error("webhook-timestamp is more than 5 minutes in the future")]
    TimestampInFuture,
    #[error("no v1 signature in webhook-signature matches")]
    NoMatchingSignature,
}

/// Verifies `signed` with `secret` (`whsec_…`) at `now` (unix seconds).
pub fn verify(secret: &str, signed: &Signed<'_>, now: i64) -> Result<(), VerifyError> {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .ok_or(VerifyError::InvalidSecret)?;
    let timestamp: i64 = signed
        .timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    if now - timestamp > TOLERANCE_SECS {
        return Err(VerifyError::TimestampTooOld);
    }
    if timestamp - now > TOLERANCE_SECS {
        return Err(VerifyError::TimestampInFuture);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| VerifyError::InvalidSecret)?;
    mac.update(signed.id.as_bytes());
    mac.update(b".");
    mac.update(signed.timestamp.as_bytes());
    mac.update(b".");
    mac.update(signed.body);
    let matches = signed
        .signature
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|candidate| mac.clone().verify_slice(&candidate).is_ok());
    if matches {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!(
            "../../hookline-core/tests/vectors/standard-webhooks.json"
        ))
        .unwrap()
    }

    fn check(v: &Value, signature: &str, body: &str, now_offset: i64) -> Result<(), VerifyError> {
        let timestamp = v["timestamp"].as_i64().unwrap();
        let ts = timestamp.to_string();
        let signed = Signed {
            id: v["id"].as_str().unwrap(),
            timestamp: &ts,
            signature,
            body: body.as_bytes(),
        };
        verify(
            v["secret"].as_str().unwrap(),
            &signed,
            timestamp + now_offset,
        )
    }

    #[test]
    fn published_valid_vectors_verify() {
        for v in vectors()["valid"].as_array().unwrap() {
            let (sig, body) = (
                v["signature"].as_str().unwrap(),
                v["body"].as_str().unwrap(),
            );
            assert_eq!(check(v, sig, body, 0), Ok(()));
        }
    }

    #[test]
    fn near_misses_and_tampered_bodies_fail() {
        let all = vectors();
        let invalid = &all["invalid"][0];
        let sig = invalid["signature"].as_str().unwrap();
        let body = invalid["body"].as_str().unwrap();
        assert_eq!(
            check(invalid, sig, body, 0),
            Err(VerifyError::NoMatchingSignature)
        );
        let valid = &all["valid"][0];
        let good = valid["signature"].as_str().unwrap();
        assert_eq!(
            check(valid, good, "{\"test\": 2432232315}", 0),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn timestamps_outside_five_minutes_fail() {
        let all = vectors();
        let v = &all["valid"][0];
        let (sig, body) = (
            v["signature"].as_str().unwrap(),
            v["body"].as_str().unwrap(),
        );
        assert_eq!(check(v, sig, body, 300), Ok(()));
        assert_eq!(check(v, sig, body, 301), Err(VerifyError::TimestampTooOld));
        assert_eq!(
            check(v, sig, body, -301),
            Err(VerifyError::TimestampInFuture)
        );
    }

    #[test]
    fn any_matching_entry_of_a_multi_signature_header_passes() {
        let all = vectors();
        let v = &all["valid"][0];
        let header = all["multi_signature_header_must_pass"].as_str().unwrap();
        assert_eq!(check(v, header, v["body"].as_str().unwrap(), 0), Ok(()));
        assert_eq!(
            check(v, "v2,garbage v1,!!!", v["body"].as_str().unwrap(), 0),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn malformed_inputs_have_their_own_errors() {
        let signed = Signed {
            id: "a",
            timestamp: "soon",
            signature: "v1,x",
            body: b"",
        };
        assert_eq!(
            verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &signed, 0),
            Err(VerifyError::InvalidTimestamp)
        );
        assert_eq!(
            verify("sk_nope", &signed, 0),
            Err(VerifyError::InvalidSecret)
        );
    }
}
