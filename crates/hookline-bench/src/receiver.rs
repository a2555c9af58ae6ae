//! The fast receiver: a bare hyper HTTP/1.1 server that counts requests and unique
//! `webhook-id`s and records publish-to-receipt latency from the `sent_us` timestamp the
//! publishers put in each event's data. The path chooses the behaviour:
//! `/ok`, `/fail` (500), `/hang` (never answers), `/slow/<ms>`, `/shed/<n>/<ms>[/<after>]`
//! (serves `n` at a time in `ms` each, answers 503 at once to the rest, as a receiver
//! shedding load does; half as many from the `after`th request on) and `/slowing/<ms>/<after>` (`ms` each until `after` requests, then twice
//! that).

use std::collections::HashSet;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::clock::unix_micros;

/// Keys that are already SipHash values need no second SipHash to be placed.
type HashedIds = HashSet<u64, rustc_hash::FxBuildHasher>;

#[derive(Default)]
pub struct Counts {
    pub requests: AtomicU64,
    /// Requests being served by `/shed`, and those it answered 503.
    open: AtomicU64,
    shed: AtomicU64,
    /// Hashes of `webhook-id`s answered 200: events.
    ids: Mutex<HashedIds>,
    /// Hashes of `hookline-delivery-id`s answered 200: deliveries.
    deliveries: Mutex<HashedIds>,
    latencies_us: Mutex<Vec<u64>>,
}

impl Counts {
    /// Distinct events received.
    pub fn unique_events(&self) -> usize {
        self.ids.lock().unwrap().len()
    }

    /// Distinct deliveries received.
    pub fn unique_deliveries(&self) -> usize {
        self.deliveries.lock().unwrap().len()
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests `/shed` answered 503 for being beyond its capacity.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Publish-to-receipt latencies seen so far, and forgets them.
    pub fn take_latencies(&self) -> Vec<u64> {
        std::mem::take(&mut *self.latencies_us.lock().unwrap())
    }
}

/// Finds `"sent_us":<digits>` without parsing the whole body.
pub fn sent_us(body: &[u8]) -> Option<u64> {
    let needle = b"\"sent_us\":";
    let at = memchr::memmem::find(body, needle)? + needle.len();
    let rest = &body[at..];
    let digits = rest.iter().skip_while(|b| **b == b' ');
    let (value, count) = digits.take_while(|b| b.is_ascii_digit()).try_fold(
        (0u64, 0),
        |(value, count), digit| {
            let value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
            Some((value, count + 1))
        },
    )?;
    (count > 0).then_some(value)
}

async fn handle(
    counts: Arc<Counts>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    // Hashes, not strings: a million ids should cost the harness little memory and time.
    let header = |name: &str| {
        req.headers().get(name).map(|v| {
            let mut hasher = std::hash::DefaultHasher::new();
            v.as_bytes().hash(&mut hasher);
            hasher.finish()
        })
    };
    let (id, delivery) = (header("webhook-id"), header("hookline-delivery-id"));
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let received = unix_micros();
    let served = counts.requests.fetch_add(1, Ordering::Relaxed);
    let number = |at: usize| path.split('/').nth(at).and_then(|n| n.parse::<u64>().ok());
    let status = match path.as_str() {
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK
        }
        "/fail" => StatusCode::INTERNAL_SERVER_ERROR,
        p if p.starts_with("/slow/") => {
            let ms = p["/slow/".len()..].parse().unwrap_or(100);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            StatusCode::OK
        }
        p if p.starts_with("/shed/") => {
            let (capacity, ms) = (number(2).unwrap_or(50), number(3).unwrap_or(5));
            let capacity = match number(4) {
                Some(after) if served >= after => capacity / 2,
                _ => capacity,
            };
            if counts.open.fetch_add(1, Ordering::SeqCst) >= capacity {
                counts.shed.fetch_add(1, Ordering::Relaxed);
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                StatusCode::OK
            }
        }
        p if p.starts_with("/slowing/") => {
            let (ms, after) = (number(2).unwrap_or(5), number(3).unwrap_or(u64::MAX));
            let ms = if served < after { ms } else { ms * 2 };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            StatusCode::OK
        }
        _ => StatusCode::OK,
    };
    if path.starts_with("/shed/") {
        counts.open.fetch_sub(1, Ordering::SeqCst);
    }
    if status == StatusCode::OK {
        if let Some(id) = id {
            counts.ids.lock().unwrap().insert(id);
        }
        if let Some(delivery) = delivery {
            counts.deliveries.lock().unwrap().insert(delivery);
        }
        if let Some(sent) = sent_us(&body) {
            counts
                .latencies_us
                .lock()
                .unwrap()
                .push(received.saturating_sub(sent));
        }
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    Ok(response)
}

/// Starts the receiver on 127.0.0.1; returns its base URL and its counters.
pub async fn start() -> anyhow::Result<(String, Arc<Counts>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let counts = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(counts.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((base, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_publish_timestamp() {
        assert_eq!(sent_us(br#"{"data":{"sent_us":123,"n":1}}"#), Some(123));
        assert_eq!(sent_us(br#"{"data":{"sent_us": 77}}"#), Some(77));
        assert_eq!(sent_us(br#"{"data":{}}"#), None);
        assert_eq!(sent_us(br#"{"data":{"sent_us":"x"}}"#), None);
        assert_eq!(
            sent_us(br#"{"data":{"sent_us":99999999999999999999}}"#),
            None
        );
    }
}
