//! The server's log says what happens to deliveries, as the real binary writes it: a
//! `warn` line for every failed attempt (destination, delivery, status or error kind,
//! when it is tried next), for a dead letter, and none for a success at the default
//! level; never the destination's URL, whose query may hold a token. The summary lines
//! add up to what happened.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::process::{KillOnDrop, create_org_with_binary, free_port, wait_ready};
use support::receiver::{Receiver, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_hookline");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_and_dead_letters_are_logged_without_the_url() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let key = create_org_with_binary(BIN, &["--data-dir", data_dir]);
    let port = free_port();
    let mut server = KillOnDrop(
        Command::new(BIN)
            .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--data-dir", data_dir, "--log-format", "json"])
            .args(["--log-summary-secs", "1"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    let failing = Receiver::start().await;
    failing.fallback(Reply::status(503));
    let healthy = Receiver::start().await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for (receiver, types) in [(&failing, "a.fail"), (&healthy, "a.ok")] {
        let created: serde_json::Value = client
            .post(format!("{base}/v1/destinations"))
            .bearer_auth(&key)
            .json(&json!({
                "url": format!("{}?token=tok_in_the_query", receiver.url),
                "types": [types],
                "retry_schedule_secs": [0],
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    for event_type in ["a.fail", "a.ok"] {
        let published = client
            .post(format!("{base}/v1/events"))
            .bearer_auth(&key)
            .json(&json!({"type": event_type}))
            .send()
            .await
            .unwrap();
        assert_eq!(published.status(), 202);
    }
    failing.wait_for(2, Duration::from_secs(10)).await;
    healthy.wait_for(1, Duration::from_secs(10)).await;
    // Past the last summary after everything happened.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    server.0.kill().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(server.0.stderr.as_mut().unwrap(), &mut log).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let about = |destination: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["fields"]["destination"] == destination)
            .collect()
    };
    let failed = about(&ids[0]);
    let messages: Vec<&str> = failed
        .iter()
        .map(|l| l["fields"]["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "attempt failed; it will be retried",
            "attempt failed and no retry is left: dead-lettered"
        ],
        "{log}"
    );
    assert!(failed.iter().all(|l| l["level"] == "WARN"));
    assert!(failed[0]["fields"]["next_attempt_at"].is_string(), "{log}");
    assert!(
        failed[0]["fields"]["status"]
            .as_str()
            .unwrap()
            .contains("503")
    );
    assert!(
        about(&ids[1]).is_empty(),
        "a success is not logged at info: {log}"
    );
    assert!(
        !log.contains("tok_in_the_query"),
        "the URL's token is in the log"
    );
    let summaries: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["due"].is_u64())
        .collect();
    assert!(summaries.len() >= 2, "{log}");
    let total = |field: &str| -> u64 {
        summaries
            .iter()
            .map(|l| l["fields"][field].as_u64().unwrap())
            .sum()
    };
    assert_eq!(total("published"), 2, "{log}");
    assert_eq!(total("delivered"), 1);
    assert_eq!(total("failed"), 2);
    assert_eq!(total("dead_lettered"), 1);
    let last = summaries.last().unwrap();
    assert_eq!(last["fields"]["due"], 0, "nothing waits at the end");
    assert_eq!(last["level"], "INFO");
}
