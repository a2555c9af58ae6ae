//! The retention task: every `retention_interval_secs`, removes what is older than the
//! retention window (the server's, or an org's own: `hookline org retention`), batch after batch, until a batch comes back short. Each batch is
//! the store's own short transaction, and after each the task rests as long as the
//! batch took, so the store's writer spends at most about half its time purging and
//! publishes and claims wait for at most one small batch. Says at `info` what a pass
//! removed. On PostgreSQL every node runs it and one purges at a time.

use std::sync::Arc;
use std::time::Duration;

use hookline_core::clock::Clock;
use hookline_store::{Purged, Store};
use tokio_util::sync::CancellationToken;

/// Deliveries (and events) one transaction removes at most: on the embedded store, a
/// batch of 500 held its writer for about 30 ms (`hookline-bench retention`).
const BATCH: u32 = 100;

pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    window: Option<Duration>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let (now, window) = (clock.now_ms(), window.map(|w| w.as_millis() as i64));
        let mut pass = Purged::default();
        while !shutdown.is_cancelled() {
            let began = std::time::Instant::now();
            match store.purge(now, window, BATCH).await {
                Ok(batch) => {
                    pass.deliveries += batch.deliveries;
                    pass.attempts += batch.attempts;
                    pass.events += batch.events;
                    if batch.deliveries < BATCH.into() && batch.events < BATCH.into() {
                        break;
                    }
                    tokio::time::sleep(began.elapsed()).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention pass failed; will retry");
                    break;
                }
            }
        }
        if pass != Purged::default() {
            tracing::info!(
                deliveries = pass.deliveries,
                attempts = pass.attempts,
                events = pass.events,
                "retention removed {} deliveries, {} attempts and {} events",
                pass.deliveries,
                pass.attempts,
                pass.events,
            );
        }
    }
}
