//! Outbound safety and isolation end to end (DESIGN.md §4): the SSRF guard at connect
//! time, TLS, receivers that misbehave, throttles, and auto-disable.

mod support;

use std::time::Duration;

use hookline_core::clock::parse_rfc3339;
use serde_json::{Value, json};
use support::app::{TestApp, id};
use support::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(10);

/// A name other than `localhost` that /etc/hosts maps to a loopback address (Debian
/// always maps the machine's own hostname so).
fn loopback_name() -> String {
    std::fs::read_to_string("/etc/hosts")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("127."))
        .flat_map(|l| l.split_whitespace().skip(1))
        .find(|name| !name.contains("localhost"))
        .expect("/etc/hosts maps some name besides localhost to 127.x")
        .to_owned()
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_at_connect_time() {
    // http allowed, private networks not: the URL passes the create-time check (a
    // plain name), and the guard must catch the address when it connects.
    let app = TestApp::spawn_with(false, true).await;
    let receiver = Receiver::start().await;
    let port = receiver.url.rsplit(':').next().unwrap();
    let url = format!("http://{}:{port}", loopback_name());
    let destination = app
        .destination(&url, json!({"retry_schedule_secs": []}))
        .await;
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let delivery = app.only_delivery(id(&destination)).await;
    let dead = app.wait_status(id(&delivery), "dead_letter", WAIT).await;
    let attempt = &dead["attempt_history"][0];
    assert_eq!(attempt["error_kind"], "blocked_address", "{dead:#}");
    assert!(
        attempt["error"].as_str().unwrap().contains("127."),
        "the refusal names the address: {attempt}"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the loopback receiver"
    );
}

/// A bare TCP receiver that answers every request with `head` and then `body_chunk`
/// every `every`, forever: for receivers that dribble or never stop.
async fn raw_receiver(head: &'static str, body_chunk: Vec<u8>, every: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let body_chunk = body_chunk.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 8192];
                let _ = socket.read(&mut request).await;
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    if socket.write_all(&body_chunk).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(every).await;
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn a_receiver_that_dribbles_its_answer_is_cut_off_at_the_timeout() {
    let app = TestApp::spawn().await;
    let url = raw_receiver(
        "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n",
        b"x".to_vec(),
        Duration::from_millis(500),
    )
    .await;
    let destination = app
        .destination(&url, json!({"timeout_secs": 1, "retry_schedule_secs": []}))
        .await;
    let started = std::time::Instant::now();
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let delivery = app.only_delivery(id(&destination)).await;
    let dead = app.wait_status(id(&delivery), "dead_letter", WAIT).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "held past its timeout"
    );
    assert_eq!(
        dead["attempt_history"][0]["error_kind"], "timeout",
        "{dead:#}"
    );
}

#[tokio::test]
async fn an_endless_body_is_read_up_to_the_cap_and_abandoned() {
    let app = TestApp::spawn().await;
    let url = raw_receiver(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        // One HTTP/1.1 chunk of 0x400 bytes, sent again and again.
        format!("400\r\n{}\r\n", "y".repeat(1024)).into_bytes(),
        Duration::from_millis(1),
    )
    .await;
    let destination = app
        .destination(&url, json!({"timeout_secs": 5, "retry_schedule_secs": []}))
        .await;
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let delivery = app.only_delivery(id(&destination)).await;
    let done = app.wait_status(id(&delivery), "delivered", WAIT).await;
    let attempt = &done["attempt_history"][0];
    assert_eq!(attempt["response_truncated"], true);
    assert_eq!(attempt["response_body"].as_str().unwrap().len(), 64 * 1024);
    assert!(
        attempt["latency_ms"].as_i64().unwrap() < 5_000,
        "not held to the timeout"
    );
}

#[tokio::test]
async fn redirects_are_recorded_and_never_followed() {
    let app = TestApp::spawn().await;
    let target = Receiver::start().await;
    let redirector = Receiver::start().await;
    redirector.fallback(Reply::status(302).header("location", &target.url));
    let destination = app
        .destination(&redirector.url, json!({"retry_schedule_secs": []}))
        .await;
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let delivery = app.only_delivery(id(&destination)).await;
    let failed = app.wait_status(id(&delivery), "dead_letter", WAIT).await;
    let attempt = &failed["attempt_history"][0];
    assert_eq!(attempt["response_status"], 302);
    assert_eq!(attempt["response_headers"]["location"], target.url.as_str());
    assert_eq!(redirector.received().len(), 1);
    assert!(
        target.received().is_empty(),
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn a_destination_that_only_fails_is_disabled_and_the_org_is_told() {
    let app = TestApp::spawn_tuned(true, false, |config| {
        config.auto_disable_after_secs = 0;
        config.auto_disable_min_failures = 3;
    })
    .await;
    let failing = Receiver::start().await;
    failing.fallback(Reply::status(500));
    let watcher = Receiver::start().await;
    // Three failures at once, then the next retry an hour away, and not subscribed to
    // the notice of its own disabling: re-enabling below cannot set off an attempt whose
    // failure would race the answer's count.
    let broken = app
        .destination(
            &failing.url,
            json!({"types": ["a.b"], "retry_schedule_secs": [0, 0, 3600, 0, 0]}),
        )
        .await;
    app.destination(&watcher.url, json!({"types": ["destination.*"]}))
        .await;
    app.publish(json!({"type": "a.b", "data": {}})).await;

    let notice = watcher.wait_for(1, WAIT).await.remove(0).json();
    assert_eq!(notice["type"], "destination.disabled");
    assert_eq!(notice["stream"], "hookline");
    assert_eq!(notice["data"]["destination_id"], broken["id"]);
    assert_eq!(notice["data"]["reason"], "failing");
    let (_, shown) = app.get(&format!("/v1/destinations/{}", id(&broken))).await;
    assert_eq!(shown["enabled"], false);
    assert_eq!(shown["disabled_reason"], "failing");
    assert_eq!(shown["consecutive_failures"], 3);
    assert_eq!(
        failing.received().len(),
        3,
        "disabled after the third failure"
    );

    let (_, resumed) = app
        .patch(
            &format!("/v1/destinations/{}", id(&broken)),
            json!({"enabled": true}),
        )
        .await;
    assert!(resumed["disabled_reason"].is_null());
    assert_eq!(
        resumed["consecutive_failures"], 0,
        "re-enabling resets the count"
    );
}

/// Creates a destination that must be refused; the 422's message.
async fn refusal(app: &TestApp, destination: Value) -> String {
    let (status, body) = app.post("/v1/destinations", destination).await;
    assert_eq!(status, 422, "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

/// Writes `pem` into the app's data directory and trusts it for destinations.
fn ca_file(dir: &std::path::Path, pem: &str) -> std::path::PathBuf {
    let path = dir.join("test-ca.pem");
    std::fs::write(&path, pem).unwrap();
    path
}

#[tokio::test]
async fn https_receivers_are_verified_against_the_configured_ca() {
    let (receiver, ca_pem) = Receiver::start_tls().await;
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ca_file(ca_dir.path(), &ca_pem);
    let trusting = TestApp::spawn_tuned(true, false, |c| c.tls_ca_file = Some(ca)).await;
    let destination = trusting
        .destination(&receiver.url, json!({"retry_schedule_secs": []}))
        .await;
    trusting.publish(json!({"type": "a.b", "data": {}})).await;
    let delivery = trusting.only_delivery(id(&destination)).await;
    trusting.wait_status(id(&delivery), "delivered", WAIT).await;
    assert_eq!(receiver.received().len(), 1);

    // A server that does not trust the CA refuses the certificate.
    let untrusting = TestApp::spawn().await;
    let destination = untrusting
        .destination(&receiver.url, json!({"retry_schedule_secs": []}))
        .await;
    untrusting.publish(json!({"type": "a.b", "data": {}})).await;
    let delivery = untrusting.only_delivery(id(&destination)).await;
    let dead = untrusting
        .wait_status(id(&delivery), "dead_letter", WAIT)
        .await;
    assert_eq!(dead["attempt_history"][0]["error_kind"], "tls", "{dead:#}");
    assert_eq!(
        receiver.received().len(),
        1,
        "no request without a handshake"
    );
}

#[tokio::test]
async fn tls_verify_false_needs_the_server_to_allow_it() {
    let (receiver, _) = Receiver::start_tls().await;
    let strict = TestApp::spawn().await;
    let (status, body) = strict
        .post(
            "/v1/destinations",
            json!({"url": receiver.url, "tls_verify": false}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "tls_verify");

    let lax = TestApp::spawn_tuned(true, false, |c| c.allow_tls_verify_off = true).await;
    let destination = lax
        .destination(&receiver.url, json!({"tls_verify": false}))
        .await;
    assert_eq!(destination["tls_verify"], false);
    lax.publish(json!({"type": "a.b", "data": {}})).await;
    let delivery = lax.only_delivery(id(&destination)).await;
    lax.wait_status(id(&delivery), "delivered", WAIT).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn denied_cidrs_win_even_in_dev_mode_at_create_and_at_connect() {
    let app = TestApp::spawn_tuned(true, false, |c| {
        c.denied_cidrs = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
    })
    .await;
    let receiver = Receiver::start().await;
    let refused = refusal(&app, json!({"url": receiver.url})).await;
    assert!(refused.contains("denied_cidrs"), "{refused}");

    // A name is not resolved at create time; the connection is refused instead.
    let port = receiver.url.rsplit(':').next().unwrap();
    let destination = app
        .destination(
            &format!("http://localhost:{port}"),
            json!({"retry_schedule_secs": []}),
        )
        .await;
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let delivery = app.only_delivery(id(&destination)).await;
    let dead = app.wait_status(id(&delivery), "dead_letter", WAIT).await;
    let attempt = &dead["attempt_history"][0];
    assert_eq!(attempt["error_kind"], "blocked_address", "{dead:#}");
    assert!(attempt["error"].as_str().unwrap().contains("denied_cidrs"));
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn allowed_cidrs_open_one_private_range_without_dev_mode() {
    let app = TestApp::spawn_tuned(false, true, |c| {
        c.allowed_cidrs = vec!["127.0.0.0/8".parse().unwrap()]
    })
    .await;
    let receiver = Receiver::start().await;
    let destination = app.destination(&receiver.url, json!({})).await;
    app.publish(json!({"type": "a.b", "data": {}})).await;
    let delivery = app.only_delivery(id(&destination)).await;
    app.wait_status(id(&delivery), "delivered", WAIT).await;
    assert_eq!(receiver.received().len(), 1);

    let (status, body) = app
        .post("/v1/destinations", json!({"url": "http://10.0.0.1/hook"}))
        .await;
    assert_eq!(status, 422, "other private ranges stay closed: {body}");
}

#[tokio::test]
async fn allowed_ports_limit_where_destinations_may_point() {
    let app = TestApp::spawn_tuned(true, false, |c| c.allowed_ports = vec![443]).await;
    let receiver = Receiver::start().await;
    let refused = refusal(&app, json!({"url": receiver.url})).await;
    assert!(refused.contains("allowed_ports"), "{refused}");
    let (status, _) = app
        .post(
            "/v1/destinations",
            json!({"url": "https://example.com/hook"}),
        )
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn rate_limit_per_sec_spaces_out_attempts() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let destination = app
        .destination(&receiver.url, json!({"rate_limit_per_sec": 5}))
        .await;
    assert_eq!(destination["rate_limit_per_sec"], 5);
    for _ in 0..11 {
        app.publish(json!({"type": "a.b", "data": {}})).await;
    }
    receiver.wait_for(11, WAIT).await;
    // The limit is on when attempts start (as the server recorded them), not on when a
    // busy receiver gets to read them.
    let mut starts = Vec::new();
    for delivery in app.deliveries_of_destination(id(&destination)).await {
        // The receiver may have answered the last attempt before its result is recorded.
        let shown = app.wait_status(id(&delivery), "delivered", WAIT).await;
        let history = shown["attempt_history"].as_array().unwrap();
        assert_eq!(history.len(), 1, "deferring does not use up attempts");
        let started = history[0]["started_at"].as_str().unwrap();
        starts.push(parse_rfc3339("started_at", started).unwrap());
    }
    starts.sort_unstable();
    let gaps: Vec<i64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    // Ten gaps of 1/5 s: two seconds, less a little for timer rounding. On a loaded
    // machine an attempt may start a little after its turn, which shortens the gap after
    // it (a burst would leave gaps of a millisecond or two).
    assert!(starts[10] - starts[0] >= 1_900, "gaps {gaps:?}");
    assert!(gaps.iter().all(|g| *g >= 100), "gaps {gaps:?}");
}

#[tokio::test]
async fn a_hanging_destination_does_not_hold_up_a_healthy_one() {
    let app = TestApp::spawn().await;
    let hanging = Receiver::start().await;
    hanging.fallback(Reply::ok().delay(Duration::from_secs(60)));
    let healthy = Receiver::start().await;
    app.destination(
        &hanging.url,
        json!({"timeout_secs": 30, "max_in_flight": 5}),
    )
    .await;
    app.destination(&healthy.url, json!({})).await;
    for n in 0..40 {
        app.publish(json!({"type": "a.b", "data": {"n": n}})).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    healthy.wait_for(40, WAIT).await;
    assert_eq!(
        hanging.in_flight(),
        5,
        "all 40 reached the healthy receiver while the hanging one still held its 5"
    );
}
