//! Retry timing, driven by a manual clock and `Dispatcher::step` instead of sleeping:
//! a failed attempt is not claimed again before its scheduled delay (minus jitter) and
//! is claimed once the delay (plus jitter) has passed.

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use hookline_core::url_policy::UrlPolicy;
use hookline_dispatch::DispatcherConfig;
use serde_json::json;
use support::Fixture;

/// A receiver that answers with the given statuses in order, then 200.
async fn scripted_receiver(statuses: &[u16]) -> String {
    let script = Arc::new(Mutex::new(
        statuses.iter().copied().collect::<VecDeque<_>>(),
    ));
    let app = axum::Router::new().fallback(move || {
        let script = script.clone();
        async move {
            let status = script.lock().unwrap().pop_front().unwrap_or(200);
            StatusCode::from_u16(status).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

#[tokio::test]
async fn failed_attempts_wait_out_their_scheduled_delay() {
    let fixture = Fixture::new().await;
    let url = scripted_receiver(&[500, 503]).await;
    fixture
        .destination(json!({"url": url, "retry_schedule_secs": [10, 20]}))
        .await;
    fixture.publish().await;
    let dispatcher = fixture.dispatcher(DispatcherConfig {
        url_policy: UrlPolicy::dev(),
        ..DispatcherConfig::default()
    });
    let clock = &fixture.clock;
    assert_eq!(
        dispatcher.step().await.unwrap(),
        1,
        "first attempt is due at once"
    );
    assert_eq!(
        dispatcher.step().await.unwrap(),
        0,
        "nothing due right after a failure"
    );
    clock.advance_ms(8_999);
    assert_eq!(
        dispatcher.step().await.unwrap(),
        0,
        "10 s - 10% jitter not yet passed"
    );
    clock.advance_ms(2_002);
    assert_eq!(
        dispatcher.step().await.unwrap(),
        1,
        "due after 10 s + 10% jitter"
    );
    clock.advance_ms(17_999);
    assert_eq!(
        dispatcher.step().await.unwrap(),
        0,
        "20 s - 10% not yet passed"
    );
    clock.advance_ms(4_002);
    assert_eq!(
        dispatcher.step().await.unwrap(),
        1,
        "third attempt after 20 s + 10%"
    );

    let deliveries = fixture.deliveries().await;
    let delivery = &deliveries[0];
    assert_eq!(delivery.state.as_str(), "delivered");
    assert_eq!(delivery.attempts, 3);
    let attempts = fixture.attempts_of(delivery).await;
    let statuses: Vec<_> = attempts.iter().map(|a| a.response_status).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
}
