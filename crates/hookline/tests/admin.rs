//! The admin commands on both stores, as the real binary: `org list`, `key create` for
//! an existing org, and `org delete`, which asks for `--yes`, refuses to run beside a
//! server on the embedded store, and leaves the org's keys dead and its deliveries
//! stopped.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use hookline_postgres::test_databases::fresh_postgres_database;
use hookline_verify::{Signed, verify};
use serde_json::{Value, json};
use support::process::{KillOnDrop, TEST_MASTER_KEY, free_port, wait_ready};
use support::receiver::{Receiver, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_hookline");

/// Runs `hookline args… store_args…`: success, stdout, stderr.
fn admin(args: &[&str], store: &[String]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .args(store)
        .env("HOOKLINE_MASTER_KEY", TEST_MASTER_KEY)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|_| panic!("not JSON: {out}"))
}

async fn serve(store: &[String]) -> (String, KillOnDrop) {
    let port = free_port();
    let server = KillOnDrop(
        Command::new(BIN)
            .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
            .args(store)
            .env("HOOKLINE_MASTER_KEY", TEST_MASTER_KEY)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    (base, server)
}

async fn status(base: &str, key: &str, path: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn orgs_keys_and_deletion_work_on(store: Vec<String>, embedded: bool) {
    let (ok, out, err) = admin(&["org", "list"], &store);
    assert!(ok && out.contains("no orgs yet"), "{out}{err}");
    let a = json_of(&admin(&["org", "create", "acme", "--json"], &store).1);
    let b = json_of(&admin(&["org", "create", "beta", "--json"], &store).1);
    let listed = json_of(&admin(&["org", "list", "--json"], &store).1);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "beta"]);
    let org_a = a["org_id"].as_str().unwrap();

    let (mut base, server) = serve(&store).await;
    let mut server = Some(server);
    let receiver = Receiver::start().await;
    receiver.fallback(Reply::status(500));
    let client = reqwest::Client::new();
    let key_a = a["api_key"].as_str().unwrap();
    let created = client
        .post(format!("{base}/v1/destinations"))
        .bearer_auth(key_a)
        .json(&json!({"url": receiver.url, "retry_schedule_secs": vec![1; 20]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let published = client
        .post(format!("{base}/v1/events"))
        .bearer_auth(key_a)
        .json(&json!({"type": "a.b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 202);
    receiver.wait_for(1, Duration::from_secs(10)).await;

    // A second key for an existing org works at once on the running server.
    let key = json_of(&admin(&["key", "create", "--org", org_a, "--json"], &store).1);
    let new_key = key["api_key"].as_str().unwrap();
    assert_eq!(status(&base, new_key, "/v1/api-keys").await, 200);
    let (ok, _, err) = admin(&["key", "create", "--org", "org_nope"], &store);
    assert!(!ok && err.contains("org"), "{err}");

    // Without --yes nothing happens.
    let (ok, _, err) = admin(&["org", "delete", org_a], &store);
    assert!(!ok && err.contains("--yes"), "{err}");
    assert_eq!(status(&base, key_a, "/v1/api-keys").await, 200);

    if embedded {
        let (ok, _, err) = admin(&["org", "delete", org_a, "--yes"], &store);
        assert!(!ok && err.contains("stop the server"), "{err}");
        server = None;
    }
    let (ok, out, err) = admin(&["org", "delete", org_a, "--yes", "--json"], &store);
    assert!(ok, "{err}");
    assert_eq!(json_of(&out)["deleted"], true);
    if embedded {
        let (restarted, process) = serve(&store).await;
        (base, server) = (restarted, Some(process));
    }
    for key in [key_a, new_key] {
        assert_eq!(status(&base, key, "/v1/api-keys").await, 401);
    }
    assert_eq!(
        status(&base, b["api_key"].as_str().unwrap(), "/v1/api-keys").await,
        200
    );
    // The signing secret `org create` showed signs the org's one-shot deliveries.
    let one_shot = Receiver::start().await;
    let published = client
        .post(format!("{base}/v1/events"))
        .bearer_auth(b["api_key"].as_str().unwrap())
        .json(&json!({"type": "a.b", "stream": "s", "webhook_url": one_shot.url}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 202);
    let request = &one_shot.wait_for(1, Duration::from_secs(10)).await[0];
    let signed = Signed {
        id: request.header("webhook-id"),
        timestamp: request.header("webhook-timestamp"),
        signature: request.header("webhook-signature"),
        body: &request.body,
    };
    let now = chrono::Utc::now().timestamp();
    let secret = b["signing_secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{b}");
    assert_eq!(verify(secret, &signed, now), Ok(()));
    let other = a["signing_secret"].as_str().unwrap();
    assert!(verify(other, &signed, now).is_err());
    let listed = json_of(&admin(&["org", "list", "--json"], &store).1);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    // Its failing delivery, retried every second before, is not tried again.
    let before = receiver.received().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.received().len(),
        before,
        "a deleted org's delivery was retried"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_on_the_embedded_store() {
    let data = tempfile::tempdir().unwrap();
    let store = vec!["--data-dir".to_owned(), data.path().display().to_string()];
    orgs_keys_and_deletion_work_on(store, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_on_postgres() {
    let store = vec!["--database-url".to_owned(), fresh_postgres_database().await];
    orgs_keys_and_deletion_work_on(store, false).await;
}
