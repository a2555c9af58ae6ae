//! The replay task: each second, takes a running replay (one whose lease ran out, or
//! this node's own) and sends one second's worth of it again (`rate_per_sec`
//! deliveries, newest first), then records how far it got. A replay is worked on by
//! one node at a time; if its node dies, another takes it up once the lease runs out,
//! and what was sent again no longer matches its status, so it is not sent twice.

use std::sync::Arc;
use std::time::Duration;

use hookline_core::clock::{Clock, Millis};
use hookline_core::replay::{Replay, ReplayStep};
use hookline_store::replays::replay_query;
use hookline_store::{Store, StoreError, StoreResult};
use tokio_util::sync::CancellationToken;

/// How long a node holds a replay between steps before another may take it.
const LEASE_MS: Millis = 30_000;

pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    node: String,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = clock.now_ms();
        let replay = match store.claim_replay(&node, now, now + LEASE_MS).await {
            Ok(Some(replay)) => replay,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "could not take up a replay; will retry");
                continue;
            }
        };
        if let Err(e) = step(store.as_ref(), &node, &replay, now).await {
            tracing::warn!(replay = %replay.id, error = %e, "a replay step failed; will retry");
        }
    }
}

/// Sends up to `rate_per_sec` of the replay's deliveries again and records the step.
async fn step(store: &dyn Store, node: &str, replay: &Replay, now: Millis) -> StoreResult<()> {
    let query = replay_query(
        &replay.destination_id,
        &replay.filter,
        replay.cursor.as_ref(),
        replay.rate_per_sec,
    );
    let page = store.list_deliveries(&replay.org_id, &query).await?;
    let mut step = ReplayStep {
        cursor: page.data.last().map(|d| d.id.clone()),
        done: 0,
        failed: 0,
        finished: page.next_cursor.is_none(),
    };
    for delivery in page.data.iter().filter(|d| replay.filter.wants(d)) {
        match store.redeliver(&replay.org_id, &delivery.id, now).await {
            Ok(Some(_)) => step.done += 1,
            // Gone, or its destination deleted meanwhile.
            Ok(None) | Err(StoreError::Conflict(_)) => step.failed += 1,
            Err(e) => return Err(e),
        }
    }
    let kept = store
        .advance_replay(&replay.id, node, &step, now, now + LEASE_MS)
        .await?;
    if kept && step.finished {
        tracing::info!(
            replay = %replay.id,
            destination = %replay.destination_id,
            sent = replay.done + step.done,
            failed = replay.failed + step.failed,
            "replay done"
        );
    }
    Ok(())
}
