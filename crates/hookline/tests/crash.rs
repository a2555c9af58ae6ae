//! Crash safety: the real binary is killed with SIGKILL while deliveries are in flight
//! and restarted on the same data directory; every acknowledged event still arrives.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::process::{create_org_with_binary, free_port, publish_many, wait_ready};
use support::receiver::{Receiver, Reply};

const EVENTS: usize = 1000;
const BIN: &str = env!("CARGO_BIN_EXE_hookline");

fn start_server(dir: &Path, port: u16) -> Child {
    Command::new(BIN)
        .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the hookline binary starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_flight_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_org_with_binary(BIN, &["--data-dir", dir.path().to_str().unwrap()]);

    let receiver = Receiver::start().await;
    receiver.fallback(Reply::ok().delay(Duration::from_millis(40)));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(dir.path(), port);
    let client = reqwest::Client::new();
    wait_ready(&base).await;

    let created = client
        .post(format!("{base}/v1/destinations"))
        .bearer_auth(&key)
        .json(&json!({"url": receiver.url, "max_in_flight": 5, "retry_schedule_secs": [0, 1, 1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let published = publish_many(std::slice::from_ref(&base), &key, 0..EVENTS).await;
    assert_eq!(published.len(), EVENTS);

    let before_kill = receiver
        .wait_for(EVENTS / 4, Duration::from_secs(60))
        .await
        .len();
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(before_kill < EVENTS, "the kill must land mid-flight");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(dir.path(), port);
    wait_ready(&base).await;

    let deadline = Instant::now() + Duration::from_secs(90);
    let unique = loop {
        let unique: HashSet<String> = receiver
            .received()
            .iter()
            .map(|r| r.header("webhook-id").to_owned())
            .collect();
        if unique.len() >= EVENTS || Instant::now() > deadline {
            break unique;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    server.kill().unwrap();
    server.wait().unwrap();

    assert_eq!(
        unique, published,
        "every acknowledged event arrived, and nothing else"
    );
    let mut bodies: HashMap<String, Vec<Value>> = HashMap::new();
    for request in receiver.received() {
        let body = request.json();
        assert_eq!(body["id"], request.header("webhook-id"));
        bodies
            .entry(request.header("webhook-id").to_owned())
            .or_default()
            .push(body);
    }
    for (webhook_id, copies) in &bodies {
        assert!(
            copies.windows(2).all(|w| w[0] == w[1]),
            "duplicates of {webhook_id} differ"
        );
    }
    let duplicates = receiver.received().len() - unique.len();
    eprintln!(
        "received {} requests, {duplicates} duplicates, {before_kill} before the kill",
        receiver.received().len()
    );
}
