//! Statistics from the rollups: the figures equal what the test's own receivers saw, the
//! series adds up to the totals, intercepted attempts are not counted, deliveries under
//! way are counted by status, and bad windows are 422s.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::app::{TestApp, id};
use support::pair::Pair;
use support::receiver::{Receiver, Reply};

fn series_sum(stats: &Value, field: &str) -> i64 {
    stats["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[field].as_i64().unwrap())
        .sum()
}

async fn unfinished(app: &TestApp, destination: &Value) -> Value {
    let path = format!("/v1/destinations/{}/stats", id(destination));
    let (status, stats) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    stats["unfinished"].clone()
}

#[tokio::test]
async fn stats_count_what_the_receivers_saw() {
    let app = TestApp::spawn().await;
    let Pair {
        healthy,
        failing,
        good,
        bad,
    } = Pair::start(&app, Reply::status(503), &[1]).await;
    for n in 0..5 {
        app.publish(json!({"type": "ok.a", "data": {"n": n}})).await;
    }
    app.publish(json!({"type": "bad.b"})).await;
    healthy.wait_for(5, Duration::from_secs(10)).await;
    let dead = app.only_delivery(id(&bad)).await;
    app.wait_status(id(&dead), "dead_letter", Duration::from_secs(15))
        .await;
    app.post("/v1/test-mode/enable", json!({})).await;
    let intercepted = app.publish(json!({"type": "ok.a"})).await;
    let deliveries = app.deliveries_of_destination(id(&good)).await;
    let last = deliveries
        .iter()
        .find(|d| d["event_id"] == intercepted["id"])
        .unwrap();
    app.wait_status(id(last), "intercepted", Duration::from_secs(10))
        .await;

    let (status, stats) = app
        .get(&format!("/v1/destinations/{}/stats?window=1h", id(&good)))
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let received = healthy.received().len() as i64;
    assert_eq!(stats["attempts_ok"], received, "{stats:#}");
    assert_eq!(stats["attempts"], 5);
    assert_eq!(stats["attempts_failed"], 0);
    assert_eq!(stats["delivered"], 5);
    assert_eq!(stats["success_rate"], 1.0);
    assert!(stats["latency_ms"]["p50"].is_i64());
    assert!(stats["last_success_at"].is_string());
    let points = stats["series"].as_array().unwrap();
    assert!((60..=61).contains(&points.len()), "{}", points.len());
    assert_eq!(series_sum(&stats, "attempts_ok"), 5);

    let (_, stats) = app
        .get(&format!("/v1/destinations/{}/stats?window=1h", id(&bad)))
        .await;
    assert_eq!(stats["attempts_failed"], failing.received().len() as i64);
    assert_eq!(stats["attempts_failed"], 2);
    assert_eq!(stats["dead_lettered"], 1);
    assert_eq!(stats["success_rate"], 0.0);
    assert_eq!(stats["consecutive_failures"], 2);

    let (status, org) = app.get("/v1/stats").await;
    assert_eq!(status, StatusCode::OK, "{org}");
    assert_eq!(org["window"], "24h");
    assert_eq!(org["attempts"], 7);
    assert_eq!(org["attempts_ok"], 5);
    let hours = org["series"].as_array().unwrap().len();
    assert!((24..=25).contains(&hours), "{hours}");
    assert_eq!(series_sum(&org, "attempts_failed"), 2);
}

#[tokio::test]
async fn bad_windows_and_unknown_destinations() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/v1/stats?window=2h").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "window");
    let (status, _) = app
        .get("/v1/destinations/dst_01JD3V6Q2W8T7Y4N5K9H0B1C2D/stats")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, empty) = app.get("/v1/stats?window=30d").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["attempts"], 0);
    assert!(empty["success_rate"].is_null());
    assert!(empty["latency_ms"]["p50"].is_null());
}

#[tokio::test]
async fn deliveries_under_way_are_counted_by_status() {
    let app = TestApp::spawn().await;
    let (paused, failing, slow) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    failing.script([Reply::status(500)]);
    slow.script([Reply::ok().delay(Duration::from_secs(30))]);
    let paused = app
        .destination(&paused.url, json!({"enabled": false, "types": ["p.*"]}))
        .await;
    let retrying = app
        .destination(
            &failing.url,
            json!({"retry_schedule_secs": [3600], "types": ["f.*"]}),
        )
        .await;
    let sending = app.destination(&slow.url, json!({"types": ["s.*"]})).await;
    for _ in 0..3 {
        app.publish(json!({"type": "p.x"})).await;
    }
    app.publish(json!({"type": "f.x"})).await;
    app.publish(json!({"type": "s.x"})).await;
    failing.wait_for(1, Duration::from_secs(10)).await;
    slow.wait_for(1, Duration::from_secs(10)).await;
    app.wait_status(
        id(&app.only_delivery(id(&retrying)).await),
        "failed",
        Duration::from_secs(10),
    )
    .await;

    assert_eq!(
        unfinished(&app, &paused).await,
        json!({"pending": 3, "delivering": 0, "failed": 0})
    );
    assert_eq!(
        unfinished(&app, &retrying).await,
        json!({"pending": 0, "delivering": 0, "failed": 1})
    );
    assert_eq!(
        unfinished(&app, &sending).await,
        json!({"pending": 0, "delivering": 1, "failed": 0})
    );
    let (_, org) = app.get("/v1/stats?window=1h").await;
    assert_eq!(
        org["unfinished"],
        json!({"pending": 3, "delivering": 1, "failed": 1})
    );
    assert_eq!(org["attempts_failed"], 1);
}
