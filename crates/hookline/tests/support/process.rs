//! Helpers for tests that run the real `hookline` binary as child processes.

use std::process::Child;
use std::time::{Duration, Instant};

/// The master key (base64 of 32 bytes) server processes on PostgreSQL share in tests.
pub const TEST_MASTER_KEY: &str = "dGVzdHMtb25seS1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=";

/// A port that was free a moment ago, for a child process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the server at `base` answers /readyz with 200; panics after 30 s.
pub async fn wait_ready(base: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{base} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `hookline org create` with `store_args` (`--data-dir …` or `--database-url …`)
/// and returns the API key it printed.
pub fn create_org_with_binary(binary: &str, store_args: &[&str]) -> String {
    let mut command = std::process::Command::new(binary);
    command
        .args(["org", "create", "test", "--json"])
        .args(store_args);
    // The org's signing secret is sealed with the key the nodes use (on the embedded
    // store, the one in the data directory).
    if store_args.contains(&"--database-url") {
        command.env("HOOKLINE_MASTER_KEY", TEST_MASTER_KEY);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let org: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    org["api_key"].as_str().unwrap().to_owned()
}

/// Publishes the events numbered `range` from 12 concurrent workers, spread over the
/// `nodes` round-robin and over 7 streams; every answer must be 202. Their ids.
pub async fn publish_many(
    nodes: &[String],
    key: &str,
    range: std::ops::Range<usize>,
) -> std::collections::HashSet<String> {
    const WORKERS: usize = 12;
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        let (client, nodes, key) = (client.clone(), nodes.to_vec(), key.to_owned());
        let numbers = (range.start + worker..range.end).step_by(WORKERS);
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for n in numbers {
                let base = &nodes[n % nodes.len()];
                let body = serde_json::json!({
                    "type": "run.done", "stream": format!("s{}", n % 7), "data": {"n": n}
                });
                let response = client
                    .post(format!("{base}/v1/events"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 202);
                let body: serde_json::Value = response.json().await.unwrap();
                ids.push(body["id"].as_str().unwrap().to_owned());
            }
            ids
        });
    }
    let mut all = std::collections::HashSet::new();
    while let Some(ids) = tasks.join_next().await {
        all.extend(ids.unwrap());
    }
    all
}

/// Kills the child when the test ends, pass or fail.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `hookline serve` node of the binary `bin` on PostgreSQL at `database_url`, with
/// `args` added; ready when this returns.
pub async fn start_pg_node(bin: &str, database_url: &str, args: &[&str]) -> (String, KillOnDrop) {
    let port = free_port();
    let child = std::process::Command::new(bin)
        .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", database_url])
        .args(args)
        .env("HOOKLINE_MASTER_KEY", TEST_MASTER_KEY)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let node = KillOnDrop(child);
    wait_ready(&base).await;
    (base, node)
}
