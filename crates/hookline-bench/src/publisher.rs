//! Publishers: HTTP keep-alive clients that post events as fast as a concurrency
//! allows, or at a fixed rate, and record each answer's status and latency. They use
//! hyper's client directly with hand-formatted bodies: the harness shares the machine
//! with the server, so every microsecond it spends is one the server does not get.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::clock::unix_micros;

#[derive(Debug, Default)]
pub struct PublishStats {
    pub accepted: u64,
    pub non_2xx: u64,
    pub server_errors: u64,
    pub throttled_with_retry_after: u64,
    pub latencies_us: Vec<u64>,
    pub elapsed: Duration,
}

impl PublishStats {
    fn merge(&mut self, other: PublishStats) {
        self.accepted += other.accepted;
        self.non_2xx += other.non_2xx;
        self.server_errors += other.server_errors;
        self.throttled_with_retry_after += other.throttled_with_retry_after;
        self.latencies_us.extend(other.latencies_us);
    }
}

#[derive(Clone)]
pub struct Publisher {
    client: Client<HttpConnector, Full<Bytes>>,
    /// One `/v1/events` URL per node; event n goes to node n mod len.
    urls: Vec<hyper::Uri>,
    /// One `/v1/events/batch` URL per node.
    batch_urls: Vec<hyper::Uri>,
    authorization: String,
}

/// An event carrying the moment it was sent, for publish-to-receipt latency.
fn event_body(n: u64) -> String {
    format!(
        r#"{{"type":"bench.event","stream":"s{}","data":{{"sent_us":{},"n":{n}}}}}"#,
        n % 64,
        unix_micros()
    )
}

impl Publisher {
    pub fn new(bases: &[String], key: &str) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1024)
                .build_http(),
            urls: bases
                .iter()
                .map(|base| format!("{base}/v1/events").parse().expect("a valid URL"))
                .collect(),
            batch_urls: bases
                .iter()
                .map(|base| {
                    format!("{base}/v1/events/batch")
                        .parse()
                        .expect("a valid URL")
                })
                .collect(),
            authorization: format!("Bearer {key}"),
        }
    }

    async fn publish_one(&self, n: u64, stats: &mut PublishStats) {
        let url = self.urls[n as usize % self.urls.len()].clone();
        self.post(url, event_body(n), 1, stats).await;
    }

    /// Events `first..first + count` in one batch request.
    async fn publish_batch(&self, first: u64, count: u64, stats: &mut PublishStats) {
        let url = self.batch_urls[first as usize % self.batch_urls.len()].clone();
        let events: Vec<String> = (first..first + count).map(event_body).collect();
        let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
        self.post(url, body, count, stats).await;
    }

    /// Posts `body`, which holds `events` events, and counts the answer for each.
    async fn post(&self, url: hyper::Uri, body: String, events: u64, stats: &mut PublishStats) {
        let request = hyper::Request::post(url)
            .header("authorization", &self.authorization)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        let started = Instant::now();
        let answer = match self.client.request(request).await {
            Ok(response) => {
                let status = response.status();
                let retry_after = response.headers().contains_key("retry-after");
                // Read the answer to the end so the connection goes back to the pool.
                let _ = response.into_body().collect().await;
                Some((status, retry_after))
            }
            Err(_) => None,
        };
        stats
            .latencies_us
            .push(started.elapsed().as_micros() as u64);
        match answer {
            Some((status, _)) if status.is_success() => stats.accepted += events,
            Some((status, retry_after)) => {
                stats.non_2xx += 1;
                if status.is_server_error() && status != 503 {
                    stats.server_errors += 1;
                }
                if (status == 429 || status == 503) && retry_after {
                    stats.throttled_with_retry_after += 1;
                }
            }
            None => stats.non_2xx += 1,
        }
    }

    /// Publishes `total` events from `concurrency` workers, each as fast as it can.
    pub async fn concurrent(&self, total: u64, concurrency: usize) -> PublishStats {
        self.concurrent_in(total, 1, concurrency).await
    }

    /// Publishes `total` events in batches of `size` (single publishes when 1) from
    /// `concurrency` workers, each as fast as it can.
    pub async fn concurrent_in(&self, total: u64, size: u64, concurrency: usize) -> PublishStats {
        let next = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (me, next) = (self.clone(), next.clone());
            workers.spawn(async move {
                let mut stats = PublishStats::default();
                loop {
                    let n = next.fetch_add(size, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    match size {
                        1 => me.publish_one(n, &mut stats).await,
                        _ => me.publish_batch(n, size.min(total - n), &mut stats).await,
                    }
                }
                stats
            });
        }
        let mut all = PublishStats::default();
        while let Some(stats) = workers.join_next().await {
            all.merge(stats.expect("publisher task"));
        }
        all.elapsed = started.elapsed();
        all
    }

    /// Publishes at `per_sec` for `duration`, each event on its own task so a slow
    /// answer does not delay the next send.
    pub async fn fixed_rate(&self, per_sec: u32, duration: Duration) -> PublishStats {
        let started = Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_secs(1) / per_sec);
        let mut sends = tokio::task::JoinSet::new();
        let mut n = 0u64;
        while started.elapsed() < duration {
            ticker.tick().await;
            n += 1;
            let me = self.clone();
            sends.spawn(async move {
                let mut stats = PublishStats::default();
                me.publish_one(n, &mut stats).await;
                stats
            });
        }
        let mut all = PublishStats::default();
        while let Some(stats) = sends.join_next().await {
            all.merge(stats.expect("publisher task"));
        }
        all.elapsed = started.elapsed();
        all
    }
}
