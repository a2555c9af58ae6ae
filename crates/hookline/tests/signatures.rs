//! Signing end to end: rotation with a grace period, ed25519 (`v1a`), the hex HMAC
//! compatibility scheme, and keys sealed at rest. Requests from the real server are
//! checked with the spec-only verifier in tests/support and with `hookline-verify`.

mod support;

use std::time::Duration;

use hookline_verify::{Signed, verify, verify_hex};
use serde_json::{Value, json};
use support::app::{TestApp, id};
use support::receiver::Receiver;
use support::secrets::{SECRET_A, SECRET_B, all_bytes, contains};
use support::verify::{signed_by, standard_signature_is_valid};

const WAIT: Duration = Duration::from_secs(10);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A destination created with `SECRET_A` and rotated to `SECRET_B` with an hour's grace:
/// the app, its receiver, the destination, its rotate path and the rotation's answer.
async fn rotated_from_a_to_b() -> (TestApp, Receiver, Value, String, Value) {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let destination = app
        .destination(&receiver.url, json!({"secret": SECRET_A}))
        .await;
    let rotate = format!("/v1/destinations/{}/rotate-secret", id(&destination));
    let (status, rotated) = app
        .post(&rotate, json!({"secret": SECRET_B, "grace_secs": 3600}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    (app, receiver, destination, rotate, rotated)
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_during_the_grace_period_only() {
    let (app, receiver, destination, rotate, rotated) = rotated_from_a_to_b().await;
    assert_eq!(rotated["secret"], SECRET_B, "the new secret is shown once");
    assert_eq!(rotated["secret_hint"], &SECRET_B[SECRET_B.len() - 4..]);
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let during = receiver.wait_for(1, WAIT).await.remove(0);
    let entries: Vec<&str> = during.header("webhook-signature").split(' ').collect();
    assert_eq!(entries.len(), 2, "both signatures: {entries:?}");
    assert!(signed_by(SECRET_B, &during) && signed_by(SECRET_A, &during));
    assert!(
        standard_signature_is_valid(
            SECRET_B,
            during.header("webhook-id"),
            during.header("webhook-timestamp"),
            &during.body,
            entries[0]
        ),
        "the new secret's signature comes first"
    );

    let (status, generated) = app.post(&rotate, json!({"grace_secs": 0})).await;
    assert_eq!(status, 200, "{generated}");
    let new_secret = generated["secret"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != SECRET_B);
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let after = receiver.wait_for(2, WAIT).await.remove(1);
    assert_eq!(after.header("webhook-signature").split(' ').count(), 2);
    assert!(signed_by(&new_secret, &after));
    assert!(
        !signed_by(SECRET_B, &after),
        "no grace: the one it replaced is gone"
    );
    assert!(
        signed_by(SECRET_A, &after),
        "the first rotation's grace has not ended"
    );

    let (_, shown) = app
        .get(&format!("/v1/destinations/{}", id(&destination)))
        .await;
    assert!(shown.get("secret").is_none());
    assert!(!shown.to_string().contains(&new_secret[6..]));

    let (status, body) = app.post(&rotate, json!({"grace_secs": -1})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "grace_secs");
    let (status, _) = app
        .post(
            "/v1/destinations/dst_00000000000000000000000000/rotate-secret",
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_rotation_within_a_grace_period_keeps_every_secret_whose_grace_has_not_ended() {
    let (app, receiver, _, rotate, first) = rotated_from_a_to_b().await;
    let (status, second) = app.post(&rotate, json!({"grace_secs": 600})).await;
    assert_eq!(status, 200, "{second}");
    let newest = second["secret"].as_str().unwrap().to_owned();
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    let entries = request.header("webhook-signature").split(' ').count();
    assert_eq!(entries, 3, "{}", request.header("webhook-signature"));
    for secret in [newest.as_str(), SECRET_B, SECRET_A] {
        assert!(signed_by(secret, &request), "{secret} no longer signs");
        let signed = Signed {
            id: request.header("webhook-id"),
            timestamp: request.header("webhook-timestamp"),
            signature: request.header("webhook-signature"),
            body: &request.body,
        };
        assert_eq!(verify(secret, &signed, now()), Ok(()));
    }
    // Each rotation shows when the secret it replaced stops signing.
    let first_ends =
        chrono::DateTime::parse_from_rfc3339(first["previous_secret_expires_at"].as_str().unwrap())
            .unwrap();
    let second_ends = chrono::DateTime::parse_from_rfc3339(
        second["previous_secret_expires_at"].as_str().unwrap(),
    )
    .unwrap();
    assert!(second_ends < first_ends);
}

#[tokio::test]
async fn ed25519_destinations_sign_v1a_and_show_their_public_key() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let destination = app
        .destination(&receiver.url, json!({"signature": {"scheme": "ed25519"}}))
        .await;
    let public_key = destination["public_key"].as_str().unwrap().to_owned();
    assert!(public_key.starts_with("whpk_"), "{destination}");
    assert!(
        destination.get("secret").is_none(),
        "no unused secret: {destination}"
    );
    assert!(destination["secret_hint"].is_null());
    let (_, shown) = app
        .get(&format!("/v1/destinations/{}", id(&destination)))
        .await;
    assert_eq!(shown["public_key"], public_key.as_str());
    let (status, refused) = app
        .post(
            "/v1/destinations",
            json!({"url": receiver.url, "secret": SECRET_A, "signature": {"scheme": "ed25519"}}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "secret");
    let rotate = format!("/v1/destinations/{}/rotate-secret", id(&destination));
    let (status, refused) = app.post(&rotate, json!({"secret": SECRET_B})).await;
    assert_eq!(status, 422, "{refused}");
    let (status, rotated) = app.post(&rotate, json!({"grace_secs": 0})).await;
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated.get("secret").is_none(), "{rotated}");
    let public_key = rotated["public_key"].as_str().unwrap().to_owned();
    assert_ne!(public_key, shown["public_key"].as_str().unwrap());

    app.publish(json!({"type": "a.b", "data": {"x": 1}})).await;
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    let header = request.header("webhook-signature");
    assert!(header.starts_with("v1a,"), "{header}");
    let signed = Signed {
        id: request.header("webhook-id"),
        timestamp: request.header("webhook-timestamp"),
        signature: header,
        body: &request.body,
    };
    assert_eq!(verify(&public_key, &signed, now()), Ok(()));
    let tampered = Signed {
        body: b"{}",
        ..signed
    };
    assert!(verify(&public_key, &tampered, now()).is_err());
}

#[tokio::test]
async fn hex_schemes_add_headers_in_the_receivers_own_convention() {
    let app = TestApp::spawn().await;
    let acme = Receiver::start().await;
    let plain = Receiver::start().await;
    app.destination(
        &acme.url,
        json!({"secret": SECRET_A, "signature": {"scheme": "hmac_sha256_hex",
            "header": "X-Acme-Signature", "prefix": "sha256=",
            "signed": "{timestamp}.{body}", "timestamp_header": "X-Acme-Timestamp"}}),
    )
    .await;
    app.destination(
        &plain.url,
        json!({"secret": SECRET_A, "signature": {"scheme": "hmac_sha256_hex",
            "header": "X-Webhook-Signature", "signed": "{body}"}}),
    )
    .await;
    app.publish(json!({"type": "a.b", "data": {}})).await;

    let request = acme.wait_for(1, WAIT).await.remove(0);
    let verdict = verify_hex(
        SECRET_A,
        request.header("x-acme-signature"),
        "sha256=",
        Some(request.header("x-acme-timestamp")),
        &request.body,
        now(),
    );
    assert_eq!(verdict, Ok(()));
    assert!(signed_by(SECRET_A, &request), "standard headers still sent");

    let request = plain.wait_for(1, WAIT).await.remove(0);
    let verdict = verify_hex(
        SECRET_A,
        request.header("x-webhook-signature"),
        "",
        None,
        &request.body,
        now(),
    );
    assert_eq!(verdict, Ok(()));
    assert!(
        verify_hex(
            SECRET_B,
            request.header("x-webhook-signature"),
            "",
            None,
            &request.body,
            now()
        )
        .is_err()
    );

    let (status, body) = app
        .post(
            "/v1/destinations",
            json!({"url": plain.url, "signature": {"scheme": "hmac_sha256_hex", "header": "Webhook-Signature"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "signature.header");
}

#[tokio::test]
async fn the_embedded_data_directory_is_private_and_secrets_are_sealed() {
    let app = TestApp::spawn().await;
    app.destination("https://hooks.example.com/a", json!({"secret": SECRET_A}))
        .await;
    if app.config.store.database_url.is_some() {
        return; // PostgreSQL takes its key from the configuration, not a file.
    }
    let mode = |path: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(app.data_dir.path()), 0o700);
    let files = [
        "master.key",
        "hookline.lock",
        "hookline.db",
        "hookline.db-wal",
        "hookline.db-shm",
    ];
    for name in files {
        assert_eq!(mode(&app.data_dir.path().join(name)), 0o600, "{name}");
    }
    assert!(
        !contains(&all_bytes(app.data_dir.path()), &SECRET_A[6..]),
        "the secret is not in the data directory in plain text"
    );
}

#[tokio::test]
async fn webhook_url_sends_one_event_signed_with_the_org_secret() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (status, shown) = app.get("/v1/org/signing-secret").await;
    assert_eq!(status, 200, "{shown}");
    assert!(
        shown.get("secret").is_none(),
        "GET shows only a hint: {shown}"
    );
    let (status, rotated) = app
        .post("/v1/org/signing-secret/rotate", json!({"grace_secs": 0}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let secret = rotated["secret"].as_str().unwrap().to_owned();
    let (_, again) = app.get("/v1/org/signing-secret").await;
    assert_eq!(again["secret_hint"], &secret[secret.len() - 4..]);
    assert!(!again.to_string().contains(&secret[6..]));

    let (status, published) = app
        .post(
            "/v1/events",
            json!({"type": "run.failed", "stream": "run_1", "data": {}, "webhook_url": receiver.url}),
        )
        .await;
    assert_eq!(status, 202, "{published}");
    assert_eq!(published["deliveries"], 1);
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert!(signed_by(&secret, &request), "signed with the org secret");
    assert_eq!(request.json()["id"], published["id"]);

    // The one-shot destination takes no other event and is not listed.
    app.publish(json!({"type": "run.failed", "stream": "run_1", "data": {}}))
        .await;
    let (_, listed) = app.get("/v1/destinations").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0, "{listed}");
    let (_, deliveries) = app.get("/v1/deliveries").await;
    assert_eq!(deliveries["data"].as_array().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);

    let (status, body) = app
        .post(
            "/v1/events",
            json!({"type": "a.b", "data": {}, "webhook_url": "ftp://example.com/x"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "webhook_url");
}
