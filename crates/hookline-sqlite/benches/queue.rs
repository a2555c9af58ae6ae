//! The embedded store's queue alone, without HTTP: how much writer work one delivery
//! costs to publish, claim and complete. The end-to-end bench (`hookline-bench`) shares
//! two cores with its receiver and publishers, so its runs vary widely; this one runs
//! the store by itself, and CPU per delivery is steady enough to compare store changes.
//!
//! `cargo bench -p hookline-sqlite --bench queue` (prints one line per phase);
//! `HOOKLINE_QUEUE_BENCH_EVENTS=500 cargo test -p hookline-sqlite --bench queue` is the
//! quick run CI makes, to keep it working.

use std::sync::Arc;
use std::time::Instant;

use hookline_dispatch::NodeAdmission;
use hookline_sqlite::SqliteStore;
use hookline_store::testing as fixture;
use hookline_store::{ApiKeyRecord, Completion, Org, Queue, Records};
use serde_json::json;

const NOW: i64 = 1_800_000_000_000;
const DESTINATIONS: usize = 10;
/// Events published, unless `HOOKLINE_QUEUE_BENCH_EVENTS` says otherwise.
const EVENTS: usize = 20_000;
/// Publishes in flight at once, so they share group commits as the server's would.
const PUBLISHERS: usize = 64;
const CLAIM_BATCH: u32 = 64;

/// CPU seconds this process has used (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("reading /proc/self/stat");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn report(phase: &str, deliveries: usize, wall: f64, cpu: f64) {
    println!(
        "{phase:8} {deliveries:7} deliveries  {:9.0}/s  {:6.1} µs CPU per delivery",
        deliveries as f64 / wall,
        cpu * 1e6 / deliveries as f64
    );
}

async fn setup(store: &SqliteStore) -> Org {
    let org = Org::new("bench", NOW);
    let (record, _) = ApiKeyRecord::issue(&org.id, NOW);
    store.create_org(&org, &record).await.unwrap();
    for _ in 0..DESTINATIONS {
        let destination = fixture::destination(&org.id, json!({"max_in_flight": 64}), NOW);
        store
            .insert_destination(&destination, u32::MAX)
            .await
            .unwrap();
    }
    org
}

fn events() -> usize {
    std::env::var("HOOKLINE_QUEUE_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(EVENTS)
}

async fn publish_all(store: &Arc<SqliteStore>, org: &Org, events: usize) {
    let mut publishers = tokio::task::JoinSet::new();
    for p in 0..PUBLISHERS {
        let (store, org) = (store.clone(), org.id.clone());
        publishers.spawn(async move {
            for n in (p..events).step_by(PUBLISHERS) {
                let event = fixture::event(&format!("s{}", n % 64), json!({"n": n}));
                store.publish(&org, event, NOW).await.unwrap();
            }
        });
    }
    while publishers.join_next().await.is_some() {}
}

/// Claims and completes until nothing is due; returns how many were delivered.
async fn drain(store: &SqliteStore) -> usize {
    let (node, _handed) = NodeAdmission::new("bench".into(), 5_000, usize::MAX, Arc::default());
    let request = fixture::claim(node.clone(), NOW, CLAIM_BATCH);
    let mut total = 0;
    loop {
        let claimed = store.claim_due(&request).await.unwrap();
        if claimed.is_empty() {
            return total;
        }
        total += claimed.len();
        let completions: Vec<Completion> =
            claimed.iter().map(|c| fixture::delivered(c, NOW)).collect();
        store
            .complete(fixture::batch("bench", completions))
            .await
            .unwrap();
        for delivery in &claimed {
            node.in_flight().release(&delivery.delivery_id);
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let org = setup(&store).await;
        let events = events();
        let deliveries = events * DESTINATIONS;

        let (wall, cpu) = (Instant::now(), cpu_seconds());
        publish_all(&store, &org, events).await;
        report(
            "publish",
            deliveries,
            wall.elapsed().as_secs_f64(),
            cpu_seconds() - cpu,
        );

        let (wall, cpu) = (Instant::now(), cpu_seconds());
        let drained = drain(&store).await;
        assert_eq!(
            drained, deliveries,
            "every delivery claimed and completed once"
        );
        report(
            "drain",
            drained,
            wall.elapsed().as_secs_f64(),
            cpu_seconds() - cpu,
        );
    });
}
