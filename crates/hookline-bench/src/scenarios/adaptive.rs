//! Issue 29: one destination, four receivers. (a) answers at once; (b) serves 50 at a
//! time in 5 ms each and answers 503 at once to the rest (its ideal is 10,000/s);
//! (c) answers in 5 ms until half the events have arrived, then in 10 ms; (d) is (b)
//! taking only 25 at a time from halfway, to see the limit follow a receiver down. The
//! destination takes `--max-in-flight` and `--concurrency` (0 and none: the server's
//! defaults). Each report says how many requests were shed and how the destination's
//! limit moved (read from its `concurrency_now` every quarter of a second), and the
//! rate until 99% were delivered: a shed delivery waits 5 s for its retry under the
//! default schedule, which the rate over the whole run counts in.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Bench, Run};
use crate::report::Report;

/// Long enough for every event to arrive while 503s stay rare; a delivery shed twice
/// waits minutes for its third attempt under the default schedule.
const RUN_LIMIT: Duration = Duration::from_secs(60);

pub async fn adaptive(bench: &Bench) -> anyhow::Result<Vec<Report>> {
    let events = bench.scale.pick(40_000, 400);
    let receivers = [
        ("adaptive (a): answers at once", "/ok".to_owned()),
        (
            "adaptive (b): 50 at a time in 5 ms, sheds the rest",
            "/shed/50/5".to_owned(),
        ),
        (
            "adaptive (c): 5 ms, 10 ms from halfway",
            format!("/slowing/5/{}", events / 2),
        ),
        (
            "adaptive (d): 50 at a time, 25 from halfway",
            format!("/shed/50/5/{}", events / 2),
        ),
    ];
    let mut reports = Vec::new();
    for (scenario, path) in receivers {
        let run = Run::start(bench).await?;
        let destination = run.destination(&path, json!({})).await?;
        let limits = Arc::new(Mutex::new(Vec::new()));
        let most = Arc::new(Mutex::new(None));
        let started = Instant::now();
        let usage = run.server.usage();
        let work = async {
            let published = run.publisher.concurrent(events, bench.publishers).await;
            let elapsed = run
                .wait_deliveries(published.accepted, started, RUN_LIMIT)
                .await;
            (published, elapsed)
        };
        let (published, elapsed) = tokio::select! {
            done = work => done,
            () = sample_limits(&run, &destination, started, limits.clone()) => {
                unreachable!("sampling runs until dropped")
            }
            () = time_most(&run, events, started, most.clone()) => unreachable!("runs until dropped"),
        };
        let mut report = run.report(scenario, &published, published.accepted, elapsed, usage);
        let shed = run.counts.shed();
        report.notes.push(format!(
            "503s: {shed} ({:.2}% of deliveries)",
            100.0 * shed as f64 / report.deliveries.max(1) as f64
        ));
        if let Some(at) = *most.lock().unwrap() {
            report.notes.push(format!(
                "99% delivered after {:.2} s: {:.0} deliveries/s until then (the rest waited for retries)",
                at.as_secs_f64(),
                0.99 * events as f64 / at.as_secs_f64()
            ));
        }
        report.notes.push(format!(
            "limit each second: {}",
            per_second(&limits.lock().unwrap())
        ));
        reports.push(report);
    }
    Ok(reports)
}

/// Notes in `most` when 99% of `events` have been delivered, then waits forever.
async fn time_most(run: &Run, events: u64, started: Instant, most: Arc<Mutex<Option<Duration>>>) {
    let target = events * 99 / 100;
    while (run.counts.unique_deliveries() as u64) < target {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    *most.lock().unwrap() = Some(started.elapsed());
    std::future::pending::<()>().await;
}

/// Reads the destination's limit every 250 ms into `limits` as (ms since `started`, limit).
async fn sample_limits(
    run: &Run,
    destination: &str,
    started: Instant,
    limits: Arc<Mutex<Vec<(u64, u64)>>>,
) {
    loop {
        if let Ok(shown) = run
            .api(
                reqwest::Method::GET,
                &format!("/v1/destinations/{destination}"),
                Value::Null,
            )
            .await
            && let Some(limit) = shown["concurrency_now"]["limit"].as_u64()
        {
            let at = started.elapsed().as_millis() as u64;
            limits.lock().unwrap().push((at, limit));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The last limit read in each second, as `limit@second` items.
fn per_second(limits: &[(u64, u64)]) -> String {
    let mut by_second: Vec<(u64, u64)> = Vec::new();
    for &(at, limit) in limits {
        let second = at / 1000;
        match by_second.last_mut() {
            Some(last) if last.0 == second => last.1 = limit,
            _ => by_second.push((second, limit)),
        }
    }
    by_second
        .iter()
        .map(|(second, limit)| format!("{limit}@{second}s"))
        .collect::<Vec<_>>()
        .join(" ")
}
