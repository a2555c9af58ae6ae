//! A node that loses PostgreSQL keeps answering /healthz, answers /readyz and publishes
//! with 503 (never a 2xx for an event it could not commit), recovers by itself when
//! the database returns, and delivers every event it acknowledged. The PostgreSQL it
//! stops is its own (`OwnPostgres`), never the machine's.

mod support;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hookline_postgres::own_instance::OwnPostgres;
use serde_json::{Value, json};
use support::process::{create_org_with_binary, wait_ready};
use support::receiver::Receiver;

const BIN: &str = env!("CARGO_BIN_EXE_hookline");

/// The node, killed when the test ends however it ends.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    match request.timeout(Duration::from_secs(10)).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_503_and_recovers_without_losing_events() {
    let postgres = OwnPostgres::start();
    let database_url = postgres.url();
    let key = create_org_with_binary(BIN, &["--database-url", &database_url]);
    let port = support::process::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _node = Node(
        Command::new(BIN)
            .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &database_url, "--lease-margin-secs", "2"])
            .env("HOOKLINE_MASTER_KEY", support::process::TEST_MASTER_KEY)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    wait_ready(&base).await;
    let receiver = Receiver::start().await;
    let created = client
        .post(format!("{base}/v1/destinations"))
        .bearer_auth(&key)
        .json(&json!({"url": receiver.url, "timeout_secs": 1, "retry_schedule_secs": [0, 1, 1, 1, 1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let mut acknowledged = HashSet::new();
    let mut publish = async |n: usize| -> u16 {
        let response = client
            .post(format!("{base}/v1/events"))
            .bearer_auth(&key)
            .json(&json!({"type": "outage.test", "data": {"n": n}}))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match response {
            Ok(r) => {
                let status = r.status().as_u16();
                if r.status().is_success() {
                    let body: Value = r.json().await.unwrap();
                    acknowledged.insert(body["id"].as_str().unwrap().to_owned());
                }
                status
            }
            Err(_) => 0,
        }
    };
    for n in 0..100 {
        assert_eq!(publish(n).await, 202);
    }

    postgres.stop();
    let health = status_of(client.get(format!("{base}/healthz"))).await;
    let ready = status_of(client.get(format!("{base}/readyz"))).await;
    let mut during = Vec::new();
    for n in 100..105 {
        during.push(publish(n).await);
    }
    postgres.resume();
    assert_eq!(health, 200, "/healthz answers while the database is down");
    assert_eq!(ready, 503, "/readyz says the node cannot serve");
    assert!(
        during.iter().all(|s| *s == 503),
        "publishes while the database is down answer 503: {during:?}"
    );

    wait_ready(&base).await;
    for n in 200..300 {
        assert_eq!(
            publish(n).await,
            202,
            "publishing works again after recovery"
        );
    }
    receiver
        .wait_for_events(&acknowledged, Duration::from_secs(60))
        .await;
    assert_eq!(acknowledged.len(), 200);
}
