//! Adaptive concurrency against receivers of known capacity on 127.0.0.1: a
//! destination's limit settles near what its receiver can take, comes down when the
//! receiver takes less, and its `Retry-After` holds the whole destination; a fixed
//! destination sends exactly its `max_in_flight` at once.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::app::{TestApp, id};
use support::receiver::{Receiver, Reply};

/// Publishes `n` events of one batch.
async fn publish(app: &TestApp, n: usize) {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"type": "load.test", "data": {"i": i}}))
        .collect();
    let (status, body) = app
        .post("/v1/events/batch", json!({ "events": events }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// Waits until the receiver has served `n` requests successfully.
async fn served(receiver: &Receiver, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while receiver.served_ok() < n {
        assert!(
            Instant::now() < deadline,
            "served {} of {n} (shed {})",
            receiver.served_ok(),
            receiver.shed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The destination's limit on this node as its GET shows it.
async fn limit_now(app: &TestApp, destination: &str) -> Value {
    let (status, shown) = app.get(&format!("/v1/destinations/{destination}")).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    shown["concurrency_now"].clone()
}

#[tokio::test]
async fn an_adaptive_limit_settles_near_a_receivers_capacity_and_follows_it_down() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.fallback(Reply::ok().delay(Duration::from_millis(20)));
    receiver.shed_beyond(8);
    let destination = app
        .destination(
            &receiver.url,
            json!({"max_in_flight": 100, "retry_schedule_secs": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]}),
        )
        .await;
    let destination = id(&destination);
    assert_eq!(limit_now(&app, destination).await, Value::Null);

    publish(&app, 300).await;
    served(&receiver, 300, Duration::from_secs(60)).await;
    let now = limit_now(&app, destination).await;
    let limit = now["limit"].as_u64().unwrap();
    assert!(
        (4..=12).contains(&limit),
        "limit {limit} for a capacity of 8: {now}"
    );
    let history = now["history"].as_array().unwrap();
    assert!(history.iter().any(|c| c["reason"] == "overloaded"), "{now}");
    assert!(
        history.iter().all(|c| c["limit"].as_u64().unwrap() <= 16),
        "{now}"
    );
    let shed = receiver.shed();
    assert!(shed * 4 < 300, "{shed} of 300 shed");

    // The receiver now takes two at a time: the limit follows it down.
    receiver.shed_beyond(2);
    publish(&app, 100).await;
    served(&receiver, 400, Duration::from_secs(60)).await;
    let now = limit_now(&app, destination).await;
    let limit = now["limit"].as_u64().unwrap();
    assert!(limit <= 4, "limit {limit} for a capacity of 2: {now}");
}

#[tokio::test]
async fn a_fixed_destination_sends_exactly_its_max_in_flight_at_once() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.fallback(Reply::ok().delay(Duration::from_millis(100)));
    let destination = app
        .destination(
            &receiver.url,
            json!({"max_in_flight": 12, "concurrency": "fixed"}),
        )
        .await;
    assert_eq!(destination["concurrency"], "fixed");
    publish(&app, 60).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.in_flight() < 12 {
        assert!(Instant::now() < deadline, "{} open", receiver.in_flight());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let now = limit_now(&app, id(&destination)).await;
    assert_eq!(now["limit"], 12, "{now}");
    assert_eq!(now["history"], json!([]), "{now}");
    served(&receiver, 60, Duration::from_secs(30)).await;
    assert_eq!(receiver.max_concurrent(), 12);
}

#[tokio::test]
async fn retry_after_on_a_503_holds_every_delivery_to_the_destination() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(503).header("retry-after", "2")]);
    let destination = app.destination(&receiver.url, json!({})).await;
    app.publish(json!({"type": "a.b", "data": {}})).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let paused = limit_now(&app, id(&destination)).await;
    assert!(paused["paused_until"].is_string(), "{paused}");
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let got = receiver.wait_for(3, Duration::from_secs(15)).await;
    // The second event, published at once, waited out the pause with the retry.
    let waited = got[1].at.duration_since(got[0].at);
    assert!(waited >= Duration::from_millis(1900), "{waited:?}");
}
