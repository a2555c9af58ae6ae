//! Publishing end to end: idempotency, stream numbering, and many publishes at once
//! (the PostgreSQL store commits publishes that arrive together in one transaction).

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::app::{TestApp, id};
use support::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn concurrent_publishes_with_one_id_all_answer_with_the_same_event() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.destination(&receiver.url, json!({})).await;
    for round in 0..5 {
        let body = json!({"type": "order.created", "id": format!("race-{round}"), "data": {}});
        let answers = publish_at_once(&app, &body).await;
        let created = answers.iter().filter(|(s, _)| *s == 202).count();
        assert_eq!(created, 1, "round {round}: {answers:?}");
        assert!(
            answers.iter().all(|(s, _)| *s == 200 || *s == 202),
            "{answers:?}"
        );
        let ids: std::collections::HashSet<&str> = answers.iter().map(|(_, b)| id(b)).collect();
        assert_eq!(ids.len(), 1, "one event: {answers:?}");
    }
}

/// Eight publishes of `body` at once: each answer's status and body.
async fn publish_at_once(app: &TestApp, body: &Value) -> Vec<(u16, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, url, key, body) = (
            reqwest::Client::new(),
            format!("{}/v1/events", app.base),
            app.key.clone(),
            body.clone(),
        );
        tasks.spawn(async move {
            let response = client.post(url).bearer_auth(key).json(&body).send().await;
            let response = response.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        });
    }
    tasks.join_all().await
}

#[tokio::test]
async fn publishing_with_the_same_id_is_idempotent() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let destination = app.destination(&receiver.url, json!({})).await;
    let first = app
        .publish(json!({"type": "a.b", "id": "order-42", "data": {}}))
        .await;
    let (s, again) = app
        .post(
            "/v1/events",
            json!({"type": "a.b", "id": "order-42", "data": {"ignored": 1}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["seq"], first["seq"]);
    assert_eq!(again["deliveries"], 1);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/events", app.base))
        .bearer_auth(&app.key)
        .header("idempotency-key", "order-42")
        .json(&json!({"type": "a.b", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let header_body: Value = response.json().await.unwrap();
    assert_eq!(header_body["id"], first["id"]);
    receiver.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(
        app.deliveries_of_destination(id(&destination)).await.len(),
        1
    );
}

#[tokio::test]
async fn streams_number_events_and_lists_page_with_cursors() {
    let app = TestApp::spawn().await;
    for stream in ["s1", "s1", "s2", "s1"] {
        app.publish(json!({"type": "a.b", "stream": stream, "data": {}}))
            .await;
    }
    assert_eq!(seqs_listed(&app, "/v1/events?stream=s1").await, [1, 2, 3]);
    let (_, after) = app.get("/v1/events?stream=s1&after_seq=1").await;
    assert_eq!(after["data"].as_array().unwrap().len(), 2);
    // The embedded store moves stream rows to their keyed table every 100 ms, on its
    // next write: a stream read then spans both of its tables.
    tokio::time::sleep(Duration::from_millis(250)).await;
    app.publish(json!({"type": "a.b", "stream": "s1", "data": {}}))
        .await;
    let after_2 = seqs_listed(&app, "/v1/events?stream=s1&after_seq=2").await;
    assert_eq!(after_2, [3, 4]);
    let (_, page1) = app.get("/v1/events?limit=3").await;
    assert_eq!(page1["data"].as_array().unwrap().len(), 3);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = app
        .get(&format!("/v1/events?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 2);
    assert!(page2["next_cursor"].is_null());
    let (_, one) = app
        .get(&format!("/v1/events/{}", id(&page2["data"][0])))
        .await;
    assert_eq!(one["stream"], "s1");
    assert_eq!(one["seq"], 3);
}

/// The `seq` of each event an events list answers with, in order.
async fn seqs_listed(app: &TestApp, path: &str) -> Vec<i64> {
    let (_, list) = app.get(path).await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn many_publishes_at_once_number_each_stream_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let destination = app.destination(&receiver.url, json!({})).await;
    // 240 publishes at once over 3 streams; every third repeats an idempotency key
    // of an earlier one, so some repeats land in the same commit as their first.
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..240 {
        let (client, url, key) = (
            reqwest::Client::new(),
            format!("{}/v1/events", app.base),
            app.key.clone(),
        );
        let body = json!({
            "type": "a.b",
            "stream": format!("s{}", n % 3),
            "id": format!("k{}", n % 160),
            "data": {"n": n},
        });
        tasks.spawn(async move {
            let response = client.post(url).bearer_auth(key).json(&body).send().await;
            let response = response.unwrap();
            let status = response.status().as_u16();
            (n, status, response.json::<Value>().await.unwrap())
        });
    }
    let answers = tasks.join_all().await;
    let created = answers.iter().filter(|(_, s, _)| *s == 202).count();
    assert_eq!(created, 160, "one event per key");
    let mut event_of_key: BTreeMap<u32, &str> = BTreeMap::new();
    for (n, status, body) in &answers {
        assert!(*status == 200 || *status == 202, "{n}: {status} {body}");
        let first = event_of_key.entry(n % 160).or_insert(id(body));
        assert_eq!(*first, id(body), "publish {n} answered with another event");
    }
    for stream in ["s0", "s1", "s2"] {
        let seqs = all_seqs(&app, stream).await;
        let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(seqs, expected, "stream {stream}");
    }
    receiver.wait_for(160, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivered: HashSet<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(delivered.len(), 160);
    assert_eq!(receiver.received().len(), 160, "each event delivered once");
    assert_eq!(
        app.deliveries_of_destination(id(&destination)).await.len(),
        160
    );
}

/// Every `seq` of a stream, in order, across pages.
async fn all_seqs(app: &TestApp, stream: &str) -> Vec<i64> {
    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        let page = seqs_listed(
            app,
            &format!("/v1/events?stream={stream}&after_seq={after}&limit=100"),
        )
        .await;
        let Some(last) = page.last() else { return seqs };
        after = *last;
        seqs.extend(page);
    }
}
