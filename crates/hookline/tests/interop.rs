//! Interop: deliveries from a running server verified by implementations that are not
//! ours — the `standardwebhooks` library from PyPI for `v1` (including both signatures
//! of a rotation period, each secret on its own, and a destination whose body is the
//! event's data alone) and Python's `cryptography` for `v1a` (ed25519). Needs a Python with both installed, named by `HOOKLINE_INTEROP_PYTHON`;
//! `scripts/test` builds that virtualenv and runs this test.

mod support;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use support::app::TestApp;
use support::receiver::{Received, Receiver};
use support::secrets::{SECRET_A, SECRET_B};

const WAIT: Duration = Duration::from_secs(10);

fn case(name: &str, kind: &str, key: &str, request: &Received, body: &[u8], expect: bool) -> Value {
    let headers: serde_json::Map<String, Value> =
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .iter()
            .map(|h| (h.to_string(), json!(request.header(h))))
            .collect();
    json!({"name": name, "kind": kind, "key": key, "headers": headers,
           "body_b64": STANDARD.encode(body), "expect": expect})
}

#[tokio::test]
#[ignore = "needs HOOKLINE_INTEROP_PYTHON; scripts/test runs it"]
async fn deliveries_verify_with_independent_implementations() {
    let python = std::env::var("HOOKLINE_INTEROP_PYTHON").expect(
        "HOOKLINE_INTEROP_PYTHON must name a python with standardwebhooks and cryptography",
    );
    let app = TestApp::spawn().await;
    let standard = Receiver::start().await;
    let rotating = Receiver::start().await;
    let ed25519 = Receiver::start().await;
    let data_only = Receiver::start().await;
    app.destination(&standard.url, json!({"secret": SECRET_A}))
        .await;
    app.destination(&data_only.url, json!({"secret": SECRET_A, "body": "data"}))
        .await;
    let rotated = app
        .destination(&rotating.url, json!({"secret": SECRET_A}))
        .await;
    let (status, _) = app
        .post(
            &format!(
                "/v1/destinations/{}/rotate-secret",
                rotated["id"].as_str().unwrap()
            ),
            json!({"secret": SECRET_B, "grace_secs": 600}),
        )
        .await;
    assert_eq!(status, 200);
    let signing = app
        .destination(&ed25519.url, json!({"signature": {"scheme": "ed25519"}}))
        .await;
    let public_key = signing["public_key"].as_str().unwrap();
    let data = json!({"event": "turn.completed", "taskId": "t_1", "text": "héllo ✓"});
    app.publish(json!({"type": "turn.completed", "data": data}))
        .await;

    let s = standard.wait_for(1, WAIT).await.remove(0);
    let r = rotating.wait_for(1, WAIT).await.remove(0);
    let e = ed25519.wait_for(1, WAIT).await.remove(0);
    let d = data_only.wait_for(1, WAIT).await.remove(0);
    assert_eq!(
        serde_json::from_slice::<Value>(&d.body).unwrap(),
        data,
        "the body is the event's data alone"
    );
    let cases = json!([
        case("standard", "v1", SECRET_A, &s, &s.body, true),
        case("standard, wrong secret", "v1", SECRET_B, &s, &s.body, false),
        case(
            "standard, tampered body",
            "v1",
            SECRET_A,
            &s,
            b"{\"x\":1}",
            false
        ),
        case("data body", "v1", SECRET_A, &d, &d.body, true),
        case(
            "data body, wrong secret",
            "v1",
            SECRET_B,
            &d,
            &d.body,
            false
        ),
        case("rotation, new secret", "v1", SECRET_B, &r, &r.body, true),
        case("rotation, old secret", "v1", SECRET_A, &r, &r.body, true),
        case("ed25519", "v1a", public_key, &e, &e.body, true),
        case(
            "ed25519, tampered body",
            "v1a",
            public_key,
            &e,
            b"{}",
            false
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.json");
    std::fs::write(&path, cases.to_string()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/interop/verify_deliveries.py"
    );
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(&path)
        .output()
        .expect("running the interop script");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "independent verification failed:\n{report}"
    );
    assert!(report.contains("9 cases, 0 failures"), "{report}");
}
