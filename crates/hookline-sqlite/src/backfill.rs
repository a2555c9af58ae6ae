//! A backfill's deliveries: one per earlier event, pending now, each counted on its
//! event (so retention keeps the event while it waits) and marked due in the writer's
//! index, as a publish's are.

use hookline_core::clock::Millis;
use hookline_core::destination::Destination;
use hookline_core::event::Event;
use hookline_core::ids::DeliveryId;
use rusqlite::{Connection, params};

use crate::WriterState;
use hookline_store::StoreResult;

pub fn backfill(
    conn: &Connection,
    state: &mut WriterState,
    destination: &Destination,
    events: &[Event],
    now: Millis,
) -> StoreResult<u32> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (id, org_id, event_id, destination_id, stream, event_seq,
             event_type, state, run_at, created_at, updated_at, ordered, attempts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8, ?8, ?9, 0)",
    )?;
    let mut counted = conn.prepare_cached(
        "UPDATE events SET deliveries = deliveries + 1 WHERE org_id = ?1 AND id = ?2",
    )?;
    let org = destination.org_id.as_str();
    for event in events {
        insert.execute(params![
            DeliveryId::generate().as_str(),
            org,
            event.id.as_str(),
            destination.id.as_str(),
            event.stream.as_str(),
            event.seq,
            event.event_type.as_str(),
            now,
            destination.settings.ordered,
        ])?;
        counted.execute(params![org, event.id.as_str()])?;
    }
    if !events.is_empty() {
        state.due().mark(destination.id.as_str(), now);
    }
    Ok(events.len() as u32)
}
