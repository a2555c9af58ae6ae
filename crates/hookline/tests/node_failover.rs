//! Nodes on PostgreSQL heartbeat: a killed node's leases are freed by the others about
//! 15 s after it falls silent, and a node restarted under its name takes its leases back
//! at once, however long the leases are (here 15 minutes: without heartbeats, every
//! wait below would time out). Two running nodes cannot share a name.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hookline_postgres::test_databases::fresh_postgres_database;
use serde_json::json;
use support::process::{
    KillOnDrop, TEST_MASTER_KEY, create_org_with_binary, free_port, publish_many, start_pg_node,
};
use support::receiver::{Receiver, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_hookline");
const EVENTS: usize = 8;
/// Well under the leases (300 s timeout + 600 s margin).
const WITHIN: Duration = Duration::from_secs(90);

fn node_args(name: &str) -> Vec<&str> {
    vec!["--node-id", name, "--lease-margin-secs", "600"]
}

/// A destination whose receiver holds the first `EVENTS` requests unanswered for longer
/// than the test, then answers at once; those events, published through `base` (so
/// that node leases them at publish), are in flight there when this returns.
async fn events_in_flight_on(base: &str, key: &str) -> (Receiver, Vec<String>) {
    let receiver = Receiver::start().await;
    receiver.script((0..EVENTS).map(|_| Reply::ok().delay(Duration::from_secs(600))));
    let created = reqwest::Client::new()
        .post(format!("{base}/v1/destinations"))
        .bearer_auth(key)
        .json(&json!({"url": receiver.url, "timeout_secs": 300}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let published = publish_many(&[base.to_owned()], key, 0..EVENTS).await;
    receiver.wait_for(EVENTS, WITHIN).await;
    (receiver, published.into_iter().collect())
}

/// Waits until every event was received twice (held, then sent again and answered);
/// returns how long that took.
async fn wait_resent(receiver: &Receiver, events: &[String]) -> Duration {
    let started = Instant::now();
    let resent = receiver.wait_for(2 * EVENTS, WITHIN).await;
    for event in events {
        let copies = resent
            .iter()
            .filter(|r| r.header("webhook-id") == event)
            .count();
        assert_eq!(copies, 2, "event {event} sent again once");
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_leases_are_freed_by_the_others_in_seconds() {
    let database_url = fresh_postgres_database().await;
    let key = create_org_with_binary(BIN, &["--database-url", &database_url]);
    let (base_a, node_a) = start_pg_node(BIN, &database_url, &node_args("a")).await;
    let (receiver, events) = events_in_flight_on(&base_a, &key).await;
    // Started now, so that every held request is node a's.
    let (_base_b, _node_b) = start_pg_node(BIN, &database_url, &node_args("b")).await;
    drop(node_a);
    let took = wait_resent(&receiver, &events).await;
    eprintln!("node b sent node a's {EVENTS} deliveries again {took:?} after the kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_under_its_name_takes_its_leases_back_at_once() {
    let database_url = fresh_postgres_database().await;
    let key = create_org_with_binary(BIN, &["--database-url", &database_url]);
    let (base, node) = start_pg_node(BIN, &database_url, &node_args("a")).await;
    let (receiver, events) = events_in_flight_on(&base, &key).await;

    // While it runs, no second node may take its name.
    let port = free_port();
    let mut twin = KillOnDrop(
        Command::new(BIN)
            .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &database_url, "--node-id", "a"])
            .env("HOOKLINE_MASTER_KEY", TEST_MASTER_KEY)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + WITHIN;
    let status = loop {
        if let Some(status) = twin.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "a second node named 'a' kept running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(twin.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("node id 'a' is in use"), "{stderr}");

    drop(node);
    let (_base, _node) = start_pg_node(BIN, &database_url, &node_args("a")).await;
    let took = wait_resent(&receiver, &events).await;
    eprintln!("the restarted node sent its {EVENTS} deliveries again {took:?} after it started");
}
