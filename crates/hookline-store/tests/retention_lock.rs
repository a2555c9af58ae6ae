//! On PostgreSQL one node purges at a time: while another transaction holds the
//! retention lock, a purge removes nothing; once it is released, the same purge does.

use hookline_postgres::PgStore;
use hookline_postgres::test_databases::fresh_postgres_database;
use hookline_store::testing as fixture;
use hookline_store::{ApiKeyRecord, Org, Purged, Queue, Records};
use serde_json::json;
use sqlx::Connection;

const T0: i64 = 1_800_000_000_000;

#[tokio::test]
async fn a_purge_waits_for_no_one_and_removes_nothing_while_another_node_purges() {
    let url = fresh_postgres_database().await;
    let store = PgStore::connect(&url, 2).await.unwrap();
    let org = Org::new("a", T0);
    let (key, _) = ApiKeyRecord::issue(&org.id, T0);
    store.create_org(&org, &key).await.unwrap();
    let published = store
        .publish(&org.id, fixture::event("s", json!({})), T0)
        .await
        .unwrap();
    assert_eq!(published.deliveries, 0);

    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut held = other.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('hookline-retention', 0))")
        .execute(&mut *held)
        .await
        .unwrap();
    let blocked = store.purge(T0 + 1_000, Some(1), 100).await.unwrap();
    assert_eq!(blocked, Purged::default());
    assert!(
        store
            .get_event(&org.id, &published.event.id)
            .await
            .unwrap()
            .is_some()
    );

    held.commit().await.unwrap();
    // As the retention task does: until a call finds nothing (a call that drops a day
    // of partitions does only that).
    let mut purged = Purged::default();
    loop {
        let pass = store.purge(T0 + 1_000, Some(1), 100).await.unwrap();
        if pass == Purged::default() {
            break;
        }
        purged += pass;
    }
    assert_eq!(purged.events, 1);
    assert!(
        store
            .get_event(&org.id, &published.event.id)
            .await
            .unwrap()
            .is_none()
    );
}
