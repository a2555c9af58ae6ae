//! Publishing: the event, its stream's next `seq`, and one delivery per destination that
//! wants it, all in one transaction.

use std::sync::Arc;

use hookline_core::clock::Millis;
use hookline_core::event::NewEvent;
use hookline_core::ids::{DeliveryId, OrgId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::WriterState;
use crate::rows;
use hookline_store::{Published, StoreResult};

pub fn publish(
    conn: &Connection,
    state: &mut WriterState,
    org: &OrgId,
    new: NewEvent,
    now: Millis,
) -> StoreResult<Published> {
    if let Some(key) = &new.idempotency_key {
        let sql = format!(
            "SELECT {}, deliveries FROM events WHERE org_id = ?1 AND idempotency_key = ?2",
            rows::EVENT_COLUMNS
        );
        let existing = conn
            .prepare_cached(&sql)?
            .query_row(params![org.as_str(), key.as_str()], |row| {
                Ok((Arc::new(rows::event(row)?), row.get::<_, u32>(9)?))
            })
            .optional()?;
        if let Some((event, deliveries)) = existing {
            return Ok(Published {
                event,
                deliveries,
                queued: 0,
                created: false,
            });
        }
    }
    let seq = state.seqs.next(conn, org.as_str(), new.stream.as_str())?;
    let idempotency_key = new.idempotency_key.clone();
    let one_shot = new.one_shot.clone().map(Arc::new);
    let event = Arc::new(new.into_event(org.clone(), seq, now));
    let data = event.data.to_string();
    let raw = event.raw.as_ref().map(|r| r.to_string());
    let data_bytes = data.len() + raw.as_ref().map_or(0, String::len);
    let destinations = state.destinations.of_org(conn, org)?;
    if let Some(one_shot) = &one_shot {
        crate::writes::insert_destination_row(conn, one_shot, true)?;
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (id, org_id, event_id, destination_id, stream, event_seq,
             event_type, state, run_at, created_at, updated_at, ordered, attempts,
             lease_until, leased_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9, ?10, ?11, ?12, ?13)",
    )?;
    let mut deliveries = 0u32;
    let mut queued = 0u32;
    let matching = destinations.iter().filter(|d| d.wants(&event));
    for destination in matching.chain(one_shot.as_ref()) {
        let id = DeliveryId::generate();
        let older_due = state.due().is_due(destination.id.as_str(), now);
        let lease = state
            .leases
            .lease_at_publish(&id, destination, &event, older_due, now);
        let (delivery_state, attempts) = match lease {
            Some(_) => ("delivering", 1),
            None => ("pending", 0),
        };
        insert.execute(params![
            id.as_str(),
            org.as_str(),
            event.id.as_str(),
            destination.id.as_str(),
            event.stream.as_str(),
            event.seq,
            event.event_type.as_str(),
            delivery_state,
            now,
            destination.settings.ordered,
            attempts,
            lease.as_ref().map(|l| l.until),
            lease.as_ref().map(|l| l.node_id()),
        ])?;
        deliveries += 1;
        match lease {
            Some(_) => state.leases.inserted_as(conn.last_insert_rowid()),
            None => {
                queued += 1;
                state.due().mark(destination.id.as_str(), now);
            }
        }
    }
    conn.prepare_cached(
        "INSERT INTO events (id, org_id, stream, seq, type, level, timestamp, data, raw,
             idempotency_key, deliveries)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        event.id.as_str(),
        org.as_str(),
        event.stream.as_str(),
        event.seq,
        event.event_type.as_str(),
        event.level.as_str(),
        event.timestamp,
        data,
        raw,
        idempotency_key.as_ref().map(|k| k.as_str()),
        deliveries,
    ])?;
    crate::stream_index::record(
        conn,
        org.as_str(),
        event.stream.as_str(),
        event.seq,
        event.id.as_str(),
    )?;
    // For claims; only now that every row is written, so a publish that fails keeps nothing.
    state.events.keep(&event, data_bytes);
    Ok(Published {
        event,
        deliveries,
        queued,
        created: true,
    })
}
