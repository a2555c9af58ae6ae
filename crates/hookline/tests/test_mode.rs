//! Test mode: while it is on, deliveries are built and signed exactly as they would be
//! sent (the log's signatures verify with the destination's secret), recorded as
//! `intercepted`, and never reach the receiver; turning it off sends none of them; test
//! pings are still sent; the log can be cleared.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::app::{TestApp, id};
use support::receiver::Receiver;
use support::verify::standard_signature_is_valid;

fn entries(page: &Value) -> &Vec<Value> {
    page["data"].as_array().unwrap()
}

#[tokio::test]
async fn intercepted_deliveries_are_signed_recorded_and_never_sent() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let destination = app.destination(&receiver.url, json!({})).await;
    let secret = destination["secret"].as_str().unwrap().to_owned();

    let (status, off) = app.get("/v1/test-mode").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(off, json!({"enabled": false, "since": null}));
    let (status, on) = app.post("/v1/test-mode/enable", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{on}");
    assert_eq!(on["enabled"], true);
    assert!(on["since"].is_string());
    let (_, again) = app.post("/v1/test-mode/enable", json!({})).await;
    assert_eq!(
        again["since"], on["since"],
        "enabling twice keeps the first time"
    );

    for n in 0..2 {
        app.publish(json!({"type": "run.done", "data": {"n": n}}))
            .await;
    }
    let deliveries = app.deliveries_of_destination(id(&destination)).await;
    assert_eq!(deliveries.len(), 2);
    for d in &deliveries {
        let intercepted = app
            .wait_status(id(d), "intercepted", Duration::from_secs(10))
            .await;
        assert_eq!(intercepted["attempts"], 1);
        assert!(intercepted["next_attempt_at"].is_null());
    }

    let (status, log) = app.get("/v1/test-mode/log").await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(entries(&log).len(), 2, "{log:#}");
    for entry in entries(&log) {
        assert_eq!(entry["error_kind"], "intercepted");
        assert!(entry["response_status"].is_null());
        assert_eq!(entry["url"], receiver.url);
        let headers = &entry["request_headers"];
        let body = entry["request_body"].as_str().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(body).unwrap()["type"],
            "run.done"
        );
        assert!(
            standard_signature_is_valid(
                &secret,
                headers["webhook-id"].as_str().unwrap(),
                headers["webhook-timestamp"].as_str().unwrap(),
                body.as_bytes(),
                headers["webhook-signature"].as_str().unwrap(),
            ),
            "the intercepted request's signature verifies: {entry:#}"
        );
    }

    // A test ping is a real send, test mode or not.
    let (status, ping) = app
        .post(
            &format!("/v1/destinations/{}/test", id(&destination)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ping}");
    assert_eq!(ping["delivered"], true);
    receiver.wait_for(1, Duration::from_secs(5)).await;

    // Off: what was intercepted stays unsent; what comes next is sent.
    let (_, off) = app.post("/v1/test-mode/disable", json!({})).await;
    assert_eq!(off["enabled"], false);
    app.publish(json!({"type": "run.after"})).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2, "{got:?}");
    assert_eq!(receiver.received()[1].json()["type"], "run.after");
    for d in &deliveries {
        let (_, still) = app.get(&format!("/v1/deliveries/{}", id(d))).await;
        assert_eq!(still["status"], "intercepted");
    }
    // Nothing was sent, so nothing failed: the destination's health is untouched.
    let (_, shown) = app
        .get(&format!("/v1/destinations/{}", id(&destination)))
        .await;
    assert_eq!(shown["consecutive_failures"], 0);
    assert!(shown["disabled_reason"].is_null());

    let (status, cleared) = app.delete("/v1/test-mode/log").await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["deleted"], 2);
    let (_, log) = app.get("/v1/test-mode/log").await;
    assert!(entries(&log).is_empty(), "{log}");
}

#[tokio::test]
async fn test_mode_is_per_org() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.destination(&receiver.url, json!({})).await;
    let other = app.other_org_key().await;
    let (status, _) = app
        .request_as(&other, reqwest::Method::POST, "/v1/test-mode/enable", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    app.publish(json!({"type": "a.b"})).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let (_, mine) = app.get("/v1/test-mode").await;
    assert_eq!(mine["enabled"], false);
}
