//! SSE fan-out: many clients on one stream's Server-Sent Events while events are
//! published at a steady rate; the latency from each publish to each client, and the
//! server's memory with every client connected.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use super::{Bench, Run};
use crate::clock::unix_micros;
use crate::receiver::sent_us;
use crate::report::{Report, percentile_ms};

/// Events published per second while the clients listen.
const RATE: u64 = 20;

pub async fn sse(bench: &Bench) -> anyhow::Result<Vec<Report>> {
    let clients = bench.scale.pick(1_000, 20);
    let secs = bench.scale.pick(10, 2);
    let run = Run::start(bench).await?;
    let base = run.server.bases[0].clone();
    let connected = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let http = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut listeners = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let request = hyper::Request::get(format!("{base}/v1/streams/bench/events/sse"))
            .header("authorization", format!("Bearer {}", run.server.api_key))
            .body(Empty::new())?;
        let (http, connected, latencies) = (http.clone(), connected.clone(), latencies.clone());
        listeners.spawn(async move {
            let Ok(response) = http.request(request).await else {
                return;
            };
            connected.fetch_add(1, Ordering::Relaxed);
            let mut body = response.into_body();
            let mut pending = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(chunk) = frame.into_data() else {
                    continue;
                };
                pending.extend_from_slice(&chunk);
                // One event per blank-line-ended block; a block may span chunks.
                while let Some(end) = memchr::memmem::find(&pending, b"\n\n") {
                    if let Some(sent) = sent_us(&pending[..end]) {
                        let lag = unix_micros().saturating_sub(sent);
                        latencies.lock().unwrap().push(lag);
                    }
                    pending.drain(..end + 2);
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while connected.load(Ordering::Relaxed) < clients {
        if Instant::now() > deadline {
            bail!(
                "only {} of {clients} SSE clients connected",
                connected.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let usage = run.server.usage();
    let idle_rss = run.server.rss_mb();
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_millis(1_000 / RATE));
    let mut events = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        ticks.tick().await;
        run.api(
            reqwest::Method::POST,
            "/v1/events",
            json!({"type": "bench.sse", "stream": "bench", "data": {"sent_us": unix_micros()}}),
        )
        .await?;
        events += 1;
    }
    let expected = events * clients;
    let drained = Instant::now() + Duration::from_secs(30);
    while (latencies.lock().unwrap().len() as u64) < expected && Instant::now() < drained {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let used = run.server.usage().since(usage);
    listeners.abort_all();
    let mut lags = std::mem::take(&mut *latencies.lock().unwrap());
    let received = lags.len() as u64;
    let report = Report {
        scenario: "sse fan-out".into(),
        events,
        deliveries: received,
        events_per_sec: events as f64 / secs as f64,
        deliveries_per_sec: received as f64 / elapsed.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        e2e_p50_ms: percentile_ms(&mut lags, 50.0),
        e2e_p95_ms: percentile_ms(&mut lags, 95.0),
        e2e_p99_ms: percentile_ms(&mut lags, 99.0),
        cpu_s_per_1000_deliveries: used.cpu_seconds / (received.max(1) as f64 / 1000.0),
        peak_rss_mb: run.server.peak_rss_mb(),
        steal_percent: used.steal_percent(),
        missing: expected.saturating_sub(received),
        notes: vec![format!(
            "{clients} clients on one stream, {RATE} events/s for {secs} s; server RSS {idle_rss:.1} MB with all connected, before publishing"
        )],
        ..Report::default()
    };
    Ok(vec![report])
}
