//! Retention on PostgreSQL: what the embedded store's retention does (see
//! `hookline_sqlite`'s), org by org in one short transaction per batch, under a
//! transaction-level advisory lock taken without waiting: while one node purges, the
//! others' passes remove nothing, so rows are never purged twice.

use std::collections::BTreeMap;

use hookline_core::clock::Millis;
use hookline_core::ids::{DeliveryId, EventId};
use hookline_store::{Purged, StoreResult, retention_cut as cut};
use sqlx::PgConnection;

pub(crate) const PURGE_LOCK: &str =
    "SELECT pg_try_advisory_xact_lock(hashtextextended('hookline-retention', 0))";
const FINISHED: &str = "('delivered', 'dead_letter', 'canceled', 'intercepted')";

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
    let orgs: Vec<(String, Option<f64>)> =
        sqlx::query_as("SELECT id, retention_days FROM orgs ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
    for (org, own) in orgs {
        let left = u64::from(batch).saturating_sub(purged.deliveries.max(purged.events));
        if left == 0 {
            break;
        }
        if let Some(before) = cut(now, own, window) {
            purge_org(conn, &org, before, left as i64, &mut purged).await?;
        }
    }
    Ok(purged)
}

async fn purge_org(
    conn: &mut PgConnection,
    org: &str,
    before: Millis,
    limit: i64,
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
    // one purged can have lost all theirs.
    let (through, bound) = match (rows.len() as i64 == limit, events.last()) {
        (true, Some(last)) => ("<=", (*last).to_owned()),
        _ => ("<", EventId::lowest_at(before).to_string()),
    };
    purged.events += sqlx::query(&format!(
        "DELETE FROM events WHERE id IN (
             SELECT id FROM events
             WHERE org_id = $1 AND id {through} $2 AND timestamp < $3 AND deliveries <= 0
             ORDER BY id LIMIT $4)"
    ))
    .bind(org)
    .bind(bound)
    .bind(before)
    .bind(limit)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(())
}
