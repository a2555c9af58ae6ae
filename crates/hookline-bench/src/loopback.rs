//! The host's reference figure: bare HTTP POSTs from the bench's publishers to its
//! receiver running as a second process, with no Hookline between them. The issue's
//! targets were set on a machine where this ran at about 80,000 requests/s; hosts of the
//! same kind differ from run to run by more than most changes do, so every `all` run
//! measures the ceiling beside the scenarios and figures can be read as ratios of it.

use std::process::Stdio;
use std::time::Instant;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::publisher::Publisher;
use crate::report::{Report, percentile_ms};
use crate::scenarios::Bench;
use crate::server::Usage;

/// The argument that makes the bench binary run only its receiver (see `main`).
pub const RECEIVER_ONLY: &str = "receiver-only";

/// Posts 200,000 requests (smoke: 2,000) from 64 keep-alive publishers to a receiver in
/// its own process, as fast as they are answered.
pub async fn loopback(bench: &Bench) -> anyhow::Result<Report> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg(RECEIVER_ONLY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the receiver process")?;
    let stdout = child.stdout.take().context("the receiver's stdout")?;
    let base = BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .context("the receiver process printed no address")?;
    let requests = bench.scale.pick(200_000, 2_000);
    let started = Instant::now();
    let machine = Usage::machine();
    let mut sent = Publisher::new(&[base], "unused")
        .concurrent(requests, 64)
        .await;
    let elapsed = started.elapsed();
    let steal_percent = Usage::machine().since(machine).steal_percent();
    child.kill().await?;
    let per_sec = sent.accepted as f64 / elapsed.as_secs_f64().max(1e-9);
    Ok(Report {
        scenario: "loopback POST".into(),
        events: sent.accepted,
        events_per_sec: per_sec,
        publish_p50_ms: percentile_ms(&mut sent.latencies_us, 50.0),
        publish_p99_ms: percentile_ms(&mut sent.latencies_us, 99.0),
        steal_percent,
        non_2xx: sent.non_2xx,
        server_errors: sent.server_errors,
        missing: requests.saturating_sub(sent.accepted),
        notes: vec![format!(
            "bare HTTP POSTs between two processes, no Hookline: the host's ceiling \
             ({per_sec:.0}/s; the targets assume about 80,000/s)"
        )],
        ..Report::default()
    })
}

/// Runs the receiver alone and prints its base URL; the process lives until killed or
/// until its stdin closes (the bench that started it is gone).
pub async fn receiver_only() -> anyhow::Result<()> {
    let (base, _counts) = crate::receiver::start().await?;
    println!("{base}");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while stdin.next_line().await?.is_some() {}
    Ok(())
}
