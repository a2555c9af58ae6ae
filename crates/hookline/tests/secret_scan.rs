//! No secret leaks: a real server process (debug logging on) creates destinations with
//! known secrets, rotates one, delivers, fails and retries; then its whole log output,
//! every file in its data directory and every GET response are searched for the
//! plaintext secrets, a receiver token set as a destination header and the API key of the
//! run. None may appear.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::process::{KillOnDrop, create_org_with_binary, free_port, wait_ready};
use support::receiver::{Receiver, Reply};
use support::secrets::{SECRET_A, SECRET_B, all_bytes, contains};

const BIN: &str = env!("CARGO_BIN_EXE_hookline");
/// A receiver's token in a destination header: sent, but never shown or stored in the clear.
const HEADER_TOKEN: &str = "rcv_dG9rZW4tZm9yLXRoZS1yZWNlaXZlcg";

#[tokio::test]
async fn secrets_appear_in_no_log_file_or_get_response() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let key = create_org_with_binary(BIN, &["--data-dir", data_dir]);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log_path = logs.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = KillOnDrop(
        Command::new(BIN)
            .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--data-dir", data_dir])
            .env("RUST_LOG", "trace")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    wait_ready(&base).await;
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let request = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&key);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.text().await.unwrap())
        }
    };

    let healthy = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.script([Reply::status(500).body("try again")]);
    let mut destinations = Vec::new();
    for (url, extra) in [
        (
            &healthy.url,
            json!({"secret": SECRET_A, "headers": {"Authorization": format!("Bearer {HEADER_TOKEN}")}}),
        ),
        (
            &failing.url,
            json!({"secret": SECRET_A, "retry_schedule_secs": [0]}),
        ),
        (&healthy.url, json!({"signature": {"scheme": "ed25519"}})),
    ] {
        let mut body = extra;
        body["url"] = json!(url);
        let (status, text) =
            call(reqwest::Method::POST, "/v1/destinations".into(), Some(body)).await;
        assert_eq!(status, 201, "{text}");
        destinations.push(serde_json::from_str::<Value>(&text).unwrap());
    }
    let rotate = format!(
        "/v1/destinations/{}/rotate-secret",
        destinations[0]["id"].as_str().unwrap()
    );
    let (status, text) = call(
        reqwest::Method::POST,
        rotate,
        Some(json!({"secret": SECRET_B, "grace_secs": 60})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = call(
        reqwest::Method::POST,
        "/v1/org/signing-secret/rotate".into(),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let org_secret = serde_json::from_str::<Value>(&text).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = call(
        reqwest::Method::POST,
        "/v1/events".into(),
        Some(json!({"type": "a.b", "stream": "s1", "data": {"n": 1}, "webhook_url": healthy.url})),
    )
    .await;
    assert_eq!(status, 202);
    let received = healthy.wait_for(3, Duration::from_secs(10)).await;
    assert!(
        received
            .iter()
            .filter_map(|r| r.headers.get("authorization"))
            .any(|v| v.as_bytes() == format!("Bearer {HEADER_TOKEN}").as_bytes()),
        "the receiver got the header in full"
    );
    failing.wait_for(2, Duration::from_secs(10)).await;

    let mut responses = String::new();
    let mut paths = vec![
        "/v1/destinations".to_owned(),
        "/v1/deliveries".to_owned(),
        "/v1/events".to_owned(),
        "/v1/api-keys".to_owned(),
        "/v1/org/signing-secret".to_owned(),
    ];
    for d in &destinations {
        paths.push(format!("/v1/destinations/{}", d["id"].as_str().unwrap()));
    }
    let (_, deliveries) = call(reqwest::Method::GET, "/v1/deliveries".into(), None).await;
    let deliveries: Value = serde_json::from_str(&deliveries).unwrap();
    for d in deliveries["data"].as_array().unwrap() {
        paths.push(format!("/v1/deliveries/{}", d["id"].as_str().unwrap()));
    }
    assert_eq!(deliveries["data"].as_array().unwrap().len(), 4);
    for path in &paths {
        let (status, text) = call(reqwest::Method::GET, path.clone(), None).await;
        assert_eq!(status, 200, "{path}: {text}");
        responses.push_str(&text);
    }
    assert!(
        responses.contains("webhook-signature"),
        "the inspector shows signature headers (and must still hide secrets)"
    );
    drop(server);

    let log_text = std::fs::read(&log_path).unwrap();
    assert!(log_text.len() > 1_000, "trace logging produced output");
    let stored = all_bytes(data.path());
    let needles = [
        SECRET_A,
        &SECRET_A[6..],
        SECRET_B,
        &SECRET_B[6..],
        &org_secret,
        &org_secret[6..],
        key.as_str(),
        HEADER_TOKEN,
    ];
    for needle in needles {
        assert!(!contains(&log_text, needle), "a secret is in the log");
        assert!(
            !contains(&stored, needle),
            "a secret is in the data directory"
        );
        assert!(!responses.contains(needle), "a secret is in a GET response");
    }
}
