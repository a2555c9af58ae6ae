//! The server's line at `info` every `log_summary_secs` (a minute by default): what this
//! node published, delivered and failed meanwhile, and what waits to be sent now (on
//! PostgreSQL, for every node), with how long the oldest of it has waited. A backlog
//! that grows, or an oldest wait that climbs, is visible in the log without metrics.

use std::sync::Arc;
use std::time::Duration;

use hookline_core::clock::Clock;
use hookline_dispatch::Dispatcher;
use hookline_store::Store;
use tokio_util::sync::CancellationToken;

pub async fn run(
    dispatcher: Arc<Dispatcher>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut before = dispatcher.activity().counts();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let counts = dispatcher.activity().counts();
        let done = counts.since(before);
        before = counts;
        // No store query for a line nobody would see (`RUST_LOG=warn`).
        if !tracing::enabled!(tracing::Level::INFO) {
            continue;
        }
        let now = clock.now_ms();
        let due = match store.due_now(now).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not read what is due for the summary");
                continue;
            }
        };
        let oldest_due_secs = due.oldest.map_or(0, |at| (now - at).max(0) / 1000);
        tracing::info!(
            published = done.published,
            delivered = done.delivered,
            failed = done.failed,
            dead_lettered = done.dead_lettered,
            due = due.count,
            oldest_due_secs,
            "last {} s: {} published, {} delivered, {} attempts failed ({} dead-lettered); \
             {} due now, the oldest for {} s",
            every.as_secs(),
            done.published,
            done.delivered,
            done.failed,
            done.dead_lettered,
            due.count,
            oldest_due_secs,
        );
    }
}
