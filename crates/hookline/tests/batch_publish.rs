//! `POST /v1/events/batch`: up to 1,000 events stored together, each answered in order;
//! a bad item, too many items or too large a body stores nothing and names why; an
//! item's `id` is its idempotency key.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::app::TestApp;
use support::receiver::Receiver;

async fn stored_events(app: &TestApp) -> usize {
    let (status, page) = app.get("/v1/events?limit=200").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().len()
}

fn batch(n: usize) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"type": "run.step", "stream": format!("s{}", i % 3), "data": {"n": i}}))
        .collect();
    json!({ "events": events })
}

#[tokio::test]
async fn a_thousand_events_are_stored_together_and_each_is_delivered() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.destination(&receiver.url, json!({"max_in_flight": 100}))
        .await;
    let (status, body) = app.post("/v1/events/batch", batch(1_000)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let answers = body["events"].as_array().unwrap();
    assert_eq!(answers.len(), 1_000);
    // In order: within each stream the seqs count up from 1.
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer["stream"], format!("s{}", i % 3));
        assert_eq!(answer["seq"], (i / 3 + 1) as i64, "{answer}");
        assert_eq!(answer["deliveries"], 1);
        assert_eq!(answer["created"], true);
    }
    let ids: HashSet<String> = answers
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1_000);
    receiver
        .wait_for_events(&ids, Duration::from_secs(30))
        .await;
}

#[tokio::test]
async fn too_many_items_or_too_many_bytes_are_413_and_store_nothing() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post("/v1/events/batch", batch(1_001)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("1000"),
        "{body}"
    );
    let big = "x".repeat(1_100_000);
    let (status, body) = app
        .post(
            "/v1/events/batch",
            json!({"events": [{"type": "a.b", "data": {"text": big}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(stored_events(&app).await, 0);
}

#[tokio::test]
async fn a_bad_item_fails_the_batch_naming_its_index_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let mut body = batch(5);
    body["events"][3]["type"] = json!("not a type");
    let (status, answer) = app.post("/v1/events/batch", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["field"], "events[3].type");
    let mut body = batch(5);
    body["events"][2]["colour"] = json!("blue");
    let (status, answer) = app.post("/v1/events/batch", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["error"]["field"]
            .as_str()
            .unwrap()
            .starts_with("events[2]"),
        "{answer}"
    );
    let (status, answer) = app.post("/v1/events/batch", json!({"events": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["field"], "events");
    assert_eq!(stored_events(&app).await, 0);
}

#[tokio::test]
async fn an_items_id_is_its_idempotency_key_within_and_across_batches() {
    let app = TestApp::spawn().await;
    let single = app
        .publish(json!({"type": "a.b", "id": "first", "data": {}}))
        .await;
    let (status, body) = app
        .post(
            "/v1/events/batch",
            json!({"events": [
                {"type": "a.b", "id": "first"},
                {"type": "a.b", "id": "second"},
                {"type": "a.b", "id": "second"},
                {"type": "a.b"}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let answers = body["events"].as_array().unwrap();
    assert_eq!(answers[0]["id"], single["id"]);
    assert_eq!(answers[0]["created"], false);
    assert_eq!(answers[1]["created"], true);
    assert_eq!(answers[2]["id"], answers[1]["id"]);
    assert_eq!(answers[2]["created"], false);
    assert_eq!(answers[3]["created"], true);
    assert_eq!(stored_events(&app).await, 3);
}
