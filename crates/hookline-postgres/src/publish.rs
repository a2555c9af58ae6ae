//! Publishing: the event, its stream's next `seq`, and one delivery per destination that
//! wants it, all in the caller's transaction; and reading back an event published
//! before under the same idempotency key.

use std::sync::Arc;

use hookline_core::clock::Millis;
use hookline_core::destination::Destination;
use hookline_core::event::NewEvent;
use hookline_core::ids::{DeliveryId, OrgId};
use sqlx::{PgConnection, Row};

use crate::writes::insert_destination;
use crate::{notify_work, rows};
use hookline_store::raw::{DESTINATION_COLUMNS, EVENT_COLUMNS};
use hookline_store::{Published, StoreError, StoreResult};

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
    // One statement for all of the event's deliveries, however many destinations.
    if !wanted.is_empty() {
        let delivery_ids: Vec<String> = wanted
            .iter()
            .map(|_| DeliveryId::generate().to_string())
            .collect();
        let destination_ids: Vec<&str> = wanted.iter().map(|d| d.id.as_str()).collect();
        sqlx::query(
            "INSERT INTO deliveries (id, org_id, event_id, destination_id, stream, event_seq,
                 event_type, state, run_at, created_at, updated_at)
             SELECT d.id, $3, $4, d.destination_id, $5, $6, $7, 'pending', $8, $8, $8
             FROM UNNEST($1::text[], $2::text[]) AS d(id, destination_id)",
        )
        .bind(&delivery_ids)
        .bind(&destination_ids)
        .bind(org.as_str())
        .bind(event.id.as_str())
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
