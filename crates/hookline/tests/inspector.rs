//! The dispatch inspector: `GET /v1/attempts` with each filter and cursor paging,
//! `GET /v1/attempts/:id` with the request exactly as the receiver got it, and a
//! delivery's attempt history bounded with the rest paged.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::app::{TestApp, id};
use support::pair::Pair;
use support::receiver::{Receiver, Reply};

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn list(app: &TestApp, query: &str) -> Value {
    let (status, page) = app.get(&format!("/v1/attempts?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    page
}

#[tokio::test]
async fn attempts_filter_page_newest_first_and_show_the_request_as_sent() {
    let app = TestApp::spawn().await;
    let Pair {
        healthy, good, bad, ..
    } = Pair::start(&app, Reply::status(503).body("try later"), &[1, 1]).await;
    for n in 0..3 {
        app.publish(json!({"type": "ok.a", "data": {"n": n}})).await;
    }
    app.publish(json!({"type": "bad.b"})).await;
    healthy.wait_for(3, Duration::from_secs(10)).await;
    let dead = app.only_delivery(id(&bad)).await;
    app.wait_status(id(&dead), "dead_letter", Duration::from_secs(15))
        .await;

    let all = list(&app, "").await;
    let all_ids = ids(&all);
    assert_eq!(all_ids.len(), 6, "{all}");
    let mut newest_first = all_ids.clone();
    newest_first.sort();
    newest_first.reverse();
    assert_eq!(all_ids, newest_first);
    assert!(all["next_cursor"].is_null());

    let to_bad = list(&app, &format!("destination={}", id(&bad))).await;
    assert_eq!(ids(&to_bad).len(), 3);
    for a in to_bad["data"].as_array().unwrap() {
        assert_eq!(a["response_status"], 503);
        assert_eq!(a["response_body"], "try later");
        assert_eq!(a["error_kind"], "http_status");
        assert_eq!(a["destination_id"], id(&bad));
    }
    let numbers: Vec<i64> = to_bad["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);
    let of_delivery = list(&app, &format!("delivery={}", id(&dead))).await;
    assert_eq!(ids(&of_delivery), ids(&to_bad));
    assert_eq!(ids(&list(&app, "status_code=503").await).len(), 3);
    assert_eq!(ids(&list(&app, "status_code=200").await).len(), 3);
    assert_eq!(ids(&list(&app, "error=http_status").await).len(), 3);
    assert_eq!(ids(&list(&app, "error=timeout").await).len(), 0);
    assert_eq!(ids(&list(&app, "event_type=ok.a").await).len(), 3);
    let good_503 = list(&app, &format!("destination={}&status_code=503", id(&good))).await;
    assert_eq!(ids(&good_503).len(), 0);
    assert_eq!(
        ids(&list(&app, "since=2100-01-01T00:00:00Z").await).len(),
        0
    );
    assert_eq!(
        ids(&list(&app, "until=2000-01-01T00:00:00Z").await).len(),
        0
    );
    assert_eq!(
        ids(&list(&app, "since=2000-01-01T00:00:00Z").await).len(),
        6
    );

    // Pages of two walk the same six in the same order, each once.
    let mut walked = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let page = list(&app, &query).await;
        walked.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(walked, all_ids);

    // One attempt holds the request exactly as the receiver got it.
    let received = healthy.received();
    let sent = &received[0];
    let webhook_id = sent.header("webhook-id");
    let attempt = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["request_headers"]["webhook-id"] == webhook_id)
        .unwrap();
    let (status, one) = app
        .get(&format!("/v1/attempts/{}", attempt["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(
        one["request_body"].as_str().unwrap().as_bytes(),
        &sent.body[..]
    );
    assert_eq!(
        one["request_headers"]["webhook-signature"],
        sent.header("webhook-signature")
    );
    assert_eq!(one["response_status"], 200);
    assert!(one["latency_ms"].as_i64().unwrap() >= 0);
    assert_eq!(one["destination_id"], id(&good));

    // Another org sees none of it.
    let other = app.other_org_key().await;
    let (status, _) = app
        .request_as(
            &other,
            Method::GET,
            &format!("/v1/attempts/{}", attempt["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, theirs) = app
        .request_as(&other, Method::GET, "/v1/attempts", None)
        .await;
    assert_eq!(ids(&theirs).len(), 0);
}

#[tokio::test]
async fn bad_inspector_queries_are_422_and_unknown_attempts_404() {
    let app = TestApp::spawn().await;
    for (query, field) in [
        ("status_code=99", "status_code"),
        ("status_code=abc", "status_code"),
        ("error=nope", "error"),
        ("destination=dlv_01JD3V6Q2W8T7Y4N5K9H0B1C2D", "destination"),
        ("delivery=xyz", "delivery"),
        ("since=yesterday", "since"),
        ("cursor=evt_01JD3V6Q2W8T7Y4N5K9H0B1C2D", "cursor"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = app.get(&format!("/v1/attempts?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    for path in [
        "/v1/attempts/att_01JD3V6Q2W8T7Y4N5K9H0B1C2D",
        "/v1/attempts/not-an-id",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
}

#[tokio::test]
async fn a_delivery_shows_its_latest_twenty_attempts_and_pages_the_rest() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let destination = app.destination(&receiver.url, json!({})).await;
    app.publish(json!({"type": "a.b"})).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let delivery = app.only_delivery(id(&destination)).await;
    let path = format!("/v1/deliveries/{}", id(&delivery));
    for n in 2..=25 {
        let (status, body) = app.post(&format!("{path}/redeliver"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        receiver.wait_for(n, Duration::from_secs(10)).await;
        app.wait_status(id(&delivery), "delivered", Duration::from_secs(10))
            .await;
    }
    let (_, detail) = app.get(&path).await;
    let history = detail["attempt_history"].as_array().unwrap();
    assert_eq!(history.len(), 20, "{detail:#}");
    let shown: Vec<String> = history
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    let mut oldest_first = shown.clone();
    oldest_first.sort();
    assert_eq!(shown, oldest_first);
    let cursor = detail["older_attempts_cursor"].as_str().unwrap();
    let older = list(&app, &format!("delivery={}&cursor={cursor}", id(&delivery))).await;
    let older_ids = ids(&older);
    assert_eq!(older_ids.len(), 5, "{older}");
    assert!(older_ids.iter().all(|o| o < &shown[0]));
    assert!(older["next_cursor"].is_null());
    let all = list(&app, &format!("delivery={}", id(&delivery))).await;
    assert_eq!(ids(&all).len(), 25);
}
