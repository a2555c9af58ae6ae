//! Property tests of verification: any input is refused or accepted without a panic;
//! what Hookline signs (core's signer, both schemes, during a rotation too) verifies; a
//! changed byte, a wrong key or a stale timestamp does not. `PROPTEST_CASES` sets how
//! many cases run (the test script raises it).

use hookline_core::keys::SigningKeys;
use hookline_core::signing::{HexScheme, SignatureScheme, SignedContent, signature_headers};
use hookline_verify::{Signed, TOLERANCE_SECS, VerifyError, verify, verify_hex};
use proptest::prelude::*;

const NOW: i64 = 1_764_288_000;

fn header<'h>(headers: &'h [(String, String)], name: &str) -> &'h str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap()
}

proptest! {
    #[test]
    fn any_input_is_refused_or_accepted_without_a_panic(
        key in "(whsec_|whpk_)?[A-Za-z0-9+/=]{0,60}",
        id in "\\PC{0,20}",
        timestamp in "[0-9-]{0,12}",
        signature in "((v1|v1a|v2),[A-Za-z0-9+/=]{0,90} ?){0,3}",
        body in prop::collection::vec(any::<u8>(), 0..200),
        hex_header in "[a-z0-9=]{0,80}",
    ) {
        let signed = Signed { id: &id, timestamp: &timestamp, signature: &signature, body: &body };
        let _ = verify(&key, &signed, NOW);
        let _ = verify_hex(&key, &hex_header, "sha256=", Some(&timestamp), &body, NOW);
    }

    #[test]
    fn what_hookline_signs_verifies_and_nothing_else_does(
        body in prop::collection::vec(any::<u8>(), 0..300),
        id in "evt_[0-9A-Z]{26}",
        skew in -TOLERANCE_SECS..=TOLERANCE_SECS,
        flip in any::<prop::sample::Index>(),
        ed25519 in any::<bool>(),
        rotated in any::<bool>(),
    ) {
        let old = SigningKeys::new(None);
        let keys = if rotated { old.rotate(None, NOW * 1000, (NOW + 3_600) * 1000) } else { old.clone() };
        let scheme = if ed25519 { SignatureScheme::Ed25519 } else { SignatureScheme::Standard };
        let timestamp = NOW + skew;
        let headers = signature_headers(&scheme, &keys, &id, timestamp, &body, NOW * 1000);
        let ts = timestamp.to_string();
        let signed = Signed { id: &id, timestamp: &ts, signature: header(&headers, "webhook-signature"), body: &body };
        let (key, old_key, other) = if ed25519 {
            (keys.ed25519.public_key(), old.ed25519.public_key(), SigningKeys::new(None).ed25519.public_key())
        } else {
            (keys.secret.expose().to_owned(), old.secret.expose().to_owned(), SigningKeys::new(None).secret.expose().to_owned())
        };
        prop_assert_eq!(verify(&key, &signed, NOW), Ok(()));
        // During a rotation's grace period the old key verifies too.
        prop_assert_eq!(verify(&old_key, &signed, NOW), Ok(()));
        prop_assert_eq!(verify(&other, &signed, NOW), Err(VerifyError::NoMatchingSignature));
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[flip.index(body.len())] ^= 0x01;
            let tampered = Signed { body: &changed, ..signed };
            prop_assert_eq!(verify(&key, &tampered, NOW), Err(VerifyError::NoMatchingSignature));
        }
        let stale = verify(&key, &signed, timestamp + TOLERANCE_SECS + 1);
        prop_assert_eq!(stale, Err(VerifyError::TimestampTooOld));
    }

    #[test]
    fn hex_signatures_verify_over_what_they_say_they_sign(
        body in prop::collection::vec(any::<u8>(), 0..300),
        with_timestamp in any::<bool>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let keys = SigningKeys::new(None);
        let scheme = SignatureScheme::HmacSha256Hex(HexScheme {
            header: "x-acme-signature".into(),
            prefix: "sha256=".into(),
            signed: if with_timestamp { SignedContent::TimestampDotBody } else { SignedContent::Body },
            timestamp_header: with_timestamp.then(|| "x-acme-timestamp".to_owned()),
        });
        let headers = signature_headers(&scheme, &keys, "evt_1", NOW, &body, NOW * 1000);
        let hex = header(&headers, "x-acme-signature");
        let timestamp = with_timestamp.then(|| header(&headers, "x-acme-timestamp"));
        let secret = keys.secret.expose();
        prop_assert_eq!(verify_hex(secret, hex, "sha256=", timestamp, &body, NOW), Ok(()));
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[flip.index(body.len())] ^= 0x80;
            prop_assert!(verify_hex(secret, hex, "sha256=", timestamp, &changed, NOW).is_err());
        }
    }
}
