//! Bulk replay of dead letters once the receiver recovers: a dry run counts and sends
//! nothing; a replay job sends each again with its `webhook-id`, shows its progress and
//! ends `done`; one can be canceled mid-way; one carries on after a restart without
//! sending anything twice.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::app::{TestApp, id};
use support::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(15);

/// A destination whose receiver failed `events` deliveries into dead letters (`a.x`
/// first, then `b.y`), and now answers 200.
async fn dead_letters(app: &TestApp, a: usize, b: usize) -> (Receiver, Value, Vec<String>) {
    let receiver = Receiver::start().await;
    receiver.fallback(Reply::status(500));
    let destination = app
        .destination(&receiver.url, json!({"retry_schedule_secs": [0]}))
        .await;
    let mut events = Vec::new();
    for n in 0..a + b {
        let event_type = if n < a { "a.x" } else { "b.y" };
        let published = app
            .publish(json!({"type": event_type, "data": {"n": n}}))
            .await;
        events.push(published["id"].as_str().unwrap().to_owned());
    }
    for delivery in app.deliveries_of_destination(id(&destination)).await {
        app.wait_status(id(&delivery), "dead_letter", WAIT).await;
    }
    receiver.fallback(Reply::ok());
    (receiver, destination, events)
}

async fn wait_state(app: &TestApp, replay: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = app.get(&format!("/v1/replays/{replay}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["state"] == state {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many successful requests each webhook-id got after the first `skip` requests.
fn answered_after(receiver: &Receiver, skip: usize) -> HashMap<String, usize> {
    let mut count = HashMap::new();
    for request in receiver.received().iter().skip(skip) {
        *count
            .entry(request.header("webhook-id").to_owned())
            .or_default() += 1;
    }
    count
}

#[tokio::test]
async fn dead_letters_are_replayed_once_the_receiver_recovers() {
    let app = TestApp::spawn().await;
    let (receiver, destination, events) = dead_letters(&app, 3, 2).await;
    let failed_requests = receiver.received().len();
    let path = format!("/v1/destinations/{}/replay", id(&destination));

    let (status, dry) = app.post(&path, json!({"dry_run": true})).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry, json!({"count": 5}));
    let (_, only_a) = app
        .post(&path, json!({"dry_run": true, "event_types": ["a.*"]}))
        .await;
    assert_eq!(only_a["count"], 3);
    let (_, none) = app
        .post(&path, json!({"dry_run": true, "status": "delivered"}))
        .await;
    assert_eq!(none["count"], 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        failed_requests,
        "a dry run sent something"
    );

    let (status, started) = app.post(&path, json!({"rate_per_sec": 100})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["total"], 5);
    assert_eq!(started["state"], "running");
    let replay = started["id"].as_str().unwrap();
    let done = wait_state(&app, replay, "done").await;
    assert_eq!(
        (done["done"].as_i64(), done["failed"].as_i64()),
        (Some(5), Some(0))
    );
    receiver.wait_for(failed_requests + 5, WAIT).await;
    let replayed = answered_after(&receiver, failed_requests);
    for event in &events {
        assert_eq!(replayed.get(event), Some(&1), "{event}: {replayed:?}");
    }
    for delivery in app.deliveries_of_destination(id(&destination)).await {
        app.wait_status(id(&delivery), "delivered", WAIT).await;
    }

    let (_, listed) = app.get("/v1/replays").await;
    assert_eq!(listed["data"][0]["id"], replay);
    let (status, body) = app.delete(&format!("/v1/replays/{replay}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    for (body, field) in [
        (json!({"status": "pending"}), "status"),
        (json!({"rate_per_sec": 0}), "rate_per_sec"),
        (json!({"since": "yesterday"}), "since"),
        (json!({"event_types": []}), "event_types"),
    ] {
        let (status, answer) = app.post(&path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], field);
    }
    let (status, _) = app.get("/v1/replays/rpl_01JD3V6Q2W8T7Y4N5K9H0B1C2D").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_replay_canceled_midway_sends_nothing_more() {
    let app = TestApp::spawn().await;
    let (receiver, destination, _) = dead_letters(&app, 12, 0).await;
    let path = format!("/v1/destinations/{}/replay", id(&destination));
    let (_, started) = app.post(&path, json!({"rate_per_sec": 2})).await;
    let replay = started["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.get(&format!("/v1/replays/{replay}")).await.1["done"] == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, canceled) = app.delete(&format!("/v1/replays/{replay}")).await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["state"], "canceled");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (sent, requests) = (
        app.get(&format!("/v1/replays/{replay}")).await.1["done"].clone(),
        receiver.received().len(),
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let after = app.get(&format!("/v1/replays/{replay}")).await.1;
    assert_eq!(after["done"], sent);
    assert!(after["done"].as_i64().unwrap() < 12, "{after}");
    assert_eq!(receiver.received().len(), requests, "sent after the cancel");
}

#[tokio::test]
async fn a_replay_carries_on_after_a_restart_and_sends_each_once() {
    let mut app = TestApp::spawn().await;
    let (receiver, destination, events) = dead_letters(&app, 12, 0).await;
    let failed_requests = receiver.received().len();
    let path = format!("/v1/destinations/{}/replay", id(&destination));
    let (_, started) = app.post(&path, json!({"rate_per_sec": 3})).await;
    let replay = started["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.get(&format!("/v1/replays/{replay}")).await.1["done"] == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.restart().await;
    let done = wait_state(&app, &replay, "done").await;
    assert_eq!(done["done"], 12, "{done}");
    receiver.wait_for(failed_requests + 12, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replayed = answered_after(&receiver, failed_requests);
    for event in &events {
        assert_eq!(replayed.get(event), Some(&1), "{event}: {replayed:?}");
    }
}
