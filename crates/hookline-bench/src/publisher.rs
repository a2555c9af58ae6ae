//! Publishers: HTTP keep-alive clients that post events as fast as a concurrency
//! allows, or at a fixed rate, and record each answer's status and latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

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
    client: reqwest::Client,
    url: String,
    key: String,
}

/// An event carrying the moment it was sent, for publish-to-receipt latency.
pub fn event_body(n: u64) -> Value {
    json!({
        "type": "bench.event",
        "stream": format!("s{}", n % 64),
        "data": {"sent_us": unix_micros(), "n": n}
    })
}

impl Publisher {
    pub fn new(base: &str, key: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .build()
                .expect("a default client builds"),
            url: format!("{base}/v1/events"),
            key: key.to_owned(),
        }
    }

    async fn publish_one(&self, n: u64, stats: &mut PublishStats) {
        let started = Instant::now();
        let result = self
            .client
            .post(&self.url)
            .bearer_auth(&self.key)
            .json(&event_body(n))
            .send()
            .await;
        stats
            .latencies_us
            .push(started.elapsed().as_micros() as u64);
        match result {
            Ok(r) if r.status().is_success() => stats.accepted += 1,
            Ok(r) => {
                stats.non_2xx += 1;
                if r.status().is_server_error() && r.status() != 503 {
                    stats.server_errors += 1;
                }
                if (r.status() == 429 || r.status() == 503)
                    && r.headers().contains_key("retry-after")
                {
                    stats.throttled_with_retry_after += 1;
                }
            }
            Err(_) => stats.non_2xx += 1,
        }
    }

    /// Publishes `total` events from `concurrency` workers, each as fast as it can.
    pub async fn concurrent(&self, total: u64, concurrency: usize) -> PublishStats {
        let next = Arc::new(Mutex::new(0u64));
        let started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (me, next) = (self.clone(), next.clone());
            workers.spawn(async move {
                let mut stats = PublishStats::default();
                loop {
                    let n = {
                        let mut next = next.lock().await;
                        if *next >= total {
                            break;
                        }
                        *next += 1;
                        *next
                    };
                    me.publish_one(n, &mut stats).await;
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
