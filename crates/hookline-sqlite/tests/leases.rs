//! The queue's lease rules on a real SQLite file: a lease that expires (its node died)
//! is claimed again, and the late completion of the node that lost it changes nothing;
//! what a claim hands out is the delivery's event exactly as stored; and which fresh
//! deliveries are leased at publish and handed straight to the dispatcher; and how a
//! claim shares its batch among the destinations with work due.

use hookline_store::{Queue, Records};
use std::sync::Arc;

use hookline_core::delivery::DeliveryState;
use hookline_core::event::{Event, NewEvent};
use hookline_core::ids::{DeliveryId, OrgId};
use hookline_dispatch::{HELD_ROUNDS, NodeAdmission};
use hookline_sqlite::SqliteStore;
use hookline_store::testing as fixture;
use hookline_store::{ApiKeyRecord, ClaimRequest, ClaimedDelivery, Handback, Org};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const T0: i64 = 1_800_000_000_000;

/// A store with one org and one destination with these settings.
async fn store_with_destination(settings: Value) -> (tempfile::TempDir, SqliteStore, OrgId) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let org = Org::new("o", T0);
    let (record, _) = ApiKeyRecord::issue(&org.id, T0);
    store.create_org(&org, &record).await.unwrap();
    let destination = fixture::destination(&org.id, settings, T0);
    store
        .insert_destination(&destination, u32::MAX)
        .await
        .unwrap();
    (dir, store, org.id)
}

async fn store_with_one_delivery() -> (tempfile::TempDir, SqliteStore, OrgId) {
    let (dir, store, org) = store_with_destination(json!({"timeout_secs": 10})).await;
    let event = fixture::event("s", json!({}));
    let published = store.publish(&org, event, T0).await.unwrap();
    assert_eq!(published.deliveries, 1);
    (dir, store, org)
}

async fn state_of(store: &SqliteStore, org: &OrgId, id: &DeliveryId) -> (DeliveryState, u32) {
    let delivery = store.get_delivery(org, id).await.unwrap().unwrap();
    (delivery.state, delivery.attempts)
}

/// The rowid of delivery `id` in the store's file.
fn rowid_of(dir: &tempfile::TempDir, id: &DeliveryId) -> i64 {
    let conn = rusqlite::Connection::open(dir.path().join("hookline.db")).unwrap();
    conn.query_row(
        "SELECT rowid FROM deliveries WHERE id = ?1",
        [id.as_str()],
        |r| r.get(0),
    )
    .unwrap()
}

/// What `node` claims at `now`, holding nothing before.
async fn claims(store: &SqliteStore, node: &str, now: i64) -> Vec<ClaimedDelivery> {
    store.claim_due(&claim(node, now)).await.unwrap()
}

fn claim(name: &str, now: i64) -> ClaimRequest {
    fixture::claim(node(name, usize::MAX).0, now, 10)
}

/// Node `name`'s admission (the dispatcher's), with room for `capacity` deliveries and
/// a 5 s lease margin, and where it is handed deliveries leased at publish.
fn node(
    name: &str,
    capacity: usize,
) -> (Arc<NodeAdmission>, mpsc::UnboundedReceiver<ClaimedDelivery>) {
    NodeAdmission::new(name.into(), 5_000, capacity, Arc::default())
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again_and_the_old_holder_cannot_complete() {
    let (_dir, store, org) = store_with_one_delivery().await;
    let first = claims(&store, "node-a", T0).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempt, 1);

    // The lease lasts the timeout (10 s) plus the margin (5 s).
    assert!(claims(&store, "node-b", T0 + 14_999).await.is_empty());
    let second = claims(&store, "node-b", T0 + 15_000).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].delivery_id, first[0].delivery_id);
    assert_eq!(second[0].attempt, 2);

    // node-a finishes late: its attempt is recorded, but the delivery stays node-b's.
    store
        .complete(fixture::batch(
            "node-a",
            vec![fixture::delivered(&first[0], T0 + 16_000)],
        ))
        .await
        .unwrap();
    let (state, _) = state_of(&store, &org, &first[0].delivery_id).await;
    assert_eq!(state, DeliveryState::Delivering);
    store
        .complete(fixture::batch(
            "node-b",
            vec![fixture::delivered(&second[0], T0 + 16_500)],
        ))
        .await
        .unwrap();
    let (state, _) = state_of(&store, &org, &first[0].delivery_id).await;
    assert_eq!(state, DeliveryState::Delivered);
    let attempts = store
        .list_attempts_of(&org, &first[0].delivery_id)
        .await
        .unwrap();
    assert_eq!(attempts.len(), 2);
}

#[tokio::test]
async fn released_deliveries_are_due_again_with_their_attempt_given_back() {
    let (_dir, store, org) = store_with_one_delivery().await;
    let claimed = claims(&store, "node-a", T0).await;
    store
        .release("node-a", &[Handback::of(&claimed[0], T0 + 1)], T0 + 1)
        .await
        .unwrap();
    let state = state_of(&store, &org, &claimed[0].delivery_id).await;
    assert_eq!(state, (DeliveryState::Pending, 0));
    let again = claims(&store, "node-b", T0 + 2).await;
    assert_eq!(again[0].attempt, 1);
}

#[tokio::test]
async fn a_delivery_handed_back_for_later_waits_until_then() {
    let (_dir, store, _org) = store_with_one_delivery().await;
    let claimed = claims(&store, "node-a", T0).await;
    store
        .release("node-a", &[Handback::of(&claimed[0], T0 + 1_000)], T0)
        .await
        .unwrap();
    assert!(claims(&store, "node-b", T0 + 999).await.is_empty());
    assert_eq!(store.next_due_at().await.unwrap(), Some(T0 + 1_000));
    let again = claims(&store, "node-b", T0 + 1_000).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 1);
}

#[tokio::test]
async fn reopening_after_a_crash_hands_leases_straight_back() {
    let (dir, store, _org) = store_with_one_delivery().await;
    let claimed = claims(&store, "node-a", T0).await;
    assert_eq!(claimed.len(), 1);
    drop(store);
    let reopened = SqliteStore::open(dir.path()).unwrap();
    let again = claims(&reopened, "node-b", T0 + 1).await;
    assert_eq!(again.len(), 1, "no need to wait for the lease to run out");
}

#[tokio::test]
async fn a_second_server_cannot_open_the_same_data_directory() {
    let (dir, _store, _org) = store_with_one_delivery().await;
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
    SqliteStore::open_shared(dir.path()).expect("admin commands may open it beside the server");
}

/// Data with what a round trip through text could change: floats, escapes, nesting.
fn awkward_event(n: u32) -> NewEvent {
    let mut event = fixture::event(
        "s",
        json!({"n": n, "ratio": 0.1, "big": 12345678901234567_u64, "text": "é\"\n",
               "nested": {"list": [1.5e-7, null, true]}}),
    );
    event.raw = Some(json!({"verbatim": [n, 2.25]}));
    event
}

async fn stored(store: &SqliteStore, event: &Event) -> Event {
    store
        .get_event(&event.org_id, &event.id)
        .await
        .unwrap()
        .expect("the event is stored")
}

#[tokio::test]
async fn claims_carry_the_stored_event_before_and_after_a_restart() {
    let (dir, store, org) = store_with_destination(json!({"max_in_flight": 1})).await;
    store.publish(&org, awkward_event(1), T0).await.unwrap();
    store.publish(&org, awkward_event(2), T0).await.unwrap();

    let fresh = claims(&store, "node-a", T0).await;
    assert_eq!(
        fresh.len(),
        1,
        "max_in_flight 1 leaves the second for later"
    );
    assert_eq!(*fresh[0].event, stored(&store, &fresh[0].event).await);

    store
        .complete(fixture::batch(
            "node-a",
            vec![fixture::delivered(&fresh[0], T0)],
        ))
        .await
        .unwrap();

    // After a restart, from a fresh connection.
    drop(store);
    let reopened = SqliteStore::open(dir.path()).unwrap();
    let read_back = claims(&reopened, "node-a", T0 + 1).await;
    assert_eq!(read_back.len(), 1, "the second event's delivery");
    assert_eq!(read_back[0].event.data["n"], 2);
    assert_eq!(
        *read_back[0].event,
        stored(&reopened, &read_back[0].event).await
    );
}

/// Attaches node-a, with room for `capacity`, to the store, which hands it fresh
/// deliveries as they are published.
fn attach(
    store: &SqliteStore,
    capacity: usize,
) -> (Arc<NodeAdmission>, mpsc::UnboundedReceiver<ClaimedDelivery>) {
    let (node, handed) = node("node-a", capacity);
    store.attach(node.clone());
    (node, handed)
}

#[tokio::test]
async fn a_fresh_delivery_is_leased_at_publish_and_handed_over() {
    let (dir, store, org) = store_with_destination(json!({"timeout_secs": 10})).await;
    let (node, mut handed) = attach(&store, 10);
    let published = store
        .publish(&org, fixture::event("s", json!({"n": 1})), T0)
        .await
        .unwrap();
    assert_eq!((published.deliveries, published.queued), (1, 0));

    let delivery = handed.try_recv().expect("handed over once committed");
    assert_eq!(delivery.attempt, 1);
    assert_eq!(delivery.event, published.event);
    assert_eq!(
        delivery.row_hint,
        Some(rowid_of(&dir, &delivery.delivery_id))
    );
    assert_eq!(node.in_flight().count(&delivery.destination.id), 1);
    assert_eq!(
        state_of(&store, &org, &delivery.delivery_id).await,
        (DeliveryState::Delivering, 1)
    );
    // The lease is the node's for as long as it may wait for a place behind the others
    // held (each round up to the 10 s timeout), its own attempt, and the margin: a claim
    // elsewhere cannot take it before then, and the node's own completion lands.
    let until = T0 + i64::from(HELD_ROUNDS) * 10_000 + 5_000;
    assert_eq!(delivery.lease_until, until);
    assert!(claims(&store, "node-b", until - 1).await.is_empty());
    store
        .complete(fixture::batch(
            "node-a",
            vec![fixture::delivered(&delivery, T0)],
        ))
        .await
        .unwrap();
    assert_eq!(
        state_of(&store, &org, &delivery.delivery_id).await,
        (DeliveryState::Delivered, 1)
    );
}

#[tokio::test]
async fn beyond_its_rounds_of_max_in_flight_fresh_deliveries_wait_in_the_queue() {
    let (_dir, store, org) = store_with_destination(json!({"max_in_flight": 2})).await;
    let (node, mut handed) = attach(&store, 10);
    let held = 2 * HELD_ROUNDS;
    let mut queued = 0;
    for n in 0..held + 3 {
        let event = fixture::event("s", json!({"n": n}));
        queued += store.publish(&org, event, T0).await.unwrap().queued;
    }
    assert_eq!(queued, 3);
    let mut handed_over = Vec::new();
    while let Ok(delivery) = handed.try_recv() {
        handed_over.push(delivery);
    }
    assert_eq!(
        handed_over.len(),
        held as usize,
        "two places, {HELD_ROUNDS} rounds"
    );

    // A claim for the same node sees the places taken at publish, and takes one only
    // once fewer than `max_in_flight` are held.
    let node_a = fixture::claim(node.clone(), T0, 10);
    let (last, finished) = handed_over.split_last().unwrap();
    for delivery in &finished[1..] {
        node.in_flight().release(&delivery.delivery_id);
    }
    assert!(store.claim_due(&node_a).await.unwrap().is_empty());
    node.in_flight().release(&finished[0].delivery_id);
    let claimed = store.claim_due(&node_a).await.unwrap();
    assert_eq!(claimed.len(), 1, "one place freed");
    assert_eq!(claimed[0].event.data["n"], held, "the oldest waiting one");
    assert_eq!(node.in_flight().count(&last.destination.id), 2);

    // With the queue not empty, even a free place does not let a newer one jump it.
    node.in_flight().release(&last.delivery_id);
    let later = store
        .publish(&org, fixture::event("s", json!({"n": held + 3})), T0)
        .await
        .unwrap();
    assert_eq!(later.queued, 1);
    assert!(handed.try_recv().is_err());
}

#[tokio::test]
async fn the_node_capacity_bounds_what_is_handed_over() {
    let (_dir, store, org) = store_with_destination(json!({"max_in_flight": 50})).await;
    let (_node, mut handed) = attach(&store, 1);
    for n in 0..=HELD_ROUNDS {
        store
            .publish(&org, fixture::event("s", json!({"n": n})), T0)
            .await
            .unwrap();
    }
    for _ in 0..HELD_ROUNDS {
        assert!(handed.try_recv().is_ok());
    }
    assert!(
        handed.try_recv().is_err(),
        "the node had room for one, {HELD_ROUNDS} rounds"
    );
}

#[tokio::test]
async fn ordered_and_rate_limited_destinations_always_go_through_the_queue() {
    for settings in [json!({"ordered": true}), json!({"rate_limit_per_sec": 5})] {
        let (_dir, store, org) = store_with_destination(settings.clone()).await;
        let (_node, mut handed) = attach(&store, 10);
        let published = store
            .publish(&org, fixture::event("s", json!({})), T0)
            .await
            .unwrap();
        assert_eq!(published.queued, 1, "{settings}");
        assert!(handed.try_recv().is_err(), "{settings}");
    }
}

#[tokio::test]
async fn nothing_is_handed_to_a_dispatcher_that_has_stopped() {
    let (_dir, store, org) = store_with_destination(json!({})).await;
    let (node, handed) = attach(&store, 10);
    drop(handed);
    let published = store
        .publish(&org, fixture::event("s", json!({})), T0)
        .await
        .unwrap();
    assert_eq!(published.queued, 1);
    assert!(node.in_flight().is_empty());
    let claimed = claims(&store, "node-a", T0).await;
    assert_eq!(claimed.len(), 1, "it waits in the queue instead");
}

/// A fan-out: six queued events, each for destinations `a` and `b` (in that order).
async fn fan_out_of_six(
    a: Value,
    b: Value,
) -> (tempfile::TempDir, SqliteStore, [String; 2], Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let org = Org::new("o", T0);
    store
        .create_org(&org, &ApiKeyRecord::issue(&org.id, T0).0)
        .await
        .unwrap();
    let mut destinations = Vec::new();
    for settings in [a, b] {
        let destination = fixture::destination(&org.id, settings, T0);
        store
            .insert_destination(&destination, u32::MAX)
            .await
            .unwrap();
        destinations.push(destination.id.to_string());
    }
    let mut events = Vec::new();
    for n in 0..6 {
        let event = fixture::event("s", json!({ "n": n }));
        let published = store.publish(&org.id, event, T0).await.unwrap();
        assert_eq!(published.deliveries, 2);
        events.push(published.event.id.to_string());
    }
    let destinations = [destinations[0].clone(), destinations[1].clone()];
    (dir, store, destinations, events)
}

/// What one claim of six takes.
async fn claim_six(store: &SqliteStore) -> Vec<ClaimedDelivery> {
    let six = ClaimRequest {
        limit: 6,
        ..claim("n", T0)
    };
    store.claim_due(&six).await.unwrap()
}

/// How many of `claimed` are for each of `destinations`, and their events.
fn split(claimed: &[ClaimedDelivery], destinations: &[String; 2]) -> ([usize; 2], Vec<String>) {
    let mut counts = [0, 0];
    let mut events: Vec<String> = Vec::new();
    for c in claimed {
        let i = destinations
            .iter()
            .position(|d| d == c.destination.id.as_str())
            .unwrap();
        counts[i] += 1;
        if !events.contains(&c.event.id.to_string()) {
            events.push(c.event.id.to_string());
        }
    }
    events.sort();
    (counts, events)
}

#[tokio::test]
async fn a_claim_shares_its_batch_so_a_fan_out_reads_each_event_once() {
    let (_dir, store, destinations, events) = fan_out_of_six(json!({}), json!({})).await;
    let first = claim_six(&store).await;
    let (counts, claimed_events) = split(&first, &destinations);
    assert_eq!(counts, [3, 3], "each destination gets half of the batch");
    assert_eq!(
        claimed_events,
        events[..3],
        "both take the three oldest events"
    );

    let rest = claims(&store, "n", T0).await;
    let (counts, claimed_events) = split(&rest, &destinations);
    assert_eq!(counts, [3, 3]);
    assert_eq!(claimed_events, events[3..]);
}

#[tokio::test]
async fn what_one_destination_cannot_take_of_its_share_goes_to_another() {
    let (_dir, store, destinations, _) =
        fan_out_of_six(json!({"max_in_flight": 1}), json!({})).await;
    let claimed = claim_six(&store).await;
    let (counts, _) = split(&claimed, &destinations);
    assert_eq!(counts, [1, 5], "b takes the share a has no room for");
}

#[tokio::test]
async fn a_completion_goes_to_its_claimed_row_and_a_wrong_row_hint_changes_no_other() {
    let (dir, store, org) = store_with_destination(json!({})).await;
    for n in 0..2 {
        let event = fixture::event("s", json!({"n": n}));
        store.publish(&org, event, T0).await.unwrap();
    }
    let claimed = claims(&store, "node-a", T0).await;
    assert_eq!(claimed.len(), 2);
    for delivery in &claimed {
        assert_eq!(
            delivery.row_hint,
            Some(rowid_of(&dir, &delivery.delivery_id))
        );
    }

    // The first one's record names the second one's row: the id decides.
    let misdirected = fixture::delivered(&claimed[0], T0).at_row(claimed[1].row_hint);
    store
        .complete(fixture::batch("node-a", vec![misdirected]))
        .await
        .unwrap();
    assert_eq!(
        state_of(&store, &org, &claimed[0].delivery_id).await,
        (DeliveryState::Delivered, 1)
    );
    assert_eq!(
        state_of(&store, &org, &claimed[1].delivery_id).await,
        (DeliveryState::Delivering, 1)
    );
    // Without a hint the row is found by id.
    let unhinted = fixture::delivered(&claimed[1], T0).at_row(None);
    store
        .complete(fixture::batch("node-a", vec![unhinted]))
        .await
        .unwrap();
    assert_eq!(
        state_of(&store, &org, &claimed[1].delivery_id).await,
        (DeliveryState::Delivered, 1)
    );
}
