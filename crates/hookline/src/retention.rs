//! The retention task: every `retention_interval_secs`, removes what is older than the
//! retention window, batch after batch (each the store's own short transaction, so
//! publishes and claims interleave with them), until a batch comes back short. Says at
//! `info` what a pass removed. On PostgreSQL every node runs it and one purges at a time.

use std::sync::Arc;
use std::time::Duration;

use hookline_core::clock::Clock;
use hookline_store::{Purged, Store};
use tokio_util::sync::CancellationToken;

/// Deliveries (and events) one transaction removes at most.
const BATCH: u32 = 500;

pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    window: Duration,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let before = clock.now_ms() - window.as_millis() as i64;
        let mut pass = Purged::default();
        while !shutdown.is_cancelled() {
            match store.purge(before, BATCH).await {
                Ok(batch) => {
                    pass.deliveries += batch.deliveries;
                    pass.attempts += batch.attempts;
                    pass.events += batch.events;
                    if batch.deliveries < BATCH.into() && batch.events < BATCH.into() {
                        break;
                    }
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
