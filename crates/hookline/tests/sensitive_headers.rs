//! Destination headers that carry credentials: sealed at rest, masked in every API
//! answer and attempt record, sent in full to the receiver, and kept when a destination
//! read from the API is written back with its masks.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use support::app::{TestApp, id};
use support::receiver::Receiver;
use support::secrets::contains;

const WAIT: Duration = Duration::from_secs(10);
const MASK: &str = "********";
const TOKEN: &str = "tok_d2VsbC1rZXB0LXNlY3JldA";
const FLAGGED: &str = "sig_c2Vjb25kLXNlY3JldA";

#[tokio::test]
async fn sensitive_headers_are_sealed_masked_and_sent_in_full() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let destination = app
        .destination(
            &receiver.url,
            json!({
                "headers": {
                    "Authorization": format!("Bearer {TOKEN}"),
                    "X-Team": "core",
                    "X-Signing-Token": FLAGGED,
                },
                "sensitive_headers": ["X-Signing-Token"],
            }),
        )
        .await;
    let masked = json!({"authorization": MASK, "x-team": "core", "x-signing-token": MASK});
    assert_eq!(destination["headers"], masked);
    assert_eq!(destination["sensitive_headers"], json!(["x-signing-token"]));

    app.publish(json!({"type": "a.b", "stream": "s1", "data": {}}))
        .await;
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.header("authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(request.header("x-signing-token"), FLAGGED);
    assert_eq!(request.header("x-team"), "core");

    let delivery_id = request.header("hookline-delivery-id").to_owned();
    let delivery = app.wait_status(&delivery_id, "delivered", WAIT).await;
    let recorded = &delivery["attempt_history"][0]["request_headers"];
    assert_eq!(recorded["authorization"], MASK, "{recorded}");
    assert_eq!(recorded["x-signing-token"], MASK);
    assert_eq!(recorded["x-team"], "core");

    // Read, edit one header, write back with the masks: the tokens are kept.
    let path = format!("/v1/destinations/{}", id(&destination));
    let (status, shown) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["headers"], masked);
    let mut headers = shown["headers"].clone();
    headers["x-team"] = json!("platform");
    let (status, patched) = app.patch(&path, json!({"headers": headers})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["headers"]["x-team"], "platform");
    assert_eq!(patched["headers"]["authorization"], MASK);
    app.publish(json!({"type": "a.b", "stream": "s1", "data": {}}))
        .await;
    let again = receiver.wait_for(2, WAIT).await.remove(1);
    assert_eq!(again.header("authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(again.header("x-signing-token"), FLAGGED);
    assert_eq!(again.header("x-team"), "platform");

    // A mask where nothing is stored is refused, by field.
    let (status, error) = app.patch(&path, json!({"headers": {"cookie": MASK}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["field"], "headers", "{error}");

    let stored = app.stored_bytes().await;
    assert!(
        contains(&stored, "platform"),
        "the search sees stored settings"
    );
    assert!(
        !contains(&stored, TOKEN),
        "a sensitive header is stored in the clear"
    );
    assert!(
        !contains(&stored, FLAGGED),
        "a flagged header is stored in the clear"
    );
}

#[tokio::test]
async fn flagging_a_header_later_seals_and_masks_it() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let destination = app
        .destination(&receiver.url, json!({"headers": {"X-Token": FLAGGED}}))
        .await;
    assert_eq!(destination["headers"]["x-token"], FLAGGED);
    let path = format!("/v1/destinations/{}", id(&destination));
    let (status, patched) = app
        .patch(&path, json!({"sensitive_headers": ["x-token"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["headers"]["x-token"], MASK);
    app.publish(json!({"type": "a.b", "stream": "s1", "data": {}}))
        .await;
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.header("x-token"), FLAGGED);
    let (status, error) = app
        .patch(&path, json!({"sensitive_headers": ["Content-Length"]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["field"], "sensitive_headers");
}
