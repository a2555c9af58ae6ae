//! Per-org limits: destinations held (atomic against concurrent creates), events
//! published per second and redeliveries per minute (429 with Retry-After), each org
//! held to its own allowance.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::app::{TestApp, id};
use support::receiver::Receiver;

async fn app_with(tune: impl FnOnce(&mut hookline::configuration::ServeConfig)) -> TestApp {
    TestApp::spawn_tuned(true, false, tune).await
}

#[tokio::test]
async fn an_org_holds_at_most_its_destinations_even_when_creates_race() {
    let app = app_with(|c| c.max_destinations_per_org = 3).await;
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (client, url, key) = (
            reqwest::Client::new(),
            format!("{}/v1/destinations", app.base),
            app.key.clone(),
        );
        creates.spawn(async move {
            let body = json!({"url": format!("http://127.0.0.1:9/{i}")});
            let response = client.post(url).bearer_auth(key).json(&body).send().await;
            let response = response.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        });
    }
    let answers = creates.join_all().await;
    let created: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 3, "{answers:?}");
    for (status, body) in &answers {
        if *status != StatusCode::CREATED {
            assert_eq!(*status, StatusCode::CONFLICT, "{body}");
            assert_eq!(body["error"]["code"], "limit_reached", "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("max_destinations_per_org")
            );
        }
    }
    let (_, listed) = app.get("/v1/destinations").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);

    // A deleted destination frees its place; a one-shot `webhook_url` never takes one.
    let (status, _) = app
        .delete(&format!("/v1/destinations/{}", id(&created[0].1)))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.publish(
        json!({"type": "a.b", "stream": "s", "data": {}, "webhook_url": "http://127.0.0.1:9/one"}),
    )
    .await;
    let (status, body) = app
        .post(
            "/v1/destinations",
            json!({"url": "http://127.0.0.1:9/again"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let other = app.other_org_key().await;
    let (status, body) = app
        .request_as(
            &other,
            reqwest::Method::POST,
            "/v1/destinations",
            Some(json!({"url": "http://127.0.0.1:9/other"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "another org has its own places: {body}"
    );
}

#[tokio::test]
async fn publishing_beyond_an_orgs_rate_gets_429_with_retry_after() {
    let app = app_with(|c| c.org_events_per_sec = 5).await;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut accepted = 0;
    let mut refused = None;
    for n in 0..40 {
        let response = client
            .post(format!("{}/v1/events", app.base))
            .bearer_auth(&app.key)
            .json(&json!({"type": "a.b", "stream": "s", "data": {"n": n}}))
            .send()
            .await
            .unwrap();
        match response.status() {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let wait: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let body: serde_json::Value = response.json().await.unwrap();
                refused = Some((wait, body));
            }
            other => panic!("unexpected {other}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (wait, body) = refused.expect("40 publishes at once exceed 5 a second");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!((1..=1).contains(&wait), "one event every 200 ms: {wait}");
    let allowed = 5.0 + elapsed * 5.0 + 1.0;
    assert!(
        f64::from(accepted) <= allowed,
        "{accepted} accepted in {elapsed:.2} s at 5/s"
    );
    // The refused events were not stored.
    let (_, events) = app.get("/v1/events?limit=200").await;
    assert_eq!(events["data"].as_array().unwrap().len(), accepted as usize);

    let other = app.other_org_key().await;
    let (status, body) = app
        .request_as(
            &other,
            reqwest::Method::POST,
            "/v1/events",
            Some(json!({"type": "a.b", "stream": "s", "data": {}})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "another org has its own rate: {body}"
    );
    tokio::time::sleep(Duration::from_millis(wait * 1000)).await;
    app.publish(json!({"type": "a.b", "stream": "s", "data": {}}))
        .await;
}

#[tokio::test]
async fn redeliveries_beyond_an_orgs_rate_get_429() {
    let app = app_with(|c| c.org_redeliveries_per_min = 2).await;
    let receiver = Receiver::start().await;
    let destination = app.destination(&receiver.url, json!({})).await;
    app.publish(json!({"type": "a.b", "stream": "s", "data": {}}))
        .await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let delivery = app.only_delivery(id(&destination)).await;
    let path = format!("/v1/deliveries/{}/redeliver", id(&delivery));
    for _ in 0..2 {
        let (status, body) = app.post(&path, json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let response = reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .bearer_auth(&app.key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((20..=30).contains(&wait), "one every 30 s: {wait}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("org_redeliveries_per_min"),
        "{body}"
    );
}
