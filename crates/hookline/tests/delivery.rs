//! Delivery behaviour end to end: the real server, a real receiver, real HTTP.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::app::{TestApp, id};
use support::receiver::{Receiver, Reply};
use support::verify::signed_by;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_delivery_is_signed_and_shaped_as_documented() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.fallback(Reply::ok().body("thanks"));
    let destination = app
        .destination(&receiver.url, json!({"headers": {"X-Team": "core"}}))
        .await;
    let secret = destination["secret"].as_str().unwrap();
    let event = app
        .publish(json!({"type": "turn.completed", "stream": "sess_1", "data": {"tokens": 12}}))
        .await;
    assert_eq!(event["seq"], 1);
    assert_eq!(event["deliveries"], 1);

    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.header("webhook-id"), id(&event));
    assert_eq!(request.header("content-type"), "application/json");
    assert!(request.header("user-agent").starts_with("Hookline/"));
    assert_eq!(request.header("hookline-stream"), "sess_1");
    assert_eq!(request.header("hookline-event-type"), "turn.completed");
    assert_eq!(request.header("x-team"), "core");
    let timestamp: i64 = request.header("webhook-timestamp").parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - timestamp).abs() < 60,
        "timestamp {timestamp} vs now {now}"
    );
    assert!(signed_by(secret, &request));
    let wrong = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert!(!signed_by(wrong, &request));
    let body = request.json();
    assert_eq!(body["id"], event["id"]);
    assert_eq!(body["type"], "turn.completed");
    assert_eq!(body["stream"], "sess_1");
    assert_eq!(body["seq"], 1);
    assert_eq!(body["level"], "user");
    assert_eq!(body["data"], json!({"tokens": 12}));
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));

    let delivery_id = request.header("hookline-delivery-id").to_owned();
    let delivery = app.wait_status(&delivery_id, "delivered", WAIT).await;
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["response_code"], 200);
    assert_eq!(delivery["event_id"], event["id"]);
    assert_eq!(delivery["destination"], destination["id"]);
    let attempt = &delivery["attempt_history"][0];
    assert_eq!(attempt["response_status"], 200);
    assert_eq!(attempt["response_body"], "thanks");
    assert_eq!(attempt["response_truncated"], false);
    // The recorded request shows every header Hookline set, as the receiver got it.
    let recorded = attempt["request_headers"].as_object().unwrap();
    let mut names: Vec<&str> = recorded.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "content-type",
            "hookline-delivery-id",
            "hookline-event-type",
            "hookline-stream",
            "user-agent",
            "webhook-id",
            "webhook-signature",
            "webhook-timestamp",
            "x-team",
        ]
    );
    for (name, value) in recorded {
        assert_eq!(value.as_str().unwrap(), request.header(name), "{name}");
    }
    assert_eq!(
        attempt["request_body"].as_str().unwrap().as_bytes(),
        &request.body[..]
    );
    assert!(attempt["error_kind"].is_null());

    let (_, shown) = app
        .get(&format!("/v1/destinations/{}", id(&destination)))
        .await;
    assert!(shown["last_success_at"].is_string(), "{shown}");
    assert_eq!(shown["consecutive_failures"], 0);
}

#[tokio::test]
async fn secrets_are_shown_once_and_never_in_reads() {
    let app = TestApp::spawn().await;
    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let created = app
        .destination("https://hooks.example.com/a", json!({"secret": given}))
        .await;
    assert_eq!(created["secret"], given);
    assert_eq!(created["secret_hint"], "LaSw");
    let (_, one) = app.get(&format!("/v1/destinations/{}", id(&created))).await;
    let (_, all) = app.get("/v1/destinations").await;
    let (_, patched) = app
        .patch(
            &format!("/v1/destinations/{}", id(&created)),
            json!({"name": "n"}),
        )
        .await;
    for shown in [one, all, patched] {
        let text = shown.to_string();
        assert!(!text.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{text}");
        assert!(text.contains("LaSw"));
    }
    let (s, b) = app
        .patch(
            &format!("/v1/destinations/{}", id(&created)),
            json!({"secret": given}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
}

#[tokio::test]
async fn types_level_filter_and_stream_scope_choose_the_destinations() {
    let app = TestApp::spawn().await;
    let runs = Receiver::start().await;
    let chatty = Receiver::start().await;
    let costly = Receiver::start().await;
    let session = Receiver::start().await;
    app.destination(&runs.url, json!({"types": ["run.*"]}))
        .await;
    app.destination(&chatty.url, json!({"level": "progress"}))
        .await;
    app.destination(
        &costly.url,
        json!({"filter": {"data.cost": {"$gt": 1}, "type": {"$in": ["run.failed", "turn.completed"]}}}),
    )
    .await;
    let (s, scoped) = app
        .post(
            "/v1/streams/sess_9/destinations",
            json!({"url": session.url, "retry_schedule_secs": [0]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{scoped}");
    assert_eq!(scoped["stream"], "sess_9");

    let publish = |t: &str, stream: &str, level: &str, cost: i64| json!({"type": t, "stream": stream, "level": level, "data": {"cost": cost}});
    let counts = [
        app.publish(publish("run.failed", "sess_1", "user", 5))
            .await,
        app.publish(publish("run.started", "sess_1", "progress", 0))
            .await,
        app.publish(publish("turn.completed", "sess_9", "user", 0))
            .await,
        app.publish(publish("agent.message", "sess_9", "debug", 9))
            .await,
    ]
    .map(|p| p["deliveries"].as_i64().unwrap());
    // run.failed: runs, chatty, costly. run.started (progress): runs? no (level user), chatty.
    // turn.completed in sess_9: chatty, session. agent.message (debug): nobody.
    assert_eq!(counts, [3, 1, 2, 0]);

    let types = |r: &Receiver| {
        let mut t: Vec<String> = r
            .received()
            .iter()
            .map(|q| q.json()["type"].as_str().unwrap().to_owned())
            .collect();
        t.sort();
        t
    };
    runs.wait_for(1, WAIT).await;
    chatty.wait_for(3, WAIT).await;
    costly.wait_for(1, WAIT).await;
    session.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(types(&runs), ["run.failed"]);
    assert_eq!(
        types(&chatty),
        ["run.failed", "run.started", "turn.completed"]
    );
    assert_eq!(types(&costly), ["run.failed"]);
    assert_eq!(types(&session), ["turn.completed"]);
}

#[tokio::test]
async fn raw_is_stripped_unless_the_destination_asks_for_it() {
    let app = TestApp::spawn().await;
    let plain = Receiver::start().await;
    let full = Receiver::start().await;
    app.destination(&plain.url, json!({})).await;
    app.destination(&full.url, json!({"include_raw": true}))
        .await;
    app.publish(json!({"type": "a.b", "data": {"x": 1}, "raw": {"bulky": "yes"}}))
        .await;
    let plain_request = plain.wait_for(1, WAIT).await.remove(0);
    let full_request = full.wait_for(1, WAIT).await.remove(0);
    let (plain_body, full_body) = (plain_request.json(), full_request.json());
    assert!(plain_body.get("raw").is_none(), "{plain_body}");
    assert_eq!(full_body["raw"], json!({"bulky": "yes"}));
    // Each recorded attempt shows the very bytes its receiver got.
    for request in [plain_request, full_request] {
        let delivery_id = request.header("hookline-delivery-id").to_owned();
        let delivery = app.wait_status(&delivery_id, "delivered", WAIT).await;
        let recorded = &delivery["attempt_history"][0]["request_body"];
        assert_eq!(recorded.as_str().unwrap().as_bytes(), &request.body[..]);
    }
}

#[tokio::test]
async fn a_paused_destination_keeps_deliveries_waiting_until_resumed() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let destination = app
        .destination(&receiver.url, json!({"enabled": false}))
        .await;
    assert_eq!(destination["enabled"], false);
    for n in 0..3 {
        app.publish(json!({"type": "a.b", "data": {"n": n}})).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.received().len(), 0);
    let waiting = app.deliveries_of_destination(id(&destination)).await;
    assert_eq!(waiting.len(), 3);
    assert!(
        waiting.iter().all(|d| d["status"] == "pending"),
        "{waiting:#?}"
    );

    let (s, resumed) = app
        .patch(
            &format!("/v1/destinations/{}", id(&destination)),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["enabled"], true);
    receiver.wait_for(3, WAIT).await;
    for d in app.deliveries_of_destination(id(&destination)).await {
        app.wait_status(id(&d), "delivered", WAIT).await;
    }
}

#[tokio::test]
async fn deleting_a_destination_cancels_what_it_had_not_sent() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let destination = app
        .destination(&receiver.url, json!({"enabled": false}))
        .await;
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let delivery = app.only_delivery(id(&destination)).await;
    let (s, _) = app
        .delete(&format!("/v1/destinations/{}", id(&destination)))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let canceled = app.wait_status(id(&delivery), "canceled", WAIT).await;
    assert!(canceled["next_attempt_at"].is_null());
    let (s, _) = app
        .get(&format!("/v1/destinations/{}", id(&destination)))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = app
        .post(
            &format!("/v1/deliveries/{}/redeliver", id(&delivery)),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let after = app.publish(json!({"type": "a.b", "data": {}})).await;
    assert_eq!(after["deliveries"], 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn server_errors_are_retried_until_success_with_the_same_webhook_id() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500), Reply::status(503)]);
    let destination = app.destination(&receiver.url, json!({})).await;
    let event = app.publish(json!({"type": "a.b", "data": {}})).await;
    let requests = receiver.wait_for(3, WAIT).await;
    assert!(
        requests
            .iter()
            .all(|r| r.header("webhook-id") == id(&event))
    );
    let delivery = app.only_delivery(id(&destination)).await;
    let delivered = app.wait_status(id(&delivery), "delivered", WAIT).await;
    assert_eq!(delivered["attempts"], 3);
    let statuses: Vec<Value> = delivered["attempt_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["response_status"].clone())
        .collect();
    assert_eq!(statuses, [json!(500), json!(503), json!(200)]);
    assert_eq!(delivered["attempt_history"][0]["error_kind"], "http_status");
}

#[tokio::test]
async fn the_last_failed_attempt_dead_letters_the_delivery() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.fallback(Reply::status(500));
    let destination = app.destination(&receiver.url, json!({})).await;
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let delivery = app.only_delivery(id(&destination)).await;
    let dead = app.wait_status(id(&delivery), "dead_letter", WAIT).await;
    assert_eq!(dead["attempts"], 3, "schedule [0, 0] means three attempts");
    assert_eq!(dead["response_code"], 500);
    assert_eq!(dead["error"], "HTTP 500");
    assert_eq!(receiver.received().len(), 3);
    let (_, shown) = app
        .get(&format!("/v1/destinations/{}", id(&destination)))
        .await;
    assert_eq!(shown["consecutive_failures"], 3);
    let (_, listed) = app.get("/v1/deliveries?status=dead_letter").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn client_errors_are_final_unless_retry_on_4xx_but_408_and_429_retry() {
    let app = TestApp::spawn().await;
    let strict = Receiver::start().await;
    strict.fallback(Reply::status(400));
    let lenient = Receiver::start().await;
    lenient.script([Reply::status(404)]);
    let throttled = Receiver::start().await;
    throttled.script([Reply::status(408), Reply::status(429)]);
    let d_strict = app.destination(&strict.url, json!({})).await;
    let d_lenient = app
        .destination(&lenient.url, json!({"retry_on_4xx": true}))
        .await;
    let d_throttled = app.destination(&throttled.url, json!({})).await;
    app.publish(json!({"type": "a.b", "data": {}})).await;

    let strict_delivery = app.only_delivery(id(&d_strict)).await;
    let dead = app
        .wait_status(id(&strict_delivery), "dead_letter", WAIT)
        .await;
    assert_eq!(dead["attempts"], 1);
    let lenient_delivery = app.only_delivery(id(&d_lenient)).await;
    let ok = app
        .wait_status(id(&lenient_delivery), "delivered", WAIT)
        .await;
    assert_eq!(ok["attempts"], 2);
    let throttled_delivery = app.only_delivery(id(&d_throttled)).await;
    let ok = app
        .wait_status(id(&throttled_delivery), "delivered", WAIT)
        .await;
    assert_eq!(ok["attempts"], 3);
    assert_eq!(strict.received().len(), 1);
}

#[tokio::test]
async fn gone_dead_letters_and_disables_the_destination() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.fallback(Reply::status(410));
    let destination = app
        .destination(&receiver.url, json!({"retry_on_4xx": true}))
        .await;
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let delivery = app.only_delivery(id(&destination)).await;
    let dead = app.wait_status(id(&delivery), "dead_letter", WAIT).await;
    assert_eq!(dead["attempts"], 1);
    let (_, shown) = app
        .get(&format!("/v1/destinations/{}", id(&destination)))
        .await;
    assert_eq!(shown["enabled"], false);
    assert_eq!(shown["disabled_reason"], "gone");

    app.publish(json!({"type": "a.b", "data": {"second": true}}))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "a disabled destination is not sent to"
    );
    let (_, resumed) = app
        .patch(
            &format!("/v1/destinations/{}", id(&destination)),
            json!({"enabled": true}),
        )
        .await;
    assert!(resumed["disabled_reason"].is_null(), "{resumed}");
    receiver.wait_for(2, WAIT).await;
}

#[tokio::test]
async fn retry_after_on_429_sets_the_next_attempt() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(429).header("retry-after", "1")]);
    let destination = app
        .destination(&receiver.url, json!({"retry_schedule_secs": [3600]}))
        .await;
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let first = receiver.wait_for(1, WAIT).await;
    let delivery = app.only_delivery(id(&destination)).await;
    let failed = app.wait_status(id(&delivery), "failed", WAIT).await;
    let next =
        chrono::DateTime::parse_from_rfc3339(failed["next_attempt_at"].as_str().unwrap()).unwrap();
    let last =
        chrono::DateTime::parse_from_rfc3339(failed["last_attempt_at"].as_str().unwrap()).unwrap();
    let gap = (next - last).num_milliseconds();
    assert!(
        (900..5_000).contains(&gap),
        "next attempt {gap} ms after the 429, not an hour"
    );
    let both = receiver.wait_for(2, WAIT).await;
    assert!(both[1].at.duration_since(first[0].at) >= Duration::from_millis(900));
    app.wait_status(id(&delivery), "delivered", WAIT).await;
}

#[tokio::test]
async fn redeliver_sends_any_delivery_again() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let destination = app.destination(&receiver.url, json!({})).await;
    let event = app.publish(json!({"type": "a.b", "data": {}})).await;
    receiver.wait_for(1, WAIT).await;
    let delivery = app.only_delivery(id(&destination)).await;
    app.wait_status(id(&delivery), "delivered", WAIT).await;
    let (s, queued) = app
        .post(
            &format!("/v1/deliveries/{}/redeliver", id(&delivery)),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{queued}");
    let both = receiver.wait_for(2, WAIT).await;
    assert_eq!(both[1].header("webhook-id"), id(&event));
    let mut again = app.wait_status(id(&delivery), "delivered", WAIT).await;
    while again["attempts"] != 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        again = app
            .get(&format!("/v1/deliveries/{}", id(&delivery)))
            .await
            .1;
    }
    assert_eq!(again["attempt_history"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn max_in_flight_bounds_concurrent_requests_to_a_destination() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.fallback(Reply::ok().delay(Duration::from_millis(150)));
    app.destination(&receiver.url, json!({"max_in_flight": 2}))
        .await;
    for n in 0..8 {
        app.publish(json!({"type": "a.b", "data": {"n": n}})).await;
    }
    receiver.wait_for(8, WAIT).await;
    assert_eq!(receiver.max_concurrent(), 2);
}

#[tokio::test]
async fn network_failures_are_recorded_with_their_kind() {
    let app = TestApp::spawn().await;
    let slow = Receiver::start().await;
    slow.fallback(Reply::ok().delay(Duration::from_secs(5)));
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    let d_slow = app
        .destination(
            &slow.url,
            json!({"timeout_secs": 1, "retry_schedule_secs": []}),
        )
        .await;
    let d_closed = app
        .destination(&closed, json!({"retry_schedule_secs": []}))
        .await;
    app.publish(json!({"type": "a.b", "data": {}})).await;
    for (destination, kind) in [(&d_slow, "timeout"), (&d_closed, "connect")] {
        let delivery = app.only_delivery(id(destination)).await;
        let dead = app.wait_status(id(&delivery), "dead_letter", WAIT).await;
        let attempt = &dead["attempt_history"][0];
        assert_eq!(attempt["error_kind"], kind, "{dead:#}");
        assert!(attempt["response_status"].is_null());
        assert!(dead["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
}

#[tokio::test]
async fn response_bodies_are_captured_up_to_64_kib() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.fallback(Reply::ok().body("y".repeat(100 * 1024)));
    let destination = app.destination(&receiver.url, json!({})).await;
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let delivery = app.only_delivery(id(&destination)).await;
    let done = app.wait_status(id(&delivery), "delivered", WAIT).await;
    let attempt = &done["attempt_history"][0];
    assert_eq!(attempt["response_truncated"], true);
    assert_eq!(attempt["response_body"].as_str().unwrap().len(), 64 * 1024);
}

#[tokio::test]
async fn shutdown_lets_attempts_in_flight_finish() {
    let mut app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.fallback(Reply::ok().delay(Duration::from_millis(400)));
    let destination = app.destination(&receiver.url, json!({})).await;
    app.publish(json!({"type": "a.b", "data": {}})).await;
    receiver.wait_for(1, WAIT).await;
    let delivery = app.only_delivery(id(&destination)).await;
    app.stop().await;
    // Read the store directly: the server is gone.
    let store = hookline::startup::open_admin_store(&app.config.store)
        .await
        .unwrap();
    let delivery_id = hookline_core::ids::DeliveryId::parse(id(&delivery)).unwrap();
    let stored = store.get_delivery(&app.org_id, &delivery_id).await.unwrap();
    assert_eq!(stored.unwrap().state.as_str(), "delivered");
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn an_ordered_destination_holds_a_stream_behind_its_failing_head() {
    let (app, receiver, destination) = failing_twice_then_ok(json!({"ordered": true})).await;
    assert_eq!(destination["ordered"], true);
    publish_to_two_streams(&app).await;
    assert_stream_went_out_in_order(&app, &receiver, id(&destination)).await;
}

#[tokio::test]
async fn a_destination_made_ordered_orders_what_it_already_had_queued() {
    let (app, receiver, destination) = failing_twice_then_ok(json!({"enabled": false})).await;
    publish_to_two_streams(&app).await;
    let path = format!("/v1/destinations/{}", id(&destination));
    let (status, patched) = app
        .patch(&path, json!({"ordered": true, "enabled": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_stream_went_out_in_order(&app, &receiver, id(&destination)).await;
}

/// A destination (with `extra` settings and quick retries) whose receiver answers 500
/// twice, then 200.
async fn failing_twice_then_ok(extra: Value) -> (TestApp, Receiver, Value) {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500), Reply::status(500)]);
    let mut settings = json!({"retry_schedule_secs": [0, 1, 1]});
    settings
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let destination = app.destination(&receiver.url, settings).await;
    (app, receiver, destination)
}

/// Seq 1–4 on stream `s`, then one event on stream `other`.
async fn publish_to_two_streams(app: &TestApp) {
    for n in 1..=4 {
        app.publish(json!({"type": "a.b", "stream": "s", "data": {"n": n}}))
            .await;
    }
    app.publish(json!({"type": "a.b", "stream": "other", "data": {}}))
        .await;
}

async fn assert_stream_went_out_in_order(app: &TestApp, receiver: &Receiver, destination: &str) {
    for delivery in app.deliveries_of_destination(destination).await {
        app.wait_status(id(&delivery), "delivered", WAIT).await;
    }
    let requests = receiver.received();
    let in_s: Vec<i64> = requests
        .iter()
        .map(|r| r.json())
        .filter(|body| body["stream"] == "s")
        .map(|body| body["seq"].as_i64().unwrap())
        .collect();
    // The receiver's first two answers are 500s; the other stream may take one of them.
    // Either way seq 1 fails at least once, and nothing behind it goes out before it is
    // delivered: the stream's requests never go backwards and every seq comes once
    // the head is through.
    assert!(in_s.windows(2).all(|w| w[0] <= w[1]), "{in_s:?}");
    let mut distinct = in_s.clone();
    distinct.dedup();
    assert_eq!(distinct, [1, 2, 3, 4]);
    assert!(in_s.iter().filter(|s| **s == 1).count() >= 2, "{in_s:?}");
    let other = requests.iter().position(|r| r.json()["stream"] == "other");
    assert!(
        other.is_some_and(|i| i < 3),
        "another stream is not held by this one's failing head"
    );
}

#[tokio::test]
async fn a_data_body_sends_the_events_data_alone_signed_over_the_bytes_sent() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let destination = app
        .destination(&receiver.url, json!({"secret": secret, "body": "data"}))
        .await;
    assert_eq!(destination["body"], "data");
    let data = json!({"event": "run.completed", "run_id": "r_1", "cost": 1.5});
    app.publish(json!({"type": "run.completed", "stream": "s", "data": data}))
        .await;
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(
        serde_json::from_slice::<Value>(&request.body).unwrap(),
        data
    );
    assert!(signed_by(secret, &request));
    assert_eq!(request.header("content-type"), "application/json");

    let delivery = app.only_delivery(id(&destination)).await;
    let done = app.wait_status(id(&delivery), "delivered", WAIT).await;
    let attempt = &done["attempt_history"][0];
    assert_eq!(
        attempt["request_body"].as_str().unwrap().as_bytes(),
        &request.body[..],
        "the inspector shows the bytes sent"
    );
    let path = format!("/v1/destinations/{}", id(&destination));
    let (status, patched) = app.patch(&path, json!({"body": null})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["body"], "envelope");
    let (status, refused) = app.patch(&path, json!({"body": "raw"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
}
