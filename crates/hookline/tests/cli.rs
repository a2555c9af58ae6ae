//! The developer commands, run as the real binary: `listen` receives and verifies a
//! real delivery; `verify` checks published vectors; `publish` goes through the API of a
//! running server; every command documents an example.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::app::TestApp;
use support::process::KillOnDrop;
use support::receiver::Receiver;

const BIN: &str = env!("CARGO_BIN_EXE_hookline");
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test]
async fn listen_verifies_real_deliveries_and_refuses_bad_signatures() {
    let port = support::process::free_port();
    let mut listener = KillOnDrop(
        Command::new(BIN)
            .args([
                "listen",
                "--json",
                "--port",
                &port.to_string(),
                "--secret",
                SECRET,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = listener.0.stdout.take().unwrap();
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = lines_tx.send(v);
            }
        }
    });
    // Give the listener a moment to bind before anything is delivered.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let app = TestApp::spawn().await;
    let url = format!("http://127.0.0.1:{port}/");
    let good = app.destination(&url, json!({"secret": SECRET})).await;
    let wrong = app
        .destination(
            &url,
            json!({"secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}),
        )
        .await;
    let event = app
        .publish(json!({"type": "turn.completed", "data": {"hello": "listen"}}))
        .await;

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines_rx.recv())
            .await
            .expect("listen printed both deliveries")
            .expect("listen is still running");
        seen.push(line);
    }
    assert!(seen.iter().all(|l| l["webhook_id"] == event["id"]));
    assert!(seen.iter().all(|l| l["body"]["data"]["hello"] == "listen"));
    let verified: Vec<bool> = seen.iter().map(|l| l["verified"] == true).collect();
    assert_eq!(verified.iter().filter(|v| **v).count(), 1, "{seen:#?}");

    let good_delivery = app.only_delivery(good["id"].as_str().unwrap()).await;
    app.wait_status(
        good_delivery["id"].as_str().unwrap(),
        "delivered",
        Duration::from_secs(10),
    )
    .await;
    let wrong_delivery = app.only_delivery(wrong["id"].as_str().unwrap()).await;
    let refused = app
        .wait_status(
            wrong_delivery["id"].as_str().unwrap(),
            "dead_letter",
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(refused["response_code"], 401);
}

fn verify(signature: &str, body: &str) -> (bool, String) {
    verify_with(&["--id", "msg_p5jXN8AQM9LWM0D4loKWxJek"], signature, body)
}

fn verify_with(extra: &[&str], signature: &str, body: &str) -> (bool, String) {
    let mut child = Command::new(BIN)
        .args(["verify", "--ignore-timestamp", "--secret", SECRET])
        .args(["--timestamp", "1614265330"])
        .args(extra)
        .args(["--signature", signature])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn verify_exits_zero_for_a_valid_signature_and_one_otherwise() {
    let body = r#"{"test": 2432232314}"#;
    let (ok, out) = verify("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", body);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "valid");
    let (ok, out) = verify("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", body);
    assert!(!ok);
    assert!(out.contains("no signature in the header matches"), "{out}");
    let (ok, _) = verify("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "{}");
    assert!(!ok, "a tampered body fails");
}

#[test]
fn verify_checks_hex_scheme_headers() {
    // HMAC-SHA256 of "1614265330.{}" under the secret, as the hookline-verify docs show.
    let header = "sha256=0dc3c49d8b682e966b8db935231f291b943f4a2d812eed18ef7a090c021dde59";
    let (ok, out) = verify_with(&["--hex-prefix", "sha256="], header, "{}");
    assert!(ok, "{out}");
    let (ok, _) = verify_with(&["--hex-prefix", "sha256="], header, "[]");
    assert!(!ok, "a tampered body fails");
}

#[test]
fn every_command_has_help_with_an_example() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["org", "create", "--help"],
        vec!["listen", "--help"],
        vec!["verify", "--help"],
        vec!["publish", "--help"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Example"),
            "{args:?} help lacks an example:\n{text}"
        );
    }
}

/// Runs `hookline publish` against `app` with `args`; its exit status and output.
async fn publish_cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(BIN)
        .arg("publish")
        .args(["--url", &app.base])
        .env("HOOKLINE_API_KEY", &app.key)
        .args(args)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn publish_sends_an_event_through_the_api() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.destination(&receiver.url, json!({})).await;
    let args = [
        "--type",
        "turn.completed",
        "--stream",
        "sess_9",
        "--data",
        r#"{"tokens": 812}"#,
        "--id",
        "once",
        "--json",
    ];
    let (ok, out) = publish_cli(&app, &args).await;
    assert!(ok, "{out}");
    let answer: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(answer["stream"], "sess_9");
    assert_eq!(answer["deliveries"], 1);
    let got = receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .remove(0)
        .json();
    assert_eq!(got["data"]["tokens"], 812);
    assert_eq!(got["id"], answer["id"]);

    let (ok, out) = publish_cli(&app, &args[..8]).await;
    assert!(ok && out.contains("already published"), "{out}");
    let (ok, out) = publish_cli(&app, &["--type", "a.b", "--data", "{oops"]).await;
    assert!(!ok && out.contains("--data is not valid JSON"), "{out}");
    let (ok, out) = publish_cli(&app, &["--type", "Not A Type"]).await;
    assert!(!ok && out.contains("422"), "{out}");
}
