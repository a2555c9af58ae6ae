//! Operator tools end to end: the test ping.

mod support;

use std::time::Duration;

use serde_json::json;
use support::app::TestApp;
use support::receiver::{Receiver, Reply};
use support::secrets::SECRET_A;
use support::verify::signed_by;

#[tokio::test]
async fn a_test_ping_is_sent_signed_now_and_answered_with_its_attempt() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::ok().body("pong"), Reply::status(500)]);
    let destination = app
        .destination(&receiver.url, json!({"secret": SECRET_A, "enabled": false}))
        .await;
    let path = format!(
        "/v1/destinations/{}/test",
        destination["id"].as_str().unwrap()
    );

    let (status, attempt) = app.post(&path, json!({"data": {"hello": 1}})).await;
    assert_eq!(status, 200, "{attempt}");
    assert_eq!(
        attempt["delivered"], true,
        "a paused destination can be tested"
    );
    assert_eq!(attempt["response_status"], 200);
    assert_eq!(attempt["response_body"], "pong");
    let request = &receiver.received()[0];
    let body = request.json();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["stream"], "hookline");
    assert_eq!(body["data"]["hello"], 1);
    assert!(signed_by(SECRET_A, request));
    assert_eq!(
        attempt["request_headers"]["webhook-signature"],
        request.header("webhook-signature")
    );

    let (status, failed) = app.post(&path, json!({"type": "run.failed"})).await;
    assert_eq!(status, 200);
    assert_eq!(failed["delivered"], false);
    assert_eq!(failed["response_status"], 500);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2, "a test ping is never retried");
    let (_, deliveries) = app.get("/v1/deliveries").await;
    assert_eq!(
        deliveries["data"].as_array().unwrap().len(),
        0,
        "nothing is stored"
    );

    let (status, body) = app.post(&path, json!({"colour": "red"})).await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = app
        .post(
            "/v1/destinations/dst_01M8G8CJEQXDZH9K7F065CJGKJ/test",
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
}
