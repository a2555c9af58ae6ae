//! On PostgreSQL a fresh delivery is leased to the publishing node and handed to its
//! dispatcher at once, sparing the claim's write, but only while that node is the only
//! member: once another has joined, it waits for a claim, which counts what each holds.

use hookline_core::clock::{Clock, SystemClock};
use hookline_dispatch::NodeAdmission;
use hookline_postgres::PgStore;
use hookline_postgres::test_databases::fresh_postgres_database;
use hookline_store::testing as fixture;
use hookline_store::{ApiKeyRecord, Org, Queue, Records};
use serde_json::json;
use sqlx::PgPool;

#[tokio::test]
async fn a_fresh_delivery_goes_to_the_publishing_node_while_it_is_the_only_member() {
    let url = fresh_postgres_database().await;
    let store = PgStore::connect(&url, 4).await.unwrap();
    let pool = PgPool::connect(&url).await.unwrap();
    let now = SystemClock.now_ms();
    let org = Org::new("o", now);
    let (key, _) = ApiKeyRecord::issue(&org.id, now);
    store.create_org(&org, &key).await.unwrap();
    let destination = fixture::destination(&org.id, json!({"max_in_flight": 10}), now);
    store
        .insert_destination(&destination, u32::MAX)
        .await
        .unwrap();
    let (node, mut handed) = NodeAdmission::new("node-a".into(), 5_000, 100, Default::default());
    store.attach(node.clone());

    let published = store
        .publish(&org.id, fixture::event("s", json!({})), now)
        .await
        .unwrap();
    assert_eq!((published.deliveries, published.queued), (1, 0));
    let taken = handed.try_recv().expect("handed to the dispatcher at once");
    assert_eq!(taken.event.id, published.event.id);
    assert_eq!(taken.attempt, 1);
    let (state, leased_by): (String, Option<String>) =
        sqlx::query_as("SELECT state, leased_by FROM deliveries WHERE id = $1")
            .bind(taken.delivery_id.as_str())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), leased_by.as_deref()),
        ("delivering", Some("node-a"))
    );
    assert_eq!(node.in_flight().count(&destination.id), 1);

    // Another node is a member: the next delivery is left to a claim.
    sqlx::query("INSERT INTO nodes (id, heartbeat_at) VALUES ('node-b', 0)")
        .execute(&pool)
        .await
        .unwrap();
    let second = store
        .publish(&org.id, fixture::event("s", json!({})), now)
        .await
        .unwrap();
    assert_eq!((second.deliveries, second.queued), (1, 1));
    assert!(handed.try_recv().is_err(), "nothing more was handed over");
    let pending: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(pending, 1);
}
