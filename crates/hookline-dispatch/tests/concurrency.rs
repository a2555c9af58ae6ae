//! The node's loop with attempts open: `max_concurrency` bounds the attempts open at
//! once, across destinations, however many each destination's own `max_in_flight`
//! would allow; deliveries held at publish beyond the free places wait for one, and
//! go back to the queue if their destination changes meanwhile; and work that falls
//! due is claimed even while every open attempt hangs.

mod support;

use hookline_store::Records;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use hookline_core::clock::Clock;
use hookline_core::delivery::DeliveryState;
use hookline_core::ids::DestinationId;
use hookline_core::url_policy::UrlPolicy;
use hookline_dispatch::{DispatcherConfig, HELD_ROUNDS};
use serde_json::json;
use support::Fixture;
use tokio_util::sync::CancellationToken;

/// How many requests are open now, the most ever open at once, and how many were answered.
#[derive(Default)]
struct Gauge {
    open: AtomicUsize,
    most: AtomicUsize,
    answered: AtomicUsize,
}

/// A receiver that holds every request for `hold` before answering 200.
async fn slow_receiver(hold: Duration) -> (String, Arc<Gauge>) {
    slow_receiver_answering(hold, StatusCode::OK).await
}

/// A receiver that holds every request for `hold` before answering `status`.
async fn slow_receiver_answering(hold: Duration, status: StatusCode) -> (String, Arc<Gauge>) {
    let gauge = Arc::new(Gauge::default());
    let seen = gauge.clone();
    let app = axum::Router::new().fallback(move || {
        let gauge = seen.clone();
        async move {
            let open = gauge.open.fetch_add(1, Ordering::SeqCst) + 1;
            gauge.most.fetch_max(open, Ordering::SeqCst);
            tokio::time::sleep(hold).await;
            gauge.open.fetch_sub(1, Ordering::SeqCst);
            gauge.answered.fetch_add(1, Ordering::SeqCst);
            (status, "ok")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), gauge)
}

#[tokio::test]
async fn max_concurrency_bounds_open_attempts_across_destinations() {
    let fixture = Fixture::new().await;
    let (url, gauge) = slow_receiver(Duration::from_millis(100)).await;
    for _ in 0..3 {
        fixture
            .destination(json!({"url": url, "max_in_flight": 10}))
            .await;
    }
    for _ in 0..4 {
        fixture.publish().await;
    }
    let dispatcher = fixture.dispatcher(DispatcherConfig {
        url_policy: UrlPolicy::dev(),
        max_concurrency: 4,
        ..DispatcherConfig::default()
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(dispatcher.run(shutdown.clone()));
    wait_for_answers(&gauge, 12, Duration::from_secs(10)).await;
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(
        gauge.answered.load(Ordering::SeqCst),
        12,
        "all 12 delivered"
    );
    assert_eq!(
        gauge.most.load(Ordering::SeqCst),
        4,
        "never more than 4 open"
    );
    for delivery in fixture.deliveries().await {
        assert_eq!(delivery.state, DeliveryState::Delivered);
        assert_eq!(fixture.attempts_of(&delivery).await.len(), 1, "sent once");
    }
}

/// Polls until `gauge` has answered `count` requests, for at most `limit`.
async fn wait_for_answers(gauge: &Gauge, count: usize, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while gauge.answered.load(Ordering::SeqCst) < count && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn queued_work_is_claimed_at_once_when_the_loop_wakes_for_a_hand_over() {
    let fixture = Fixture::new().await;
    // An ordered destination always goes through the queue; the other one gets its
    // deliveries handed over at publish, and its receiver never answers.
    let (queued_url, queued) = slow_receiver(Duration::ZERO).await;
    let (hanging_url, hanging) = slow_receiver(Duration::from_secs(600)).await;
    fixture
        .destination(json!({"url": queued_url, "ordered": true}))
        .await;
    fixture
        .destination(json!({"url": hanging_url, "timeout_secs": 60}))
        .await;
    let dispatcher = fixture.dispatcher(DispatcherConfig {
        url_policy: UrlPolicy::dev(),
        // Far beyond the wait below: only the hand-over's wake-up can bring the claim.
        poll_interval: Duration::from_secs(120),
        shutdown_grace: Duration::from_millis(50),
        ..DispatcherConfig::default()
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(dispatcher.run(shutdown.clone()));
    // Let the loop make its first (empty) claim and go idle before publishing; then the
    // publish's commit wakes it, for the hand-over and the queued work alike.
    tokio::time::sleep(Duration::from_millis(200)).await;
    fixture.publish().await;
    wait_for_answers(&queued, 1, Duration::from_secs(10)).await;
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(
        queued.answered.load(Ordering::SeqCst),
        1,
        "claimed and sent"
    );
    assert_eq!(
        hanging.open.load(Ordering::SeqCst),
        1,
        "the other still hangs"
    );
}

#[tokio::test]
async fn deliveries_held_at_publish_beyond_the_free_places_wait_for_one() {
    let fixture = Fixture::new().await;
    let (url, gauge) = slow_receiver(Duration::from_millis(50)).await;
    fixture
        .destination(json!({"url": url, "max_in_flight": 2}))
        .await;
    let dispatcher = fixture.dispatcher(DispatcherConfig {
        url_policy: UrlPolicy::dev(),
        ..DispatcherConfig::default()
    });
    let held = HELD_ROUNDS as usize * 2;
    for _ in 0..=held {
        fixture.publish().await;
    }
    let deliveries = fixture.deliveries().await;
    let states: Vec<DeliveryState> = deliveries.iter().map(|d| d.state).collect();
    assert_eq!(
        &states[1..],
        vec![DeliveryState::Delivering; held],
        "each of the first {held} leased to this node at publish"
    );
    assert_eq!(
        states[0],
        DeliveryState::Pending,
        "the newest one is queued"
    );

    let shutdown = CancellationToken::new();
    let running = tokio::spawn(dispatcher.run(shutdown.clone()));
    wait_for_answers(&gauge, held + 1, Duration::from_secs(10)).await;
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(gauge.answered.load(Ordering::SeqCst), held + 1);
    assert_eq!(
        gauge.most.load(Ordering::SeqCst),
        2,
        "never more than 2 open"
    );
    for delivery in fixture.deliveries().await {
        assert_eq!(delivery.state, DeliveryState::Delivered);
        assert_eq!(fixture.attempts_of(&delivery).await.len(), 1, "sent once");
    }
}

/// A running dispatcher, three deliveries held for it at publish, and their destination
/// with a single place.
struct OnePlace {
    fixture: Fixture,
    id: DestinationId,
    gauge: Arc<Gauge>,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<()>,
}

/// `OnePlace`, its destination at `receiver`, its dispatcher configured by `config`
/// (under the dev policy).
async fn three_held_for_one_place(
    (url, gauge): (String, Arc<Gauge>),
    config: DispatcherConfig,
) -> OnePlace {
    let fixture = Fixture::new().await;
    let id = fixture
        .destination(json!({"url": url, "max_in_flight": 1}))
        .await;
    let dispatcher = fixture.dispatcher(DispatcherConfig {
        url_policy: UrlPolicy::dev(),
        ..config
    });
    for _ in 0..3 {
        fixture.publish().await;
    }
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(dispatcher.run(shutdown.clone()));
    OnePlace {
        fixture,
        id,
        gauge,
        shutdown,
        running,
    }
}

/// Polls until `gauge` has a request open, for at most ten seconds.
async fn wait_until_open(gauge: &Gauge) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while gauge.open.load(Ordering::SeqCst) == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Each delivery's state and attempts, in the order of `DeliveryState`.
async fn states_and_attempts(fixture: &Fixture) -> Vec<(DeliveryState, u32)> {
    let mut states: Vec<(DeliveryState, u32)> = fixture
        .deliveries()
        .await
        .iter()
        .map(|d| (d.state, d.attempts))
        .collect();
    states.sort_by_key(|(state, _)| *state as u8);
    states
}

/// Three deliveries to one place: the first sent, the two that waited back in the queue
/// with their attempts not counted.
const ONE_SENT_TWO_BACK_IN_THE_QUEUE: [(DeliveryState, u32); 3] = [
    (DeliveryState::Pending, 0),
    (DeliveryState::Pending, 0),
    (DeliveryState::Delivered, 1),
];

#[tokio::test]
async fn deliveries_waiting_for_a_place_are_not_sent_after_their_destination_is_paused() {
    let OnePlace {
        fixture,
        id,
        gauge,
        shutdown,
        running,
    } = three_held_for_one_place(
        slow_receiver(Duration::from_millis(300)).await,
        DispatcherConfig::default(),
    )
    .await;
    wait_until_open(&gauge).await;
    let org = &fixture.org.id;
    let mut paused = fixture
        .store
        .get_destination(org, &id)
        .await
        .unwrap()
        .unwrap();
    paused.settings.enabled = false;
    let now = fixture.clock.now_ms();
    let store = &fixture.store;
    assert!(
        store
            .update_destination_settings(org, &id, &paused.settings, now)
            .await
            .unwrap()
    );

    wait_for_answers(&gauge, 1, Duration::from_secs(10)).await;
    // Time enough for the next to be sent, had it not gone back to the queue.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        gauge.answered.load(Ordering::SeqCst),
        1,
        "only the one already sending"
    );
    assert_eq!(gauge.open.load(Ordering::SeqCst), 0);
    assert_eq!(
        states_and_attempts(&fixture).await,
        ONE_SENT_TWO_BACK_IN_THE_QUEUE,
        "the two that waited are queued again, their attempts not counted"
    );

    // Resumed, the destination gets them from the queue.
    paused.settings.enabled = true;
    assert!(
        store
            .update_destination_settings(org, &id, &paused.settings, now)
            .await
            .unwrap()
    );
    // The store wakes the loop as it commits the resumption.
    wait_for_answers(&gauge, 3, Duration::from_secs(10)).await;
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(gauge.answered.load(Ordering::SeqCst), 3);
    assert_eq!(gauge.most.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn at_shutdown_deliveries_still_waiting_for_a_place_go_back_to_the_queue_unsent() {
    let OnePlace {
        fixture,
        gauge,
        shutdown,
        running,
        ..
    } = three_held_for_one_place(
        slow_receiver(Duration::from_millis(300)).await,
        DispatcherConfig {
            // Time enough to send both waiting ones, were they started.
            shutdown_grace: Duration::from_secs(5),
            ..DispatcherConfig::default()
        },
    )
    .await;
    wait_until_open(&gauge).await;
    shutdown.cancel();
    running.await.unwrap();

    assert_eq!(
        gauge.answered.load(Ordering::SeqCst),
        1,
        "the attempt under way finished; none started after the shutdown"
    );
    assert_eq!(
        states_and_attempts(&fixture).await,
        ONE_SENT_TWO_BACK_IN_THE_QUEUE
    );
}

#[tokio::test]
async fn deliveries_waiting_for_a_place_are_not_sent_after_the_receiver_answers_gone() {
    let OnePlace {
        fixture,
        gauge,
        shutdown,
        running,
        ..
    } = three_held_for_one_place(
        slow_receiver_answering(Duration::from_millis(100), StatusCode::GONE).await,
        DispatcherConfig::default(),
    )
    .await;
    wait_for_answers(&gauge, 1, Duration::from_secs(10)).await;
    // Time enough for the next two to be sent, had they not gone back to the queue.
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.cancel();
    running.await.unwrap();

    assert_eq!(
        gauge.answered.load(Ordering::SeqCst),
        1,
        "410 Gone disables it"
    );
    let mut states: Vec<DeliveryState> =
        fixture.deliveries().await.iter().map(|d| d.state).collect();
    states.sort_by_key(|state| *state as u8);
    assert_eq!(
        states,
        [
            DeliveryState::Pending,
            DeliveryState::Pending,
            DeliveryState::DeadLetter
        ]
    );
}
