//! Server-Sent Events: a stream's events in the webhook envelope with `id:` = seq,
//! resumed after `Last-Event-ID` with no gap and no repeat; `types=` and `level=`
//! filters; the org-wide stream with event ids; streams end when the server stops.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::app::TestApp;
use support::sse::SseClient;

const WAIT: Duration = Duration::from_secs(10);

async fn publish(app: &TestApp, stream: &str, n: usize) -> Vec<Value> {
    let mut published = Vec::new();
    for i in 0..n {
        published.push(
            app.publish(json!({"type": "turn.completed", "stream": stream, "data": {"i": i}}))
                .await,
        );
    }
    published
}

#[tokio::test]
async fn a_stream_resumes_after_last_event_id_with_no_gap_and_no_repeat() {
    let app = TestApp::spawn().await;
    let path = "/v1/streams/s/events/sse";
    let mut client = SseClient::connect(&app.base, &app.key, path, None).await;
    publish(&app, "other", 3).await;
    let first = publish(&app, "s", 10).await;
    let got = client.take(10, WAIT).await;
    for (n, (id, envelope)) in got.iter().enumerate() {
        assert_eq!(id, &(n + 1).to_string());
        assert_eq!(envelope["seq"], (n + 1) as i64);
        assert_eq!(envelope["id"], first[n]["id"]);
        assert_eq!(envelope["stream"], "s");
        assert_eq!(envelope["type"], "turn.completed");
        assert_eq!(envelope["data"]["i"], n as i64);
    }
    drop(client);

    publish(&app, "s", 10).await;
    let mut resumed = SseClient::connect(&app.base, &app.key, path, Some("10")).await;
    let ids: Vec<String> = resumed
        .take(10, WAIT)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let expected: Vec<String> = (11..=20).map(|n: i32| n.to_string()).collect();
    assert_eq!(ids, expected);
    assert!(
        resumed
            .more_within(Duration::from_millis(1500))
            .await
            .is_empty()
    );

    let mut from_query =
        SseClient::connect(&app.base, &app.key, &format!("{path}?after_seq=18"), None).await;
    let ids: Vec<String> = from_query
        .take(2, WAIT)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["19", "20"]);
}

#[tokio::test]
async fn types_and_level_filter_a_stream_and_bad_input_is_a_422() {
    let app = TestApp::spawn().await;
    let path = "/v1/streams/s/events/sse?types=run.*,turn.completed&level=progress";
    let mut client = SseClient::connect(&app.base, &app.key, path, None).await;
    for (event_type, level) in [
        ("run.failed", "user"),
        ("agent.message", "user"),
        ("turn.completed", "debug"),
        ("turn.completed", "progress"),
    ] {
        app.publish(json!({"type": event_type, "stream": "s", "level": level}))
            .await;
    }
    let got = client.take(2, WAIT).await;
    assert_eq!(got[0].0, "1");
    assert_eq!(got[0].1["type"], "run.failed");
    assert_eq!(got[1].0, "4");
    assert_eq!(got[1].1["level"], "progress");
    assert!(
        client
            .more_within(Duration::from_millis(1200))
            .await
            .is_empty()
    );

    for (path, field) in [
        ("/v1/streams/s/events/sse?types=a..b", "types"),
        ("/v1/streams/s/events/sse?level=loud", "level"),
        ("/v1/streams/s/events/sse?colour=blue", "colour"),
        ("/v1/events/sse?after=nope", "after"),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
    let response = reqwest::Client::new()
        .get(format!("{}/v1/streams/s/events/sse", app.base))
        .bearer_auth(&app.key)
        .header("last-event-id", "ten")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let anonymous = reqwest::get(format!("{}/v1/events/sse", app.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_org_stream_carries_every_stream_and_resumes_by_event_id() {
    let app = TestApp::spawn().await;
    let mut client = SseClient::connect(&app.base, &app.key, "/v1/events/sse", None).await;
    let a = publish(&app, "s1", 1).await.remove(0);
    let b = publish(&app, "s2", 1).await.remove(0);
    let got = client.take(2, WAIT).await;
    assert_eq!(got[0].0, a["id"].as_str().unwrap());
    assert_eq!(got[0].1["stream"], "s1");
    assert_eq!(got[1].0, b["id"].as_str().unwrap());
    assert_eq!(got[1].1["stream"], "s2");
    drop(client);

    let c = publish(&app, "s3", 1).await.remove(0);
    let mut resumed = SseClient::connect(
        &app.base,
        &app.key,
        "/v1/events/sse",
        Some(a["id"].as_str().unwrap()),
    )
    .await;
    let ids: Vec<String> = resumed
        .take(2, WAIT)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, [b["id"].as_str().unwrap(), c["id"].as_str().unwrap()]);
    assert!(
        resumed
            .more_within(Duration::from_millis(1500))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn streams_end_when_the_server_shuts_down() {
    let mut app = TestApp::spawn().await;
    let mut client =
        SseClient::connect(&app.base, &app.key, "/v1/streams/s/events/sse", None).await;
    publish(&app, "s", 1).await;
    assert_eq!(client.take(1, WAIT).await[0].0, "1");
    tokio::time::timeout(WAIT, app.stop())
        .await
        .expect("the server stopped with a stream open");
    assert!(client.next(WAIT).await.is_none(), "the stream ended");
}
