//! Bad input gets a clear 4xx in the documented error shape: never a 500, never a panic.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::app::TestApp;
use support::receiver::Receiver;

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn requests_without_a_valid_key_are_401() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{}/v1/events", app.base))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = app
        .request_as("hk_not_a_key", Method::GET, "/v1/events", None)
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let response = client
        .get(format!("{}/v1/events", app.base))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_4xx() {
    let app = TestApp::spawn().await;
    let (s, b) = app
        .post_raw("/v1/events", "application/json", b"{not json".to_vec())
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_json");
    let (s, b) = app
        .post_raw("/v1/events", "text/plain", b"{}".to_vec())
        .await;
    assert_error(
        s,
        &b,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    // Each shape error names its field in our words, never the framework's.
    for (body, field, says) in [
        (
            json!({"type": 5, "data": {}}),
            "type",
            "must be a string, not integer `5`",
        ),
        (json!({"data": {}}), "type", "type is required"),
        (
            json!({"type": "a.b", "data": {}, "colour": 1}),
            "colour",
            "colour is not a field of this request; the fields are type, stream",
        ),
    ] {
        let (s, b) = app.post("/v1/events", body.clone()).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(b["error"]["field"], field, "{body}");
        let message = b["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
        assert!(
            !message.contains("deserialize") && !message.contains("line 1"),
            "{message}"
        );
    }
    let (s, b) = app.post("/v1/events", json!([1, 2])).await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    // `data` may be left out: it is `{}`.
    let (s, b) = app.post("/v1/events", json!({"type": "a.b"})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let (_, event) = app
        .get(&format!("/v1/events/{}", b["id"].as_str().unwrap()))
        .await;
    assert_eq!(event["data"], json!({}));
}

#[tokio::test]
async fn requests_whose_fields_are_all_optional_take_an_empty_body_or_none() {
    let app = TestApp::spawn().await;
    let receiver = support::receiver::Receiver::start().await;
    let destination = app.destination(&receiver.url, json!({})).await;
    let id = destination["id"].as_str().unwrap();
    let client = reqwest::Client::new();
    for path in [
        format!("/v1/destinations/{id}/test"),
        format!("/v1/destinations/{id}/rotate-secret"),
        "/v1/org/signing-secret/rotate".to_owned(),
    ] {
        let response = client
            .post(format!("{}{path}", app.base))
            .bearer_auth(&app.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path} with no body");
        let (s, b) = app.post_raw(&path, "application/json", Vec::new()).await;
        assert_eq!(s, StatusCode::OK, "{path} with an empty body: {b}");
    }
}

#[tokio::test]
async fn invalid_fields_name_the_field() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({"type": "bad type", "data": {}}), "type"),
        (
            json!({"type": "a.b", "stream": "no spaces", "data": {}}),
            "stream",
        ),
        (
            json!({"type": "a.b", "stream": "hookline", "data": {}}),
            "stream",
        ),
        (json!({"type": "a.b", "level": "loud", "data": {}}), "level"),
        (json!({"type": "a.b", "id": "", "data": {}}), "id"),
    ] {
        let (s, b) = app.post("/v1/events", body.clone()).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(b["error"]["field"], field, "{body}");
    }
    for (body, field) in [
        (json!({}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"url": "ftp://example.com"}), "url"),
        (
            json!({"url": "https://x.example", "types": "run.*"}),
            "types",
        ),
        (
            json!({"url": "https://x.example", "filter": {"a": {"$regex": "."}}}),
            "filter",
        ),
        (
            json!({"url": "https://x.example", "headers": {"Webhook-Id": "x"}}),
            "headers",
        ),
        (
            json!({"url": "https://x.example", "timeout_secs": 0}),
            "timeout_secs",
        ),
        (
            json!({"url": "https://x.example", "retry_schedule_secs": vec![1; 21]}),
            "retry_schedule_secs",
        ),
        (
            json!({"url": "https://x.example", "secret": "whsec_short"}),
            "secret",
        ),
        (
            json!({"url": "https://x.example", "rate_limit_per_sec": 0}),
            "rate_limit_per_sec",
        ),
        (
            json!({"url": "https://x.example", "backfill_from_seq": 5}),
            "backfill_from_seq",
        ),
        (
            json!({"url": "https://x.example", "nonsense": 1}),
            "nonsense",
        ),
    ] {
        let (s, b) = app.post("/v1/destinations", body.clone()).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(b["error"]["field"], field, "{body}");
    }
    let (s, b) = app.get("/v1/deliveries?status=done").await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(b["error"]["field"], "status");
    let (s, b) = app.get("/v1/deliveries?limit=201").await;
    assert_eq!(b["error"]["field"], "limit", "{s} {b}");
    let (s, b) = app.get("/v1/events?after_seq=x").await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
}

#[tokio::test]
async fn without_dev_only_public_https_destinations_are_accepted() {
    let app = TestApp::spawn_with(false, false).await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://2130706433/",
        "https://10.0.0.5/",
        "https://[::1]/",
        "https://169.254.169.254/",
        "https://localhost/",
    ] {
        let (s, b) = app.post("/v1/destinations", json!({"url": url})).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(b["error"]["field"], "url", "{url}");
    }
    let (s, b) = app
        .post(
            "/v1/destinations",
            json!({"url": "https://hooks.example.com/x"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413() {
    let app = TestApp::spawn().await;
    let big = "x".repeat(1024 * 1024 + 1);
    let body = serde_json::to_vec(&json!({"type": "a.b", "data": {"blob": big}})).unwrap();
    let (s, b) = app.post_raw("/v1/events", "application/json", body).await;
    assert_error(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let fits = "x".repeat(1000 * 1000);
    app.publish(json!({"type": "a.b", "data": {"blob": fits}}))
        .await;
}

#[tokio::test]
async fn unknown_ids_routes_and_methods_are_404_or_405() {
    let app = TestApp::spawn().await;
    for path in [
        "/v1/events/evt_01M8FTH6NJ1DG6Y1TK4N0DTA20",
        "/v1/events/garbage",
        "/v1/destinations/dst_01M8FTH6NJ1DG6Y1TK4N0DTA20",
        "/v1/deliveries/dlv_01M8FTH6NJ1DG6Y1TK4N0DTA20",
        "/v1/deliveries/evt_01M8FTH6NJ1DG6Y1TK4N0DTA20",
        "/v1/nothing-here",
    ] {
        let (s, b) = app.get(path).await;
        assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    }
    let (s, b) = app.delete("/v1/events").await;
    assert_error(s, &b, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn another_orgs_objects_answer_404() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let destination = app.destination(&receiver.url, json!({})).await;
    let event = app.publish(json!({"type": "a.b", "data": {}})).await;
    receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await;
    let delivery = app.only_delivery(destination["id"].as_str().unwrap()).await;

    let other = app.other_org_key().await;
    for path in [
        format!("/v1/events/{}", event["id"].as_str().unwrap()),
        format!("/v1/destinations/{}", destination["id"].as_str().unwrap()),
        format!("/v1/deliveries/{}", delivery["id"].as_str().unwrap()),
    ] {
        let (s, b) = app.request_as(&other, Method::GET, &path, None).await;
        assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    }
    let (s, b) = app
        .request_as(
            &other,
            Method::PATCH,
            &format!("/v1/destinations/{}", destination["id"].as_str().unwrap()),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = app
        .request_as(
            &other,
            Method::POST,
            &format!(
                "/v1/deliveries/{}/redeliver",
                delivery["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (_, list) = app
        .request_as(&other, Method::GET, "/v1/events", None)
        .await;
    assert_eq!(list["data"], json!([]));
    let (_, list) = app
        .request_as(&other, Method::GET, "/v1/deliveries", None)
        .await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn health_and_readiness_answer_without_auth() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    for path in ["/healthz", "/readyz"] {
        let r = client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn an_unknown_query_parameter_is_named_not_ignored() {
    let app = TestApp::spawn().await;
    for (path, name, known) in [
        ("/v1/events?strem=s1", "strem", "stream"),
        (
            "/v1/deliveries?destinaton=dst_x&limit=5",
            "destinaton",
            "destination",
        ),
        ("/v1/destinations?cursor_=x", "cursor_", "cursor"),
    ] {
        let (s, b) = app.get(path).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(b["error"]["field"], name, "{path}");
        let message = b["error"]["message"].as_str().unwrap();
        assert!(message.contains(known), "{message}");
    }
    let (s, b) = app.get("/v1/events?stream=s1&limit=5").await;
    assert_eq!(s, StatusCode::OK, "{b}");
}
