//! `GET /metrics`: the Prometheus text format, read back with a Prometheus text parser,
//! whose counters match what the test did; and the optional bearer token.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use support::app::{TestApp, id};
use support::pair::Pair;
use support::receiver::Reply;

/// Every sample of the scrape, by name and labels (`name{k="v"}`), as a number.
async fn scrape(app: &TestApp, token: Option<&str>) -> HashMap<String, f64> {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).unwrap();
    parsed
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            labels.sort();
            let key = if labels.is_empty() {
                s.metric
            } else {
                format!("{}{{{}}}", s.metric, labels.join(","))
            };
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.last().map_or(0.0, |b| b.count)
                }
                prometheus_parse::Value::Summary(_) => f64::NAN,
            };
            (key, value)
        })
        .collect()
}

#[tokio::test]
async fn counters_match_what_happened() {
    let app = TestApp::spawn().await;
    let Pair {
        healthy,
        bad: broken,
        ..
    } = Pair::start(&app, Reply::status(503), &[1]).await;
    for n in 0..3 {
        app.publish(json!({"type": "ok.event", "data": {"n": n}}))
            .await;
    }
    app.publish(json!({"type": "bad.event"})).await;
    healthy.wait_for(3, Duration::from_secs(10)).await;
    let delivery = app.only_delivery(id(&broken)).await;
    app.wait_status(id(&delivery), "dead_letter", Duration::from_secs(15))
        .await;

    let m = scrape(&app, None).await;
    assert_eq!(m["hookline_events_published_total"], 4.0, "{m:?}");
    assert_eq!(m["hookline_publish_duration_seconds_count"], 4.0);
    assert_eq!(m["hookline_deliveries_total{outcome=\"delivered\"}"], 3.0);
    assert_eq!(m["hookline_deliveries_total{outcome=\"retry\"}"], 1.0);
    assert_eq!(m["hookline_deliveries_total{outcome=\"dead_letter\"}"], 1.0);
    assert_eq!(m["hookline_attempts_total{error_kind=\"none\"}"], 3.0);
    assert_eq!(
        m["hookline_attempts_total{error_kind=\"http_status\"}"],
        2.0
    );
    assert_eq!(m["hookline_attempts_total{error_kind=\"timeout\"}"], 0.0);
    assert_eq!(m["hookline_attempt_duration_seconds_count"], 5.0);
    assert_eq!(m["hookline_attempts_in_flight"], 0.0);
    assert_eq!(m["hookline_due_deliveries"], 0.0);
    assert_eq!(m["hookline_oldest_due_age_seconds"], 0.0);
    // Both destinations learn their limits from 10 at once; the one answering 503 lost
    // a tenth at least.
    assert_eq!(m["hookline_adaptive_destinations"], 2.0);
    let limits = m["hookline_concurrency_limit"];
    assert!((2.0..20.0).contains(&limits), "{limits}");
    assert!(
        m["hookline_store_commit_duration_seconds_count"] >= 4.0,
        "{m:?}"
    );
    // Labels stay bounded: nothing names a destination or an org.
    assert!(
        m.keys().all(|k| !k.contains("dst_") && !k.contains("org_")),
        "{m:?}"
    );
}

#[tokio::test]
async fn a_metrics_token_is_asked_for_when_set() {
    let app = TestApp::spawn_tuned(true, false, |c| {
        c.metrics_token = Some("s3cret-token".into())
    })
    .await;
    let open = reqwest::get(format!("{}/metrics", app.base)).await.unwrap();
    assert_eq!(open.status(), StatusCode::UNAUTHORIZED);
    let wrong = reqwest::Client::new()
        .get(format!("{}/metrics", app.base))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let m = scrape(&app, Some("s3cret-token")).await;
    assert_eq!(m["hookline_events_published_total"], 0.0);
}
