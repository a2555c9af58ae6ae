//! Statistics from the rollups: the figures equal what the test's own receivers saw, the
//! series adds up to the totals, intercepted attempts are not counted, and bad windows
//! are 422s.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::app::{TestApp, id};
use support::pair::Pair;
use support::receiver::Reply;

fn series_sum(stats: &Value, field: &str) -> i64 {
    stats["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[field].as_i64().unwrap())
        .sum()
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
