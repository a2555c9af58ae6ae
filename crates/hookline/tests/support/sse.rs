//! A Server-Sent Events client for tests: reads events off a response body as they
//! arrive, skipping comment lines (heartbeats).

use std::time::Duration;

use serde_json::Value;

pub struct SseClient {
    response: reqwest::Response,
    buffer: String,
}

impl SseClient {
    /// Connects to `path` with `key`, sending `Last-Event-ID` if given; panics unless 200.
    pub async fn connect(base: &str, key: &str, path: &str, last_event_id: Option<&str>) -> Self {
        let mut request = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .bearer_auth(key);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{path}"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event's id and data; `None` once the server ended the stream. Panics if
    /// none comes within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("no event within the time allowed")
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// `n` events, in the order they came.
    pub async fn take(&mut self, n: usize, within: Duration) -> Vec<(String, Value)> {
        let mut events = Vec::new();
        for _ in 0..n {
            events.push(self.next(within).await.expect("the stream ended early"));
        }
        events
    }

    /// Whatever events arrive within `quiet`, which should be none.
    pub async fn more_within(&mut self, quiet: Duration) -> Vec<(String, Value)> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + quiet;
        let longer = quiet + Duration::from_secs(5);
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.next(longer)).await {
            events.push(event);
        }
        events
    }
}

/// An event block's `id:` and JSON `data:`; `None` for a block of comments only.
fn parse(block: &str) -> Option<(String, Value)> {
    let mut id = String::new();
    let mut data = None;
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("id:") {
            id = value.trim_start().to_owned();
        } else if let Some(value) = line.strip_prefix("data:") {
            data = Some(serde_json::from_str(value.trim_start()).unwrap());
        }
    }
    Some((id, data?))
}
