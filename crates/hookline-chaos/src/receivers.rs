//! Receivers that misbehave on purpose, on one raw TCP listener: `/d/<n>` is destination
//! n, whose `Behaviour` decides each answer (2xx, 4xx, 5xx, 429 with Retry-After, a
//! dropped connection, a hang past the timeout, or a body dribbled out byte by byte).
//! Every request is recorded with what it was answered and whether its signature
//! verified. One request per connection (`connection: close`), so a misbehaviour never
//! leaks into the next request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Always 200.
    Steady,
    /// Each of the misbehaviours at random, 200 about half the time.
    Flaky,
    /// Always 400: its deliveries are dead-lettered at once.
    Rejecting,
    /// 200, 500 or 503: for an `ordered` destination, whose head must block the rest.
    Stuttering,
    /// 200, with the body sent a byte at a time.
    Dribbling,
}

/// What a request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// The connection was dropped without an answer, at once or after a hang.
    Nothing,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub destination: usize,
    pub webhook_id: String,
    pub stream: String,
    pub seq: u64,
    pub answer: Answer,
    pub at: Instant,
    /// The signature verified with the destination's secret and the body's `id` is the
    /// `webhook-id`.
    pub genuine: bool,
}

#[derive(Default)]
struct Shared {
    behaviours: Mutex<Vec<Behaviour>>,
    secrets: Mutex<HashMap<usize, String>>,
    records: Mutex<Vec<Record>>,
}

#[derive(Clone)]
pub struct Receivers {
    pub port: u16,
    shared: Arc<Shared>,
}

impl Receivers {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let receivers = Self {
            port: listener.local_addr()?.port(),
            shared: Arc::default(),
        };
        let shared = receivers.shared.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        Ok(receivers)
    }

    /// Adds a destination's receiver; returns its index (its path is `/d/<index>`).
    pub fn add(&self, behaviour: Behaviour) -> usize {
        let mut behaviours = self.shared.behaviours.lock().unwrap();
        behaviours.push(behaviour);
        behaviours.len() - 1
    }

    pub fn url(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}/d/{index}", self.port)
    }

    pub fn set_secret(&self, index: usize, secret: String) {
        self.shared.secrets.lock().unwrap().insert(index, secret);
    }

    pub fn records(&self) -> Vec<Record> {
        self.shared.records.lock().unwrap().clone()
    }
}

/// What to do with one request.
enum Reply {
    Status(u16),
    RetryLater,
    Drop,
    Hang,
    Dribble,
}

fn choose(behaviour: Behaviour) -> Reply {
    let roll: f64 = rand::thread_rng().r#gen();
    match behaviour {
        Behaviour::Steady => Reply::Status(200),
        Behaviour::Rejecting => Reply::Status(400),
        Behaviour::Dribbling => Reply::Dribble,
        Behaviour::Stuttering if roll < 0.8 => Reply::Status(200),
        Behaviour::Stuttering if roll < 0.9 => Reply::Status(503),
        Behaviour::Stuttering => Reply::Status(500),
        Behaviour::Flaky if roll < 0.5 => Reply::Status(200),
        Behaviour::Flaky if roll < 0.65 => Reply::Status(500),
        Behaviour::Flaky if roll < 0.75 => Reply::Status(503),
        Behaviour::Flaky if roll < 0.85 => Reply::RetryLater,
        Behaviour::Flaky if roll < 0.93 => Reply::Drop,
        Behaviour::Flaky => Reply::Hang,
    }
}

async fn serve(mut socket: TcpStream, shared: Arc<Shared>) {
    let Some((path, headers, body)) = read_request(&mut socket).await else {
        return;
    };
    let Some(destination) = path
        .strip_prefix("/d/")
        .and_then(|n| n.parse::<usize>().ok())
    else {
        let _ = respond(&mut socket, 404, "").await;
        return;
    };
    let Some(behaviour) = shared.behaviours.lock().unwrap().get(destination).copied() else {
        let _ = respond(&mut socket, 404, "").await;
        return;
    };
    let at = Instant::now();
    let answer = match choose(behaviour) {
        Reply::Status(code) => {
            let _ = respond(&mut socket, code, "").await;
            Answer::Status(code)
        }
        Reply::RetryLater => {
            let _ = respond(&mut socket, 429, "retry-after: 1\r\n").await;
            Answer::Status(429)
        }
        Reply::Drop => Answer::Nothing,
        Reply::Hang => {
            // Past every chaos destination's timeout.
            tokio::time::sleep(Duration::from_secs(3)).await;
            Answer::Nothing
        }
        Reply::Dribble => match dribble(&mut socket).await {
            Ok(()) => Answer::Status(200),
            Err(_) => Answer::Nothing,
        },
    };
    let secret = shared.secrets.lock().unwrap().get(&destination).cloned();
    let record = describe(destination, &headers, &body, secret.as_deref(), answer, at);
    shared.records.lock().unwrap().push(record);
}

fn describe(
    destination: usize,
    headers: &HashMap<String, String>,
    body: &[u8],
    secret: Option<&str>,
    answer: Answer,
    at: Instant,
) -> Record {
    let header = |name: &str| headers.get(name).map(String::as_str).unwrap_or_default();
    let envelope: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let webhook_id = header("webhook-id").to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let signed = hookline_verify::Signed {
        id: &webhook_id,
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
    };
    let verified = secret.is_some_and(|s| hookline_verify::verify(s, &signed, now).is_ok());
    Record {
        destination,
        genuine: verified && envelope["id"] == webhook_id.as_str(),
        stream: envelope["stream"].as_str().unwrap_or_default().to_owned(),
        seq: envelope["seq"].as_u64().unwrap_or_default(),
        webhook_id,
        answer,
        at,
    }
}

type Request = (String, HashMap<String, String>, Vec<u8>);

/// The path, lower-cased headers and body of one HTTP/1.1 request with a
/// `content-length` (which Hookline always sends).
async fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > 64 * 1024 {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split_whitespace().nth(1)?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(64 * 1024)];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((path, headers, body))
}

async fn respond(socket: &mut TcpStream, code: u16, extra_headers: &str) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 {code} Chaos\r\ncontent-length: 2\r\nconnection: close\r\n{extra_headers}\r\nok"
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}

/// A 200 whose body comes a byte every 20 ms: within the destination's timeout.
async fn dribble(socket: &mut TcpStream) -> std::io::Result<()> {
    let body = b"received, slowly";
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await?;
    for byte in body {
        tokio::time::sleep(Duration::from_millis(20)).await;
        socket.write_all(&[*byte]).await?;
    }
    socket.shutdown().await
}
