//! Retention on PostgreSQL. Days of deliveries and attempts go whole: once a day's
//! every delivery has finished and every org's retention has passed its end, its
//! partitions are dropped (`partitions::drop_expired`, its own short transaction).
//! What a day held back, and windows shorter than a day, are removed row by row, as the
//! embedded store does (see `hookline_sqlite`'s), but up to a day behind the cut
//! (`hookline_core::partition::row_cut`), so days about to be dropped are not emptied
//! row by row first. Both run under a transaction-level advisory lock taken without
//! waiting: while one node purges, the others' passes remove nothing, so rows are never
//! purged twice.

use std::collections::BTreeMap;

use hookline_core::clock::Millis;
use hookline_core::ids::{DeliveryId, EventId};
use hookline_core::partition::row_cut;
use hookline_store::{Purged, StoreResult, retention_cut as cut};
use sqlx::PgConnection;

use crate::partitions;

pub(crate) const PURGE_LOCK: &str =
    "SELECT pg_try_advisory_xact_lock(hashtextextended('hookline-retention', 0))";
const FINISHED: &str = "('delivered', 'dead_letter', 'canceled', 'intercepted')";

/// Each org and where its retention cuts at `now` (None: it keeps everything).
async fn cuts(
    conn: &mut PgConnection,
    now: Millis,
    window: Option<Millis>,
) -> StoreResult<Vec<(String, Option<Millis>)>> {
    let orgs: Vec<(String, Option<f64>)> =
        sqlx::query_as("SELECT id, retention_days FROM orgs ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
    Ok(orgs
        .into_iter()
        .map(|(org, own)| (org, cut(now, own, window)))
        .collect())
}

/// Drops the oldest day retention has passed, if one may go; returns whether it did.
pub async fn drop_day(
    conn: &mut PgConnection,
    now: Millis,
    window: Option<Millis>,
) -> StoreResult<bool> {
    let ours: bool = sqlx::query_scalar(PURGE_LOCK).fetch_one(&mut *conn).await?;
    if !ours {
        return Ok(false);
    }
    let cuts = cuts(conn, now, window).await?;
    partitions::drop_expired(conn, now, &cuts).await
}

/// Removes up to `batch` deliveries (and events) row by row.
pub async fn purge(
    conn: &mut PgConnection,
    now: Millis,
    window: Option<Millis>,
    batch: u32,
) -> StoreResult<Purged> {
    let mut purged = Purged::default();
    let ours: bool = sqlx::query_scalar(PURGE_LOCK).fetch_one(&mut *conn).await?;
    if !ours {
        return Ok(purged);
    }
    let partitions = partitions::existing(conn).await?;
    let (froms, untils) = partitions::ranges(&partitions);
    let held = Held { froms, untils };
    for (org, cut) in cuts(conn, now, window).await? {
        let left = u64::from(batch).saturating_sub(purged.deliveries.max(purged.events));
        if left == 0 {
            break;
        }
        if let Some(cut) = cut {
            let before = row_cut(now, cut);
            purge_org(conn, &org, before, left as i64, &held, &mut purged).await?;
        }
    }
    Ok(purged)
}

/// The event ids some partition still holds (`partitions::ranges`).
struct Held<'a> {
    froms: Vec<&'a str>,
    untils: Vec<&'a str>,
}

async fn purge_org(
    conn: &mut PgConnection,
    org: &str,
    before: Millis,
    limit: i64,
    held: &Held<'_>,
    purged: &mut Purged,
) -> StoreResult<()> {
    let rows: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT id, event_id FROM deliveries
         WHERE org_id = $1 AND id < $2 AND state IN {FINISHED} AND updated_at < $3
         ORDER BY id LIMIT $4"
    ))
    .bind(org)
    .bind(DeliveryId::lowest_at(before).as_str())
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    purged.attempts += sqlx::query("DELETE FROM attempts WHERE delivery_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    purged.deliveries += sqlx::query("DELETE FROM deliveries WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let mut per_event: BTreeMap<&str, i64> = BTreeMap::new();
    for (_, event_id) in &rows {
        *per_event.entry(event_id.as_str()).or_default() += 1;
    }
    let (events, counts): (Vec<&str>, Vec<i64>) = per_event.iter().map(|(e, n)| (*e, *n)).unzip();
    sqlx::query(
        "UPDATE events e SET deliveries = e.deliveries - c.n
         FROM unnest($1::text[], $2::bigint[]) AS c(id, n)
         WHERE e.org_id = $3 AND e.id = c.id",
    )
    .bind(&events)
    .bind(&counts)
    .bind(org)
    .execute(&mut *conn)
    .await?;
    // As on the embedded store: while old deliveries remain, only events up to the last
    // one purged can have lost all theirs. An event no partition holds has lost all its
    // deliveries with their day, whatever its count says.
    let (through, bound) = match (rows.len() as i64 == limit, events.last()) {
        (true, Some(last)) => ("<=", (*last).to_owned()),
        _ => ("<", EventId::lowest_at(before).to_string()),
    };
    purged.events += sqlx::query(&format!(
        "DELETE FROM events WHERE id IN (
             SELECT e.id FROM events e
             WHERE e.org_id = $1 AND e.id {through} $2 AND e.timestamp < $3
               AND (e.deliveries <= 0 OR NOT EXISTS (
                   SELECT 1 FROM UNNEST($5::text[], $6::text[]) AS r(from_id, until_id)
                   WHERE e.id >= r.from_id AND e.id < r.until_id))
             ORDER BY e.id LIMIT $4)"
    ))
    .bind(org)
    .bind(bound)
    .bind(before)
    .bind(limit)
    .bind(&held.froms)
    .bind(&held.untils)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(())
}
