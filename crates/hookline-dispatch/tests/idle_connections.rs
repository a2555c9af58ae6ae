//! The webhook client keeps connections for reuse, but closes one left idle past the
//! pool's timeout (90 s): without the pool timer a destination never sent to again would
//! hold a socket on both ends for as long as the server runs. Time is paused and moved
//! on by hand; the receiver is real TCP and sees the close as its peer hanging up.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hookline_core::delivery::DeliveryState;
use hookline_core::url_policy::UrlPolicy;
use hookline_dispatch::DispatcherConfig;
use serde_json::json;
use support::Fixture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A bare HTTP/1.1 receiver that answers every request 200 on the connection it came in
/// on; it counts connections accepted and reports each one its peer closes.
async fn receiver() -> (String, Arc<AtomicUsize>, mpsc::UnboundedReceiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let (closed, closes) = mpsc::unbounded_channel();
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let closed = closed.clone();
            tokio::spawn(async move {
                answer_until_closed(stream).await;
                let _ = closed.send(());
            });
        }
    });
    (url, accepted, closes)
}

/// Answers each complete request (head, then `content-length` bytes of body) with an
/// empty 200, until the peer closes the connection.
async fn answer_until_closed(mut stream: TcpStream) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
        while let Some(length) = complete_request_length(&buffer) {
            buffer.drain(..length);
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
            if stream.write_all(answer).await.is_err() {
                return;
            }
        }
    }
}

/// The length of the first request in `buffer` if all of it has arrived.
fn complete_request_length(buffer: &[u8]) -> Option<usize> {
    let head_end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let body: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    (buffer.len() >= head_end + body).then_some(head_end + body)
}

#[tokio::test]
async fn a_connection_idle_past_the_pool_timeout_is_closed_and_not_before() {
    let fixture = Fixture::new().await;
    let (url, accepted, mut closes) = receiver().await;
    fixture.destination(json!({"url": url})).await;
    let dispatcher = fixture.dispatcher(DispatcherConfig {
        url_policy: UrlPolicy::dev(),
        ..DispatcherConfig::default()
    });
    for _ in 0..2 {
        fixture.publish().await;
        assert_eq!(dispatcher.step().await.unwrap(), 1);
    }
    for delivery in fixture.deliveries().await {
        assert_eq!(delivery.state, DeliveryState::Delivered);
        let attempts = fixture.attempts_of(&delivery).await;
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].response_status, Some(200));
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the second attempt reused the first one's connection"
    );

    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(60)).await;
    tokio::time::resume();
    let early = tokio::time::timeout(Duration::from_millis(300), closes.recv()).await;
    assert!(early.is_err(), "closed after only 60 s idle");

    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(121)).await;
    tokio::time::resume();
    let closed = tokio::time::timeout(Duration::from_secs(10), closes.recv()).await;
    assert_eq!(
        closed,
        Ok(Some(())),
        "the connection idle past 90 s was closed"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}
