//! The retention task: every `retention_interval_secs`, makes what the store needs for the
//! days ahead (PostgreSQL's partitions), folds day-old minute rollups into hours, then
//! removes what is older than the retention window (the server's, or an
//! org's own: `hookline org retention`). Both go batch after batch until a batch comes
//! back short; each batch is the store's own short transaction, and after each the task
//! rests as long as the batch took, so the store's writer spends at most about half its
//! time on this and publishes and claims wait for at most one small batch. Says at `info`
//! what a pass removed. On PostgreSQL every node runs it and one works at a time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hookline_core::clock::Clock;
use hookline_core::rollup::fold_before;
use hookline_store::{Purged, Store, StoreResult};
use tokio_util::sync::CancellationToken;

/// Deliveries (and events) one transaction removes at most: on the embedded store, a
/// batch of 500 held its writer for about 30 ms (`hookline-bench retention`).
const BATCH: u32 = 100;
/// Minute rollups one transaction folds into hours, about (whole minutes).
const FOLD_BATCH: u32 = 1_000;

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
        match store.prepare(now).await {
            Ok(0) => {}
            Ok(days) => tracing::info!(days, "made the partitions of {days} days ahead"),
            Err(e) => tracing::error!(
                error = %e,
                "could not make the partitions of the days ahead; will retry"
            ),
        }
        let before = fold_before(now);
        let folded = batches(&shutdown, "folding rollups", || async {
            let rows = store.fold_rollups(before, FOLD_BATCH).await?;
            Ok((rows, rows >= FOLD_BATCH.into()))
        })
        .await;
        if folded > 0 {
            tracing::debug!(rows = folded, "folded {folded} minute rollups into hours");
        }
        let pass = batches(&shutdown, "retention", || async {
            let batch = store.purge(now, window, BATCH).await?;
            let full =
                batch.deliveries >= BATCH.into() || batch.events >= BATCH.into() || batch.days > 0;
            Ok((batch, full))
        })
        .await;
        if pass != Purged::default() {
            tracing::info!(
                deliveries = pass.deliveries,
                attempts = pass.attempts,
                events = pass.events,
                days = pass.days,
                "retention removed {} deliveries, {} attempts and {} events, and dropped {} days",
                pass.deliveries,
                pass.attempts,
                pass.events,
                pass.days,
            );
        }
    }
}

/// Runs `batch` until it reports a short one (or fails, or shutdown), resting as long as
/// each took; returns what the batches did, added up.
async fn batches<T, F, Fut>(shutdown: &CancellationToken, what: &str, mut batch: F) -> T
where
    T: Default + std::ops::AddAssign,
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<(T, bool)>>,
{
    let mut total = T::default();
    while !shutdown.is_cancelled() {
        let began = std::time::Instant::now();
        match batch().await {
            Ok((done, full)) => {
                total += done;
                if !full {
                    break;
                }
                tokio::time::sleep(began.elapsed()).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "{what} failed; will retry");
                break;
            }
        }
    }
    total
}
