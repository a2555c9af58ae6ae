//! The publishers: events of random types, streams and sizes, each sent to a random
//! node and, until the API acknowledges it, sent again with the same idempotency `id`
//! (to another node, if one is down), as a careful client would. Only acknowledged
//! events count: the contract is that those are never lost.

use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::json;

pub const EVENT_TYPES: &[&str] = &[
    "run.started",
    "run.failed",
    "turn.completed",
    "agent.message",
];
const STREAMS: usize = 8;

/// An event the API acknowledged (200 or 202).
#[derive(Debug, Clone)]
pub struct Acknowledged {
    pub id: String,
    pub event_type: String,
    pub at: Instant,
}

/// What the publishers did.
#[derive(Debug, Default)]
pub struct Published {
    pub acknowledged: Vec<Acknowledged>,
    /// Events never acknowledged before the load stopped (they may still have been
    /// stored: a publish whose answer was lost).
    pub unacknowledged: usize,
    /// Answers with a 5xx other than 503 (a node saying it cannot store now is fine).
    pub server_errors: usize,
}

/// Runs `publishers` publishers, `max_events` between them spread until `until`.
pub async fn publish(
    bases: Vec<String>,
    key: String,
    publishers: usize,
    max_events: usize,
    until: Instant,
) -> Published {
    let mut tasks = tokio::task::JoinSet::new();
    for p in 0..publishers {
        let (bases, key) = (bases.clone(), key.clone());
        let share = max_events / publishers + usize::from(p < max_events % publishers);
        tasks.spawn(async move { publisher(p, bases, key, share, until).await });
    }
    let mut all = Published::default();
    for published in tasks.join_all().await {
        all.acknowledged.extend(published.acknowledged);
        all.unacknowledged += published.unacknowledged;
        all.server_errors += published.server_errors;
    }
    all
}

async fn publisher(
    p: usize,
    bases: Vec<String>,
    key: String,
    events: usize,
    until: Instant,
) -> Published {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client with a timeout");
    let mut published = Published::default();
    // Spread over the run, so events keep arriving while faults are made.
    let pace_ms =
        until.saturating_duration_since(Instant::now()).as_millis() as u64 / events.max(1) as u64;
    for n in 0..events {
        if Instant::now() >= until {
            break;
        }
        let body = {
            let mut rng = rand::thread_rng();
            let size = match rng.gen_range(0..100) {
                0 => 200_000,
                _ => rng.gen_range(0..4_096),
            };
            json!({
                "id": format!("chaos-{p}-{n}"),
                "type": EVENT_TYPES.choose(&mut rng).expect("types"),
                "stream": format!("s{}", rng.gen_range(0..STREAMS)),
                "data": {"n": n, "pad": "x".repeat(size)},
            })
        };
        let mut acknowledged = false;
        while Instant::now() < until && !acknowledged {
            let base = bases
                .choose(&mut rand::thread_rng())
                .expect("at least one node");
            let answer = client
                .post(format!("{base}/v1/events"))
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await;
            match answer {
                Ok(response) if response.status().is_success() => {
                    let answer: serde_json::Value = response.json().await.unwrap_or_default();
                    if let Some(id) = answer["id"].as_str() {
                        published.acknowledged.push(Acknowledged {
                            id: id.to_owned(),
                            event_type: body["type"].as_str().unwrap_or_default().to_owned(),
                            at: Instant::now(),
                        });
                        acknowledged = true;
                    }
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status >= 500 && status != 503 {
                        published.server_errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        if !acknowledged {
            published.unacknowledged += 1;
        }
        let pause = rand::thread_rng().gen_range(0..=2 * pace_ms);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    published
}
