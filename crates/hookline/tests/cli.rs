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
    verify_as(SECRET, extra, signature, body)
}

/// `hookline verify` with `secret`, the vectors' timestamp and `extra`; its verdict.
fn verify_as(secret: &str, extra: &[&str], signature: &str, body: &str) -> (bool, String) {
    let mut child = Command::new(BIN)
        .args(["verify", "--ignore-timestamp", "--secret", secret])
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
        vec!["org", "list", "--help"],
        vec!["org", "delete", "--help"],
        vec!["key", "create", "--help"],
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

#[tokio::test]
async fn publish_takes_a_server_address_without_its_scheme_and_refuses_others() {
    let app = TestApp::spawn().await;
    let bare = app.base.strip_prefix("http://").unwrap().to_owned();
    let out = tokio::process::Command::new(BIN)
        .args(["publish", "--type", "a.b", "--url", &bare])
        .env("HOOKLINE_API_KEY", &app.key)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for url in ["ftp://example.com", "http://", "not a url at all"] {
        let out = Command::new(BIN)
            .args(["publish", "--type", "a.b", "--api-key", "k", "--url", url])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
        assert!(stderr.contains("http://127.0.0.1:8080"), "{stderr}");
    }
}

#[test]
fn a_malformed_secret_is_refused_with_exit_2_by_verify_and_listen_and_never_echoed() {
    let secret = "whsec_c2hvcnQtYnV0LXNlY3JldA";
    let verify = Command::new(BIN)
        .args([
            "verify",
            "--secret",
            secret,
            "--id",
            "x",
            "--timestamp",
            "1",
        ])
        .args(["--signature", "v1,x"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let port = support::process::free_port().to_string();
    let listen = Command::new(BIN)
        .args(["listen", "--port", &port, "--secret", secret])
        .output()
        .unwrap();
    for out in [&verify, &listen] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--secret"), "{stderr}");
        assert!(
            !stderr.contains("c2hvcnQ"),
            "the secret is echoed: {stderr}"
        );
    }
    // Without its prefix, a good secret verifies (exit 0) as with it.
    let body = r#"{"test": 2432232314}"#;
    let (ok, out) = verify_as(
        &SECRET["whsec_".len()..],
        &["--id", "msg_p5jXN8AQM9LWM0D4loKWxJek"],
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        body,
    );
    assert!(ok, "{out}");
}

#[tokio::test]
async fn database_urls_that_cannot_work_say_why_and_migrations_are_quiet() {
    let port = support::process::free_port();
    let unreachable = format!("postgres://root@127.0.0.1:{port}/hookline");
    let out = Command::new(BIN)
        .args(["migrate", "--database-url", &unreachable])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(
        stderr.contains("refused") && !stderr.contains("timed out"),
        "{stderr}"
    );

    let out = Command::new(BIN)
        .args([
            "migrate",
            "--database-url",
            "mysql://app:hunter2@db/hookline",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("postgres://") && stderr.contains("mysql"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "the URL's password is shown: {stderr}"
    );

    let database = hookline_postgres::test_databases::fresh_postgres_database().await;
    for _ in 0..2 {
        let out = Command::new(BIN)
            .args(["migrate", "--database-url", &database])
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("already exists"), "{stderr}");
    }
}

#[tokio::test]
async fn logs_carry_no_colour_off_a_terminal_and_can_be_json() {
    for (format, check) in [
        (
            "text",
            (|line: &str| !line.contains('\x1b')) as fn(&str) -> bool,
        ),
        ("json", |line: &str| {
            serde_json::from_str::<Value>(line).is_ok_and(|v| v["level"].is_string())
        }),
    ] {
        let data = tempfile::tempdir().unwrap();
        let port = support::process::free_port();
        let mut server = KillOnDrop(
            Command::new(BIN)
                .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
                .args(["--log-format", format])
                .arg("--data-dir")
                .arg(data.path())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        support::process::wait_ready(&format!("http://127.0.0.1:{port}")).await;
        server.0.kill().unwrap();
        let mut logs = String::new();
        std::io::Read::read_to_string(server.0.stderr.as_mut().unwrap(), &mut logs).unwrap();
        let lines: Vec<&str> = logs.lines().collect();
        assert!(lines.len() >= 2, "{format}: {logs}");
        for line in lines {
            assert!(check(line), "{format}: {line:?}");
        }
    }
}
