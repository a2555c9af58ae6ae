//! PostgreSQL keeps deliveries and attempts in a partition per day of their event:
//! the days ahead exist from the start; retention drops a day whole once every delivery
//! in it has finished and every org's retention has passed it, and removes row by row
//! what a day held back; the tables from before partitioning keep their rows.

use std::sync::Arc;

use hookline_core::clock::{Clock, SystemClock};
use hookline_core::partition::{DAY_MS, Day};
use hookline_dispatch::NodeAdmission;
use hookline_postgres::PgStore;
use hookline_postgres::test_databases::{
    fresh_postgres_database, postgres_database_before_partitioning,
};
use hookline_store::testing as fixture;
use hookline_store::{
    ApiKeyRecord, AttemptQuery, ClaimedDelivery, Org, PageRequest, Purged, Records, Store,
};
use serde_json::json;
use sqlx::PgPool;

const WINDOW: i64 = 30 * DAY_MS;

/// The partitions of `table`, by name.
async fn partitions(pool: &PgPool, table: &str) -> Vec<String> {
    let mut names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = $1::regclass",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap();
    names.sort();
    names
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Purges at `now` as the retention task does: call after call until one comes back
/// with nothing.
async fn purge_all(store: &dyn Store, now: i64) -> Purged {
    let mut total = Purged::default();
    loop {
        let pass = store.purge(now, Some(WINDOW), 100).await.unwrap();
        if pass == Purged::default() {
            return total;
        }
        total += pass;
    }
}

/// An org with a destination taking every event, and `events` events published to it
/// at `now`.
async fn org_with_events(store: &dyn Store, name: &str, events: usize, now: i64) -> Org {
    let org = Org::new(name, now);
    let (key, _) = ApiKeyRecord::issue(&org.id, now);
    store.create_org(&org, &key).await.unwrap();
    let destination = fixture::destination(&org.id, json!({"max_in_flight": 100}), now);
    store
        .insert_destination(&destination, u32::MAX)
        .await
        .unwrap();
    for _ in 0..events {
        store
            .publish(&org.id, fixture::event("s", json!({})), now)
            .await
            .unwrap();
    }
    org
}

/// Whatever is due at `now`, claimed by node-a (`expected` of it).
async fn claim(store: &dyn Store, now: i64, expected: usize) -> Vec<ClaimedDelivery> {
    let node = NodeAdmission::new("node-a".into(), 5_000, usize::MAX, Default::default()).0;
    let claimed = store
        .claim_due(&fixture::claim(node, now, 100))
        .await
        .unwrap();
    assert_eq!(claimed.len(), expected);
    claimed
}

async fn deliver(store: &dyn Store, claimed: &[ClaimedDelivery], now: i64) {
    let completions = claimed.iter().map(|c| fixture::delivered(c, now)).collect();
    store
        .complete(fixture::batch("node-a", completions))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_days_ahead_exist_and_a_finished_day_goes_whole_once_retention_passes_it() {
    let url = fresh_postgres_database().await;
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(&url, 2).await.unwrap());
    let pool = PgPool::connect(&url).await.unwrap();
    let now = SystemClock.now_ms();
    let today = format!("deliveries_p{}", Day::of(now).name);
    let last = format!("deliveries_p{}", Day::of(now + 7 * DAY_MS).name);
    let days = partitions(&pool, "deliveries").await;
    assert!(days.contains(&today) && days.contains(&last), "{days:?}");
    assert_eq!(
        partitions(&pool, "attempts").await.len(),
        days.len(),
        "attempts are partitioned alike"
    );
    assert_eq!(store.prepare(now).await.unwrap(), 0, "nothing more to make");

    org_with_events(&*store, "a", 3, now).await;
    let claimed = claim(&*store, now, 3).await;
    deliver(&*store, &claimed[..2], now).await;

    // Forty days on, the day is past a thirty-day retention, but one delivery in it is
    // still being sent: the day stays, and only its finished rows go, one by one.
    let later = now + 40 * DAY_MS;
    let held = purge_all(&*store, later).await;
    assert!(partitions(&pool, "deliveries").await.contains(&today));
    assert_eq!((held.deliveries, held.attempts), (2, 2), "{held:?}");
    assert_eq!(held.events, 2);
    assert!(held.days >= 1, "the empty days around it go: {held:?}");
    assert_eq!(count(&pool, "deliveries").await, 1);
    assert_eq!(
        count(&pool, "events").await,
        1,
        "the unfinished one's event stays"
    );

    // Once it has finished, the whole day goes, and its event with it.
    deliver(&*store, &claimed[2..], now).await;
    let dropped = purge_all(&*store, later).await;
    assert_eq!(dropped.days, 1, "{dropped:?}");
    assert_eq!(dropped.deliveries, 0, "not row by row: {dropped:?}");
    assert_eq!(dropped.events, 1);
    assert!(!partitions(&pool, "deliveries").await.contains(&today));
    assert!(
        !partitions(&pool, "attempts")
            .await
            .iter()
            .any(|p| p.ends_with(&today[11..]))
    );
    for table in ["deliveries", "attempts", "events"] {
        assert_eq!(count(&pool, table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn an_org_that_keeps_more_holds_its_day_and_the_others_go_row_by_row() {
    let url = fresh_postgres_database().await;
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(&url, 2).await.unwrap());
    let pool = PgPool::connect(&url).await.unwrap();
    let now = SystemClock.now_ms();
    let keeper = org_with_events(&*store, "keeper", 2, now).await;
    assert!(
        store
            .set_org_retention(&keeper.id, Some(90.0))
            .await
            .unwrap()
    );
    org_with_events(&*store, "other", 3, now).await;
    deliver(&*store, &claim(&*store, now, 5).await, now).await;

    let purged = purge_all(&*store, now + 40 * DAY_MS).await;
    assert_eq!((purged.deliveries, purged.events), (3, 3), "{purged:?}");
    let today = format!("deliveries_p{}", Day::of(now).name);
    assert!(partitions(&pool, "deliveries").await.contains(&today));
    let kept: Vec<String> = sqlx::query_scalar("SELECT DISTINCT org_id FROM deliveries")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(kept, [keeper.id.to_string()]);
    assert_eq!(count(&pool, "attempts").await, 2);
}

#[tokio::test]
async fn rows_from_before_partitioning_stay_and_are_sent_and_recorded() {
    // Rows as a store writes them (the tables partitioning leaves alone, and an event
    // and its pending delivery), copied into a database from before partitioning.
    let now = SystemClock.now_ms();
    let source = fresh_postgres_database().await;
    let writer = PgStore::connect(&source, 2).await.unwrap();
    let org = org_with_events(&writer, "old", 1, now).await;
    let source = PgPool::connect(&source).await.unwrap();
    let url = postgres_database_before_partitioning().await;
    let old = PgPool::connect(&url).await.unwrap();
    for table in [
        "orgs",
        "api_keys",
        "destinations",
        "streams",
        "events",
        "deliveries",
    ] {
        let rows: Vec<serde_json::Value> =
            sqlx::query_scalar(&format!("SELECT to_jsonb(t) FROM {table} t"))
                .fetch_all(&source)
                .await
                .unwrap();
        assert!(!rows.is_empty(), "{table}");
        for row in rows {
            sqlx::query(&format!(
                "INSERT INTO {table} SELECT * FROM jsonb_populate_record(NULL::{table}, $1)"
            ))
            .bind(row)
            .execute(&old)
            .await
            .unwrap();
        }
    }

    let store = PgStore::connect(&url, 2).await.unwrap();
    assert_eq!(
        count(&old, "deliveries_legacy").await,
        1,
        "the row stayed in place"
    );
    let claimed = claim(&store, now, 1).await;
    deliver(&store, &claimed, now).await;
    let state: String = sqlx::query_scalar("SELECT state FROM deliveries")
        .fetch_one(&old)
        .await
        .unwrap();
    assert_eq!(state, "delivered");
    let query = AttemptQuery {
        page: PageRequest {
            limit: 10,
            cursor: None,
        },
        ..AttemptQuery::default()
    };
    let attempts = store.list_attempts(&org.id, &query).await.unwrap();
    assert_eq!(attempts.data.len(), 1);
    assert_eq!(attempts.data[0].delivery_id, claimed[0].delivery_id);
    assert_eq!(
        count(&old, "attempts_legacy").await,
        1,
        "its event is from before"
    );
}
