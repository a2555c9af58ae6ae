//! How requests are signed. Standard Webhooks `v1` (HMAC-SHA256 over
//! `"{id}.{timestamp}.{body}"`) always; `v1a` (ed25519 over the same content) instead
//! when a destination asks; and, for receivers written for other senders, an extra
//! hex HMAC header in their convention. During a rotation's grace period the retired
//! keys sign too, so receivers holding either secret accept the request.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::ValidationError;
use crate::clock::Millis;
use crate::custom_headers::check_header_name;
use crate::keys::{Ed25519Key, SigningKeys};
use crate::secret::SigningSecret;

/// How a destination's requests are signed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SignatureScheme {
    #[default]
    Standard,
    Ed25519,
    HmacSha256Hex(HexScheme),
}

/// A hex HMAC-SHA256 header in another sender's convention, e.g.
/// `X-Acme-Signature: sha256=<hex>` over `"{timestamp}.{body}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexScheme {
    pub header: String,
    pub prefix: String,
    pub signed: SignedContent,
    pub timestamp_header: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedContent {
    TimestampDotBody,
    Body,
}

impl SignedContent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TimestampDotBody => "{timestamp}.{body}",
            Self::Body => "{body}",
        }
    }
}

const MAX_PREFIX_LEN: usize = 32;

impl SignatureScheme {
    pub fn parse(field: &str, value: &Value) -> Result<Self, ValidationError> {
        let err = |m: &str| ValidationError::new(field, m);
        let Value::Object(fields) = value else {
            return Err(err(r#"must be an object such as {"scheme": "standard"}"#));
        };
        let text = |name: &str| -> Result<Option<&str>, ValidationError> {
            match fields.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(ValidationError::new(
                    format!("{field}.{name}"),
                    "must be a string",
                )),
            }
        };
        let known: &[&str] = match text("scheme")? {
            Some("standard") | Some("ed25519") => &["scheme"],
            Some("hmac_sha256_hex") => {
                &["scheme", "header", "prefix", "signed", "timestamp_header"]
            }
            _ => {
                return Err(err(
                    "scheme must be 'standard', 'ed25519' or 'hmac_sha256_hex'",
                ));
            }
        };
        if let Some(extra) = fields.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ValidationError::new(
                format!("{field}.{extra}"),
                "is not a field of this signature scheme",
            ));
        }
        Ok(match text("scheme")? {
            Some("standard") => Self::Standard,
            Some("ed25519") => Self::Ed25519,
            _ => {
                let header_field = format!("{field}.header");
                let header = text("header")?
                    .ok_or_else(|| ValidationError::new(&header_field, "is required"))?;
                let prefix = text("prefix")?.unwrap_or("").to_owned();
                if prefix.len() > MAX_PREFIX_LEN || http::HeaderValue::from_str(&prefix).is_err() {
                    return Err(ValidationError::new(
                        format!("{field}.prefix"),
                        format!("must be printable and at most {MAX_PREFIX_LEN} bytes"),
                    ));
                }
                let signed = match text("signed")? {
                    None | Some("{timestamp}.{body}") => SignedContent::TimestampDotBody,
                    Some("{body}") => SignedContent::Body,
                    Some(_) => {
                        return Err(ValidationError::new(
                            format!("{field}.signed"),
                            "must be '{timestamp}.{body}' or '{body}'",
                        ));
                    }
                };
                let timestamp_header = text("timestamp_header")?
                    .map(|h| check_header_name(&format!("{field}.timestamp_header"), h))
                    .transpose()?;
                Self::HmacSha256Hex(HexScheme {
                    header: check_header_name(&header_field, header)?,
                    prefix,
                    signed,
                    timestamp_header,
                })
            }
        })
    }

    pub fn to_json(&self) -> Value {
        match self {
            Self::Standard => json!({"scheme": "standard"}),
            Self::Ed25519 => json!({"scheme": "ed25519"}),
            Self::HmacSha256Hex(hex) => json!({
                "scheme": "hmac_sha256_hex",
                "header": hex.header,
                "prefix": hex.prefix,
                "signed": hex.signed.as_str(),
                "timestamp_header": hex.timestamp_header,
            }),
        }
    }
}

/// The signature headers of one request whose `webhook-id` is `msg_id`, signed at
/// `timestamp` (unix seconds; `now` in ms decides whether retired keys still sign).
pub fn signature_headers(
    scheme: &SignatureScheme,
    keys: &SigningKeys,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    now: Millis,
) -> Vec<(String, String)> {
    // The signed content is built once and signed with every key that still signs.
    let content = signed_content(msg_id, timestamp, body);
    let sign = |secret: &SigningSecret, ed25519: &Ed25519Key| match scheme {
        SignatureScheme::Ed25519 => format!("v1a,{}", ed25519.sign(&content)),
        _ => v1_signature(secret, &content),
    };
    let mut signatures = vec![sign(&keys.secret, &keys.ed25519)];
    signatures.extend(keys.retired_at(now).map(|r| sign(&r.secret, &r.ed25519)));
    let standard = signatures.join(" ");
    let mut headers = vec![("webhook-signature".to_owned(), standard)];
    if let SignatureScheme::HmacSha256Hex(hex) = scheme {
        let signed = match hex.signed {
            SignedContent::TimestampDotBody => {
                [timestamp.to_string().as_bytes(), b".", body].concat()
            }
            SignedContent::Body => body.to_vec(),
        };
        let mac = hmac_sha256(keys.secret.key(), &signed);
        headers.push((
            hex.header.clone(),
            format!("{}{}", hex.prefix, hex::encode(mac)),
        ));
        if let Some(name) = &hex.timestamp_header {
            headers.push((name.clone(), timestamp.to_string()));
        }
    }
    headers
}

fn signed_content(msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    [
        msg_id.as_bytes(),
        b".",
        timestamp.to_string().as_bytes(),
        b".",
        body,
    ]
    .concat()
}

fn hmac_sha256(key: &[u8], content: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(content);
    mac.finalize().into_bytes().to_vec()
}

/// The value of the `webhook-signature` header for one request.
pub fn sign_standard(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    v1_signature(secret, &signed_content(msg_id, timestamp, body))
}

/// `v1,<base64 HMAC-SHA256>` of content already laid out as `{id}.{timestamp}.{body}`.
fn v1_signature(secret: &SigningSecret, content: &[u8]) -> String {
    format!("v1,{}", STANDARD.encode(hmac_sha256(secret.key(), content)))
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

    fn scheme(value: Value) -> Result<SignatureScheme, ValidationError> {
        SignatureScheme::parse("signature", &value)
    }

    #[test]
    fn rotation_sends_both_signatures_new_first_until_the_grace_ends() {
        let old = SigningKeys::new(None);
        let keys = old.rotate(None, 0, 10_000);
        let sig = |now| {
            signature_headers(&SignatureScheme::Standard, &keys, "evt_1", 5, b"{}", now)[0]
                .1
                .clone()
        };
        let during = sig(9_999);
        let expected_new = sign_standard(&keys.secret, "evt_1", 5, b"{}");
        let expected_old = sign_standard(&old.secret, "evt_1", 5, b"{}");
        assert_eq!(during, format!("{expected_new} {expected_old}"));
        assert_eq!(sig(10_000), expected_new);
    }

    #[test]
    fn ed25519_signs_v1a_over_the_standard_content() {
        use ed25519_dalek::{Signature, Verifier, VerifyingKey};
        let keys = SigningKeys::new(None);
        let headers = signature_headers(&SignatureScheme::Ed25519, &keys, "evt_1", 5, b"{}", 0);
        let value = headers[0].1.strip_prefix("v1a,").unwrap();
        let public = STANDARD
            .decode(keys.ed25519.public_key().strip_prefix("whpk_").unwrap())
            .unwrap();
        let key = VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
        let signature: [u8; 64] = STANDARD.decode(value).unwrap().try_into().unwrap();
        key.verify(b"evt_1.5.{}", &Signature::from_bytes(&signature))
            .unwrap();
        assert!(
            key.verify(b"evt_1.6.{}", &Signature::from_bytes(&signature))
                .is_err()
        );
    }

    #[test]
    fn hex_schemes_add_a_header_in_the_receivers_convention() {
        let keys = SigningKeys::new(None);
        let acme = scheme(json!({"scheme": "hmac_sha256_hex", "header": "X-Acme-Signature",
            "prefix": "sha256=", "signed": "{timestamp}.{body}", "timestamp_header": "X-Acme-Timestamp"}))
        .unwrap();
        let headers = signature_headers(&acme, &keys, "evt_1", 1700, b"{\"a\":1}", 0);
        assert!(
            headers[0].1.starts_with("v1,"),
            "standard headers still sent"
        );
        let expected = hex::encode(hmac_sha256(keys.secret.key(), b"1700.{\"a\":1}"));
        assert_eq!(
            headers[1],
            ("x-acme-signature".into(), format!("sha256={expected}"))
        );
        assert_eq!(headers[2], ("x-acme-timestamp".into(), "1700".into()));

        let bare = scheme(json!({"scheme": "hmac_sha256_hex", "header": "X-Webhook-Signature", "signed": "{body}"}))
            .unwrap();
        let headers = signature_headers(&bare, &keys, "evt_1", 1700, b"{}", 0);
        assert_eq!(
            headers[1].1,
            hex::encode(hmac_sha256(keys.secret.key(), b"{}"))
        );
        assert_eq!(headers.len(), 2);
        assert_eq!(scheme(bare.to_json()).unwrap(), bare);
        assert_eq!(scheme(acme.to_json()).unwrap(), acme);
    }

    #[test]
    fn bad_schemes_name_their_field() {
        assert_eq!(
            scheme(json!({"scheme": "rsa"})).unwrap_err().field,
            "signature"
        );
        assert_eq!(
            scheme(json!({"scheme": "hmac_sha256_hex"}))
                .unwrap_err()
                .field,
            "signature.header"
        );
        assert_eq!(
            scheme(json!({"scheme": "hmac_sha256_hex", "header": "webhook-signature"}))
                .unwrap_err()
                .field,
            "signature.header"
        );
        assert_eq!(
            scheme(json!({"scheme": "hmac_sha256_hex", "header": "X-S", "signed": "{id}"}))
                .unwrap_err()
                .field,
            "signature.signed"
        );
        assert_eq!(
            scheme(json!({"scheme": "ed25519", "header": "X"}))
                .unwrap_err()
                .field,
            "signature.header"
        );
        assert!(scheme(json!("standard")).is_err());
    }
}
