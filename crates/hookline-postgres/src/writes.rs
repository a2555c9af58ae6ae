//! Writes other than publishing and the queue: orgs, keys, destinations, redelivery.

use hookline_core::clock::Millis;
use hookline_core::delivery::Delivery;
use hookline_core::destination::{Destination, DestinationSettings};
use hookline_core::event::Event;
use hookline_core::ids::{ApiKeyId, DeliveryId, DestinationId, OrgId};
use hookline_core::sealed::SealedKeys;
use sqlx::PgConnection;

use crate::{notify_work, partitions, reads};
use hookline_store::raw::settings_json;
use hookline_store::{ApiKeyRecord, KeyDeletion, Org, StoreError, StoreResult};

pub async fn create_org(conn: &mut PgConnection, org: &Org, key: &ApiKeyRecord) -> StoreResult<()> {
    sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(org.id.as_str())
        .bind(&org.name)
        .bind(org.created_at)
        .execute(&mut *conn)
        .await?;
    create_api_key(conn, key).await
}

pub async fn create_api_key(conn: &mut PgConnection, key: &ApiKeyRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, key_hash, display_prefix, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(key.id.as_str())
    .bind(key.org_id.as_str())
    .bind(&key.key_hash)
    .bind(&key.display_prefix)
    .bind(key.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the org deleted, removes its keys, deletes its destinations and cancels their
/// unfinished deliveries, in the caller's transaction.
pub async fn delete_org(conn: &mut PgConnection, org: &OrgId, now: Millis) -> StoreResult<bool> {
    let deleted =
        sqlx::query("UPDATE orgs SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
            .bind(now)
            .bind(org.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected();
    if deleted == 0 {
        return Ok(false);
    }
    for sql in [
        "DELETE FROM api_keys WHERE org_id = $2",
        "UPDATE destinations SET deleted_at = $1, enabled = FALSE, updated_at = $1
         WHERE org_id = $2 AND deleted_at IS NULL",
        "UPDATE deliveries SET state = 'canceled', run_at = NULL, lease_until = NULL,
             leased_by = NULL, updated_at = $1
         WHERE org_id = $2 AND state IN ('pending', 'failed', 'delivering')",
    ] {
        sqlx::query(sql)
            .bind(now)
            .bind(org.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(true)
}

/// Locks the org's keys first, so a deletion racing this one waits, then sees what this
/// one left: two deletions of an org's two keys cannot both succeed.
pub async fn delete_api_key(
    conn: &mut PgConnection,
    org: &OrgId,
    id: &ApiKeyId,
) -> StoreResult<KeyDeletion> {
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT id FROM api_keys WHERE org_id = $1 FOR UPDATE")
            .bind(org.as_str())
            .fetch_all(&mut *conn)
            .await?;
    let deletion = KeyDeletion::of(&keys, id);
    if deletion == KeyDeletion::Deleted {
        sqlx::query("DELETE FROM api_keys WHERE id = $1 AND org_id = $2")
            .bind(id.as_str())
            .bind(org.as_str())
            .execute(conn)
            .await?;
    }
    Ok(deletion)
}

/// Inserts a destination unless its org holds `max_per_org` already. The org's row is
/// locked first, so two creates racing for the last place take turns.
pub async fn insert_limited_destination(
    conn: &mut PgConnection,
    d: &Destination,
    max_per_org: u32,
) -> StoreResult<()> {
    sqlx::query("SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE")
        .bind(d.org_id.as_str())
        .execute(&mut *conn)
        .await?;
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM destinations
         WHERE org_id = $1 AND deleted_at IS NULL AND NOT one_shot",
    )
    .bind(d.org_id.as_str())
    .fetch_one(&mut *conn)
    .await?;
    if held >= i64::from(max_per_org) {
        return Err(StoreError::destination_limit(max_per_org));
    }
    insert_destination(conn, d, false).await
}

/// Inserts a destination; a one-shot one (`webhook_url`) takes only the event it came with.
pub async fn insert_destination(
    conn: &mut PgConnection,
    d: &Destination,
    one_shot: bool,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO destinations (id, org_id, stream, settings, enabled, secret, timeout_secs,
             created_at, updated_at, ordered, one_shot)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(d.id.as_str())
    .bind(d.org_id.as_str())
    .bind(d.stream.as_ref().map(|s| s.as_str()))
    .bind(settings_json(&d.settings))
    .bind(d.settings.enabled)
    .bind(d.keys.as_str())
    .bind(i64::from(d.settings.timeout_secs))
    .bind(d.created_at)
    .bind(d.updated_at)
    .bind(d.settings.ordered)
    .bind(one_shot)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn update_destination_settings(
    conn: &mut PgConnection,
    org: &OrgId,
    id: &DestinationId,
    settings: &DestinationSettings,
    now: Millis,
) -> StoreResult<bool> {
    // The row as it was, locked, so the deliveries below are touched only on a flip.
    let was_ordered: Option<bool> = sqlx::query_scalar(
        "UPDATE destinations d SET settings = $1, enabled = $2, timeout_secs = $3,
             updated_at = $4, ordered = $7,
             disabled_reason = CASE WHEN $2 THEN NULL ELSE d.disabled_reason END,
             consecutive_failures = CASE WHEN $2 AND NOT d.enabled THEN 0
                                         ELSE d.consecutive_failures END
         FROM (SELECT id, ordered FROM destinations WHERE id = $5 FOR UPDATE) was
         WHERE d.id = was.id AND d.org_id = $6 AND d.deleted_at IS NULL
         RETURNING was.ordered",
    )
    .bind(settings_json(settings))
    .bind(settings.enabled)
    .bind(i64::from(settings.timeout_secs))
    .bind(now)
    .bind(id.as_str())
    .bind(org.as_str())
    .bind(settings.ordered)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(was_ordered) = was_ordered else {
        return Ok(false);
    };
    if was_ordered != settings.ordered {
        // Unfinished deliveries follow their destination into (or out of) the ordered
        // indexes; finished ones never need them.
        sqlx::query(
            "UPDATE deliveries SET ordered = $1
             WHERE destination_id = $2 AND state IN ('pending', 'failed', 'delivering')",
        )
        .bind(settings.ordered)
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    }
    if settings.enabled {
        notify_work(conn).await?;
    }
    Ok(true)
}

pub async fn set_org_signing_keys(
    conn: &mut PgConnection,
    org: &OrgId,
    keys: &SealedKeys,
    expected: Option<&SealedKeys>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE orgs SET signing_keys = $1 WHERE id = $2 AND signing_keys IS NOT DISTINCT FROM $3",
    )
    .bind(keys.as_str())
    .bind(org.as_str())
    .bind(expected.map(SealedKeys::as_str))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn replace_destination_keys(
    conn: &mut PgConnection,
    org: &OrgId,
    id: &DestinationId,
    keys: &SealedKeys,
    expected: &SealedKeys,
    now: Millis,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE destinations SET secret = $1, updated_at = $2
         WHERE id = $3 AND org_id = $4 AND deleted_at IS NULL AND secret = $5",
    )
    .bind(keys.as_str())
    .bind(now)
    .bind(id.as_str())
    .bind(org.as_str())
    .bind(expected.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn delete_destination(
    conn: &mut PgConnection,
    org: &OrgId,
    id: &DestinationId,
    now: Millis,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE destinations SET deleted_at = $1, enabled = FALSE, updated_at = $1
         WHERE id = $2 AND org_id = $3 AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(id.as_str())
    .bind(org.as_str())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() > 0 {
        sqlx::query(
            "UPDATE deliveries SET state = 'canceled', run_at = NULL, lease_until = NULL,
                 leased_by = NULL, updated_at = $1
             WHERE destination_id = $2 AND state IN ('pending', 'failed', 'delivering')",
        )
        .bind(now)
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(done.rows_affected() > 0)
}

pub async fn redeliver(
    conn: &mut PgConnection,
    org: &OrgId,
    id: &DeliveryId,
    now: Millis,
) -> StoreResult<Option<Delivery>> {
    let deleted: Option<bool> = sqlx::query_scalar(
        "SELECT t.deleted_at IS NOT NULL FROM deliveries d
         JOIN destinations t ON t.id = d.destination_id
         WHERE d.id = $1 AND d.org_id = $2",
    )
    .bind(id.as_str())
    .bind(org.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    match deleted {
        None => return Ok(None),
        Some(true) => {
            return Err(StoreError::Conflict(
                "the destination of this delivery has been deleted".into(),
            ));
        }
        Some(false) => {}
    }
    sqlx::query(
        "UPDATE deliveries d SET state = 'pending', run_at = $1, lease_until = NULL,
             leased_by = NULL, updated_at = $1,
             ordered = (SELECT t.ordered FROM destinations t WHERE t.id = d.destination_id)
         WHERE d.id = $2",
    )
    .bind(now)
    .bind(id.as_str())
    .execute(&mut *conn)
    .await?;
    notify_work(conn).await?;
    reads::get_delivery(conn, org, id).await
}

/// A backfill's deliveries, one per earlier event, pending now and counted on each event
/// (so retention keeps the event while it waits).
pub async fn backfill(
    conn: &mut PgConnection,
    destination: &Destination,
    events: &[Event],
    now: Millis,
) -> StoreResult<u32> {
    let ids: Vec<String> = events
        .iter()
        .map(|_| DeliveryId::generate().to_string())
        .collect();
    let event_ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let streams: Vec<&str> = events.iter().map(|e| e.stream.as_str()).collect();
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    // An event whose day of partitions retention has dropped is on its way out too: it
    // has no partition to take a delivery.
    let partitions = partitions::existing(conn).await?;
    let (froms, untils) = partitions::ranges(&partitions);
    let queued: Vec<String> = sqlx::query_scalar(
        "INSERT INTO deliveries (id, destination_id, org_id, event_id, stream, event_seq,
             event_type, state, run_at, created_at, updated_at, ordered)
         SELECT d.id, $5, $6, d.event_id, d.stream, d.seq, d.type, 'pending', $7, $7, $7, $8
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $9::text[])
              AS d(id, event_id, stream, seq, type)
         WHERE EXISTS (SELECT 1 FROM UNNEST($10::text[], $11::text[]) AS r(from_id, until_id)
                       WHERE d.event_id >= r.from_id AND d.event_id < r.until_id)
         RETURNING event_id",
    )
    .bind(&ids)
    .bind(&event_ids)
    .bind(&streams)
    .bind(&seqs)
    .bind(destination.id.as_str())
    .bind(destination.org_id.as_str())
    .bind(now)
    .bind(destination.settings.ordered)
    .bind(&types)
    .bind(&froms)
    .bind(&untils)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("UPDATE events SET deliveries = deliveries + 1 WHERE org_id = $1 AND id = ANY($2)")
        .bind(destination.org_id.as_str())
        .bind(&queued)
        .execute(&mut *conn)
        .await?;
    notify_work(conn).await?;
    Ok(queued.len() as u32)
}
