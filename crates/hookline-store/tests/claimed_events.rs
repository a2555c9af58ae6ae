//! A claimed delivery carries its event exactly as the API reads it back: the data and
//! the raw body survive the trip through the file, before and after a restart.

mod fixture;

use std::collections::HashMap;

use hookline_core::event::Event;
use hookline_store::sqlite::SqliteStore;
use hookline_store::{ApiKeyRecord, ClaimRequest, Org, Store};
use serde_json::json;

const T0: i64 = 1_800_000_000_000;

fn claim(now: i64) -> ClaimRequest {
    ClaimRequest {
        now,
        limit: 10,
        lease_margin_ms: 5_000,
        node_id: "node-a".into(),
        in_flight: HashMap::new(),
    }
}

/// Data with what a round trip through text could change: floats, escapes, nesting.
fn awkward_event(n: u32) -> hookline_core::event::NewEvent {
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
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let org = Org::new("o", T0);
    let (record, _) = ApiKeyRecord::issue(&org.id, T0);
    store.create_org(&org, &record).await.unwrap();
    let destination = fixture::destination(&org.id, json!({"max_in_flight": 1}), T0);
    store.insert_destination(&destination).await.unwrap();
    store.publish(&org.id, awkward_event(1), T0).await.unwrap();
    store.publish(&org.id, awkward_event(2), T0).await.unwrap();

    let fresh = store.claim_due(&claim(T0)).await.unwrap();
    assert_eq!(
        fresh.len(),
        1,
        "max_in_flight 1 leaves the second for later"
    );
    assert_eq!(fresh[0].event, stored(&store, &fresh[0].event).await);

    store
        .complete(vec![fixture::delivered("node-a", &fresh[0], T0)])
        .await
        .unwrap();

    // After a restart, from a fresh connection.
    drop(store);
    let reopened = SqliteStore::open(dir.path()).unwrap();
    let read_back = reopened.claim_due(&claim(T0 + 1)).await.unwrap();
    assert_eq!(read_back.len(), 1, "the second event's delivery");
    assert_eq!(read_back[0].event.data["n"], 2);
    assert_eq!(
        read_back[0].event,
        stored(&reopened, &read_back[0].event).await
    );
}
