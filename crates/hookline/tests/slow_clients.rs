//! Slow, silent and too many clients: the API closes what waits too long, refuses
//! connections beyond its cap with a 503, and keeps answering everyone else.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use support::app::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far beyond every timeout the tests set: a connection still open then was kept.
const PATIENCE: Duration = Duration::from_secs(15);

async fn app_with(header_secs: u64, body_secs: u64, max_connections: usize) -> TestApp {
    TestApp::spawn_tuned(true, false, |config| {
        config.header_read_timeout_secs = header_secs;
        config.body_read_timeout_secs = body_secs;
        config.max_connections = max_connections;
    })
    .await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection: what it sent, or None if it kept
/// the connection open for all of `PATIENCE`.
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
    match read {
        Ok(Ok(_)) => Some(String::from_utf8_lossy(&answer).into_owned()),
        // A reset is a close too.
        Ok(Err(_)) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_client_that_never_sends_its_head_is_disconnected() {
    let app = app_with(1, 30, 100).await;
    let mut silent = connect(&app).await;
    assert!(read_until_closed(&mut silent).await.is_some(), "kept open");
    let mut slow = connect(&app).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    assert!(read_until_closed(&mut slow).await.is_some(), "kept open");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = app_with(1, 30, 100).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await.expect("kept open");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_that_stops_coming_is_refused_and_the_connection_closed() {
    let app = app_with(30, 1, 100).await;
    let mut stream = connect(&app).await;
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{",
        app.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream).await.expect("kept open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    let (status, page) = app.get("/v1/events").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page["data"].as_array().unwrap().len(),
        0,
        "nothing published"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_get_a_503_and_the_rest_are_served() {
    let app = app_with(30, 30, 20).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(connect(&app).await);
    }
    // The server counts a connection once it has accepted it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = connect(&app).await;
    let answer = read_until_closed(&mut over).await.expect("kept open");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains(r#""code":"too_many_connections""#),
        "{answer}"
    );
    // One of those held sends a request: it is served as usual.
    let held = &mut idle[0];
    held.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(held).await.expect("kept open");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Closing them frees their places.
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn two_thousand_idle_sockets_leave_health_and_publishes_answering() {
    // A common default soft limit, under which 2,000 sockets (each counted twice here:
    // the test's end and the server's) could not all be open; the server raises it.
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    rlimit::Resource::NOFILE.set(1024, hard).unwrap();
    let app = app_with(30, 30, 4096).await;
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(connect(&app).await);
    }
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post("/v1/events", json!({"type": "a.b", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    drop(idle);
}
