//! What an attempt sent that its event gives (the envelope as body, the event's headers)
//! is stored as a note of that, not as a copy, and is read back exactly as sent: with
//! and without `raw`, for data whose text a round trip through the database could
//! change, and after a restart. Each test runs on both stores: SQLite in a temp dir, and
//! a fresh database on the test PostgreSQL server (`HOOKLINE_TEST_POSTGRES_URL`).

#[macro_use]
mod support;

use hookline_core::delivery::Attempt;
use hookline_core::envelope::{EventBody, event_headers};
use hookline_core::event::NewEvent;
use hookline_core::ids::OrgId;
use hookline_core::retry::NextStep;
use hookline_dispatch::NodeAdmission;
use hookline_store::testing as fixture;
use hookline_store::{ApiKeyRecord, ClaimedDelivery, Completion, Org, Sent, Store};
use serde_json::{Value, json};
use support::Backend;

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

/// Each attempt's stored `request_body` length, its body note and its headers note,
/// and how many headers `request_headers` holds.
async fn stored_requests(backend: &Backend) -> Vec<(i64, i64, bool, usize)> {
    const SQL: &str = "SELECT length(request_body), request_body_from_event,
                              request_headers_from_event, request_headers FROM attempts";
    let count = |json: &str| {
        serde_json::from_str::<Vec<(String, String)>>(json)
            .unwrap()
            .len()
    };
    let mut stored: Vec<(i64, i64, bool, usize)> = match backend {
        Backend::Sqlite(dir) => {
            let conn = rusqlite::Connection::open(dir.path().join("hookline.db")).unwrap();
            let mut select = conn.prepare(SQL).unwrap();
            select
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        count(&r.get::<_, String>(3)?),
                    ))
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        }
        Backend::Postgres(url) => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                .await
                .unwrap();
            sqlx::query_as::<_, (i32, i64, bool, String)>(SQL)
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .into_iter()
                .map(|(length, body, headers, json)| {
                    (i64::from(length), body, headers, count(&json))
                })
                .collect()
        }
    };
    stored.sort();
    stored
}

/// A store with one destination per settings, one awkward event published to them all,
/// and each delivery claimed by `node-a`.
async fn claimed_fan_out(
    backend: &Backend,
    destinations: &[Value],
) -> (Box<dyn Store>, OrgId, Vec<ClaimedDelivery>) {
    let store = backend.open().await;
    let org = Org::new("o", T0);
    let (record, _) = ApiKeyRecord::issue(&org.id, T0);
    store.create_org(&org, &record).await.unwrap();
    for settings in destinations {
        let destination = fixture::destination(&org.id, settings.clone(), T0);
        store
            .insert_destination(&destination, u32::MAX)
            .await
            .unwrap();
    }
    store.publish(&org.id, awkward_event(), T0).await.unwrap();
    let claimed = store
        .claim_due(&fixture::claim(
            NodeAdmission::new("node-a".into(), 5_000, usize::MAX, Default::default()).0,
            T0,
            10,
        ))
        .await
        .unwrap();
    assert_eq!(claimed.len(), destinations.len());
    (store, org.id, claimed)
}

/// `claimed`'s attempt as the sender makes it: the envelope, the event's headers, then
/// the rest (awkward values included).
fn sent_from_event(claimed: &ClaimedDelivery) -> Attempt {
    let mut attempt = fixture::delivered_attempt(claimed, T0 + 1_999);
    attempt.request_body = claimed
        .destination
        .settings
        .event_body()
        .text(&claimed.event);
    attempt.request_headers = event_headers(&claimed.event, &claimed.delivery_id, T0 + 1_999);
    attempt.request_headers.extend([
        ("user-agent".to_owned(), "Hookline/test".to_owned()),
        ("webhook-signature".to_owned(), "v1,c2lnbmVk".to_owned()),
        ("x-note".to_owned(), "é \"quoted\" 🦀".to_owned()),
    ]);
    attempt
}

fn completion(attempt: Attempt, sent: Sent) -> Completion {
    let now = attempt.started_at;
    Completion::new(attempt, NextStep::Delivered, now, sent)
}

/// Records `completion` as node-a's, and reads back its delivery's attempts.
async fn record_and_read(store: &dyn Store, org: &OrgId, completion: Completion) -> Vec<Attempt> {
    let delivery = completion.attempt.delivery_id.clone();
    let batch = fixture::batch("node-a", vec![completion]);
    store.complete(batch).await.unwrap();
    store.list_attempts_of(org, &delivery).await.unwrap()
}

on_both_stores!(what_the_event_gives_is_kept_by_reference_and_read_back_as_sent);
async fn what_the_event_gives_is_kept_by_reference_and_read_back_as_sent(backend: Backend) {
    let destinations = [
        json!({"include_raw": false}),
        json!({"include_raw": true}),
        json!({"include_raw": true, "body": "data"}),
    ];
    let (store, org, claimed) = claimed_fan_out(&backend, &destinations).await;

    let mut sent = Vec::new();
    let mut completions = Vec::new();
    for delivery in &claimed {
        let body = delivery.destination.settings.event_body();
        let attempt = sent_from_event(delivery);
        sent.push((delivery.delivery_id.clone(), body, attempt.clone()));
        completions.push(completion(attempt, Sent::FromEvent { body }));
    }
    store
        .complete(fixture::batch("node-a", completions))
        .await
        .unwrap();

    // Read back from the file alone: the event as stored, not as the writer cached it.
    drop(store);
    let reopened = backend.open().await;
    for (delivery_id, body, attempt) in &sent {
        let read = reopened.list_attempts_of(&org, delivery_id).await.unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].request_body, attempt.request_body, "{body:?}");
        assert_eq!(read[0].request_headers, attempt.request_headers);
        let with_raw = *body == EventBody::Envelope { include_raw: true };
        assert_eq!(attempt.request_body.contains("verbatim"), with_raw);
        let data_alone = *body == EventBody::Data;
        assert_eq!(attempt.request_body.contains("\"data\""), !data_alone);
    }
    drop(reopened);

    // No copy of any body, and only the three headers the event does not give.
    assert_eq!(
        stored_requests(&backend).await,
        [(0, 1, true, 3), (0, 2, true, 3), (0, 3, true, 3)]
    );
}

on_both_stores!(headers_that_do_not_begin_as_the_event_gives_them_are_kept_whole);
async fn headers_that_do_not_begin_as_the_event_gives_them_are_kept_whole(backend: Backend) {
    let (store, org, claimed) = claimed_fan_out(&backend, &[json!({})]).await;
    let mut attempt = sent_from_event(&claimed[0]);
    // A second later than the attempt started: not what `event_headers` would rebuild.
    attempt.request_headers[2].1 = (T0 / 1000 + 2).to_string();
    let headers = attempt.request_headers.clone();
    let sent = Sent::FromEvent {
        body: EventBody::Envelope { include_raw: false },
    };
    let read = record_and_read(&*store, &org, completion(attempt, sent)).await;
    assert_eq!(read[0].request_headers, headers);
    assert_eq!(stored_requests(&backend).await, [(0, 1, false, 9)]);
}

on_both_stores!(other_requests_are_stored_as_sent);
async fn other_requests_are_stored_as_sent(backend: Backend) {
    let (store, org, claimed) = claimed_fan_out(&backend, &[json!({})]).await;
    let completion = fixture::delivered(&claimed[0], T0);
    let attempts = record_and_read(&*store, &org, completion).await;
    assert_eq!(attempts[0].request_body, "{}");
    assert_eq!(attempts[0].request_headers.len(), 1);
    assert_eq!(stored_requests(&backend).await, [(2, 0, false, 1)]);
}
