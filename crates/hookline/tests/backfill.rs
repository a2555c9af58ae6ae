//! Backfill: a new destination is sent the earlier events it asks for: a stream's from a
//! seq on (in order for an ordered destination), or the org's since a time, through the
//! destination's filters, with its progress on the destination; events published later
//! reach it by their publish, not twice.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::app::{TestApp, id};
use support::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(15);

async fn backfill_done(app: &TestApp, destination: &Value) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, shown) = app
            .get(&format!("/v1/destinations/{}", id(destination)))
            .await;
        if shown["backfill"]["state"] == "done" {
            return shown["backfill"].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{shown}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn seqs(receiver: &Receiver) -> Vec<i64> {
    receiver
        .received()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_streams_destination_is_sent_its_earlier_events_from_a_seq_in_order() {
    let app = TestApp::spawn().await;
    for n in 1..=5 {
        app.publish(json!({"type": "a.b", "stream": "s", "data": {"n": n}}))
            .await;
    }
    app.publish(json!({"type": "a.b", "stream": "other"})).await;
    let receiver = Receiver::start().await;
    let (status, destination) = app
        .post(
            "/v1/streams/s/destinations",
            json!({"url": receiver.url, "ordered": true, "backfill_from_seq": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{destination}");
    assert_eq!(destination["backfill"]["state"], "running");
    let progress = backfill_done(&app, &destination).await;
    assert_eq!(progress["done"], 3);
    receiver.wait_for(3, WAIT).await;
    app.publish(json!({"type": "a.b", "stream": "s"})).await;
    receiver.wait_for(4, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seqs(&receiver), [3, 4, 5, 6]);
}

#[tokio::test]
async fn an_org_wide_destination_is_sent_the_events_since_a_time_through_its_filters() {
    let app = TestApp::spawn().await;
    app.publish(json!({"type": "a.early"})).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut wanted = Vec::new();
    for event_type in ["a.one", "b.skip", "a.two"] {
        let published = app
            .publish(json!({"type": event_type, "stream": event_type}))
            .await;
        if event_type.starts_with("a.") {
            wanted.push(published["id"].as_str().unwrap().to_owned());
        }
    }
    let receiver = Receiver::start().await;
    let destination = app
        .destination(
            &receiver.url,
            json!({"types": ["a.*"], "backfill_since": since}),
        )
        .await;
    let progress = backfill_done(&app, &destination).await;
    assert_eq!(progress["done"], 2, "{progress}");
    receiver.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    for id in &wanted {
        assert!(got.contains(id), "{id} not backfilled: {got:?}");
    }
}

#[tokio::test]
async fn backfill_fields_that_do_not_fit_the_destination_are_422s() {
    let app = TestApp::spawn().await;
    for (path, body, field) in [
        (
            "/v1/destinations",
            json!({"backfill_from_seq": 2}),
            "backfill_from_seq",
        ),
        (
            "/v1/destinations",
            json!({"backfill_since": "yesterday"}),
            "backfill_since",
        ),
        (
            "/v1/streams/s/destinations",
            json!({"backfill_since": "2026-12-01T00:00:00Z"}),
            "backfill_since",
        ),
        (
            "/v1/streams/s/destinations",
            json!({"backfill_from_seq": 0}),
            "backfill_from_seq",
        ),
    ] {
        let mut body = body;
        body["url"] = json!("http://127.0.0.1:9/h");
        let (status, answer) = app.post(path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let destination = app.destination("http://127.0.0.1:9/h", json!({})).await;
    let (status, answer) = app
        .patch(
            &format!("/v1/destinations/{}", id(&destination)),
            json!({"backfill_from_seq": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(destination.get("backfill").is_none(), "{destination}");
}
