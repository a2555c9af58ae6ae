//! Deliveries the store hands over at publish: leased to this node before any claim,
//! and given back to the queue if the dispatcher stops before starting them.

mod support;

use hookline_core::delivery::DeliveryState;
use hookline_core::url_policy::UrlPolicy;
use hookline_dispatch::DispatcherConfig;
use serde_json::json;
use support::Fixture;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn hand_overs_not_started_at_shutdown_go_back_to_the_queue() {
    let fixture = Fixture::new().await;
    // Nothing listens there, and nothing is sent: the dispatcher stops first.
    fixture
        .destination(json!({"url": "http://127.0.0.1:9/hook"}))
        .await;
    let dispatcher = fixture.dispatcher(DispatcherConfig {
        url_policy: UrlPolicy::dev(),
        ..DispatcherConfig::default()
    });
    fixture.publish().await;
    let handed = &fixture.deliveries().await[0];
    assert_eq!(
        (handed.state, handed.attempts),
        (DeliveryState::Delivering, 1),
        "leased to this node by the publish itself"
    );

    let stopped = CancellationToken::new();
    stopped.cancel();
    dispatcher.clone().run(stopped).await;

    let given_back = &fixture.deliveries().await[0];
    assert_eq!(
        (given_back.state, given_back.attempts),
        (DeliveryState::Pending, 0),
        "back in the queue, its attempt not counted"
    );
    assert!(fixture.attempts_of(given_back).await.is_empty());

    // The stopped dispatcher takes nothing more: the next publish waits in the queue.
    fixture.publish().await;
    let queued = &fixture.deliveries().await[0];
    assert_eq!(queued.state, DeliveryState::Pending);
}
