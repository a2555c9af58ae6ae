//! The six scenarios of issue 3. Each starts a fresh server, sets up destinations
//! through the API, drives publishers, waits (bounded) for the receiver, and reports.
//! Those over a large stored history live in `history`.

mod adaptive;
mod history;
mod sse;

pub use adaptive::adaptive;
pub use history::{retention, stats};
pub use sse::sse;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::publisher::{PublishStats, Publisher};
use crate::receiver::{self, Counts};
use crate::report::{Report, percentile_ms};
use crate::server::{Server, Usage};

/// Sizes; `smoke` shrinks every scenario to seconds for CI.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub smoke: bool,
}

impl Scale {
    pub fn pick(self, full: u64, smoke: u64) -> u64 {
        if self.smoke { smoke } else { full }
    }
}

pub struct Bench {
    pub binary: std::path::PathBuf,
    pub store: String,
    pub nodes: usize,
    pub scale: Scale,
    /// 0: the server's default.
    pub max_in_flight: u32,
    pub concurrency: Option<String>,
    /// Concurrent publishers at full speed (four times as many in `overload`).
    pub publishers: usize,
}

struct Run {
    server: Server,
    receiver_base: String,
    counts: Arc<Counts>,
    client: reqwest::Client,
    publisher: Publisher,
    max_in_flight: u32,
    concurrency: Option<String>,
}

impl Run {
    async fn start(bench: &Bench) -> anyhow::Result<Self> {
        Self::start_with(bench, &[]).await
    }

    async fn start_with(bench: &Bench, settings: &[(&str, String)]) -> anyhow::Result<Self> {
        let server = Server::start(&bench.binary, &bench.store, bench.nodes, settings).await?;
        let (receiver_base, counts) = receiver::start().await?;
        let publisher = Publisher::new(&server.bases, &server.api_key);
        Ok(Self {
            server,
            receiver_base,
            counts,
            client: reqwest::Client::new(),
            publisher,
            max_in_flight: bench.max_in_flight,
            concurrency: bench.concurrency.clone(),
        })
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .request(method, format!("{}{path}", self.server.bases[0]))
            .bearer_auth(&self.server.api_key)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path} answered {status}: {body}");
        }
        Ok(body)
    }

    async fn destination(&self, path: &str, extra: Value) -> anyhow::Result<String> {
        let mut body = json!({"url": format!("{}{path}", self.receiver_base)});
        if self.max_in_flight > 0 {
            body["max_in_flight"] = self.max_in_flight.into();
        }
        if let Some(concurrency) = &self.concurrency {
            body["concurrency"] = concurrency.as_str().into();
        }
        for (k, v) in extra.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let created = self
            .api(reqwest::Method::POST, "/v1/destinations", body)
            .await?;
        created["id"]
            .as_str()
            .map(str::to_owned)
            .context("destination without id")
    }

    /// The id of the org's oldest event still stored.
    async fn oldest_event(&self) -> anyhow::Result<Option<String>> {
        let page = self
            .api(reqwest::Method::GET, "/v1/events?limit=1", Value::Null)
            .await?;
        Ok(page["data"][0]["id"].as_str().map(str::to_owned))
    }

    /// Waits until `target` distinct deliveries arrived or `limit` passed; returns when the
    /// last one arrived (or the limit) measured from `since`.
    async fn wait_deliveries(&self, target: u64, since: Instant, limit: Duration) -> Duration {
        while (self.counts.unique_deliveries() as u64) < target && since.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        since.elapsed()
    }

    fn report(
        &self,
        scenario: &str,
        published: &PublishStats,
        expected: u64,
        elapsed: Duration,
        before: Usage,
    ) -> Report {
        let received = self.counts.unique_deliveries() as u64;
        let mut publish_lat = published.latencies_us.clone();
        let mut e2e = self.counts.take_latencies();
        let used = self.server.usage().since(before);
        let thousands = received.max(1) as f64 / 1000.0;
        Report {
            scenario: scenario.into(),
            events: published.accepted,
            deliveries: received,
            receiver_requests: self.counts.requests(),
            events_per_sec: published.accepted as f64 / published.elapsed.as_secs_f64().max(1e-9),
            deliveries_per_sec: received as f64 / elapsed.as_secs_f64().max(1e-9),
            elapsed_s: elapsed.as_secs_f64(),
            publish_p50_ms: percentile_ms(&mut publish_lat, 50.0),
            publish_p99_ms: percentile_ms(&mut publish_lat, 99.0),
            e2e_p50_ms: percentile_ms(&mut e2e, 50.0),
            e2e_p95_ms: percentile_ms(&mut e2e, 95.0),
            e2e_p99_ms: percentile_ms(&mut e2e, 99.0),
            cpu_s_per_1000_deliveries: used.cpu_seconds / thousands,
            disk_kb_per_delivery: used.disk_bytes as f64 / 1024.0 / (thousands * 1000.0),
            peak_rss_mb: self.server.peak_rss_mb(),
            queued_rss_mb: None,
            steal_percent: used.steal_percent(),
            non_2xx: published.non_2xx,
            server_errors: published.server_errors,
            missing: expected.saturating_sub(received),
            notes: Vec::new(),
        }
    }
}

const DRAIN_LIMIT: Duration = Duration::from_secs(600);

/// `events` to one healthy destination from `concurrency` publishers at full speed, in
/// batches of `size` (one by one when 1).
async fn flood_one_destination(
    bench: &Bench,
    scenario: &str,
    events: u64,
    size: u64,
    concurrency: usize,
) -> anyhow::Result<(Report, PublishStats)> {
    let run = Run::start(bench).await?;
    run.destination("/ok", json!({})).await?;
    let started = Instant::now();
    let usage = run.server.usage();
    let published = run.publisher.concurrent_in(events, size, concurrency).await;
    let elapsed = run
        .wait_deliveries(published.accepted, started, DRAIN_LIMIT)
        .await;
    let report = run.report(scenario, &published, published.accepted, elapsed, usage);
    Ok((report, published))
}

/// `throughput`'s load published in batches of 100 by 8 publishers, beside the same
/// events published one by one by the usual publishers.
pub async fn batch(bench: &Bench) -> anyhow::Result<Vec<Report>> {
    let events = bench.scale.pick(100_000, 2_000);
    let mut reports = Vec::new();
    for (scenario, size, publishers) in [
        ("batch: single", 1, bench.publishers),
        ("batch: 100 per request", 100, 8),
    ] {
        let (mut report, _) =
            flood_one_destination(bench, scenario, events, size, publishers).await?;
        report.notes.push(format!(
            "{publishers} publishers, {size} event(s) a request; pub p50/p99 are per request"
        ));
        reports.push(report);
    }
    Ok(reports)
}

pub async fn throughput(bench: &Bench) -> anyhow::Result<Report> {
    let events = bench.scale.pick(100_000, 2_000);
    Ok(
        flood_one_destination(bench, "throughput", events, 1, bench.publishers)
            .await?
            .0,
    )
}

pub async fn fanout(bench: &Bench) -> anyhow::Result<Vec<Report>> {
    let run = Run::start(bench).await?;
    for _ in 0..10 {
        run.destination("/ok", json!({})).await?;
    }
    let events = bench.scale.pick(10_000, 300);
    let started = Instant::now();
    let usage = run.server.usage();
    let published = run.publisher.concurrent(events, bench.publishers).await;
    let expected = published.accepted * 10;
    let elapsed = run.wait_deliveries(expected, started, DRAIN_LIMIT).await;
    let ten = run.report("fanout 1→10", &published, expected, elapsed, usage);

    let run = Run::start(bench).await?;
    let destinations = bench.scale.pick(10_000, 200);
    for _ in 0..destinations {
        run.destination("/ok", json!({})).await?;
    }
    let usage = run.server.usage();
    let started = Instant::now();
    let published = run.publisher.concurrent(1, 1).await;
    let elapsed = run
        .wait_deliveries(destinations, started, DRAIN_LIMIT)
        .await;
    let mut wide = run.report("fanout 1→10000", &published, destinations, elapsed, usage);
    wide.notes.push(format!(
        "one event to {destinations} destinations fully delivered in {:.3} s",
        elapsed.as_secs_f64()
    ));
    Ok(vec![ten, wide])
}

pub async fn latency(bench: &Bench) -> anyhow::Result<Report> {
    let run = Run::start(bench).await?;
    run.destination("/ok", json!({})).await?;
    let secs = bench.scale.pick(30, 3);
    let started = Instant::now();
    let usage = run.server.usage();
    let published = run
        .publisher
        .fixed_rate(200, Duration::from_secs(secs))
        .await;
    let elapsed = run
        .wait_deliveries(published.accepted, started, DRAIN_LIMIT)
        .await;
    Ok(run.report(
        "latency 200/s",
        &published,
        published.accepted,
        elapsed,
        usage,
    ))
}

pub async fn backlog(bench: &Bench) -> anyhow::Result<Report> {
    let run = Run::start(bench).await?;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(run.destination("/ok", json!({"enabled": false})).await?);
    }
    let events = bench.scale.pick(100_000, 300);
    let published = run.publisher.concurrent(events, bench.publishers).await;
    let expected = published.accepted * 10;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let queued_rss = run.server.rss_mb();
    let usage = run.server.usage();
    let started = Instant::now();
    for id in &ids {
        run.api(
            reqwest::Method::PATCH,
            &format!("/v1/destinations/{id}"),
            json!({"enabled": true}),
        )
        .await?;
    }
    let elapsed = run.wait_deliveries(expected, started, DRAIN_LIMIT).await;
    let mut report = run.report("backlog", &published, expected, elapsed, usage);
    report.queued_rss_mb = Some(queued_rss);
    report.notes.push(format!(
        "{expected} deliveries queued while paused: RSS {queued_rss:.1} MB; drained at {:.0}/s after resume",
        report.deliveries_per_sec
    ));
    Ok(report)
}

pub async fn isolation(bench: &Bench) -> anyhow::Result<Report> {
    let run = Run::start(bench).await?;
    run.destination(
        "/hang",
        json!({"timeout_secs": 5, "retry_schedule_secs": [1, 1, 1]}),
    )
    .await?;
    run.destination("/ok", json!({})).await?;
    let secs = bench.scale.pick(30, 3);
    let started = Instant::now();
    let usage = run.server.usage();
    let published = run
        .publisher
        .fixed_rate(200, Duration::from_secs(secs))
        .await;
    // Only the healthy destination answers; the hanging one never does.
    let target = published.accepted;
    let mut waited = Duration::ZERO;
    while (run.counts.unique_events() as u64) < target && waited < DRAIN_LIMIT {
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited = started.elapsed();
    }
    let mut report = run.report("isolation", &published, target, started.elapsed(), usage);
    report.missing = target.saturating_sub(run.counts.unique_events() as u64);
    report.notes.push(
        "e2e latency is the healthy destination's; the other hangs until its 5 s timeout".into(),
    );
    Ok(report)
}

pub async fn overload(bench: &Bench) -> anyhow::Result<Report> {
    let events = bench.scale.pick(60_000, 2_000);
    let publishers = 4 * bench.publishers;
    let (mut report, published) =
        flood_one_destination(bench, "overload", events, 1, publishers).await?;
    report.notes.push(format!(
        "{publishers} concurrent publishers: {} accepted, {} refused with 429/503 + Retry-After, {} other 5xx",
        published.accepted, published.throttled_with_retry_after, published.server_errors
    ));
    Ok(report)
}
