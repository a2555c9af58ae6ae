//! Retry timing, driven by a manual clock and `Dispatcher::step` instead of sleeping:
//! a failed attempt is not claimed again before its scheduled delay (minus jitter) and
//! is claimed once the delay (plus jitter) has passed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use hookline_core::clock::{Clock, ManualClock};
use hookline_core::destination::{Destination, DestinationHealth, DestinationSettings};
use hookline_core::event::{EventType, Level, NewEvent, StreamName};
use hookline_core::ids::DestinationId;
use hookline_core::secret::SigningSecret;
use hookline_core::url_policy::UrlPolicy;
use hookline_dispatch::{Dispatcher, DispatcherConfig};
use hookline_store::sqlite::SqliteStore;
use hookline_store::{ApiKeyRecord, DeliveryQuery, Org, Store};
use serde_json::json;

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
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let clock = ManualClock::new(1_800_000_000_000);
    let org = Org::new("o", clock.now_ms());
    let (record, _) = ApiKeyRecord::issue(&org.id, clock.now_ms());
    store.create_org(&org, &record).await.unwrap();

    let url = scripted_receiver(&[500, 503]).await;
    let settings = DestinationSettings::from_json(
        json!({"url": url, "retry_schedule_secs": [10, 20]})
            .as_object()
            .unwrap(),
        UrlPolicy::DEV,
    )
    .unwrap();
    let destination = Destination {
        id: DestinationId::generate(),
        org_id: org.id.clone(),
        stream: None,
        settings,
        secret: SigningSecret::generate(),
        health: DestinationHealth::default(),
        created_at: clock.now_ms(),
        updated_at: clock.now_ms(),
    };
    store.insert_destination(&destination).await.unwrap();
    let event = NewEvent {
        event_type: EventType::parse("type", "run.failed").unwrap(),
        stream: StreamName::parse("stream", "s").unwrap(),
        level: Level::User,
        data: json!({}),
        raw: None,
        idempotency_key: None,
    };
    store.publish(&org.id, event, clock.now_ms()).await.unwrap();

    let dispatcher = Arc::new(
        Dispatcher::new(
            store.clone(),
            Arc::new(clock.clone()),
            DispatcherConfig {
                url_policy: UrlPolicy::DEV,
                ..DispatcherConfig::default()
            },
        )
        .unwrap(),
    );
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

    let deliveries = store
        .list_deliveries(
            &org.id,
            &DeliveryQuery {
                page: hookline_store::PageRequest {
                    limit: 10,
                    cursor: None,
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let delivery = &deliveries.data[0];
    assert_eq!(delivery.state.as_str(), "delivered");
    assert_eq!(delivery.attempts, 3);
    let attempts = store.list_attempts_of(&org.id, &delivery.id).await.unwrap();
    let statuses: Vec<_> = attempts.iter().map(|a| a.response_status).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
}
