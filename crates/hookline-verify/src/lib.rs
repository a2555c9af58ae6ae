//! Receiver-side verification of Hookline deliveries, per Standard Webhooks: the
//! `webhook-signature` header holds space-separated `v1,<base64 HMAC-SHA256>` entries
//! (or `v1a,<base64 ed25519>` entries) over `"{webhook-id}.{webhook-timestamp}.{body}"`.
//! HMAC is keyed with the base64 after `whsec_`; ed25519 is checked with the public
//! key after `whpk_`. A request verifies when any entry matches (so rotation periods
//! work) and its timestamp is within five minutes of now (so captured requests cannot
//! be replayed later). Comparisons are constant-time. [`verify_hex`] checks the extra
//! hex header of the `hmac_sha256_hex` scheme, for receivers built for other senders.
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
//!
//! A header in another sender's convention (`X-Acme-Signature: sha256=<hex>` over
//! `"{timestamp}.{body}"`, with the timestamp in `X-Acme-Timestamp`):
//!
//! ```
//! use hookline_verify::{verify_hex, VerifyError};
//! let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! let header = "sha256=0dc3c49d8b682e966b8db935231f291b943f4a2d812eed18ef7a090c021dde59";
//! let ok = verify_hex(secret, header, "sha256=", Some("1614265330"), b"{}", 1614265330);
//! assert_eq!(ok, Ok(()));
//! let tampered = verify_hex(secret, header, "sha256=", Some("1614265330"), b"[]", 1614265330);
//! assert_eq!(tampered, Err(VerifyError::NoMatchingSignature));
//! ```

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
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
    #[error(
        "the key is neither a secret (whsec_ and the base64 of at least 24 bytes; the \
         prefix may be left out) nor a public key (whpk_ and the base64 of 32 bytes)"
    )]
    InvalidSecret,
    #[error("the timestamp is not a number of seconds")]
    InvalidTimestamp,
    #[error("the timestamp is more than 5 minutes old")]
    TimestampTooOld,
    #[error("the timestamp is more than 5 minutes in the future")]
    TimestampInFuture,
    #[error("no signature in the header matches")]
    NoMatchingSignature,
}

/// What a key checks signatures with.
enum Key {
    Hmac(Vec<u8>),
    Ed25519(VerifyingKey),
}

/// Secrets are base64 with or without padding, as the Standard Webhooks libraries read them.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The shortest secret the Standard Webhooks specification allows.
const MIN_SECRET_BYTES: usize = 24;

fn parse_key(key: &str) -> Result<Key, VerifyError> {
    let key = key.trim();
    let decode = |b: &str| LENIENT.decode(b).map_err(|_| VerifyError::InvalidSecret);
    if let Some(public) = key.strip_prefix("whpk_") {
        let bytes: [u8; 32] = decode(public)?
            .try_into()
            .map_err(|_| VerifyError::InvalidSecret)?;
        return VerifyingKey::from_bytes(&bytes)
            .map(Key::Ed25519)
            .map_err(|_| VerifyError::InvalidSecret);
    }
    // Like the libraries, a secret may come without its `whsec_` prefix.
    let secret = decode(key.strip_prefix("whsec_").unwrap_or(key))?;
    if secret.len() < MIN_SECRET_BYTES {
        return Err(VerifyError::InvalidSecret);
    }
    Ok(Key::Hmac(secret))
}

/// Whether `key` is a secret or public key `verify` can use, before there is anything
/// to verify.
pub fn check_key(key: &str) -> Result<(), VerifyError> {
    parse_key(key).map(|_| ())
}

fn check_timestamp(timestamp: &str, now: i64) -> Result<(), VerifyError> {
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    if now - timestamp > TOLERANCE_SECS {
        return Err(VerifyError::TimestampTooOld);
    }
    if timestamp - now > TOLERANCE_SECS {
        return Err(VerifyError::TimestampInFuture);
    }
    Ok(())
}

fn hmac(key: &[u8], content: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(content);
    mac
}

/// Verifies `signed` with `key` at `now` (unix seconds): a secret (`whsec_…`) checks
/// the `v1` entries, a public key (`whpk_…`) the `v1a` ones.
pub fn verify(key: &str, signed: &Signed<'_>, now: i64) -> Result<(), VerifyError> {
    let key = parse_key(key)?;
    check_timestamp(signed.timestamp, now)?;
    let content = [
        signed.id.as_bytes(),
        b".",
        signed.timestamp.as_bytes(),
        b".",
        signed.body,
    ]
    .concat();
    let entries = signed.signature.split_whitespace();
    let matches = match key {
        Key::Hmac(secret) => {
            let mac = hmac(&secret, &content);
            entries
                .filter_map(|entry| entry.strip_prefix("v1,"))
                .filter_map(|encoded| STANDARD.decode(encoded).ok())
                .any(|candidate| mac.clone().verify_slice(&candidate).is_ok())
        }
        Key::Ed25519(public) => entries
            .filter_map(|entry| entry.strip_prefix("v1a,"))
            .filter_map(|encoded| STANDARD.decode(encoded).ok())
            .filter_map(|bytes| Signature::from_slice(&bytes).ok())
            .any(|signature| public.verify(&content, &signature).is_ok()),
    };
    if matches {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

/// Verifies a `hmac_sha256_hex` header (`{prefix}{hex of HMAC-SHA256}`) with `secret`
/// (`whsec_…`). With a `timestamp` the signed content is `"{timestamp}.{body}"` and the
/// timestamp must be within five minutes of `now`; without one it is the body alone.
pub fn verify_hex(
    secret: &str,
    header: &str,
    prefix: &str,
    timestamp: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let Key::Hmac(secret) = parse_key(secret)? else {
        return Err(VerifyError::InvalidSecret);
    };
    let content = match timestamp {
        Some(ts) => {
            check_timestamp(ts, now)?;
            [ts.as_bytes(), b".", body].concat()
        }
        None => body.to_vec(),
    };
    let candidate = header
        .trim()
        .strip_prefix(prefix)
        .and_then(|h| hex::decode(h).ok())
        .ok_or(VerifyError::NoMatchingSignature)?;
    hmac(&secret, &content)
        .verify_slice(&candidate)
        .map_err(|_| VerifyError::NoMatchingSignature)
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
    fn secrets_verify_without_their_prefix_or_padding_and_short_ones_are_refused() {
        let all = vectors();
        let v = &all["valid"][0];
        let secret = v["secret"].as_str().unwrap();
        let bare = secret.strip_prefix("whsec_").unwrap();
        let unpadded = format!("whsec_{}", bare.trim_end_matches('='));
        let ts = v["timestamp"].as_i64().unwrap().to_string();
        let signed = Signed {
            id: v["id"].as_str().unwrap(),
            timestamp: &ts,
            signature: v["signature"].as_str().unwrap(),
            body: v["body"].as_str().unwrap().as_bytes(),
        };
        let now = v["timestamp"].as_i64().unwrap();
        for key in [secret, bare, unpadded.as_str()] {
            assert_eq!(verify(key, &signed, now), Ok(()), "{key}");
        }
        let padded = STANDARD.encode([7u8; 25]);
        assert!(padded.ends_with("=="));
        assert_eq!(check_key(padded.trim_end_matches('=')), Ok(()));
        for bad in [
            "nope",
            "whsec_nope",
            "whsec_c2hvcnQ",
            "whsec_!!",
            "whpk_c2hvcnQ=",
        ] {
            assert_eq!(check_key(bad), Err(VerifyError::InvalidSecret), "{bad}");
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

    #[test]
    fn ed25519_entries_verify_with_the_public_key() {
        use ed25519_dalek::{Signer, SigningKey};
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        let public = format!(
            "whpk_{}",
            STANDARD.encode(signing.verifying_key().as_bytes())
        );
        let signature = STANDARD.encode(signing.sign(b"evt_1.100.{}").to_bytes());
        let header = format!("v1,bm90IHRoaXM= v1a,{signature}");
        let signed = Signed {
            id: "evt_1",
            timestamp: "100",
            signature: &header,
            body: b"{}",
        };
        assert_eq!(verify(&public, &signed, 100), Ok(()));
        let tampered = Signed {
            body: b"{ }",
            ..signed
        };
        assert_eq!(
            verify(&public, &tampered, 100),
            Err(VerifyError::NoMatchingSignature)
        );
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let other = format!("whpk_{}", STANDARD.encode(other.verifying_key().as_bytes()));
        assert_eq!(
            verify(&other, &signed, 100),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify("whpk_AAAA", &signed, 100),
            Err(VerifyError::InvalidSecret)
        );
    }

    #[test]
    fn hex_headers_verify_with_and_without_a_timestamp() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let with_ts = hex::encode(hmac(&key, b"100.{}").finalize().into_bytes());
        let header = format!("sha256={with_ts}");
        assert_eq!(
            verify_hex(secret, &header, "sha256=", Some("100"), b"{}", 100),
            Ok(())
        );
        assert_eq!(
            verify_hex(secret, &header, "sha256=", Some("100"), b"{}", 401),
            Err(VerifyError::TimestampTooOld)
        );
        assert_eq!(
            verify_hex(secret, &header, "sha256=", Some("101"), b"{}", 100),
            Err(VerifyError::NoMatchingSignature)
        );
        let body_only = hex::encode(hmac(&key, b"{}").finalize().into_bytes());
        assert_eq!(verify_hex(secret, &body_only, "", None, b"{}", 0), Ok(()));
        assert_eq!(
            verify_hex(secret, &body_only, "", None, b"{ }", 0),
            Err(VerifyError::NoMatchingSignature)
        );
    }
}
