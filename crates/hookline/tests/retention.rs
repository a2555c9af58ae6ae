//! Retention with a window of seconds: finished deliveries, their attempts and the
//! events nothing refers to any more are removed; a delivery still waiting for a retry,
//! and its event, stay; streams go on numbering where they were.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use support::app::{TestApp, id};
use support::pair::Pair;
use support::receiver::{Receiver, Reply};

#[tokio::test]
async fn old_finished_records_go_and_unfinished_ones_stay() {
    let app = TestApp::spawn_tuned(true, false, |c| {
        c.retention_days = 2.0 / 86_400.0;
        c.retention_interval_secs = 1;
    })
    .await;
    let Pair {
        healthy,
        failing,
        good,
        bad,
    } = Pair::start(&app, Reply::status(503), &[600]).await;
    let delivered = app.publish(json!({"type": "ok.a", "stream": "s1"})).await;
    let waiting = app.publish(json!({"type": "bad.b", "stream": "s1"})).await;
    let unmatched = app.publish(json!({"type": "none.c", "stream": "s1"})).await;
    assert_eq!(unmatched["deliveries"], 0);
    healthy.wait_for(1, Duration::from_secs(10)).await;
    failing.wait_for(1, Duration::from_secs(10)).await;
    let done = app.only_delivery(id(&good)).await;
    let retrying = app.only_delivery(id(&bad)).await;
    app.wait_status(id(&done), "delivered", Duration::from_secs(10))
        .await;
    app.wait_status(id(&retrying), "failed", Duration::from_secs(10))
        .await;

    // Gone within a few passes of the two-second window.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (event, _) = app.get(&format!("/v1/events/{}", id(&delivered))).await;
        let (never, _) = app.get(&format!("/v1/events/{}", id(&unmatched))).await;
        let (delivery, _) = app.get(&format!("/v1/deliveries/{}", id(&done))).await;
        if [event, never, delivery]
            .iter()
            .all(|s| *s == StatusCode::NOT_FOUND)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not purged: {event} {never} {delivery}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, attempts) = app
        .get(&format!("/v1/attempts?delivery={}", id(&done)))
        .await;
    assert_eq!(attempts["data"], json!([]), "{attempts}");

    // The delivery waiting for its retry, its attempt and its event are all kept.
    let (status, kept) = app.get(&format!("/v1/deliveries/{}", id(&retrying))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kept["status"], "failed");
    assert_eq!(kept["attempt_history"].as_array().unwrap().len(), 1);
    let (status, _) = app.get(&format!("/v1/events/{}", id(&waiting))).await;
    assert_eq!(status, StatusCode::OK);

    // The stream goes on from where it was, and lists what is left.
    let next = app.publish(json!({"type": "none.d", "stream": "s1"})).await;
    assert_eq!(next["seq"], 4);
    let (_, listed) = app.get("/v1/events?stream=s1").await;
    let seqs: Vec<i64> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 4]);
}

/// `hookline org retention`, as the real binary, on the running server's store.
fn set_retention(app: &TestApp, org: &str, days: &str) -> serde_json::Value {
    let store: Vec<String> = match &app.config.store.database_url {
        Some(url) => vec!["--database-url".into(), url.clone()],
        None => vec![
            "--data-dir".into(),
            app.config.store.data_dir.display().to_string(),
        ],
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["org", "retention", org, "--days", days, "--json"])
        .args(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn an_org_of_its_own_retention_is_purged_while_the_server_keeps_everything() {
    let app = TestApp::spawn_tuned(true, false, |c| {
        c.retention_days = 0.0;
        c.retention_interval_secs = 1;
    })
    .await;
    let receiver = Receiver::start().await;
    app.destination(&receiver.url, json!({})).await;
    let other_key = app.other_org_key().await;
    let (_, theirs) = app
        .request_as(
            &other_key,
            reqwest::Method::POST,
            "/v1/events",
            Some(json!({"type": "kept.forever"})),
        )
        .await;
    let set = set_retention(&app, app.org_id.as_str(), &(2.0 / 86_400.0).to_string());
    assert_eq!(set["org_id"], app.org_id.as_str());
    let mine = app.publish(json!({"type": "short.lived"})).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;

    let deadline = Instant::now() + Duration::from_secs(15);
    while app.get(&format!("/v1/events/{}", id(&mine))).await.0 != StatusCode::NOT_FOUND {
        assert!(
            Instant::now() < deadline,
            "the org's own retention never purged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = app
        .request_as(
            &other_key,
            reqwest::Method::GET,
            &format!("/v1/events/{}", id(&theirs)),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the server keeps everything for other orgs"
    );

    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["org", "retention", app.org_id.as_str(), "--days=-1"])
        .args([
            "--data-dir",
            &app.config.store.data_dir.display().to_string(),
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("0 or more"),
        "{said}"
    );
}
