//! Verifies `webhook-signature` from the Standard Webhooks spec alone: the key is the
//! base64 after `whsec_`; the signed content is `{id}.{timestamp}.{body}`; the header
//! holds space-separated `v1,<base64>` entries.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::receiver::Received;

/// Whether `request`'s `webhook-signature` holds a valid `v1` entry for `secret`.
pub fn signed_by(secret: &str, request: &Received) -> bool {
    standard_signature_is_valid(
        secret,
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
        &request.body,
        request.header("webhook-signature"),
    )
}

pub fn standard_signature_is_valid(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
) -> bool {
    let key = STANDARD
        .decode(
            secret
                .strip_prefix("whsec_")
                .expect("secret has the whsec_ prefix"),
        )
        .expect("secret is base64");
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    header.split(' ').any(|entry| {
        let Some(sig) = entry.strip_prefix("v1,") else {
            return false;
        };
        let Ok(sig) = STANDARD.decode(sig) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(&content);
        mac.verify_slice(&sig).is_ok()
    })
}

#[test]
fn verifier_accepts_the_published_vector_and_refuses_a_near_miss() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = br#"{"test": 2432232314}"#;
    let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    let bad = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    assert!(standard_signature_is_valid(
        secret,
        id,
        "1614265330",
        body,
        good
    ));
    assert!(!standard_signature_is_valid(
        secret,
        id,
        "1614265330",
        body,
        bad
    ));
    assert!(standard_signature_is_valid(
        secret,
        id,
        "1614265330",
        body,
        &format!("v2,garbage {good}")
    ));
}
