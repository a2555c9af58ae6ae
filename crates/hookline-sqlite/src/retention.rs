//! Retention: the writer removes what is older than the retention window in small
//! batches, each its own short transaction, so publishes and claims queue behind at
//! most one batch. Org by org, oldest first: finished deliveries last changed before the
//! cut and their attempts; then each event before the cut that no delivery refers to any
//! more (an event counts its deliveries, and each purged one is taken off the count),
//! with its place in its stream. Unfinished deliveries and their events stay however old.

use std::collections::BTreeMap;

use hookline_core::clock::Millis;
use hookline_core::ids::{DeliveryId, EventId};
use hookline_store::{Purged, StoreResult, retention_cut as cut};
use rusqlite::{Connection, params};

const FINISHED: &str = "('delivered', 'dead_letter', 'canceled', 'intercepted')";

pub fn purge(
    conn: &Connection,
    now: Millis,
    window: Option<Millis>,
    batch: u32,
) -> StoreResult<Purged> {
    let orgs: Vec<(String, Option<f64>)> = conn
        .prepare_cached("SELECT id, retention_days FROM orgs ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut purged = Purged::default();
    for (org, own) in orgs {
        let left = u64::from(batch).saturating_sub(purged.deliveries.max(purged.events));
        if left == 0 {
            break;
        }
        if let Some(before) = cut(now, own, window) {
            purge_org(conn, &org, before, left, &mut purged)?;
        }
    }
    Ok(purged)
}

fn purge_org(
    conn: &Connection,
    org: &str,
    before: Millis,
    limit: u64,
    purged: &mut Purged,
) -> StoreResult<()> {
    let rows: Vec<(i64, String, String)> = conn
        .prepare_cached(&format!(
            "SELECT rowid, id, event_id FROM deliveries
             WHERE org_id = ?1 AND id < ?2 AND state IN {FINISHED} AND updated_at < ?3
             ORDER BY id LIMIT ?4"
        ))?
        .query_map(
            params![org, DeliveryId::lowest_at(before).as_str(), before, limit],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut per_event: BTreeMap<String, i64> = BTreeMap::new();
    for (rowid, delivery, event_id) in &rows {
        purged.attempts += conn
            .prepare_cached("DELETE FROM attempts WHERE delivery_id = ?1")?
            .execute([delivery])? as u64;
        conn.prepare_cached("DELETE FROM deliveries WHERE rowid = ?1")?
            .execute([rowid])?;
        *per_event.entry(event_id.clone()).or_default() += 1;
    }
    purged.deliveries += rows.len() as u64;
    for (event_id, count) in &per_event {
        conn.prepare_cached(
            "UPDATE events SET deliveries = deliveries - ?1 WHERE org_id = ?2 AND id = ?3",
        )?
        .execute(params![count, org, event_id])?;
    }
    // While old deliveries remain to purge, only events up to the last one purged can
    // have lost all theirs; once none remain, every event before the cut is a candidate.
    let (through, bound) = match (rows.len() as u64 == limit, per_event.keys().next_back()) {
        (true, Some(last)) => ("<=", last.clone()),
        _ => ("<", EventId::lowest_at(before).to_string()),
    };
    let events: Vec<(String, String, i64)> = conn
        .prepare_cached(&format!(
            "SELECT id, stream, seq FROM events
             WHERE org_id = ?1 AND id {through} ?2 AND timestamp < ?3 AND deliveries <= 0
             ORDER BY id LIMIT ?4"
        ))?
        .query_map(params![org, bound, before, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (id, stream, seq) in &events {
        conn.prepare_cached("DELETE FROM events WHERE org_id = ?1 AND id = ?2")?
            .execute(params![org, id])?;
        conn.prepare_cached(
            "DELETE FROM stream_events WHERE org_id = ?1 AND stream = ?2 AND seq = ?3",
        )?
        .execute(params![org, stream, seq])?;
        conn.prepare_cached("DELETE FROM stream_events_recent WHERE event_id = ?1")?
            .execute([id])?;
    }
    purged.events += events.len() as u64;
    Ok(())
}
