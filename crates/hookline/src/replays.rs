//! The replay task: each second, takes a running job (one whose lease ran out, or this
//! node's own) and does one second's worth of it (`rate_per_sec`), then records how far
//! it got. A replay sends deliveries again, newest first: what was sent again no longer
//! matches its status, so it is not sent twice. A backfill sends a new destination the
//! earlier events it asked for, oldest first (in `seq` order within a stream). A job is
//! worked on by one node at a time; if its node dies, another takes it up once the
//! lease runs out.

use std::sync::Arc;
use std::time::Duration;

use hookline_core::clock::{Clock, Millis};
use hookline_core::event::Event;
use hookline_core::ids::EventId;
use hookline_core::replay::{Backfill, Replay, ReplayFilter, ReplayStep, ReplayWork};
use hookline_store::replays::replay_query;
use hookline_store::{EventQuery, MAX_PAGE_LIMIT, PageRequest, Store, StoreError, StoreResult};
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

/// Does up to `rate_per_sec` of the job and records the step.
async fn step(store: &dyn Store, node: &str, replay: &Replay, now: Millis) -> StoreResult<()> {
    let step = match &replay.work {
        ReplayWork::Redeliver(filter) => redeliver(store, replay, filter, now).await?,
        ReplayWork::Backfill(backfill) => send_earlier(store, replay, backfill, now).await?,
    };
    let kept = store
        .advance_replay(&replay.id, node, &step, now, now + LEASE_MS)
        .await?;
    if kept && step.finished {
        tracing::info!(
            job = %replay.id,
            kind = replay.work.kind(),
            destination = %replay.destination_id,
            sent = replay.done + step.done,
            failed = replay.failed + step.failed,
            "{} done",
            replay.work.kind()
        );
    }
    Ok(())
}

/// The next page of the destination's deliveries the filter names, sent again.
async fn redeliver(
    store: &dyn Store,
    replay: &Replay,
    filter: &ReplayFilter,
    now: Millis,
) -> StoreResult<ReplayStep> {
    let query = replay_query(
        &replay.destination_id,
        filter,
        replay.cursor.as_deref(),
        replay.rate_per_sec,
    );
    let page = store.list_deliveries(&replay.org_id, &query).await?;
    let mut step = ReplayStep {
        cursor: page.data.last().map(|d| d.id.to_string()),
        done: 0,
        failed: 0,
        finished: page.next_cursor.is_none(),
    };
    for delivery in page.data.iter().filter(|d| filter.wants(d)) {
        match store.redeliver(&replay.org_id, &delivery.id, now).await {
            Ok(Some(_)) => step.done += 1,
            // Gone, or its destination deleted meanwhile.
            Ok(None) | Err(StoreError::Conflict(_)) => step.failed += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(step)
}

/// The next earlier events the destination wants, queued to it. The cursor is the last
/// seq of its stream, or (org-wide) the last event id.
async fn send_earlier(
    store: &dyn Store,
    replay: &Replay,
    backfill: &Backfill,
    now: Millis,
) -> StoreResult<ReplayStep> {
    let Some(destination) = store
        .get_destination(&replay.org_id, &replay.destination_id)
        .await?
    else {
        // Deleted meanwhile: nothing more to send it.
        return Ok(ReplayStep {
            cursor: None,
            done: 0,
            failed: 0,
            finished: true,
        });
    };
    let page = PageRequest {
        limit: replay.rate_per_sec.clamp(1, MAX_PAGE_LIMIT),
        cursor: None,
    };
    let query = match (&destination.stream, backfill.from_seq) {
        (Some(stream), Some(from)) => EventQuery {
            stream: Some(stream.clone()),
            after_seq: Some(
                replay
                    .cursor
                    .as_deref()
                    .map_or(Ok(from - 1), str::parse)
                    .map_err(|_| StoreError::Corrupt(format!("backfill {} cursor", replay.id)))?,
            ),
            page,
            ..EventQuery::default()
        },
        _ => EventQuery {
            page: PageRequest {
                cursor: Some(replay.cursor.clone().unwrap_or_else(|| {
                    EventId::lowest_at(backfill.since.unwrap_or_default()).to_string()
                })),
                ..page
            },
            ..EventQuery::default()
        },
    };
    let read = store.list_events(&replay.org_id, &query).await?;
    let mut events = read.data;
    // Listed by id; a stream's go in seq order, which the cursor follows.
    if destination.stream.is_some() {
        events.sort_by_key(|e| e.seq);
    }
    let earlier: Vec<Event> = events
        .iter()
        .filter(|e| e.id < backfill.before)
        .cloned()
        .collect();
    let reached_creation = earlier.len() < events.len();
    let cursor = earlier.last().map(|e| match destination.stream {
        Some(_) => e.seq.to_string(),
        None => e.id.to_string(),
    });
    let wanted: Vec<Event> = earlier
        .into_iter()
        .filter(|e| destination.settings.wants(e))
        .collect();
    let done = store.backfill(&destination, &wanted, now).await?;
    Ok(ReplayStep {
        cursor,
        done: i64::from(done),
        failed: 0,
        finished: reached_creation || read.next_cursor.is_none(),
    })
}
