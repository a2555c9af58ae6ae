//! Writes other than the queue: orgs, keys, publishing, destinations, redelivery.

use std::sync::Arc;

use hookline_core::clock::Millis;
use hookline_core::delivery::Delivery;
use hookline_core::destination::{Destination, DestinationSettings};
use hookline_core::event::NewEvent;
use hookline_core::ids::{ApiKeyId, DeliveryId, DestinationId, OrgId};
use hookline_core::sealed::SealedKeys;
use sqlx::{PgConnection, Row};

use super::{WORK_CHANNEL, reads, rows};
use crate::raw::{DESTINATION_COLUMNS, EVENT_COLUMNS, settings_json};
use crate::{ApiKeyRecord, Org, Published, StoreError, StoreResult};

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

pub async fn delete_api_key(
    conn: &mut PgConnection,
    org: &OrgId,
    id: &ApiKeyId,
) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND org_id = $2")
        .bind(id.as_str())
        .bind(org.as_str())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn existing_event(
    conn: &mut PgConnection,
    org: &OrgId,
    key: &str,
) -> StoreResult<Option<Published>> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS}, deliveries FROM events WHERE org_id = $1 AND idempotency_key = $2"
    );
    let row = sqlx::query(&sql)
        .bind(org.as_str())
        .bind(key)
        .fetch_optional(conn)
        .await?;
    row.map(|row| {
        Ok(Published {
            event: Arc::new(rows::event(&row)?),
            deliveries: row.try_get::<i64, _>(9)? as u32,
            queued: 0,
            created: false,
        })
    })
    .transpose()
}

/// Stores the event and its deliveries in the caller's transaction, and, when `notify`,
/// tells listening nodes (delivered at commit).
pub async fn publish(
    conn: &mut PgConnection,
    org: &OrgId,
    new: NewEvent,
    now: Millis,
    notify: bool,
) -> StoreResult<Published> {
    if let Some(key) = &new.idempotency_key
        && let Some(existing) = existing_event(conn, org, key.as_str()).await?
    {
        return Ok(existing);
    }
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO streams (org_id, name, last_seq) VALUES ($1, $2, 1)
         ON CONFLICT (org_id, name) DO UPDATE SET last_seq = streams.last_seq + 1
         RETURNING last_seq",
    )
    .bind(org.as_str())
    .bind(new.stream.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let idempotency_key = new.idempotency_key.clone();
    let one_shot = new.one_shot.clone();
    let event = new.into_event(org.clone(), seq, now);
    let sql = format!(
        "SELECT {DESTINATION_COLUMNS} FROM destinations
         WHERE org_id = $1 AND deleted_at IS NULL AND NOT one_shot
           AND (stream IS NULL OR stream = $2)"
    );
    let destinations = sqlx::query(&sql)
        .bind(org.as_str())
        .bind(event.stream.as_str())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(rows::destination)
        .collect::<StoreResult<Vec<_>>>()?;
    let mut wanted: Vec<&Destination> = destinations.iter().filter(|d| d.wants(&event)).collect();
    if let Some(one_shot) = &one_shot {
        insert_destination(conn, one_shot, true).await?;
        wanted.push(one_shot);
    }
    for destination in &wanted {
        sqlx::query(
            "INSERT INTO deliveries (id, org_id, event_id, destination_id, stream, event_seq,
                 event_type, state, run_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8, $8)",
        )
        .bind(DeliveryId::generate().as_str())
        .bind(org.as_str())
        .bind(event.id.as_str())
        .bind(destination.id.as_str())
        .bind(event.stream.as_str())
        .bind(event.seq)
        .bind(event.event_type.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "INSERT INTO events (id, org_id, stream, seq, type, level, timestamp, data, raw,
             idempotency_key, deliveries)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(event.id.as_str())
    .bind(org.as_str())
    .bind(event.stream.as_str())
    .bind(event.seq)
    .bind(event.event_type.as_str())
    .bind(event.level.as_str())
    .bind(event.timestamp)
    .bind(event.data.to_string())
    .bind(event.raw.as_ref().map(|r| r.to_string()))
    .bind(idempotency_key.as_ref().map(|k| k.as_str()))
    .bind(wanted.len() as i64)
    .execute(&mut *conn)
    .await
    .map_err(
        |e| match e.as_database_error().and_then(|d| d.constraint()) {
            // Another node published the same idempotency key first; the caller looks it up.
            Some("events_idempotency") => StoreError::Conflict("idempotency key taken".into()),
            _ => e.into(),
        },
    )?;
    if notify && !wanted.is_empty() {
        notify_work(conn).await?;
    }
    Ok(Published {
        event: Arc::new(event),
        deliveries: wanted.len() as u32,
        queued: wanted.len() as u32,
        created: true,
    })
}

/// Tells every listening node there is work; delivered when the transaction commits.
pub async fn notify_work(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(WORK_CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
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
    let done = sqlx::query(
        "UPDATE destinations SET settings = $1, enabled = $2, timeout_secs = $3, updated_at = $4,
             ordered = $7,
             disabled_reason = CASE WHEN $2 THEN NULL ELSE disabled_reason END,
             consecutive_failures = CASE WHEN $2 AND NOT enabled THEN 0
                                         ELSE consecutive_failures END
         WHERE id = $5 AND org_id = $6 AND deleted_at IS NULL",
    )
    .bind(settings_json(settings))
    .bind(settings.enabled)
    .bind(i64::from(settings.timeout_secs))
    .bind(now)
    .bind(id.as_str())
    .bind(org.as_str())
    .bind(settings.ordered)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() > 0 && settings.enabled {
        notify_work(conn).await?;
    }
    Ok(done.rows_affected() > 0)
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
        "UPDATE deliveries SET state = 'pending', run_at = $1, lease_until = NULL,
             leased_by = NULL, updated_at = $1
         WHERE id = $2",
    )
    .bind(now)
    .bind(id.as_str())
    .execute(&mut *conn)
    .await?;
    notify_work(conn).await?;
    reads::get_delivery(conn, org, id).await
}
