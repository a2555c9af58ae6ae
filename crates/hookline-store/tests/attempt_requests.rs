//! An attempt whose body was its event's envelope is stored as a note of that, not as a
//! copy, and is read back byte for byte as sent: with and without `raw`, for data whose
//! text a round trip through the database could change, and after a restart.

mod fixture;

use std::sync::Arc;

use hookline_core::envelope::Envelope;
use hookline_core::event::NewEvent;
use hookline_core::ids::OrgId;
use hookline_store::sqlite::SqliteStore;
use hookline_store::{ApiKeyRecord, ClaimRequest, ClaimedDelivery, InFlight, Org, Store};
use serde_json::{Value, json};

const T0: i64 = 1_800_000_000_000;

/// Floats, escapes, big integers, nesting, and a `raw` payload.
fn awkward_event() -> NewEvent {
    let mut event = fixture::event(
        "s",
        json!({"ratio": 0.1, "big": 12345678901234567_u64, "text": "é\"\n\u{1F600}",
               "nested": {"list": [1.5e-7, null, true], "z": 1, "a": 2}}),
    );
    event.raw = Some(json!({"verbatim": [2.25, "x"]}));
    event
}

/// A store with one destination per settings, one awkward event published to them all,
/// and each delivery claimed by `node-a`.
async fn claimed_fan_out(
    destinations: &[Value],
) -> (tempfile::TempDir, SqliteStore, OrgId, Vec<ClaimedDelivery>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let org = Org::new("o", T0);
    let (record, _) = ApiKeyRecord::issue(&org.id, T0);
    store.create_org(&org, &record).await.unwrap();
    for settings in destinations {
        let destination = fixture::destination(&org.id, settings.clone(), T0);
        store.insert_destination(&destination).await.unwrap();
    }
    store.publish(&org.id, awkward_event(), T0).await.unwrap();
    let claimed = store
        .claim_due(&ClaimRequest {
            now: T0,
            limit: 10,
            lease_margin_ms: 5_000,
            node_id: "node-a".into(),
            in_flight: Arc::new(InFlight::new(usize::MAX)),
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), destinations.len());
    (dir, store, org.id, claimed)
}

#[tokio::test]
async fn envelope_bodies_are_kept_by_reference_and_read_back_as_sent() {
    let (dir, store, org, claimed) =
        claimed_fan_out(&[json!({"include_raw": false}), json!({"include_raw": true})]).await;

    let mut sent = Vec::new();
    let mut completions = Vec::new();
    for delivery in &claimed {
        let include_raw = delivery.destination.settings.include_raw;
        let body = Envelope::of(&delivery.event, include_raw).to_text();
        let mut completion = fixture::delivered("node-a", delivery, T0);
        completion.attempt.request_body = body.clone();
        completions.push(completion.with_event_envelope(include_raw));
        sent.push((delivery.delivery_id.clone(), include_raw, body));
    }
    store.complete(completions).await.unwrap();

    // Read back from the file alone: the event as stored, not as the writer cached it.
    drop(store);
    let reopened = SqliteStore::open(dir.path()).unwrap();
    for (delivery_id, include_raw, body) in &sent {
        let attempts = reopened.list_attempts_of(&org, delivery_id).await.unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(&attempts[0].request_body, body, "include_raw {include_raw}");
        assert_eq!(body.contains("verbatim"), *include_raw);
    }
    drop(reopened);

    let conn = rusqlite::Connection::open(dir.path().join("hookline.db")).unwrap();
    let mut stored: Vec<(i64, i64)> = conn
        .prepare("SELECT length(request_body), request_body_from_event FROM attempts")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    stored.sort();
    assert_eq!(stored, [(0, 1), (0, 2)], "no copy of either body");
}

#[tokio::test]
async fn other_bodies_are_stored_as_sent() {
    let (_dir, store, org, claimed) = claimed_fan_out(&[json!({})]).await;
    let completion = fixture::delivered("node-a", &claimed[0], T0);
    store.complete(vec![completion]).await.unwrap();
    let attempts = store
        .list_attempts_of(&org, &claimed[0].delivery_id)
        .await
        .unwrap();
    assert_eq!(attempts[0].request_body, "{}");
}
