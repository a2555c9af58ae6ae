//! Scenarios over a large stored history, outside `all`: publish latency while
//! retention purges it, and how fast statistics answer over it.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{Bench, DRAIN_LIMIT, Run};
use crate::report::{Report, percentile_ms};

/// Publish latency at 200 events/s while retention purges a large history, against the
/// same load just before, when nothing is old enough to purge. The server keeps
/// `window` seconds and purges each second; the history is published at full speed and
/// delivered first.
pub async fn retention(bench: &Bench) -> anyhow::Result<Vec<Report>> {
    let window = Duration::from_secs(bench.scale.pick(40, 10));
    let history = bench.scale.pick(100_000, 1_000);
    let measure = Duration::from_secs(bench.scale.pick(10, 2));
    let settings = [
        (
            "HOOKLINE_RETENTION_DAYS",
            (window.as_secs_f64() / 86_400.0).to_string(),
        ),
        ("HOOKLINE_RETENTION_INTERVAL_SECS", "1".to_owned()),
    ];
    let run = Run::start_with(bench, &settings).await?;
    run.destination("/ok", json!({})).await?;
    let started = Instant::now();
    let filled = run.publisher.concurrent(history, bench.publishers).await;
    run.wait_deliveries(filled.accepted, started, DRAIN_LIMIT)
        .await;
    // Ids sort by time: once the oldest event is this one, the history is gone.
    let marker = run
        .api(
            reqwest::Method::POST,
            "/v1/events",
            json!({"type": "bench.marker"}),
        )
        .await?["id"]
        .as_str()
        .context("publish without id")?
        .to_owned();
    if started.elapsed() + measure >= window {
        bail!("the history took too long to deliver to measure before it ages out");
    }
    run.counts.take_latencies();
    let usage = run.server.usage();
    let quiet = run.publisher.fixed_rate(200, measure).await;
    let mut without = run.report("retention: idle", &quiet, 0, measure, usage);
    (without.deliveries, without.deliveries_per_sec) = (0, 0.0);

    tokio::time::sleep(window.saturating_sub(started.elapsed())).await;
    run.counts.take_latencies();
    let usage = run.server.usage();
    let purge_started = Instant::now();
    let purging = run.publisher.fixed_rate(200, measure).await;
    let mut during = run.report("retention: purging", &purging, 0, measure, usage);
    (during.deliveries, during.deliveries_per_sec) = (0, 0.0);
    let gone = loop {
        if run.oldest_event().await?.is_some_and(|id| id >= marker) {
            break purge_started.elapsed();
        }
        if purge_started.elapsed() > DRAIN_LIMIT {
            bail!("the history was never purged");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    during.notes.push(format!(
        "{} events of history purged within {:.1} s of the window passing; publish p99 \
         {:.2} ms meanwhile against {:.2} ms before",
        filled.accepted,
        gone.as_secs_f64(),
        during.publish_p99_ms,
        without.publish_p99_ms
    ));
    Ok(vec![without, during])
}

/// Minutes in the 30-day window: the most minute rows a destination's stats could read.
const MONTH_MINUTES: u64 = 30 * 24 * 60;
/// Minute rows the server keeps unfolded, at most: 25 to 26 hours' worth.
const MINUTES_KEPT: u64 = 26 * 60;

/// How fast `GET /v1/destinations/:id/stats` (and `/v1/stats`) answer for a destination
/// that has received `history` deliveries for real, in each window; then again after
/// the 30 days before are filled with a rollup row for every minute (written straight
/// into the store: a bench cannot wait a month) and folded by the server, as it folds
/// what is older than a day into hours.
pub async fn stats(bench: &Bench) -> anyhow::Result<Vec<Report>> {
    let history = bench.scale.pick(1_000_000, 2_000);
    let requests = bench.scale.pick(200, 10) as usize;
    let settings = [("HOOKLINE_RETENTION_INTERVAL_SECS", "1".to_owned())];
    let run = Run::start_with(bench, &settings).await?;
    let destination = run.destination("/ok", json!({})).await?;
    let started = Instant::now();
    let usage = run.server.usage();
    let filled = run.publisher.concurrent(history, bench.publishers).await;
    let elapsed = run
        .wait_deliveries(filled.accepted, started, DRAIN_LIMIT)
        .await;
    let mut report = run.report("stats: history", &filled, filled.accepted, elapsed, usage);
    let attempts = settled_attempts(&run, &destination, filled.accepted).await?;
    report.notes.push(format!(
        "{attempts} attempts in the destination's stats after the fill"
    ));
    for line in stats_latencies(&run, &destination, requests).await? {
        report.notes.push(format!("real history: {line}"));
    }
    run.server.sql(&spread_month(&destination))?;
    let stats = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/destinations/{destination}/stats?window=30d"),
            Value::Null,
        )
        .await?;
    report.notes.push(format!(
        "the 30 days filled with a row per minute: {} attempts in the 30d window",
        stats["attempts"]
    ));
    let began = Instant::now();
    let (minutes, hours) = loop {
        let left: u64 = run.server.sql("SELECT COUNT(*) FROM rollups")?.parse()?;
        if left <= MINUTES_KEPT || began.elapsed() > DRAIN_LIMIT {
            break (left, run.server.sql("SELECT COUNT(*) FROM rollup_hours")?);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    report.notes.push(format!(
        "folded within {:.1} s to {minutes} minute rows and {hours} hour rows",
        began.elapsed().as_secs_f64()
    ));
    for line in stats_latencies(&run, &destination, requests).await? {
        report.notes.push(format!("30 days, folded: {line}"));
    }
    Ok(vec![report])
}

/// The destination's attempts in its 1h stats once they count every delivery (the last
/// completion batch may land just after the receiver saw its request).
async fn settled_attempts(run: &Run, destination: &str, expected: u64) -> anyhow::Result<u64> {
    let path = format!("/v1/destinations/{destination}/stats?window=1h");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = run.api(reqwest::Method::GET, &path, Value::Null).await?;
        let attempts = stats["attempts"]
            .as_u64()
            .context("stats without attempts")?;
        if attempts >= expected || Instant::now() > deadline {
            return Ok(attempts);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// p50 and p99 of `requests` sequential stats requests per window, one line each.
async fn stats_latencies(
    run: &Run,
    destination: &str,
    requests: usize,
) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for window in ["1h", "24h", "7d", "30d"] {
        for (what, path) in [
            (
                "destination",
                format!("/v1/destinations/{destination}/stats?window={window}"),
            ),
            ("org", format!("/v1/stats?window={window}")),
        ] {
            let mut micros = Vec::with_capacity(requests);
            for _ in 0..requests {
                let sent = Instant::now();
                run.api(reqwest::Method::GET, &path, Value::Null).await?;
                micros.push(sent.elapsed().as_micros() as u64);
            }
            lines.push(format!(
                "{what} stats, window {window}: p50 {:.2} ms, p99 {:.2} ms ({requests} requests)",
                percentile_ms(&mut micros, 50.0),
                percentile_ms(&mut micros, 99.0)
            ));
        }
    }
    Ok(lines)
}

/// A rollup row for each minute of the 30 days before this one that has none: 23
/// attempts (22 answered 2xx within 25 ms, one failed), the order of a million a month.
/// Written the same on both stores.
fn spread_month(destination: &str) -> String {
    format!(
        "WITH RECURSIVE m(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM m WHERE n < {MONTH_MINUTES})
         INSERT INTO rollups (destination_id, bucket, org_id, attempts_ok, attempts_failed,
             delivered, dead_lettered, l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11)
         SELECT '{destination}', CAST({now_minute} - n AS BIGINT) * 60000,
             (SELECT org_id FROM destinations WHERE id = '{destination}'),
             22, 1, 22, 0, 10, 8, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0
         FROM m WHERE true
         ON CONFLICT (destination_id, bucket) DO NOTHING",
        now_minute = crate::clock::unix_micros() / 60_000_000
    )
}
